// Two Berth apps on one PostgreSQL and one storage (object storage: the memory driver; a shared
// directory: the fs driver), as two nodes behind a round-robin balancer: an upload started on one
// continues and completes on the other, over HTTP. (The two-process cluster with radosgw and
// haproxy is test/e2e.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { Oci, bytes, sha256 } from '../helpers/oci.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';
import type { StorageDriver } from '../../src/storage/driver/driver.ts';
import { FsDriver } from '../../src/storage/driver/fs.ts';
import { MemoryDriver } from '../../src/storage/driver/memory.ts';
import { counting } from '../helpers/counting-driver.ts';

const SECRET = 'uploads-shared-test-secret-0123456789abcdef';
const MiB = 1024 * 1024;
let pgServer: TestPostgres;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-uploads-shared-'));

const withDigest = (loc: string, digest: string) => `${loc}${loc.includes('?') ? '&' : '?'}digest=${digest}`;


describe('uploads across two apps on one PostgreSQL', { skip: missingPostgres() }, () => {
  before(async () => {
    pgServer = await startPostgres();
  });
  after(async () => {
    await pgServer?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  for (const [name, makeDriver] of [
    ['object storage (memory driver)', () => new MemoryDriver()],
    ['a shared directory (fs driver)', () => new FsDriver(fs.mkdtempSync(path.join(tmp, 'store-')))],
  ] as [string, () => StorageDriver][]) {
    describe(name, () => {
      let a: TestApp;
      let b: TestApp;
      let oa: Oci;
      let ob: Oci;
      let readsA: () => number;
      let readsB: () => number;
      before(async () => {
        const url = await pgServer.createDatabase();
        const driver = makeDriver();
        const [da, db] = [counting(driver), counting(driver)];
        [readsA, readsB] = [da.reads, db.reads];
        a = await makeApp({ BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: SECRET }, { driver: da.driver });
        b = await makeApp({ BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: SECRET }, { driver: db.driver });
        oa = new Oci(a.request, a.adminAuth);
        ob = new Oci(b.request, b.adminAuth);
      });
      after(async () => {
        await a?.close();
        await b?.close();
      });

      test('POST on one node, chunks alternating between the nodes, PUT without a body: the exact blob on both', async () => {
        const data = bytes(9 * MiB + 123, 3);
        let loc = await oa.startUpload('library/chunked');
        const cuts = [0, 3 * MiB, 8 * MiB + 7, data.length];
        const nodes = [ob, oa, ob];
        for (let i = 0; i < nodes.length; i++) {
          const r = await nodes[i].patch(loc).set('Content-Type', 'application/octet-stream').set('Content-Range', `${cuts[i]}-${cuts[i + 1] - 1}`).send(data.subarray(cuts[i], cuts[i + 1]));
          assert.equal(r.status, 202, JSON.stringify(r.body));
          assert.equal(r.headers.range, `0-${cuts[i + 1] - 1}`);
          loc = r.headers.location;
          const st = await [oa, ob][i % 2].get(loc);
          assert.equal(st.status, 204);
          assert.equal(st.headers.range, `0-${cuts[i + 1] - 1}`, 'the other node reports the same size');
        }
        const done = await oa.put(withDigest(loc, sha256(data)));
        assert.equal(done.status, 201, JSON.stringify(done.body));
        for (const o of [oa, ob]) assert.ok((await o.getBytes(`/v2/library/chunked/blobs/${sha256(data)}`)).body.equals(data));
        assert.equal((await ob.get(loc)).status, 404, 'the session is gone on the other node too');
      });

      test('a chunked upload through a round-robin balancer: after the one re-read of the first chunk, no node reads back the bytes before its chunk, nor at the PUT', async () => {
        const data = bytes(12 * MiB + 5, 7);
        let loc = await oa.startUpload('library/round-robin');
        const cuts = [0, 3 * MiB, 6 * MiB + 1, 9 * MiB + 7, 11 * MiB, data.length];
        const nodes = [[ob, readsB], [oa, readsA], [ob, readsB], [oa, readsA], [ob, readsB]] as const;
        for (let i = 0; i < nodes.length; i++) {
          const [node, reads] = nodes[i];
          const before = reads();
          const r = await node.patch(loc).set('Content-Type', 'application/octet-stream').set('Content-Range', `${cuts[i]}-${cuts[i + 1] - 1}`).send(data.subarray(cuts[i], cuts[i + 1]));
          assert.equal(r.status, 202, JSON.stringify(r.body));
          assert.equal(r.headers.range, `0-${cuts[i + 1] - 1}`);
          // The first chunk is hashed natively; the second, on the other node, re-reads it once into
          // the saveable hash; every later chunk continues the saved state.
          if (i !== 1) assert.equal(reads() - before, 0, `chunk ${i} read none of the ${cuts[i]} bytes before it`);
          loc = r.headers.location;
        }
        const before = readsA();
        const wrong = await oa.put(withDigest(loc, sha256(data.subarray(1))));
        assert.equal(wrong.status, 400);
        assert.equal(wrong.body.errors[0].code, 'DIGEST_INVALID');
        const done = await oa.put(withDigest(loc, sha256(data)));
        assert.equal(done.status, 201, JSON.stringify(done.body));
        assert.equal(readsA() - before, 0, 'the PUT was verified from the saved state');
        for (const o of [oa, ob]) assert.ok((await o.getBytes(`/v2/library/round-robin/blobs/${sha256(data)}`)).body.equals(data));
      });

      test('what skopeo sends: POST on one node, one PATCH on the other, PUT back on the first', async () => {
        const layer = bytes(300_000, 4);
        const loc = await oa.startUpload('library/skopeo');
        const p = await ob.patch(loc).set('Content-Type', 'application/octet-stream').send(layer);
        assert.equal(p.status, 202, JSON.stringify(p.body));
        const wrong = await oa.put(withDigest(p.headers.location, sha256('other')));
        assert.equal(wrong.status, 400);
        assert.equal(wrong.body.errors[0].code, 'DIGEST_INVALID');
        const done = await oa.put(withDigest(p.headers.location, sha256(layer)));
        assert.equal(done.status, 201, JSON.stringify(done.body));
        assert.ok((await ob.getBytes(`/v2/library/skopeo/blobs/${sha256(layer)}`)).body.equals(layer));
      });

      test('a chunk the other node already received more after is 416 with the current Range; the session goes on', async () => {
        const data = bytes(200_000, 5);
        const loc = await oa.startUpload('library/stale');
        const first = await oa.patch(loc).set('Content-Type', 'application/octet-stream').set('Content-Range', '0-99999').send(data.subarray(0, 100_000));
        assert.equal(first.status, 202);
        const second = await ob.patch(first.headers.location).set('Content-Type', 'application/octet-stream').set('Content-Range', '100000-149999').send(data.subarray(100_000, 150_000));
        assert.equal(second.status, 202);
        const stale = await oa.patch(first.headers.location).set('Content-Type', 'application/octet-stream').set('Content-Range', '100000-149999').send(bytes(50_000, 6));
        assert.equal(stale.status, 416);
        assert.equal(stale.body.errors[0].code, 'RANGE_INVALID');
        assert.equal(stale.headers.range, '0-149999');
        const last = await oa.put(withDigest(second.headers.location, sha256(data))).set('Content-Type', 'application/octet-stream').set('Content-Range', '150000-199999').send(data.subarray(150_000));
        assert.equal(last.status, 201, JSON.stringify(last.body));
        assert.ok((await ob.getBytes(`/v2/library/stale/blobs/${sha256(data)}`)).body.equals(data));
      });
    });
  }
});
