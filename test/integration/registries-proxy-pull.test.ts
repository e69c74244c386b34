// Pull-through of a proxy-cache project with a real client: skopeo copies a multi-arch image from
// <berth>/hub-cache/team/app (upstream: Distribution with Basic auth) digest for digest; with the
// upstream stopped, the cached tag and digest still pull; pushing into the project is DENIED.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { UpstreamClient } from '../../src/upstream/client.ts';
import { ADMIN_PASSWORD, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { missingDistribution, removeDistribution, startDistribution, type Distribution } from '../helpers/distribution.ts';
import { bytes, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, sha256 } from '../helpers/oci.ts';
import { missingTool } from '../helpers/tools.ts';

const skip = missingDistribution({ htpasswd: true }) || missingTool('skopeo');
const run = promisify(execFile);
let dist: Distribution;
let t: TestApp;
let server: http.Server;
let host: string;
let dir: string;
let registryId: number;

const skopeo = (...args: string[]) => run('skopeo', args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });

before(async () => {
  if (skip) return;
  dist = await startDistribution({ users: { u: 'Upstream-pw-1' } });
  t = await makeApp({}, REAL_ACCESS);
  server = http.createServer(t.berth.app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-proxy-pull-'));
  const reg = await t.request.post('/api/v2.0/registries').set('Authorization', t.adminAuth).send({ name: 'up', type: 'docker-registry', url: dist.url, credential: { type: 'basic', access_key: 'u', access_secret: 'Upstream-pw-1' } });
  assert.equal(reg.status, 201);
  registryId = Number(String(reg.headers.location).split('/').pop());
  // Harbor's way: a project created with registry_id is a proxy cache of that endpoint.
  const created = await t.request.post('/api/v2.0/projects').set('Authorization', t.adminAuth).send({ project_name: 'hub-cache', registry_id: registryId });
  assert.equal(created.status, 201, JSON.stringify(created.body));
});
after(async () => {
  if (skip) return;
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await t.close();
  await removeDistribution(dist);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('pull through a proxy-cache project', { skip }, () => {
  let indexDigest: string;

  test('skopeo copies a multi-arch image through the project, digest for digest', async () => {
    const up = new UpstreamClient({ url: dist.url, credential: { username: 'u', password: 'Upstream-pw-1' } });
    const children: Buffer[] = [];
    for (const [i, arch] of ['amd64', 'arm64'].entries()) {
      const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
      const layer = bytes(200_000, 5 + i);
      for (const b of [config, layer]) await up.pushBlob('team/app', sha256(b), b.length, () => Readable.from([b]));
      const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length }, layers: [{ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length }] }));
      await up.putManifest('team/app', sha256(m), m, OCI_MANIFEST);
      children.push(m);
    }
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((c, i) => ({ mediaType: OCI_MANIFEST, digest: sha256(c), size: c.length, platform: { architecture: i ? 'arm64' : 'amd64', os: 'linux' } })) }));
    await up.putManifest('team/app', 'v1', index, OCI_INDEX);
    up.close();
    indexDigest = sha256(index);

    const creds = ['--src-tls-verify=false', '--src-creds', `admin:${ADMIN_PASSWORD}`];
    await skopeo('copy', '--all', '--preserve-digests', ...creds, `docker://${host}/hub-cache/team/app:v1`, `oci:${dir}/layout:v1`);
    const raw = (await skopeo('inspect', '--raw', '--tls-verify=false', '--creds', `admin:${ADMIN_PASSWORD}`, `docker://${host}/hub-cache/team/app:v1`)).stdout;
    assert.equal(sha256(raw), indexDigest);
    const layoutIndex = JSON.parse(fs.readFileSync(path.join(dir, 'layout', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(layoutIndex.manifests[0].digest, indexDigest);
  });

  test('with the upstream stopped, the cached tag and digest still pull', async () => {
    await dist.stop();
    try {
      const creds = ['--src-tls-verify=false', '--src-creds', `admin:${ADMIN_PASSWORD}`];
      await skopeo('copy', '--all', '--preserve-digests', ...creds, `docker://${host}/hub-cache/team/app:v1`, `oci:${dir}/down:v1`);
      await skopeo('copy', '--all', '--preserve-digests', ...creds, `docker://${host}/hub-cache/team/app@${indexDigest}`, `oci:${dir}/down2:v1`);
      const raw = (await skopeo('inspect', '--raw', '--tls-verify=false', '--creds', `admin:${ADMIN_PASSWORD}`, `docker://${host}/hub-cache/team/app:v1`)).stdout;
      assert.equal(sha256(raw), indexDigest);
    } finally {
      await dist.restart();
    }
  });

  test('a signature upstream passes through the referrers API', async () => {
    const up = new UpstreamClient({ url: dist.url, credential: { username: 'u', password: 'Upstream-pw-1' } });
    const empty = Buffer.from('{}');
    const sig = Buffer.from('{"sig":2}');
    for (const b of [empty, sig]) await up.pushBlob('team/app', sha256(b), b.length, () => Readable.from([b]));
    const size = (await up.headManifest('team/app', indexDigest))!.size;
    const sigManifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sig', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 }, layers: [{ mediaType: 'application/vnd.example.sig.v1', digest: sha256(sig), size: sig.length }], subject: { mediaType: OCI_INDEX, digest: indexDigest, size } }));
    await up.putManifest('team/app', sha256(sigManifest), sigManifest, OCI_MANIFEST);
    const fallback = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256(sigManifest), size: sigManifest.length, artifactType: 'application/vnd.example.sig' }] }));
    await up.putManifest('team/app', indexDigest.replace(':', '-'), fallback, OCI_INDEX);
    up.close();
    const res = await t.request.get(`/v2/hub-cache/team/app/referrers/${indexDigest}`).set('Authorization', t.adminAuth);
    assert.equal(res.status, 200);
    const body = JSON.parse(Buffer.isBuffer(res.body) ? res.body.toString() : res.text) as { manifests: { digest: string }[] };
    assert.deepEqual(body.manifests.map((m) => m.digest), [sha256(sigManifest)]);
  });

  test('pushing into the proxy-cache project is DENIED with a clear message', async () => {
    const res = await t.request.post('/v2/hub-cache/team/app/blobs/uploads/').set('Authorization', t.adminAuth);
    assert.equal(res.status, 403);
    assert.equal(res.body.errors[0].code, 'DENIED');
    assert.match(res.body.errors[0].message, /project hub-cache is a proxy cache of another registry: pushing into it is not allowed/);
    const del = await t.request.delete(`/v2/hub-cache/team/app/manifests/${indexDigest}`).set('Authorization', t.adminAuth);
    assert.equal(del.status, 403);
  });
});

