// Storage quotas per project (Harbor's /api/v2.0/quotas and storage_limit), enforced on push.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { Oci, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, bytes, sha256 } from '../helpers/oci.ts';
import { assertHarborShape } from '../helpers/harbor-shapes.ts';

let t: TestApp;
let oci: Oci;
let quotaId: number;

const api = (method: 'get' | 'post' | 'put' | 'delete', p: string, auth: string | null = t.adminAuth) => {
  const r = t.request[method](`/api/v2.0${p}`);
  return auth ? r.set('Authorization', auth) : r;
};
/** Single-request push; returns the response. */
const push = (repo: string, data: Buffer) => oci.post(`/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`).set('Content-Type', 'application/octet-stream').send(data);

before(async () => {
  t = await makeApp({}, REAL_ACCESS);
  oci = new Oci(t.request, t.adminAuth);
  const res = await api('post', '/projects').send({ project_name: 'small', metadata: { public: 'false' }, storage_limit: 10_000 });
  assert.equal(res.status, 201);
  quotaId = Number(res.headers.location.split('/').pop());
});
after(async () => {
  await t?.close();
});

describe('storage quotas', () => {
  test('a new project with storage_limit has that hard limit and nothing used', async () => {
    const q = await api('get', `/quotas/${quotaId}`);
    assert.equal(q.status, 200);
    assertHarborShape('Quota', q.body);
    assert.deepEqual(q.body.hard, { storage: 10_000 });
    assert.deepEqual(q.body.used, { storage: 0 });
    assert.equal(q.body.ref.name, 'small');
    const list = await api('get', '/quotas');
    assert.equal(list.body.find((x: { id: number }) => x.id === quotaId).hard.storage, 10_000);
  });

  test('pushes within the limit succeed; the one that would exceed it is DENIED, as Harbor says it', async () => {
    assert.equal((await push('small/app', bytes(4000, 1))).status, 201);
    assert.equal((await push('small/app', bytes(4000, 2))).status, 201);
    const over = await push('small/app', bytes(3000, 3));
    assert.equal(over.status, 403);
    assert.equal(over.body.errors[0].code, 'DENIED');
    assert.match(over.body.errors[0].message, /^Quota exceeded when processing the request of adding 0\.0 MiB, which when added to current usage of 0\.0 MiB will exceed the configured upper limit of 0\.0 MiB\.$/);
    assert.equal((await oci.head(`/v2/small/app/blobs/${sha256(bytes(3000, 3))}`)).status, 404);
    // the two-request form is refused at its PUT
    const loc = await oci.startUpload('small/app');
    const put = await oci.put(`${loc}${loc.includes('?') ? '&' : '?'}digest=${sha256(bytes(3000, 3))}`).set('Content-Type', 'application/octet-stream').send(bytes(3000, 3));
    assert.equal(put.status, 403);
    const q = await api('get', `/quotas/${quotaId}`);
    assert.equal(q.body.used.storage, 8000);
  });

  test('a blob the project already holds costs nothing, in any of its repositories', async () => {
    assert.equal((await push('small/other', bytes(4000, 1))).status, 201);
    assert.equal((await api('get', `/quotas/${quotaId}`)).body.used.storage, 8000);
  });

  test('a mount from another project counts, and is refused over the limit', async () => {
    const data = bytes(3000, 4);
    assert.equal((await push('library/big', data)).status, 201);
    const res = await oci.post(`/v2/small/app/blobs/uploads/?mount=${sha256(data)}&from=library/big`);
    assert.equal(res.status, 403);
    assert.equal(res.body.errors[0].code, 'DENIED');
  });

  test('a manifest within the limit is accepted (its bytes count too)', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    assert.equal((await push('small/app', config)).status, 201);
    const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length }, layers: [{ mediaType: OCI_LAYER, digest: sha256(bytes(4000, 1)), size: 4000 }] };
    const raw = Buffer.from(JSON.stringify(manifest));
    assert.equal((await oci.putManifest('small/app', 'v1', raw)).status, 201);
    assert.equal((await api('get', `/quotas/${quotaId}`)).body.used.storage, 8000 + config.length + raw.length);
  });

  test('parallel pushes cannot together overshoot the limit', async () => {
    const used = (await api('get', `/quotas/${quotaId}`)).body.used.storage as number;
    const each = Math.floor((10_000 - used) / 2) + 10; // one fits, two do not
    const results = await Promise.all([push('small/app', bytes(each, 5)), push('small/other', bytes(each, 6))]);
    assert.deepEqual(results.map((r) => r.status).sort(), [201, 403]);
    assert.ok((await api('get', `/quotas/${quotaId}`)).body.used.storage <= 10_000);
  });

  test('raising the limit (or -1) lets the push through; the summary shows it', async () => {
    assert.equal((await api('put', `/quotas/${quotaId}`).send({ hard: { storage: -1 } })).status, 200);
    assert.equal((await push('small/app', bytes(3000, 3))).status, 201);
    const summary = await api('get', '/projects/small/summary');
    assert.equal(summary.body.quota.hard.storage, -1);
    assert.equal((await api('put', `/quotas/${quotaId}`).send({ hard: { storage: 1_000_000 } })).status, 200);
    assert.equal((await api('get', '/projects/small/summary')).body.quota.hard.storage, 1_000_000);
  });

  test('only system admins set quotas; bad values are 400, unknown quotas 404', async () => {
    assert.equal((await api('post', '/users').send({ username: 'owner', password: 'Passw0rd!x' })).status, 201);
    assert.equal((await api('post', '/projects/small/members').send({ role_id: 1, member_user: { username: 'owner' } })).status, 201);
    const owner = basic('owner', 'Passw0rd!x');
    assert.equal((await api('put', `/quotas/${quotaId}`, owner).send({ hard: { storage: -1 } })).status, 403);
    assert.equal((await api('get', `/quotas/${quotaId}`, owner)).status, 403);
    for (const hard of [{}, { storage: 'big' }, { storage: -2 }, { storage: 1.5 }]) {
      assert.equal((await api('put', `/quotas/${quotaId}`).send({ hard })).status, 400, JSON.stringify(hard));
    }
    assert.equal((await api('put', '/quotas/99999').send({ hard: { storage: 1 } })).status, 404);
    assert.equal((await api('get', '/quotas/99999')).status, 404);
    assert.equal((await api('post', '/projects').send({ project_name: 'badlimit', storage_limit: 'lots' })).status, 400);
  });

  test('the usage shown (summary, /quotas) follows pushes and garbage collection at once, in an unlimited project too', async () => {
    assert.equal((await api('post', '/projects').send({ project_name: 'shown' })).status, 201);
    const shown = async () => {
      const summary = (await api('get', '/projects/shown/summary')).body.quota.used.storage as number;
      const listed = ((await api('get', '/quotas')).body as { ref: { name: string }; used: { storage: number } }[]).find((q) => q.ref.name === 'shown')!.used.storage;
      assert.equal(listed, summary, 'the list and the summary agree');
      return summary;
    };
    assert.equal(await shown(), 0);
    const layer = bytes(5000, 71);
    const config = Buffer.from('{"shown":1}');
    assert.equal((await push('shown/app', layer)).status, 201);
    assert.equal(await shown(), 5000, 'a blob pushed shows at once (the cached usage is dropped)');
    assert.equal((await push('shown/app', config)).status, 201);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length }, layers: [{ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length }] }));
    const put = await oci.putManifest('shown/app', sha256(manifest), manifest, OCI_MANIFEST);
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const withManifest = await shown();
    assert.ok(withManifest > 5000 + config.length - 1, String(withManifest));
    assert.equal((await oci.delete(`/v2/shown/app/manifests/${sha256(manifest)}`)).status, 202);
    const run = await api('post', '/system/gc/schedule').send({ schedule: { type: 'Manual' }, parameters: { time_window: 0 } });
    assert.equal(run.status, 201);
    await t.berth.gc.idle();
    assert.equal(await shown(), 0, 'what GC freed no longer shows');
  });
});
