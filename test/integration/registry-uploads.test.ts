// /v2 blob uploads: monolithic (single POST, POST+PUT), chunked PATCH with Content-Range, streamed
// PATCH, status, cancel, digest checks, restart survival and expiry of sessions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import supertest from 'supertest';
import { createApp } from '../../src/app.ts';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { Oci, assertOciError, bytes, registryOverrides, sha256, sha512 } from '../helpers/oci.ts';

let t: TestApp;
let oci: Oci;

before(async () => {
  t = await makeApp();
  oci = new Oci(t.request, t.adminAuth);
});
after(async () => {
  await t.close();
});

const UUID_LOCATION = /^\/v2\/up\/[a-z-]+\/blobs\/uploads\/([0-9a-f-]{36})$/;

async function pulled(repo: string, digest: string): Promise<Buffer> {
  const res = await oci.getBytes(`/v2/${repo}/blobs/${digest}`);
  assert.equal(res.status, 200, `blob ${digest} not pullable from ${repo}`);
  return res.body;
}

function uploadDirs(): string[] {
  const dir = path.join(t.dataDir, 'storage/uploads');
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

describe('monolithic uploads', () => {
  test('single POST ?digest= answers 201 with Location of the pullable blob', async () => {
    const data = bytes(3000, 11);
    const digest = sha256(data);
    const res = await oci.post(`/v2/up/mono/blobs/uploads/?digest=${digest}`).set('Content-Type', 'application/octet-stream').send(data);
    assert.equal(res.status, 201);
    assert.equal(res.headers.location, `/v2/up/mono/blobs/${digest}`);
    assert.equal(res.headers['docker-content-digest'], digest);
    assert.ok(Buffer.compare(await pulled('up/mono', digest), data) === 0);
  });

  test('POST then PUT with the whole body answers 202 then 201', async () => {
    const data = bytes(4096, 12);
    const digest = sha256(data);
    const post = await oci.post('/v2/up/mono/blobs/uploads/');
    assert.equal(post.status, 202);
    assert.match(post.headers.location, UUID_LOCATION);
    assert.equal(post.headers['docker-upload-uuid'], UUID_LOCATION.exec(post.headers.location)![1]);
    assert.equal(post.headers.range, '0-0');
    const put = await oci.put(`${post.headers.location}?digest=${digest}`).set('Content-Type', 'application/octet-stream').send(data);
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.headers.location, `/v2/up/mono/blobs/${digest}`);
    assert.equal(put.headers['docker-content-digest'], digest);
    assert.ok(Buffer.compare(await pulled('up/mono', digest), data) === 0);
    // The session is gone once completed.
    assertOciError(await oci.get(post.headers.location), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  test('single POST with a wrong digest is 400 DIGEST_INVALID and leaves no session or blob behind', async () => {
    const before = uploadDirs();
    const wrong = sha256('something else');
    const res = await oci.post(`/v2/up/mono/blobs/uploads/?digest=${wrong}`).set('Content-Type', 'application/octet-stream').send(Buffer.from('actual'));
    assertOciError(res, 400, 'DIGEST_INVALID');
    assert.deepEqual(uploadDirs(), before);
    assert.equal((await oci.head(`/v2/up/mono/blobs/${wrong}`)).status, 404);
    assert.equal((await oci.head(`/v2/up/mono/blobs/${sha256('actual')}`)).status, 404);
  });

  test('PUT with a wrong digest is 400 DIGEST_INVALID and nothing becomes pullable', async () => {
    const loc = await oci.startUpload('up/mono');
    const wrong = sha256('not this');
    const res = await oci.put(`${loc}?digest=${wrong}`).set('Content-Type', 'application/octet-stream').send(Buffer.from('this'));
    assertOciError(res, 400, 'DIGEST_INVALID');
    assert.equal((await oci.head(`/v2/up/mono/blobs/${wrong}`)).status, 404);
    assert.equal((await oci.head(`/v2/up/mono/blobs/${sha256('this')}`)).status, 404);
  });

  test('a malformed or missing digest on completion is 400 DIGEST_INVALID', async () => {
    const loc = await oci.startUpload('up/mono');
    assertOciError(await oci.put(loc).send(Buffer.from('x')), 400, 'DIGEST_INVALID');
    assertOciError(await oci.put(`${loc}?digest=sha256:abc`).send(Buffer.from('x')), 400, 'DIGEST_INVALID');
    assertOciError(await oci.put(`${loc}?digest=md5:0123456789abcdef0123456789abcdef`).send(Buffer.from('x')), 400, 'DIGEST_INVALID');
    assertOciError(await oci.post(`/v2/up/mono/blobs/uploads/?digest=nope`).send(Buffer.from('x')), 400, 'DIGEST_INVALID');
  });

  test('sha512 completes a POST+PUT session', async () => {
    const data = bytes(1500, 13);
    const loc = await oci.startUpload('up/mono');
    const d = sha512(data);
    const res = await oci.put(`${loc}?digest=${d}`).set('Content-Type', 'application/octet-stream').send(data);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.ok(Buffer.compare(await pulled('up/mono', d), data) === 0);
  });
});

describe('chunked uploads', () => {
  const data = bytes(10_000, 21);
  const digest = sha256(data);
  const c1 = data.subarray(0, 4000);
  const c2 = data.subarray(4000, 7000);
  const c3 = data.subarray(7000);

  test('PATCH chunks in order with Content-Range, then PUT: 202s with Location and Range, then 201', async () => {
    let loc = await oci.startUpload('up/chunked');
    const p1 = await oci.patch(loc).set('Content-Type', 'application/octet-stream').set('Content-Range', '0-3999').send(c1);
    assert.equal(p1.status, 202, JSON.stringify(p1.body));
    assert.equal(p1.headers.range, '0-3999');
    assert.match(p1.headers.location, UUID_LOCATION);
    loc = p1.headers.location;
    const p2 = await oci.patch(loc).set('Content-Type', 'application/octet-stream').set('Content-Range', '4000-6999').send(c2);
    assert.equal(p2.status, 202);
    assert.equal(p2.headers.range, '0-6999');
    const st = await oci.get(p2.headers.location);
    assert.equal(st.status, 204);
    assert.equal(st.headers.range, '0-6999');
    assert.equal(st.headers.location, loc);
    assert.equal(st.headers['docker-upload-uuid'], UUID_LOCATION.exec(loc)![1]);
    const put = await oci.put(`${p2.headers.location}?digest=${digest}`).set('Content-Type', 'application/octet-stream').set('Content-Range', '7000-9999').send(c3);
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.headers.location, `/v2/up/chunked/blobs/${digest}`);
    assert.ok(Buffer.compare(await pulled('up/chunked', digest), data) === 0);
  });

  test('the final chunk may come by PATCH, closed by an empty PUT', async () => {
    const loc = await oci.startUpload('up/chunked');
    assert.equal((await oci.patch(loc).set('Content-Range', '0-3999').send(c1)).status, 202);
    const last = await oci.patch(loc).set('Content-Range', '4000-9999').send(data.subarray(4000));
    assert.equal(last.status, 202);
    assert.equal(last.headers.range, '0-9999');
    const put = await oci.put(`${loc}?digest=${digest}`).set('Content-Length', '0');
    assert.equal(put.status, 201, JSON.stringify(put.body));
  });

  test('"bytes " prefixed Content-Range is accepted too', async () => {
    const loc = await oci.startUpload('up/chunked');
    assert.equal((await oci.patch(loc).set('Content-Range', 'bytes 0-3999/10000').send(c1)).status, 202);
    assert.equal((await oci.put(`${loc}?digest=${digest}`).set('Content-Range', 'bytes=4000-9999').send(data.subarray(4000))).status, 201);
  });

  test('an out-of-order chunk is 416 with Location and the current Range, and the session is unchanged', async () => {
    const loc = await oci.startUpload('up/chunked');
    const first = await oci.patch(loc).set('Content-Range', '4000-6999').send(c2);
    assertOciError(first, 416, 'RANGE_INVALID');
    assert.equal(first.headers.location, loc);
    assert.equal(first.headers.range, '0-0');
    assert.equal((await oci.patch(loc).set('Content-Range', '0-3999').send(c1)).status, 202);
    const gap = await oci.patch(loc).set('Content-Range', '4001-7000').send(c2);
    assertOciError(gap, 416, 'RANGE_INVALID');
    assert.equal(gap.headers.location, loc);
    assert.equal(gap.headers.range, '0-3999');
    const st = await oci.get(loc);
    assert.equal(st.status, 204);
    assert.equal(st.headers.range, '0-3999');
    // Continue correctly and finish.
    assert.equal((await oci.patch(loc).set('Content-Range', '4000-6999').send(c2)).status, 202);
    assert.equal((await oci.put(`${loc}?digest=${digest}`).set('Content-Range', '7000-9999').send(c3)).status, 201);
  });

  test('a repeated chunk is 416 and does not append twice', async () => {
    const loc = await oci.startUpload('up/chunked');
    assert.equal((await oci.patch(loc).set('Content-Range', '0-3999').send(c1)).status, 202);
    const again = await oci.patch(loc).set('Content-Range', '0-3999').send(c1);
    assertOciError(again, 416, 'RANGE_INVALID');
    assert.equal(again.headers.range, '0-3999');
    assert.equal(again.headers.location, loc);
    assert.equal((await oci.get(loc)).headers.range, '0-3999');
    assert.equal((await oci.put(`${loc}?digest=${digest}`).set('Content-Range', '4000-9999').send(data.subarray(4000))).status, 201);
  });

  test('an out-of-order final chunk on PUT is 416 too', async () => {
    const loc = await oci.startUpload('up/chunked');
    assert.equal((await oci.patch(loc).set('Content-Range', '0-3999').send(c1)).status, 202);
    const res = await oci.put(`${loc}?digest=${digest}`).set('Content-Range', '7000-9999').send(c3);
    assertOciError(res, 416, 'RANGE_INVALID');
    assert.equal(res.headers.location, loc);
    assert.equal(res.headers.range, '0-3999');
    assert.equal((await oci.get(loc)).headers.range, '0-3999');
  });

  test('a malformed Content-Range or one disagreeing with Content-Length is refused and appends nothing', async () => {
    const loc = await oci.startUpload('up/chunked');
    assert.equal((await oci.patch(loc).set('Content-Range', '0-3999').send(c1)).status, 202);
    const bad = await oci.patch(loc).set('Content-Range', 'abc').send(c2);
    assertOciError(bad, 416, 'RANGE_INVALID');
    assert.equal(bad.headers.location, loc);
    assert.equal(bad.headers.range, '0-3999');
    const mismatch = await oci.patch(loc).set('Content-Range', '4000-4999').send(c2);
    assert.ok(mismatch.status === 400 || mismatch.status === 416, String(mismatch.status));
    assert.equal((await oci.get(loc)).headers.range, '0-3999');
  });

  test('a streamed PATCH without Content-Range appends whatever comes', async () => {
    const loc = await oci.startUpload('up/streamed');
    const p1 = await oci.patch(loc).set('Content-Type', 'application/octet-stream').send(c1);
    assert.equal(p1.status, 202);
    assert.equal(p1.headers.range, '0-3999');
    const p2 = await oci.patch(p1.headers.location).set('Content-Type', 'application/octet-stream').send(data.subarray(4000));
    assert.equal(p2.status, 202);
    assert.equal(p2.headers.range, '0-9999');
    const put = await oci.put(`${p2.headers.location}?digest=${digest}`);
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.ok(Buffer.compare(await pulled('up/streamed', digest), data) === 0);
  });

  test('a chunked upload whose bytes do not match the digest is DIGEST_INVALID', async () => {
    const loc = await oci.startUpload('up/chunked');
    assert.equal((await oci.patch(loc).set('Content-Range', '0-3999').send(c1)).status, 202);
    const res = await oci.put(`${loc}?digest=${digest}`);
    assertOciError(res, 400, 'DIGEST_INVALID');
    assert.equal((await oci.head(`/v2/up/chunked/blobs/${sha256(c1)}`)).status, 404);
  });
});

describe('session status and cancel', () => {
  test('GET on a fresh session is 204 with Range 0-0 and its Location', async () => {
    const loc = await oci.startUpload('up/status');
    const st = await oci.get(loc);
    assert.equal(st.status, 204);
    assert.equal(st.headers.location, loc);
    assert.equal(st.headers.range, '0-0');
  });

  test('DELETE cancels: 204, then the session is 404 BLOB_UPLOAD_UNKNOWN for GET, PATCH, PUT and DELETE', async () => {
    const loc = await oci.startUpload('up/status');
    await oci.patch(loc).send(Buffer.from('partial'));
    const uuid = UUID_LOCATION.exec(loc)![1];
    assert.ok(uploadDirs().includes(uuid));
    assert.equal((await oci.delete(loc)).status, 204);
    assert.ok(!uploadDirs().includes(uuid));
    assertOciError(await oci.get(loc), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertOciError(await oci.patch(loc).send(Buffer.from('x')), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertOciError(await oci.put(`${loc}?digest=${sha256('partial')}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertOciError(await oci.delete(loc), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  test('an unknown or malformed session id is 404 BLOB_UPLOAD_UNKNOWN', async () => {
    assertOciError(await oci.get('/v2/up/status/blobs/uploads/00000000-0000-4000-8000-000000000000'), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertOciError(await oci.get('/v2/up/status/blobs/uploads/not-a-uuid'), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertOciError(await oci.patch('/v2/up/status/blobs/uploads/..').send(Buffer.from('x')), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  test('a session belongs to its repository', async () => {
    const loc = await oci.startUpload('up/status');
    const uuid = UUID_LOCATION.exec(loc)![1];
    assertOciError(await oci.get(`/v2/up/elsewhere/blobs/uploads/${uuid}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertOciError(await oci.put(`/v2/up/elsewhere/blobs/uploads/${uuid}?digest=${sha256('')}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.equal((await oci.get(loc)).status, 204);
  });

  test('expired sessions are purged by UploadStore.purgeExpired; fresh ones are kept', async () => {
    const old = await oci.startUpload('up/expiry');
    await oci.patch(old).send(Buffer.from('stale'));
    const fresh = await oci.startUpload('up/expiry');
    // Age the first session's files instead of waiting.
    const uuid = UUID_LOCATION.exec(old)![1];
    const past = new Date(Date.now() - 2 * 3600 * 1000);
    for (const f of ['data', 'info.json']) fs.utimesSync(path.join(t.dataDir, 'storage/uploads', uuid, f), past, past);
    const n = await t.berth.uploads.purgeExpired(3600);
    assert.ok(n >= 1);
    assertOciError(await oci.get(old), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.ok(!uploadDirs().includes(uuid));
    assert.equal((await oci.get(fresh)).status, 204);
    // Everything is expired when "now" is far in the future.
    await t.berth.uploads.purgeExpired(3600, Date.now() + 10 * 3600 * 1000);
    assertOciError(await oci.get(fresh), 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('restart', () => {
  test('an upload session survives an app restart and completes afterwards', async () => {
    const s = await makeApp();
    try {
      const data = bytes(9000, 31);
      const digest = sha256(data);
      const o1 = new Oci(s.request, s.adminAuth);
      const loc = await o1.startUpload('up/restart');
      assert.equal((await o1.patch(loc).set('Content-Range', '0-4999').send(data.subarray(0, 5000))).status, 202);
      await s.berth.close();

      const again = await createApp(s.berth.config, registryOverrides());
      try {
        const o2 = new Oci(supertest(again.app), s.adminAuth);
        const st = await o2.get(loc);
        assert.equal(st.status, 204);
        assert.equal(st.headers.range, '0-4999');
        assert.equal((await o2.patch(loc).set('Content-Range', '5000-7999').send(data.subarray(5000, 8000))).status, 202);
        const put = await o2.put(`${loc}?digest=${digest}`).set('Content-Range', '8000-8999').send(data.subarray(8000));
        assert.equal(put.status, 201, JSON.stringify(put.body));
        const got = await o2.getBytes(`/v2/up/restart/blobs/${digest}`);
        assert.ok(Buffer.compare(got.body, data) === 0);
      } finally {
        await again.close();
      }
    } finally {
      fs.rmSync(s.dataDir, { recursive: true, force: true });
    }
  });
});
