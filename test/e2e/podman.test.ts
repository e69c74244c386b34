// podman against a real Berth process, as root with the vfs storage driver in a private temp
// storage (no daemon, no `podman run`): login, push, remove, pull back and compare image IDs and
// digests; a second repository (cross-repository mount); a multi-arch manifest list; logout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN_PASSWORD, basic } from '../helpers/app.ts';
import { largeLayerLayout, multiArchLayout, sha256, type Layout } from '../helpers/oci-layout.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { missingTool } from '../helpers/tools.ts';
import { ok, run } from './exec.ts';

const skip = missingTool('podman');
const AUTH = basic('admin', ADMIN_PASSWORD);
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

interface Manifest {
  mediaType?: string;
  config?: { digest: string };
  layers?: { digest: string }[];
  manifests?: { digest: string; platform?: { architecture: string; os: string } }[];
}

describe('podman', { skip }, () => {
  let srv: ServerProcess;
  let single: Layout;
  let multi: Layout;
  let work: string;
  let env: Record<string, string>;

  before(async () => {
    // podman names an image pulled from oci:<dir> after the directory, which must be lowercase.
    work = path.join(os.tmpdir(), `berth-podman-${randomBytes(6).toString('hex')}`);
    fs.mkdirSync(work);
    srv = await startServer({ env: { BERTH_LOG_LEVEL: 'warn' } });
    const w = (name: string, text: string) => {
      fs.writeFileSync(path.join(work, name), text);
      return path.join(work, name);
    };
    env = {
      CONTAINERS_STORAGE_CONF: w('storage.conf', `[storage]\ndriver = "vfs"\nrunroot = "${work}/run"\ngraphroot = "${work}/root"\n`),
      CONTAINERS_CONF: w('containers.conf', `[engine]\ntmp_dir = "${work}/tmp"\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n`),
      CONTAINERS_REGISTRIES_CONF: w('registries.conf', `unqualified-search-registries = []\n\n[[registry]]\nlocation = "${srv.host}"\ninsecure = true\n`),
      REGISTRY_AUTH_FILE: w('auth.json', '{"auths":{}}'),
    };
    [single, multi] = await Promise.all([
      largeLayerLayout({ dir: path.join(work, 'single'), seed: `podman-${process.pid}`, largeBytes: 16 * 1024 * 1024 }),
      multiArchLayout({ dir: path.join(work, 'multi'), seed: `podman-multi-${process.pid}` }),
    ]);
  });

  after(async () => {
    await srv?.stop();
    if (srv) fs.rmSync(srv.dataDir, { recursive: true, force: true });
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const podman = (...args: string[]) => ok('podman', args, { env });
  const idOf = async (ref: string) => (await podman('image', 'inspect', '--format', '{{.Id}}', ref)).stdout.trim();
  const localImages = async () => (await podman('images', '-q', '--no-trunc')).stdout.split('\n').filter(Boolean);

  async function manifestFromBerth(repo: string, ref: string): Promise<{ digest: string; body: Manifest }> {
    const r = await fetch(`${srv.url}/v2/${repo}/manifests/${ref}`, { headers: { Authorization: AUTH, Accept: MANIFEST_ACCEPT } });
    assert.equal(r.status, 200, `manifest ${repo}:${ref}`);
    const bytes = Buffer.from(await r.arrayBuffer());
    assert.equal(r.headers.get('docker-content-digest'), sha256(bytes));
    return { digest: sha256(bytes), body: JSON.parse(bytes.toString()) as Manifest };
  }

  test('login: a wrong password is refused, the right one is stored', async () => {
    const bad = await run('podman', ['login', '--tls-verify=false', '-u', 'admin', '-p', 'wrong-password', srv.host], { env });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid username\/password|unauthorized/i);
    assert.deepEqual(JSON.parse(fs.readFileSync(env.REGISTRY_AUTH_FILE, 'utf8')).auths, {});
    const good = await podman('login', '--tls-verify=false', '-u', 'admin', '-p', ADMIN_PASSWORD, srv.host);
    assert.match(good.stdout, /Login Succeeded/);
    assert.ok(JSON.parse(fs.readFileSync(env.REGISTRY_AUTH_FILE, 'utf8')).auths[srv.host], 'credentials stored for the registry');
  });

  test('push, remove locally, pull back: same image ID and manifest digest', async () => {
    const img = single.images[0];
    await podman('pull', '-q', single.ref);
    const localName = `localhost${single.dir}:latest`;
    assert.equal(await idOf(localName), img.config.digest.slice(7), 'image ID is the config digest');
    const target = `${srv.host}/library/podman:1`;
    await podman('tag', localName, target);
    const digestFile = path.join(work, 'push.digest');
    await podman('push', '--tls-verify=false', '--digestfile', digestFile, target);
    const pushed = fs.readFileSync(digestFile, 'utf8').trim();

    // What Berth stores is what podman says it pushed, and it is the same image (same config).
    const m = await manifestFromBerth('library/podman', '1');
    assert.equal(m.digest, pushed);
    assert.equal(m.body.config!.digest, img.config.digest);
    assert.equal(m.body.layers!.length, img.layers.length);
    for (const l of m.body.layers!) {
      const h = await fetch(`${srv.url}/v2/library/podman/blobs/${l.digest}`, { method: 'HEAD', headers: { Authorization: AUTH } });
      assert.equal(h.status, 200, `layer ${l.digest} is in the repository`);
    }

    await podman('rmi', '-a', '-f');
    assert.deepEqual(await localImages(), [], 'local storage is empty');

    // No --tls-verify=false here: registries.conf marks Berth insecure, and the login is reused.
    await podman('pull', '-q', target);
    const info = JSON.parse((await podman('image', 'inspect', target)).stdout) as { Id: string; Digest: string; RootFS: { Layers: string[] } }[];
    assert.equal(info[0].Id, img.config.digest.slice(7), 'pulled image has the original image ID');
    assert.equal(info[0].Digest, pushed, 'pulled manifest digest is the pushed one');
    assert.deepEqual(info[0].RootFS.Layers, img.layers.map((l) => l.diffId), 'layer contents (diff IDs) unchanged');
  });

  test('push the same image to a second repository: layers are mounted, nothing new is stored', async () => {
    const img = single.images[0];
    const blobsDir = path.join(srv.dataDir, 'storage', 'blobs');
    const before = countFiles(blobsDir);
    const source = await manifestFromBerth('library/podman', '1');
    const target = `${srv.host}/library/podman-copy:1`;
    await podman('tag', `${srv.host}/library/podman:1`, target);
    const r = await ok('podman', ['--log-level=debug', 'push', '--tls-verify=false', target], { env });
    const mounts = r.stderr.split('\n').filter((l) => /mount/i.test(l));
    assert.equal(
      mounts.filter((l) => /mount OK/.test(l)).length,
      img.layers.length,
      `podman mounted every layer from library/podman:\n${mounts.join('\n')}`,
    );
    const m = await manifestFromBerth('library/podman-copy', '1');
    assert.equal(m.body.config!.digest, img.config.digest);
    assert.deepEqual(
      m.body.layers!.map((l) => l.digest),
      source.body.layers!.map((l) => l.digest),
      'the same layer blobs as in library/podman',
    );
    assert.equal(m.digest, source.digest, 'the same manifest');
    assert.equal(countFiles(blobsDir), before, 'de-duplicated: no new blob files');
  });

  test('multi-arch: manifest push --all, pull each architecture back', async () => {
    await podman('manifest', 'create', 'localhost/berth-multi:1');
    await podman('manifest', 'add', '--all', 'localhost/berth-multi:1', multi.ref);
    const digestFile = path.join(work, 'list.digest');
    await podman('manifest', 'push', '--all', '--tls-verify=false', '--digestfile', digestFile, 'localhost/berth-multi:1', `docker://${srv.host}/library/podman-multi:1`);
    const list = await manifestFromBerth('library/podman-multi', '1');
    assert.equal(list.digest, fs.readFileSync(digestFile, 'utf8').trim());
    assert.deepEqual(
      list.body.manifests!.map((d) => `${d.platform!.os}/${d.platform!.architecture}`).sort(),
      ['linux/amd64', 'linux/arm64'],
    );
    await podman('rmi', '-a', '-f');
    for (const img of multi.images) {
      const arch = img.manifest.platform!.architecture;
      const out = await podman('pull', '-q', '--arch', arch, `${srv.host}/library/podman-multi:1`);
      assert.equal(out.stdout.trim(), img.config.digest.slice(7), `${arch}: pulled image ID is the ${arch} config digest`);
      const info = JSON.parse((await podman('image', 'inspect', img.config.digest.slice(7))).stdout) as { Architecture: string; RootFS: { Layers: string[] } }[];
      assert.equal(info[0].Architecture, arch);
      assert.deepEqual(info[0].RootFS.Layers, img.layers.map((l) => l.diffId));
    }
  });

  test('after logout a push is refused', async () => {
    await podman('logout', srv.host);
    assert.deepEqual(JSON.parse(fs.readFileSync(env.REGISTRY_AUTH_FILE, 'utf8')).auths, {});
    const [id] = await localImages();
    assert.ok(id, 'an image to push');
    const r = await run('podman', ['push', '--tls-verify=false', id, `docker://${srv.host}/library/podman-anon:1`], { env });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unauthorized|authentication required/i);
    const tags = await fetch(`${srv.url}/v2/library/podman-anon/tags/list`, { headers: { Authorization: AUTH } });
    assert.equal(tags.status, 404, 'nothing was created');
  });
});

function countFiles(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}