describe('creating a proxy-cache project', { skip }, () => {
  test('the project answers with its registry_id; a normal project with 0', async () => {
    const p = await t.request.get('/api/v2.0/projects/hub-cache').set('Authorization', t.adminAuth);
    assert.equal(p.status, 200);
    assert.equal(p.body.registry_id, registryId);
    assert.equal((await t.request.get('/api/v2.0/projects/library').set('Authorization', t.adminAuth)).body.registry_id, 0);
  });

  test('an endpoint that does not exist is a 400; a user who is not a system admin gets 403; the registry cannot be deleted while used', async () => {
    const missing = await t.request.post('/api/v2.0/projects').set('Authorization', t.adminAuth).send({ project_name: 'nowhere-cache', registry_id: 987654 });
    assert.equal(missing.status, 400);
    assert.match(JSON.stringify(missing.body), /registry 987654 does not exist/);
    assert.equal((await t.request.head('/api/v2.0/projects?project_name=nowhere-cache').set('Authorization', t.adminAuth)).status, 404, 'nothing was created');
    assert.equal((await t.request.post('/api/v2.0/users').set('Authorization', t.adminAuth).send({ username: 'dev-proxy', email: 'dev-proxy@example.com', realname: 'Dev', password: 'Dev-proxy-pw-1' })).status, 201);
    assert.equal((await t.request.put('/api/v2.0/configurations').set('Authorization', t.adminAuth).send({ project_creation_restriction: 'everyone' })).status, 200);
    const dev = 'Basic ' + Buffer.from('dev-proxy:Dev-proxy-pw-1').toString('base64');
    const refused = await t.request.post('/api/v2.0/projects').set('Authorization', dev).send({ project_name: 'dev-cache', registry_id: registryId });
    assert.equal(refused.status, 403);
    assert.equal((await t.request.post('/api/v2.0/projects').set('Authorization', dev).send({ project_name: 'dev-plain' })).status, 201, 'a normal project is still allowed');
    assert.equal((await t.request.delete(`/api/v2.0/registries/${registryId}`).set('Authorization', t.adminAuth)).status, 412);
  });
});
