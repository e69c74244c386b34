// /v2 blobs: GET/HEAD (with Range), DELETE, mounts, and the content-addressed store underneath.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { Oci, assertOciError, bytes, registryOverrides, sha256, sha512 } from '../helpers/oci.ts';

let t: TestApp;
let oci: Oci;

/** Every regular file under a directory, relative paths. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  // A file may go between the listing and its stat (a session removed right then): not a file.
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((p) => fs.statSync(path.join(dir, p), { throwIfNoEntry: false })?.isFile() ?? false).sort();
}

before(async () => {
  t = await makeApp();
  oci = new Oci(t.request, t.adminAuth);
});
after(async () => {
  await t.close();
});

describe('GET /v2/', () => {
  test('answers 200 {} with the API version header when authenticated', async () => {
    const res = await oci.get('/v2/');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
  });

  test('HEAD /v2/ answers 200 too, and without credentials 401 with a challenge', async () => {
    assert.equal((await oci.head('/v2/')).status, 200);
    const res = await t.request.get('/v2/');
    assertOciError(res, 401, 'UNAUTHORIZED');
    assert.match(res.headers['www-authenticate'], /^Basic realm=/);
  });
});

describe('blob GET and HEAD', () => {
  const repo = 'blobs/get';
  const data = bytes(5000, 7);
  let digest: string;
  before(async () => {
    digest = await oci.pushBlob(repo, data);
  });

  test('GET returns the bytes with Docker-Content-Digest, Content-Length and Accept-Ranges', async () => {
    const res = await oci.getBytes(`/v2/${repo}/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.ok(Buffer.compare(res.body, data) === 0);
    assert.equal(res.headers['docker-content-digest'], digest);
    assert.equal(res.headers['content-length'], String(data.length));
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.equal(sha256(res.body), digest);
  });

  test('HEAD returns the headers and no body', async () => {
    const res = await oci.head(`/v2/${repo}/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['docker-content-digest'], digest);
    assert.equal(res.headers['content-length'], String(data.length));
    assert.equal(res.text, undefined);
  });

  test('Range: bytes=a-b answers 206 with Content-Range and exactly those bytes', async () => {
    const res = await oci.getBytes(`/v2/${repo}/blobs/${digest}`).set('Range', 'bytes=100-199');
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], `bytes 100-199/${data.length}`);
    assert.equal(res.headers['content-length'], '100');
    assert.ok(Buffer.compare(res.body, data.subarray(100, 200)) === 0);
  });

  test('open-ended and suffix ranges', async () => {
    const open = await oci.getBytes(`/v2/${repo}/blobs/${digest}`).set('Range', 'bytes=4990-');
    assert.equal(open.status, 206);
    assert.equal(open.headers['content-range'], `bytes 4990-4999/5000`);
    assert.ok(Buffer.compare(open.body, data.subarray(4990)) === 0);
    const suffix = await oci.getBytes(`/v2/${repo}/blobs/${digest}`).set('Range', 'bytes=-5');
    assert.equal(suffix.status, 206);
    assert.equal(suffix.headers['content-range'], `bytes 4995-4999/5000`);
    assert.ok(Buffer.compare(suffix.body, data.subarray(4995)) === 0);
    const clamped = await oci.getBytes(`/v2/${repo}/blobs/${digest}`).set('Range', 'bytes=4998-999999');
    assert.equal(clamped.status, 206);
    assert.equal(clamped.headers['content-range'], `bytes 4998-4999/5000`);
    assert.equal(clamped.body.length, 2);
  });

  test('an unsatisfiable range answers 416 with Content-Range bytes */size', async () => {
    const res = await oci.get(`/v2/${repo}/blobs/${digest}`).set('Range', 'bytes=5000-5001');
    assertOciError(res, 416, 'RANGE_INVALID');
    assert.equal(res.headers['content-range'], `bytes */${data.length}`);
  });

  test('HEAD with a range answers 206 with the range length', async () => {
    const res = await oci.head(`/v2/${repo}/blobs/${digest}`).set('Range', 'bytes=0-9');
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-length'], '10');
  });

  test('an unknown blob is 404 BLOB_UNKNOWN on GET; HEAD is 404 without a body', async () => {
    const missing = sha256('not pushed');
    assertOciError(await oci.get(`/v2/${repo}/blobs/${missing}`), 404, 'BLOB_UNKNOWN');
    assert.equal((await oci.head(`/v2/${repo}/blobs/${missing}`)).status, 404);
    assertOciError(await oci.get(`/v2/no/such-repo/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  });

  test('a blob pushed to one repository is not readable from another (links)', async () => {
    assertOciError(await oci.get(`/v2/blobs/other/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  });

  test('a zero-length blob can be pushed and pulled', async () => {
    const d = await oci.pushBlob(repo, Buffer.alloc(0));
    const res = await oci.getBytes(`/v2/${repo}/blobs/${d}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
    assert.equal(res.headers['content-length'], '0');
  });

  test('sha512 digests are accepted for upload and pull', async () => {
    const blob = bytes(300, 99);
    const d = sha512(blob);
    const res = await oci.post(`/v2/${repo}/blobs/uploads/?digest=${d}`).set('Content-Type', 'application/octet-stream').send(blob);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers['docker-content-digest'], d);
    const got = await oci.getBytes(`/v2/${repo}/blobs/${d}`);
    assert.equal(got.status, 200);
    assert.ok(Buffer.compare(got.body, blob) === 0);
    assert.ok(fs.existsSync(path.join(t.dataDir, 'storage/blobs/sha512', d.slice(7, 9), d.slice(7), 'data')));
  });
});

describe('blob DELETE', () => {
  const repo = 'blobs/delete';

  test('DELETE answers 202, then GET and HEAD are 404, and a second DELETE is 404', async () => {
    const d = await oci.pushBlob(repo, 'delete me');
    const del = await oci.delete(`/v2/${repo}/blobs/${d}`);
    assert.equal(del.status, 202);
    assertOciError(await oci.get(`/v2/${repo}/blobs/${d}`), 404, 'BLOB_UNKNOWN');
    assert.equal((await oci.head(`/v2/${repo}/blobs/${d}`)).status, 404);
    assertOciError(await oci.delete(`/v2/${repo}/blobs/${d}`), 404, 'BLOB_UNKNOWN');
  });

  test('deleting from one repository leaves it readable in another', async () => {
    const d = await oci.pushBlob(repo, 'shared content');
    await oci.pushBlob('blobs/delete-other', 'shared content');
    assert.equal((await oci.delete(`/v2/${repo}/blobs/${d}`)).status, 202);
    assert.equal((await oci.head(`/v2/blobs/delete-other/blobs/${d}`)).status, 200);
  });

  test('DELETE with a malformed digest is 400 DIGEST_INVALID', async () => {
    assertOciError(await oci.delete(`/v2/${repo}/blobs/sha256:nothex`), 400, 'DIGEST_INVALID');
  });
});

describe('cross-repository mount', () => {
  const data = bytes(2048, 3);
  let digest: string;
  before(async () => {
    digest = await oci.pushBlob('mount/source', data);
  });

  test('?mount=&from= answers 201 with Location and Docker-Content-Digest, and the blob is readable', async () => {
    const res = await oci.post(`/v2/mount/target/blobs/uploads/?mount=${digest}&from=mount/source`);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers.location, `/v2/mount/target/blobs/${digest}`);
    assert.equal(res.headers['docker-content-digest'], digest);
    const got = await oci.getBytes(`/v2/mount/target/blobs/${digest}`);
    assert.equal(got.status, 200);
    assert.ok(Buffer.compare(got.body, data) === 0);
  });

  test('?mount= without from mounts automatically from a readable repository', async () => {
    const res = await oci.post(`/v2/mount/auto/blobs/uploads/?mount=${digest}`);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers.location, `/v2/mount/auto/blobs/${digest}`);
    assert.equal((await oci.head(`/v2/mount/auto/blobs/${digest}`)).status, 200);
  });

  test('a mount that is impossible falls back to a 202 upload session', async () => {
    const unknown = sha256('never pushed anywhere');
    for (const qs of [`mount=${unknown}&from=mount/source`, `mount=${unknown}`, `mount=${digest}&from=mount/nothing-here`, `mount=sha256:bad&from=mount/source`]) {
      const res = await oci.post(`/v2/mount/fallback/blobs/uploads/?${qs}`);
      assert.equal(res.status, 202, qs);
      assert.match(res.headers.location, /^\/v2\/mount\/fallback\/blobs\/uploads\/[0-9a-f-]{36}$/);
      assert.equal(res.headers.range, '0-0');
      const status = await oci.get(res.headers.location);
      assert.equal(status.status, 204);
    }
    assert.equal((await oci.head(`/v2/mount/fallback/blobs/${digest}`)).status, 404);
  });

  test('a mount the caller may not read from falls back to 202', async () => {
    // The admin may read everything, so use a policy-restricted app.
    const restricted = await makeApp({}, registryOverrides({
      policy: {
        async allowedActions(principal, repository, wanted) {
          if (!principal) return [];
          return repository.startsWith('secret/') ? wanted.filter((a) => a === 'push') : [...wanted];
        },
        async visibleProjectIds() {
          return null;
        },
      },
    }));
    try {
      const o = new Oci(restricted.request, restricted.adminAuth);
      // Write-only access to secret/: push works, but the blob must not be mountable elsewhere.
      const d = await o.pushBlob('secret/src', 'secret bytes');
      const res = await o.post(`/v2/open/dst/blobs/uploads/?mount=${d}&from=secret/src`);
      assert.equal(res.status, 202);
      const auto = await o.post(`/v2/open/dst/blobs/uploads/?mount=${d}`);
      assert.equal(auto.status, 202);
      assert.equal((await o.head(`/v2/open/dst/blobs/${d}`)).status, 404);
    } finally {
      await restricted.close();
    }
  });
});

describe('de-duplicated storage', () => {
  test('concurrent pushes of the same blob all succeed and store one copy', async () => {
    const data = bytes(256 * 1024, 42);
    const digest = sha256(data);
    const before = filesUnder(path.join(t.dataDir, 'storage/blobs')).length;
    const uploadsBefore = filesUnder(path.join(t.dataDir, 'storage/uploads'));
    const pushes = Array.from({ length: 8 }, (_, i) =>
      oci.post(`/v2/dedup/r${i % 3}/blobs/uploads/?digest=${digest}`).set('Content-Type', 'application/octet-stream').send(data),
    );
    // Also chunked sessions for the same content, completed at the same time.
    const sessions = await Promise.all([0, 1, 2].map(() => oci.startUpload('dedup/chunked')));
    const chunked = sessions.map((loc) => oci.put(`${loc}?digest=${digest}`).set('Content-Type', 'application/octet-stream').send(data));
    const results = await Promise.all([...pushes, ...chunked]);
    for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body));
    const files = filesUnder(path.join(t.dataDir, 'storage/blobs'));
    assert.equal(files.length, before + 1, files.join('\n'));
    assert.ok(files.includes(path.join('sha256', digest.slice(7, 9), digest.slice(7), 'data')));
    assert.equal(fs.statSync(path.join(t.dataDir, 'storage/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data')).size, data.length);
    // No session leftovers either (removed right after the answer, under the session's lock).
    for (let i = 0; i < 200 && filesUnder(path.join(t.dataDir, 'storage/uploads')).length > uploadsBefore.length; i++) await new Promise((r) => setTimeout(r, 25));
    assert.deepEqual(filesUnder(path.join(t.dataDir, 'storage/uploads')), uploadsBefore);
    for (const repo of ['dedup/r0', 'dedup/r1', 'dedup/r2', 'dedup/chunked']) {
      assert.equal((await oci.head(`/v2/${repo}/blobs/${digest}`)).status, 200, repo);
    }
  });
});
