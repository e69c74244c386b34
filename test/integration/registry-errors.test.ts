// /v2 errors: the {"errors":[...]} body with the spec's status for every failure class, 405 for
// unsupported methods, authentication and authorization failures, and hidden 5xx details.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { OCI_MANIFEST, Oci, assertOciError, registryOverrides, sha256, bytes } from '../helpers/oci.ts';
import { MemoryDriver } from '../../src/storage/driver/memory.ts';
import type { RepositoryPolicy } from '../../src/access/principal.ts';

let t: TestApp;
let oci: Oci;
let img: Awaited<ReturnType<Oci['pushImage']>>;

before(async () => {
  t = await makeApp();
  oci = new Oci(t.request, t.adminAuth);
  img = await oci.pushImage('err/app', 'v1', 1);
});
after(async () => {
  await t.close();
});

describe('error bodies', () => {
  test('each failure class has its spec status and code, in the OCI error shape', async () => {
    const missing = sha256('missing');
    const cases: [Promise<{ status: number; headers: Record<string, string>; body: unknown }>, number, string][] = [
      [oci.get(`/v2/err/app/blobs/${missing}`), 404, 'BLOB_UNKNOWN'],
      [oci.get('/v2/err/app/blobs/uploads/00000000-0000-4000-8000-000000000000'), 404, 'BLOB_UPLOAD_UNKNOWN'],
      [oci.post(`/v2/err/app/blobs/uploads/?digest=${missing}`).send(Buffer.from('x')), 400, 'DIGEST_INVALID'],
      [oci.putManifest('err/app', 'x', { ...img.manifest, layers: [{ mediaType: 'a/b', digest: missing, size: 1 }] }), 400, 'MANIFEST_BLOB_UNKNOWN'],
      [oci.putManifest('err/app', 'x', '{', OCI_MANIFEST), 400, 'MANIFEST_INVALID'],
      [oci.get('/v2/err/app/manifests/nope'), 404, 'MANIFEST_UNKNOWN'],
      [oci.get('/v2/Err/App/manifests/v1'), 400, 'NAME_INVALID'],
      [oci.get('/v2/err/none/tags/list'), 404, 'NAME_UNKNOWN'],
      [oci.putManifest('err/app', '.bad', img.raw, OCI_MANIFEST), 400, 'TAG_INVALID'],
      [t.request.get('/v2/err/app/manifests/v1'), 401, 'UNAUTHORIZED'],
      [oci.put('/v2/err/app/tags/list'), 405, 'UNSUPPORTED'],
    ];
    for (const [p, status, code] of cases) assertOciError(await p, status, code);
  });

  test('an unknown /v2 endpoint is 404 with a JSON errors body', async () => {
    for (const path of ['/v2/err/app', '/v2/err/app/unknown/thing', '/v2/err/app/blobs']) {
      const res = await oci.get(path);
      assert.equal(res.status, 404, path);
      assert.match(res.headers['content-type'], /^application\/json/);
      assert.ok(Array.isArray(res.body.errors) && typeof res.body.errors[0].code === 'string', path);
    }
  });
});

describe('unsupported methods', () => {
  const cases: [string, string, string[]][] = [
    ['put', '/v2/', ['GET', 'HEAD']],
    ['post', '/v2/_catalog', ['GET']],
    ['delete', '/v2/err/app/tags/list', ['GET']],
    ['post', '/v2/err/app/manifests/v1', ['GET', 'HEAD', 'PUT', 'DELETE']],
    ['patch', `/v2/err/app/blobs/${sha256('x')}`, ['GET', 'HEAD', 'DELETE']],
    ['put', '/v2/err/app/blobs/uploads/', ['POST']],
    ['post', '/v2/err/app/blobs/uploads/00000000-0000-4000-8000-000000000000', ['GET', 'PATCH', 'PUT', 'DELETE']],
    ['delete', `/v2/err/app/referrers/${sha256('x')}`, ['GET']],
  ];
  for (const [method, path, allowed] of cases) {
    test(`${method.toUpperCase()} ${path} is 405 UNSUPPORTED with Allow`, async () => {
      const res = await (oci[method as 'put'] as (p: string) => ReturnType<Oci['put']>).call(oci, path);
      assertOciError(res, 405, 'UNSUPPORTED');
      const allow = String(res.headers.allow).split(/,\s*/).sort();
      assert.deepEqual(allow, [...allowed].sort());
    });
  }
});

