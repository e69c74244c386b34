// skopeo against a real Berth process: multi-arch and large-layer images copied in from OCI layouts
// built on disk, compared digest by digest when copied back out; tags, delete, cross-repository
// mounts and bad credentials.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN_PASSWORD, basic } from '../helpers/app.ts';
import { largeLayerLayout, layoutBlobs, layoutTop, multiArchLayout, sha256, tempDir, type Layout } from '../helpers/oci-layout.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { missingTool } from '../helpers/tools.ts';
import { ok, run } from './exec.ts';

const skip = missingTool('skopeo');
const CREDS = `admin:${ADMIN_PASSWORD}`;
const LARGE_BYTES = 64 * 1024 * 1024;

describe('skopeo', { skip }, () => {
  let srv: ServerProcess;
  let multi: Layout;
  let large: Layout;
  const cleanup: string[] = [];
  let env: Record<string, string>;

  before(async () => {
    const work = tempDir('berth-skopeo-');
    cleanup.push(work);
    // No stray credentials from the machine: an empty auth file of our own.
    env = { REGISTRY_AUTH_FILE: path.join(work, 'auth.json') };
    fs.writeFileSync(env.REGISTRY_AUTH_FILE, '{"auths":{}}');
    [srv, multi, large] = await Promise.all([
      startServer({ env: { BERTH_LOG_LEVEL: 'warn' } }),
      multiArchLayout({ dir: path.join(work, 'multi'), seed: `skopeo-${process.pid}` }),
      largeLayerLayout({ dir: path.join(work, 'large'), seed: `skopeo-large-${process.pid}`, largeBytes: LARGE_BYTES }),
    ]);
  });

  after(async () => {
    await srv?.stop();
    for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
    if (srv) fs.rmSync(srv.dataDir, { recursive: true, force: true });
  });

  const docker = (repo: string) => `docker://${srv.host}/${repo}`;
  const push = (src: string, dest: string, extra: string[] = []) =>
    ok('skopeo', ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', CREDS, ...extra, src, dest], { env });
  const pull = (src: string, dest: string) => ok('skopeo', ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--src-creds', CREDS, src, dest], { env });
  const inspectRaw = async (ref: string, extra: string[] = []) => (await ok('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', CREDS, ...extra, ref], { env })).stdout;
  const inspect = async (ref: string, extra: string[] = []) =>
    JSON.parse((await ok('skopeo', ['inspect', '--tls-verify=false', '--creds', CREDS, ...extra, ref], { env })).stdout) as { Digest: string; Layers: string[]; Architecture: string };
  const listTags = async (repo: string) => JSON.parse((await ok('skopeo', ['list-tags', '--tls-verify=false', '--creds', CREDS, docker(repo)], { env })).stdout) as { Repository: string; Tags: string[] };

  /** Copies `ref` out of Berth into a fresh OCI layout and checks it holds exactly the blobs of `layout`. */
  async function roundTrip(ref: string, layout: Layout): Promise<void> {
    const out = tempDir('berth-skopeo-out-');
    cleanup.push(out);
    await pull(ref, `oci:${out}:back`);
    assert.equal(layoutTop(out, 'back').digest, layout.top.digest, 'top-level digest after the round trip');
    assert.deepEqual(await layoutBlobs(out), layout.blobs, 'the same blobs, each matching its digest');
  }

  test('copy --all a multi-arch index in: the index and its manifests keep their digests', async () => {
    await push(multi.ref, docker('library/multi:1'));
    const raw = await inspectRaw(docker('library/multi:1'));
    assert.equal(sha256(raw), multi.top.digest, 'index bytes as pushed');
    const index = JSON.parse(raw) as { mediaType: string; manifests: { digest: string; platform: { architecture: string } }[] };
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(
      index.manifests.map((m) => [m.platform.architecture, m.digest]),
      multi.images.map((i) => [i.manifest.platform!.architecture, i.manifest.digest]),
    );
    for (const img of multi.images) {
      const arch = img.manifest.platform!.architecture;
      const info = await inspect(docker('library/multi:1'), ['--override-arch', arch, '--override-os', 'linux']);
      assert.equal(sha256(await inspectRaw(docker(`library/multi@${img.manifest.digest}`))), img.manifest.digest, `${arch} manifest by digest`);
      assert.equal(info.Architecture, arch);
      assert.deepEqual(info.Layers, img.layers.map((l) => l.digest), `${arch} layers`);
    }
    // The shared layer is one blob for both platforms, and is readable over plain HTTP too.
    const shared = multi.images[0].layers[0];
    assert.equal(multi.images[1].layers[0].digest, shared.digest);
    const r = await fetch(`${srv.url}/v2/library/multi/blobs/${shared.digest}`, { headers: { Authorization: basic('admin', ADMIN_PASSWORD) } });
    assert.equal(r.status, 200);
    assert.equal(sha256(Buffer.from(await r.arrayBuffer())), shared.digest);
  });

  test('copy the multi-arch image back out: every blob digest matches', async () => {
    await roundTrip(docker('library/multi:1'), multi);
  });

  test(`copy a ${LARGE_BYTES >> 20} MiB layer image in and back out`, async () => {
    await push(large.ref, docker('library/big:1'));
    assert.equal(sha256(await inspectRaw(docker('library/big:1'))), large.top.digest);
    const big = large.images[0].layers[1];
    assert.ok(big.size > LARGE_BYTES, `large layer is ${big.size} bytes`);
    const head = await fetch(`${srv.url}/v2/library/big/blobs/${big.digest}`, { method: 'HEAD', headers: { Authorization: basic('admin', ADMIN_PASSWORD) } });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(big.size));
    await roundTrip(docker('library/big:1'), large);
  });

  test('Docker media types (--format v2s2): a manifest list of schema 2 manifests, same configs and layers', async () => {
    await ok('skopeo', ['copy', '--all', '--format', 'v2s2', '--dest-tls-verify=false', '--dest-creds', CREDS, multi.ref, docker('library/docker-types:1')], { env });
    const list = JSON.parse(await inspectRaw(docker('library/docker-types:1'))) as { mediaType: string; manifests: { mediaType: string; digest: string; platform: { architecture: string } }[] };
    assert.equal(list.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.deepEqual(list.manifests.map((m) => m.platform.architecture), ['amd64', 'arm64']);
    for (const [i, d] of list.manifests.entries()) {
      assert.equal(d.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
      const raw = await inspectRaw(docker(`library/docker-types@${d.digest}`));
      assert.equal(sha256(raw), d.digest);
      const m = JSON.parse(raw) as { mediaType: string; config: { mediaType: string; digest: string }; layers: { mediaType: string; digest: string }[] };
      assert.equal(m.config.mediaType, 'application/vnd.docker.container.image.v1+json');
      assert.equal(m.config.digest, multi.images[i].config.digest, 'the config blob is unchanged');
      assert.deepEqual(m.layers.map((l) => l.mediaType), multi.images[i].layers.map(() => 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
      assert.deepEqual(m.layers.map((l) => l.digest), multi.images[i].layers.map((l) => l.digest), 'the layer blobs are unchanged');
    }
  });

  test('zstd layers: pushed recompressed, pulled back byte-identical', async () => {
    // Content of its own: skopeo would otherwise reuse the gzip layers already in Berth.
    const src = await multiArchLayout({ dir: path.join(cleanup[0], 'zstd-src'), seed: `skopeo-zstd-${process.pid}` });
    await ok('skopeo', ['copy', '--all', '--dest-compress-format', 'zstd', '--dest-tls-verify=false', '--dest-creds', CREDS, src.ref, docker('library/zstd:1')], { env });
    const list = JSON.parse(await inspectRaw(docker('library/zstd:1'))) as { manifests: { digest: string }[] };
    const expected = new Set<string>([sha256(await inspectRaw(docker('library/zstd:1')))]);
    for (const d of list.manifests) {
      const m = JSON.parse(await inspectRaw(docker(`library/zstd@${d.digest}`))) as { config: { digest: string }; layers: { mediaType: string; digest: string }[] };
      assert.deepEqual(new Set(m.layers.map((l) => l.mediaType)), new Set(['application/vnd.oci.image.layer.v1.tar+zstd']));
      for (const x of [d.digest, m.config.digest, ...m.layers.map((l) => l.digest)]) expected.add(x);
    }
    const out = tempDir('berth-skopeo-zstd-');
    cleanup.push(out);
    await pull(docker('library/zstd:1'), `oci:${out}:back`);
    assert.deepEqual(await layoutBlobs(out), [...expected].sort(), 'every blob of the zstd image, each matching its digest');
  });

  test('list-tags shows every tag of a repository', async () => {
    await ok('skopeo', ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-creds', CREDS, '--dest-creds', CREDS, docker('library/multi:1'), docker('library/multi:latest')], { env });
    await push(multi.ref, docker('library/multi:2'));
    const tags = await listTags('library/multi');
    assert.equal(tags.Repository, `${srv.host}/library/multi`);
    assert.deepEqual([...tags.Tags].sort(), ['1', '2', 'latest']);
    assert.equal(sha256(await inspectRaw(docker('library/multi:latest'))), multi.top.digest);
  });

  test('cross-repository copy mounts the layers instead of uploading them', async () => {
    const blobsDir = path.join(srv.dataDir, 'storage', 'blobs');
    const before = countFiles(blobsDir);
    const r = await ok(
      'skopeo',
      ['--debug', 'copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-creds', CREDS, '--dest-creds', CREDS, docker('library/multi:1'), docker('library/multi-copy:1')],
      { env },
    );
    const layers = new Set(multi.images.flatMap((i) => i.layers.map((l) => l.digest)));
    const mounted = (r.stderr.match(/mount OK/g) ?? []).length;
    assert.equal(mounted, layers.size, `every distinct layer mounted once:\n${r.stderr.split('\n').filter((l) => /mount/i.test(l)).join('\n')}`);
    for (const d of layers) {
      const patched = new RegExp(`PUT [^"]*/v2/library/multi-copy/blobs/uploads/[^"?]*\\?digest=${encodeURIComponent(d)}`);
      assert.doesNotMatch(r.stderr, patched, `layer ${d} was uploaded, not mounted`);
    }
    assert.equal(sha256(await inspectRaw(docker('library/multi-copy:1'))), multi.top.digest);
    // De-duplicated storage: the copy added no blob files.
    assert.equal(countFiles(blobsDir), before, 'no new blob files for an identical image in another repository');
    await roundTrip(docker('library/multi-copy:1'), multi);
  });

  test('delete removes the manifest from that repository only', async () => {
    await ok('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-creds', CREDS, '--dest-creds', CREDS, docker('library/big:1'), docker('library/victim:1')], { env });
    assert.equal(sha256(await inspectRaw(docker('library/victim:1'))), large.top.digest);
    await ok('skopeo', ['delete', '--tls-verify=false', '--creds', CREDS, docker('library/victim:1')], { env });
    const gone = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', CREDS, docker('library/victim:1')], { env });
    assert.notEqual(gone.code, 0, 'the deleted tag no longer resolves');
    assert.match(gone.stderr, /manifest unknown|not found/i);
    const byDigest = await fetch(`${srv.url}/v2/library/victim/manifests/${large.top.digest}`, { headers: { Authorization: basic('admin', ADMIN_PASSWORD) } });
    assert.equal(byDigest.status, 404, 'the manifest is gone by digest too');
    assert.deepEqual((await listTags('library/victim')).Tags, []);
    // The same content in another repository is untouched.
    assert.equal(sha256(await inspectRaw(docker('library/big:1'))), large.top.digest);
  });

  test('bad credentials are refused', async () => {
    const wrong = ['--dest-tls-verify=false', '--dest-creds', 'admin:not-the-password'];
    const push = await run('skopeo', ['copy', '--all', ...wrong, multi.ref, docker('library/intruder:1')], { env });
    assert.notEqual(push.code, 0);
    assert.match(push.stderr, /unauthorized|authentication required|invalid username\/password/i);
    const read = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', 'nobody:whatever', docker('library/multi:1')], { env });
    assert.notEqual(read.code, 0);
    assert.match(read.stderr, /unauthorized|authentication required|invalid username\/password/i);
    // (Anonymous pull depends on the project being public, so only anonymous push is checked.)
    const anon = await run('skopeo', ['copy', '--all', '--dest-tls-verify=false', '--dest-no-creds', multi.ref, docker('library/intruder:1')], { env });
    assert.notEqual(anon.code, 0, 'anonymous push is refused');
    assert.match(anon.stderr, /unauthorized|authentication required/i);
    // Nothing was created by the refused push.
    const tags = await fetch(`${srv.url}/v2/library/intruder/tags/list`, { headers: { Authorization: basic('admin', ADMIN_PASSWORD) } });
    assert.equal(tags.status, 404);
  });
});

function countFiles(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}