describe('authentication and authorization', () => {
  test('without credentials every endpoint is 401 with a challenge', async () => {
    const paths: [string, string][] = [
      ['get', '/v2/'], ['get', '/v2/_catalog'], ['get', '/v2/err/app/tags/list'], ['get', '/v2/err/app/manifests/v1'],
      ['head', '/v2/err/app/manifests/v1'], ['get', `/v2/err/app/blobs/${img.layerDigest}`], ['post', '/v2/err/app/blobs/uploads/'],
      ['put', '/v2/err/app/manifests/v2'], ['delete', '/v2/err/app/manifests/v1'], ['get', `/v2/err/app/referrers/${img.digest}`],
    ];
    for (const [m, p] of paths) {
      const res = await (t.request[m as 'get'] as (p: string) => ReturnType<typeof t.request.get>).call(t.request, p);
      assert.equal(res.status, 401, `${m} ${p}`);
      assert.ok(res.headers['www-authenticate'], `${m} ${p}: no challenge`);
      if (m !== 'head') assertOciError(res, 401, 'UNAUTHORIZED');
    }
  });

  test('a wrong password is 401 UNAUTHORIZED', async () => {
    const res = await t.request.get('/v2/').set('Authorization', 'Basic ' + Buffer.from('admin:wrong-password').toString('base64'));
    assertOciError(res, 401, 'UNAUTHORIZED');
  });

  test('an authenticated user without the needed permission gets 403 DENIED', async () => {
    const readOnly: RepositoryPolicy = {
      async allowedActions(principal, _repo, wanted) {
        return principal ? wanted.filter((a) => a === 'pull') : [];
      },
      async visibleProjectIds() {
        return null;
      },
    };
    const ro = await makeApp({}, registryOverrides({ policy: readOnly }));
    try {
      const o = new Oci(ro.request, ro.adminAuth);
      assertOciError(await o.post('/v2/ro/app/blobs/uploads/'), 403, 'DENIED');
      assertOciError(await o.delete(`/v2/ro/app/manifests/${sha256('x')}`), 403, 'DENIED');
      assertOciError(await o.get('/v2/ro/app/tags/list'), 404, 'NAME_UNKNOWN');
    } finally {
      await ro.close();
    }
  });
});

describe('server errors', () => {
  test('a storage failure is 500 UNKNOWN without internals, and the registry works on the memory driver', async () => {
    class FlakyDriver extends MemoryDriver {
      fail = false;
      override async reader(p: string, start?: number, end?: number): Promise<Readable> {
        if (this.fail) throw new Error('disk on fire at /secret/path');
        return super.reader(p, start, end);
      }
      override async getContent(p: string): Promise<Buffer | null> {
        if (this.fail) throw new Error('disk on fire at /secret/path');
        return super.getContent(p);
      }
    }
    const driver = new FlakyDriver();
    const mem = await makeApp({}, registryOverrides({ driver }));
    try {
      const o = new Oci(mem.request, mem.adminAuth);
      const pushed = await o.pushImage('mem/app', 'v1', 2);
      const big = bytes(200 * 1024, 3); // streamed (small blobs are served from memory)
      const bigDigest = await o.pushBlob('mem/app', big);
      for (const [digest, data] of [[pushed.layerDigest, pushed.layer], [bigDigest, big]] as const) {
        const got = await o.getBytes(`/v2/mem/app/blobs/${digest}`);
        assert.equal(got.status, 200);
        assert.ok(Buffer.compare(got.body, data) === 0);
        const ranged = await o.getBytes(`/v2/mem/app/blobs/${digest}`).set('Range', 'bytes=10-19');
        assert.equal(ranged.status, 206);
        assert.ok(Buffer.compare(ranged.body, data.subarray(10, 20)) === 0);
      }
      driver.fail = true;
      // a streamed blob, and a small one not read before
      for (const digest of [bigDigest, pushed.configDigest]) {
        const res = await o.get(`/v2/mem/app/blobs/${digest}`);
        assert.equal(res.status, 500);
        assert.deepEqual(res.body, { errors: [{ code: 'UNKNOWN', message: 'internal server error', detail: null }] });
        assert.ok(!JSON.stringify(res.body).includes('secret'));
      }
    } finally {
      await mem.close();
    }
  });
});
