// Upload sessions that any node continues: two UploadStores ("nodes") over one storage (the memory
// driver, which behaves like S3, and a directory both nodes share) and one UploadSessionStore on a
// real database (a SQLite file and a real PostgreSQL). Chunks alternate between the nodes, a
// stale chunk and a concurrent one are refused without changing the session, the caps count every
// node's sessions, and expiry removes rows and objects; and the store's own contract on both
// engines. Two apps over HTTP: uploads-shared.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { openDatabase, type Db } from '../../src/db/client.ts';
import { UploadSessionStore } from '../../src/db/upload-session-store.ts';
import { parseDigest, type ParsedDigest } from '../../src/lib/digest.ts';
import { AppError } from '../../src/lib/errors.ts';
import { BlobStore } from '../../src/storage/blob-store.ts';
import { InvalidPartError, type PartInfo, type StorageDriver } from '../../src/storage/driver/driver.ts';
import { FsDriver } from '../../src/storage/driver/fs.ts';
import { MemoryDriver } from '../../src/storage/driver/memory.ts';
import { paths } from '../../src/storage/paths.ts';
import { UploadStore, type UploadLimits } from '../../src/storage/uploads.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';
import { counting } from '../helpers/counting-driver.ts';

// A process far from UTC: the lease and idle times written by the store must still compare right.
process.env.TZ = 'America/Los_Angeles';

const MIN = 1024;
const PART = 4096;

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

function digest(b: Buffer, alg: 'sha256' | 'sha512' = 'sha256'): ParsedDigest {
  return parseDigest(`${alg}:${createHash(alg).update(b).digest('hex')}`)!;
}

function body(b: Buffer, chunk = 700): Readable {
  const parts: Buffer[] = [];
  for (let off = 0; off < b.length; off += chunk) parts.push(b.subarray(off, off + chunk));
  return Readable.from(parts, { objectMode: false });
}

function code(c: string) {
  return (e: unknown) => e instanceof AppError && e.code === c;
}

/** The registry's commit, without the database: optional last chunk, verify, place, end. */
function complete(uploads: UploadStore, uuid: string, d: ParsedDigest, last?: Buffer): Promise<number> {
  return uploads.withSession(uuid, 'r', async (u) => {
    if (last) await u.receive(body(last));
    const n = await u.verify(d);
    await u.place(d);
    u.end();
    return n;
  });
}

async function settled(): Promise<void> {
  await new Promise((r) => setTimeout(r, 30)); // the session's leftovers go after the answer
}

async function objects(driver: StorageDriver, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of driver.walk(prefix)) out.push(o.path);
  return out.sort();
}


/** Object storage that refuses a completion leaving out an uploaded part, as radosgw does (the memory driver accepts one). */
function strictCompletion(driver: StorageDriver): StorageDriver {
  return new Proxy(driver, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'completeMultipart') {
        return async (p: string, id: string, parts: PartInfo[]) => {
          const listed = new Set(parts.map((x) => x.partNumber));
          const left = (await target.listParts(p, id)).filter((u) => !listed.has(u.partNumber));
          if (left.length) throw new InvalidPartError(p, `uploaded parts not listed: ${left.map((u) => u.partNumber).join(', ')}`);
          return target.completeMultipart(p, id, parts);
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

interface Engine {
  name: string;
  skip: string | false;
  fresh(): Promise<string>;
}

interface Storage {
  name: string;
  make(): StorageDriver;
}

let pgServer: TestPostgres | null = null;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-uploads-cluster-'));
let n = 0;
const pgSkip = missingPostgres();
const engines: Engine[] = [
  { name: 'sqlite', skip: false, fresh: async () => `file:${path.join(tmp, `db${++n}`, 'berth.db')}` },
  { name: 'postgresql', skip: pgSkip, fresh: () => pgServer!.createDatabase() },
];
const storages: Storage[] = [
  { name: 'object storage (memory driver)', make: () => new MemoryDriver({ minPartSize: MIN }) },
  { name: 'a shared directory (fs driver)', make: () => new FsDriver(fs.mkdtempSync(path.join(tmp, 'store-'))) },
];

before(async () => {
  if (!pgSkip) pgServer = await startPostgres();
});
after(async () => {
  await pgServer?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

for (const engine of engines) {
  describe(`UploadSessionStore on ${engine.name}`, { skip: engine.skip }, () => {
    let db: Db;
    let store: UploadSessionStore;
    before(async () => {
      db = await openDatabase(await engine.fresh());
      store = new UploadSessionStore(db);
    });
    after(async () => {
      await db?.$disconnect();
    });
    const at = (s: number) => new Date(Date.UTC(2026, 11, 6, 12, 0, s));

    test('every write is a check-and-set on the version, under a lease nobody else holds', async () => {
      await store.create({ uuid: 'u1', repository: 'lib/a', startedAt: at(0).toISOString(), owner: 'u:ann' }, at(0));
      const r = (await store.read('u1'))!;
      assert.deepEqual({ ...r, updatedAt: r.updatedAt.toISOString() }, {
        uuid: 'u1', repository: 'lib/a', owner: 'u:ann', startedAt: at(0).toISOString(), updatedAt: at(0).toISOString(),
        offset: 0, hashState: null, hashFormat: null, parts: [], tail: 0, lease: null, leaseUntil: null, version: 0,
      });
      assert.equal(await store.claim('u1', 1, 'A', at(1), at(61)), false, 'not at that version');
      assert.equal(await store.claim('u1', 0, 'A', at(1), at(61)), true);
      assert.equal(await store.claim('u1', 1, 'B', at(2), at(62)), false, 'A holds it');
      assert.equal(await store.renew('u1', 1, 'B', at(3), at(63)), false, 'only the holder renews');
      assert.equal(await store.renew('u1', 1, 'A', at(3), at(63)), true);
      const state = { offset: 6_000_000_123, multipartId: 'mp-1', parts: [{ partNumber: 1, etag: '"e1"', size: 6_000_000_000 }], tail: 123, hashState: Buffer.alloc(32, 0xab), hashFormat: 'sha256-digest' };
      assert.equal(await store.update('u1', 1, 'B', state, at(4)), false, 'not B\'s lease');
      assert.equal(await store.update('u1', 0, 'A', state, at(4)), false, 'a stale version');
      assert.equal(await store.update('u1', 1, 'A', state, at(4), at(64)), true, 'a write that keeps the lease');
      assert.equal((await store.read('u1'))!.lease, 'A');
      assert.equal(await store.update('u1', 2, 'A', state, at(5)), true, 'the last write gives it up');
      const w = (await store.read('u1'))!;
      assert.equal(w.version, 3);
      assert.equal(w.lease, null);
      assert.equal(w.leaseUntil, null);
      assert.equal(w.offset, 6_000_000_123);
      assert.deepEqual(w.parts, state.parts);
      assert.equal(w.multipartId, 'mp-1');
      assert.equal(w.tail, 123);
      assert.ok(w.hashState?.equals(state.hashState));
      assert.equal(w.hashFormat, 'sha256-digest');
      assert.equal(w.updatedAt.toISOString(), at(5).toISOString());
      // An expired lease may be taken over; the old holder's writes and renewals then fail.
      assert.equal(await store.claim('u1', 3, 'A', at(6), at(10)), true);
      assert.equal(await store.claim('u1', 4, 'B', at(9), at(20)), false);
      assert.equal(await store.claim('u1', 4, 'B', at(11), at(20)), true);
      assert.equal(await store.update('u1', 4, 'A', state, at(12)), false);
      assert.equal(await store.renew('u1', 4, 'A', at(12), at(30)), false);
      assert.equal(await store.release('u1', 5, 'B', at(13)), true);
      assert.equal((await store.read('u1'))!.version, 6);
      assert.equal((await store.read('u1'))!.offset, 6_000_000_123, 'a release keeps the state');
    });

    test('counts per repository and per owner; idle rows by their last write, leased ones left alone', async () => {
      for (const [uuid, repository, owner, s] of [['c1', 'lib/c', 'u:x', 0], ['c2', 'lib/c', 'u:y', 30], ['c3', 'lib/d', 'u:x', 50]] as const) {
        await store.create({ uuid, repository, startedAt: at(s).toISOString(), owner }, at(s));
      }
      await store.create({ uuid: 'c4', repository: 'lib/c', startedAt: at(0).toISOString() }, at(0));
      assert.deepEqual(await store.count('lib/c', 'u:x'), { repository: 3, owner: 2 });
      assert.deepEqual(await store.count('lib/none', undefined), { repository: 0, owner: 0 });
      assert.ok(await store.claim('c4', 0, 'A', at(1), at(100)));
      const idle = (await store.idle(at(40), at(45), 100)).map((r) => r.uuid).filter((u) => u.startsWith('c'));
      assert.deepEqual(idle, ['c1', 'c2'], 'c3 written after the cutoff, c4 leased');
      assert.deepEqual((await store.idle(at(40), at(200), 100)).map((r) => r.uuid).filter((u) => u.startsWith('c')).sort(), ['c1', 'c2', 'c4'], 'an expired lease does not keep a row');
      await store.delete('c1');
      assert.equal(await store.read('c1'), null);
      assert.deepEqual(await store.count('lib/c', 'u:x'), { repository: 2, owner: 1 });
    });
  });

  for (const storage of storages) {
    describe(`upload sessions across two nodes: ${engine.name}, ${storage.name}`, { skip: engine.skip }, () => {
      let db: Db;
      let records: UploadSessionStore;
      const dbs: Db[] = [];
      before(async () => {
        db = await openDatabase(await engine.fresh());
        records = new UploadSessionStore(db);
      });
      after(async () => {
        for (const d of dbs) await d.$disconnect();
        await db?.$disconnect();
      });

      /** Two nodes over one storage and one database; each node has its own connection to it, as two processes would. */
      async function cluster(limits?: UploadLimits, opts: { leaseSeconds?: number } = {}, wrap: (d: StorageDriver) => StorageDriver = (d) => d) {
        const base = wrap(storage.make());
        const url = await engine.fresh();
        const node = async (name: string) => {
          const own = await openDatabase(url);
          dbs.push(own);
          const c = counting(base);
          const uploads = new UploadStore(c.driver, new BlobStore(c.driver), limits, { partSize: PART, records: new UploadSessionStore(own), node: name, ...opts });
          return { uploads, reads: c.reads, records: new UploadSessionStore(own) };
        };
        const a = await node('node-a');
        const b = await node('node-b');
        return { driver: base, a, b, records: a.records };
      }

      test('POST on one node, PATCH on the other, PATCH back, PUT on the other: the exact blob, nothing left', async () => {
        const { driver, a, b, records } = await cluster();
        const data = bytes(3 * PART + MIN + 77, 2);
        const s = await a.uploads.create('r');
        const cuts = [0, 1500, 2 * PART + 10, 3 * PART + 5, data.length - 100];
        const nodes = [b, a, b, a];
        for (let i = 0; i < nodes.length; i++) {
          const [from, to] = [cuts[i], cuts[i + 1]];
          const st = await nodes[i].uploads.append(s.uuid, 'r', body(data.subarray(from, to)), { start: from, end: to - 1 });
          assert.equal(st.size, to);
          assert.equal((await a.uploads.status(s.uuid, 'r')).size, to);
          assert.equal((await b.uploads.status(s.uuid, 'r')).size, to);
        }
        const d = digest(data);
        assert.equal(await complete(b.uploads, s.uuid, d, data.subarray(cuts.at(-1))), data.length);
        await settled();
        assert.ok((await new BlobStore(driver).getBytes(d))!.equals(data));
        assert.deepEqual(await objects(driver), [paths.blobData(d)]);
        if (driver instanceof MemoryDriver) assert.equal(driver.openMultiparts(), 0);
        assert.equal(await records.read(s.uuid), null, 'the record is gone');
        await assert.rejects(a.uploads.status(s.uuid, 'r'), code('BLOB_UPLOAD_UNKNOWN'));
        await assert.rejects(a.uploads.append(s.uuid, 'r', body(bytes(5))), code('BLOB_UPLOAD_UNKNOWN'));
      });

      test('one PATCH with the whole blob on one node, the PUT without a body on the other: verified from the stored digest, no re-read', async () => {
        const { driver, a, b, records } = await cluster();
        const data = bytes(2 * PART + 333, 3);
        const s = await a.uploads.create('r');
        await b.uploads.append(s.uuid, 'r', body(data));
        assert.equal((await records.read(s.uuid))?.hashFormat, 'sha256-digest', 'a PATCH without Content-Range is hashed natively: its digest is stored');
        const before = a.reads();
        const d = digest(data);
        assert.equal(await complete(a.uploads, s.uuid, d), data.length);
        assert.equal(a.reads() - before, 0, 'node a read none of the stored bytes');
        await settled();
        assert.ok((await new BlobStore(driver).getBytes(d))!.equals(data));
        // A wrong digest on the other node is still refused, and the session keeps its bytes.
        const t = await a.uploads.create('r');
        await b.uploads.append(t.uuid, 'r', body(data));
        await assert.rejects(complete(a.uploads, t.uuid, digest(Buffer.from('other'))), code('DIGEST_INVALID'));
        assert.equal((await b.uploads.status(t.uuid, 'r')).size, data.length);
        assert.equal(await complete(b.uploads, t.uuid, d), data.length);
      });

      test('chunks with Content-Range on one node: hashed natively to the end (no saveable state, no re-read)', async () => {
        const { a, records } = await cluster();
        const data = bytes(3 * PART + 77, 12);
        const s = await a.uploads.create('r');
        const cuts = [0, PART + 5, 2 * PART + 64, data.length];
        const before = a.reads();
        for (let i = 0; i + 1 < cuts.length; i++) {
          await a.uploads.append(s.uuid, 'r', body(data.subarray(cuts[i], cuts[i + 1])), { start: cuts[i], end: cuts[i + 1] - 1 });
          assert.equal((await records.read(s.uuid))!.hashFormat, 'sha256-digest', `chunk ${i}: the native hash's digest is stored`);
        }
        assert.equal(a.reads() - before, 0);
        assert.equal(await complete(a.uploads, s.uuid, digest(data)), data.length);
        assert.equal(a.reads() - before, 0, 'verified from the running hash');
      });

      test('chunks with Content-Range alternating between the nodes: the first move re-reads once, then each chunk continues the saved hash state, reading back no earlier byte', async () => {
        const { driver, a, b, records } = await cluster();
        const data = bytes(5 * PART + 321, 11);
        const s = await a.uploads.create('r');
        // Cuts inside and on the edges of 64-byte blocks and of parts, the tail of one chunk carried by the next.
        const cuts = [0, 700, PART + 1, 2 * PART, 2 * PART + 64, 4 * PART + 3, data.length - 50];
        const nodes = [b, a, b, a, b, a];
        for (let i = 0; i < nodes.length; i++) {
          const [from, to] = [cuts[i], cuts[i + 1]];
          const before = nodes[i].reads();
          assert.equal((await nodes[i].uploads.append(s.uuid, 'r', body(data.subarray(from, to)), { start: from, end: to - 1 })).size, to);
          if (i === 0) assert.equal((await records.read(s.uuid))!.hashFormat, 'sha256-digest', 'the first chunk is hashed natively');
          // The second chunk, on the other node, re-reads the first once (from the tail object, on object storage).
          if (i !== 1) assert.equal(nodes[i].reads() - before, 0, `chunk ${i} read none of the ${from} bytes before it`);
          assert.equal((await records.read(s.uuid))!.offset, to);
        }
        assert.equal((await records.read(s.uuid))!.hashFormat, 'sha256-wasm-state-v1', 'a continuable state is stored with the record');
        // A wrong digest (the whole blob's, while its last bytes are still to come) is refused on the other node from the state alone; the session goes on.
        const before = b.reads();
        await assert.rejects(complete(b.uploads, s.uuid, digest(data)), code('DIGEST_INVALID'));
        assert.equal(b.reads() - before, 0);
        assert.equal((await a.uploads.status(s.uuid, 'r')).size, cuts.at(-1));
        // The PUT with the last bytes, on the other node than the last chunk.
        const d = digest(data);
        assert.equal(await complete(b.uploads, s.uuid, d, data.subarray(cuts.at(-1))), data.length);
        assert.equal(b.reads() - before, 0, 'the completion read nothing back either');
        await settled();
        assert.ok((await new BlobStore(driver).getBytes(d))!.equals(data));
        assert.deepEqual(await objects(driver), [paths.blobData(d)]);
        if (driver instanceof MemoryDriver) assert.equal(driver.openMultiparts(), 0);
      });

      test('PATCHes without Content-Range alternating between the nodes: the first is hashed natively, the next node re-reads once, then the state is continued', async () => {
        const { driver, a, b, records } = await cluster();
        const data = bytes(4 * PART + 900, 15);
        const s = await a.uploads.create('r');
        const cuts = [0, PART + 300, 2 * PART + 10, 3 * PART + 700, data.length];
        const reads: number[] = [];
        const nodes = [a, b, a, b];
        for (let i = 0; i < nodes.length; i++) {
          const before = nodes[i].reads();
          assert.equal((await nodes[i].uploads.append(s.uuid, 'r', body(data.subarray(cuts[i], cuts[i + 1])))).size, cuts[i + 1]);
          reads.push(nodes[i].reads() - before);
          if (i === 0) assert.equal((await records.read(s.uuid))!.hashFormat, 'sha256-digest', 'one PATCH, as docker sends it: the native hash');
        }
        assert.equal(reads[0], 0);
        assert.ok(reads[1] > 0, 'the second PATCH, on the other node, re-read the first');
        assert.deepEqual(reads.slice(2), [0, 0], 'later PATCHes continue the saved state');
        assert.equal((await records.read(s.uuid))!.hashFormat, 'sha256-wasm-state-v1');
        const d = digest(data);
        assert.equal(await complete(a.uploads, s.uuid, d), data.length);
        await settled();
        assert.ok((await new BlobStore(driver).getBytes(d))!.equals(data));
      });

      test('a saved state that fails its checks, or in a format this node does not know: re-read once, right digest, wrong one refused, then continued again', async () => {
        for (const [what, spoil] of [
          ['one bit flipped', (r: { hashState?: Buffer | null; hashFormat?: string | null }) => ({ hashState: Buffer.from(r.hashState!.map((x, i) => (i === 9 ? x ^ 1 : x))), hashFormat: r.hashFormat })],
          ['truncated', (r: { hashState?: Buffer | null; hashFormat?: string | null }) => ({ hashState: r.hashState!.subarray(0, 100), hashFormat: r.hashFormat })],
          ['garbage', (r: { hashState?: Buffer | null }) => ({ hashState: Buffer.alloc(r.hashState!.length, 0x5a), hashFormat: 'sha256-wasm-state-v1' })],
          ['an unknown format', (r: { hashState?: Buffer | null }) => ({ hashState: r.hashState, hashFormat: 'sha256-future-state-v9' })],
        ] as const) {
          const { driver, a, b, records } = await cluster();
          const data = bytes(3 * PART + 77, 12);
          const s = await a.uploads.create('r');
          const cut1 = PART + 100;
          const cut2 = 2 * PART + 5;
          await a.uploads.append(s.uuid, 'r', body(data.subarray(0, cut1)), { start: 0, end: cut1 - 1 });
          // What a torn write, another version of Berth or a bug would leave in the record (through the store's own API).
          const r = (await records.read(s.uuid))!;
          const now = Date.now();
          assert.ok(await records.claim(s.uuid, r.version, 'spoiler', new Date(now), new Date(now + 5000)));
          assert.ok(await records.update(s.uuid, r.version + 1, 'spoiler', { ...r, ...spoil(r) }, new Date(now)));
          // Node b cannot continue that state: it re-reads the bytes stored so far, and stores a good state again.
          const beforeB = b.reads();
          await b.uploads.append(s.uuid, 'r', body(data.subarray(cut1, cut2)), { start: cut1, end: cut2 - 1 });
          assert.ok(b.reads() - beforeB > 0, `${what}: node b re-read the earlier bytes`);
          assert.equal((await records.read(s.uuid))!.hashFormat, 'sha256-wasm-state-v1', `${what}: a continuable state again`);
          const beforeA = a.reads();
          await a.uploads.append(s.uuid, 'r', body(data.subarray(cut2)), { start: cut2, end: data.length - 1 });
          assert.equal(a.reads() - beforeA, 0, `${what}: the next chunk continues that state`);
          await assert.rejects(complete(b.uploads, s.uuid, digest(bytes(data.length, 13))), code('DIGEST_INVALID'), what);
          const d = digest(data);
          assert.equal(await complete(b.uploads, s.uuid, d), data.length, what);
          await settled();
          assert.ok((await new BlobStore(driver).getBytes(d))!.equals(data), what);
        }
      });

      if (storage.name.includes('memory')) {
        test('a node that died after uploading parts it never recorded: the next node re-reads once instead of continuing the state among them', async () => {
          const { driver, a, b, records } = await cluster(undefined, { leaseSeconds: 30 }, strictCompletion);
          const data = bytes(2 * PART + 500, 14);
          const s = await a.uploads.create('r');
          const cut = PART + 100;
          await a.uploads.append(s.uuid, 'r', body(data.subarray(0, cut)), { start: 0, end: cut - 1 });
          const r = (await records.read(s.uuid))!;
          assert.equal(r.parts.length, 1);
          assert.equal(r.hashFormat, 'sha256-digest', 'a first chunk is hashed natively');
          // Node b took the next chunk, uploaded parts 2-6 and was killed before recording them.
          const now = Date.now();
          assert.ok(await records.claim(s.uuid, r.version, 'dead-node', new Date(now), new Date(now + 300)));
          for (let n = 2; n <= 6; n++) await driver.uploadPart(paths.uploadData(s.uuid), r.multipartId!, n, Buffer.alloc(PART, 0xee));
          await new Promise((res) => setTimeout(res, 400));
          // The client sends that chunk again, to node a: the parts it does not know make it re-read.
          const beforeA = a.reads();
          await a.uploads.append(s.uuid, 'r', body(data.subarray(cut, 2 * PART + 300)), { start: cut, end: 2 * PART + 299 });
          assert.ok(a.reads() - beforeA > 0, 'node a re-read the recorded bytes');
          // From there the saved state is continued again: the PUT with the last bytes, on node b, reads nothing back.
          const beforeB = b.reads();
          const d = digest(data);
          assert.equal(await complete(b.uploads, s.uuid, d, data.subarray(2 * PART + 300)), data.length);
          assert.equal(b.reads() - beforeB, 0);
          await settled();
          assert.ok((await new BlobStore(driver).getBytes(d))!.equals(data));
          assert.deepEqual(await objects(driver), [paths.blobData(d)]);
        });

        test('a recorded part replaced by other bytes under its number: the saved state is not continued over it, and no blob is stored under the digest', async () => {
          const { driver, a, b, records } = await cluster(undefined, { leaseSeconds: 30 }, strictCompletion);
          const data = bytes(2 * PART + 500, 16);
          const s = await a.uploads.create('r');
          const cut = PART + 100;
          await a.uploads.append(s.uuid, 'r', body(data.subarray(0, cut)), { start: 0, end: cut - 1 });
          const r = (await records.read(s.uuid))!;
          await driver.uploadPart(paths.uploadData(s.uuid), r.multipartId!, 1, Buffer.alloc(PART, 0xee));
          await assert.rejects(b.uploads.append(s.uuid, 'r', body(data.subarray(cut)), { start: cut, end: data.length - 1 }), code('BLOB_UPLOAD_UNKNOWN'));
          assert.equal(await new BlobStore(driver).getBytes(digest(data)), null);
        });
      }

      test('a stale chunk on the other node is RANGE_INVALID and leaves the session unchanged', async () => {
        const { driver, a, b, records } = await cluster();
        const data = bytes(2 * PART + 900, 4);
        const s = await a.uploads.create('r');
        await a.uploads.append(s.uuid, 'r', body(data.subarray(0, 1000)), { start: 0, end: 999 });
        await b.uploads.append(s.uuid, 'r', body(data.subarray(1000, PART + 50)), { start: 1000, end: PART + 49 });
        const record = await records.read(s.uuid);
        // Node a's client resends its first chunk's successor at the offset it last saw.
        await assert.rejects(a.uploads.append(s.uuid, 'r', body(bytes(200, 9)), { start: 1000, end: 1199 }), (e: unknown) => code('RANGE_INVALID')(e) && (e as AppError).headers?.Range === `0-${PART + 49}`);
        assert.equal((await a.uploads.status(s.uuid, 'r')).size, PART + 50);
        const unchanged = await records.read(s.uuid);
        assert.equal(unchanged?.offset, record?.offset);
        assert.deepEqual(unchanged?.parts, record?.parts);
        assert.equal(unchanged?.lease, null);
        await a.uploads.append(s.uuid, 'r', body(data.subarray(PART + 50)), { start: PART + 50, end: data.length - 1 });
        const d = digest(data);
        assert.equal(await complete(b.uploads, s.uuid, d), data.length);
        await settled();
        assert.ok((await new BlobStore(driver).getBytes(d))!.equals(data));
      });

      test('two nodes writing one session at once: one wins, the other is refused before its body is read, the blob is right', async () => {
        const { driver, a, b, records } = await cluster();
        const data = bytes(2 * PART + 10, 5);
        const s = await a.uploads.create('r');
        const slow = new PassThrough();
        const first = a.uploads.append(s.uuid, 'r', slow, { start: 0, end: data.length - 1 });
        slow.write(data.subarray(0, PART + 7));
        // Node a holds the lease while its body streams.
        for (let i = 0; i < 100 && !(await records.read(s.uuid))?.lease; i++) await new Promise((r) => setTimeout(r, 10));
        assert.equal((await records.read(s.uuid))?.lease, 'node-a');
        const rival = new PassThrough();
        rival.end(bytes(300, 8));
        await assert.rejects(b.uploads.append(s.uuid, 'r', rival, { start: 0, end: 299 }), code('RANGE_INVALID'));
        await assert.rejects(complete(b.uploads, s.uuid, digest(data)), code('BLOB_UPLOAD_INVALID'));
        slow.end(data.subarray(PART + 7));
        assert.equal((await first).size, data.length);
        assert.equal((await records.read(s.uuid))?.lease, null, 'the lease is given up with the last write');
        const d = digest(data);
        assert.equal(await complete(b.uploads, s.uuid, d), data.length);
        await settled();
        assert.ok((await new BlobStore(driver).getBytes(d))!.equals(data));
      });

      test('a node that died holding a session: refused until its lease expires, then the other node resumes', async () => {
        const { driver, a, b, records } = await cluster(undefined, { leaseSeconds: 30 });
        const data = bytes(PART + 500, 6);
        const s = await a.uploads.create('r');
        await a.uploads.append(s.uuid, 'r', body(data.subarray(0, 700)));
        const r = (await records.read(s.uuid))!;
        // What a node killed in the middle of a request leaves: a claimed record, never written again.
        const now = Date.now();
        assert.ok(await records.claim(s.uuid, r.version, 'dead-node', new Date(now), new Date(now + 400)));
        await assert.rejects(b.uploads.append(s.uuid, 'r', body(data.subarray(700)), { start: 700, end: data.length - 1 }), code('RANGE_INVALID'));
        await new Promise((res) => setTimeout(res, 500));
        await b.uploads.append(s.uuid, 'r', body(data.subarray(700)), { start: 700, end: data.length - 1 });
        const d = digest(data);
        assert.equal(await complete(a.uploads, s.uuid, d), data.length);
        await settled();
        assert.ok((await new BlobStore(driver).getBytes(d))!.equals(data));
      });

      test('a body that streams for longer than the lease keeps it (renewed): the other node stays refused', async () => {
        const { driver, a, b, records } = await cluster(undefined, { leaseSeconds: 0.3 });
        const data = bytes(PART + 200, 10);
        const s = await a.uploads.create('r');
        const slow = new PassThrough();
        const first = a.uploads.append(s.uuid, 'r', slow);
        slow.write(data.subarray(0, 100));
        await new Promise((res) => setTimeout(res, 900)); // three lease lengths
        await assert.rejects(b.uploads.append(s.uuid, 'r', body(bytes(10)), { start: 0, end: 9 }), code('RANGE_INVALID'));
        slow.end(data.subarray(100));
        assert.equal((await first).size, data.length);
        assert.equal((await records.read(s.uuid))?.lease, null);
        const d = digest(data);
        assert.equal(await complete(b.uploads, s.uuid, d), data.length);
        await settled();
        assert.ok((await new BlobStore(driver).getBytes(d))!.equals(data));
      });

      test('the caps count the sessions of every node', async () => {
        const { a, b } = await cluster({ perRepository: 2, perOwner: 3 });
        const s1 = await a.uploads.create('r', false, 'u:alice');
        await b.uploads.create('r', false, 'u:alice');
        await assert.rejects(a.uploads.create('r', false, 'u:bob'), code('TOOMANYREQUESTS'));
        await assert.rejects(b.uploads.create('r'), code('TOOMANYREQUESTS'));
        await b.uploads.create('q', false, 'u:alice');
        await assert.rejects(a.uploads.create('p', false, 'u:alice'), code('TOOMANYREQUESTS'));
        // A session ended on one node frees its place on the other.
        await b.uploads.cancel(s1.uuid, 'r');
        await a.uploads.create('r', false, 'u:bob');
      });

      test('expiry on either node removes idle sessions: rows and objects', async () => {
        const { driver, a, b, records } = await cluster();
        const idle = await a.uploads.create('r');
        await a.uploads.append(idle.uuid, 'r', body(bytes(PART + 300, 7)));
        const fresh = await a.uploads.create('r');
        await a.uploads.append(fresh.uuid, 'r', body(bytes(100, 7)));
        // The idle one was last written an hour ago (the clock is the purge's `now` for the others).
        const r = (await records.read(idle.uuid))!;
        assert.ok(await records.claim(idle.uuid, r.version, 'x', new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_599_000)));
        assert.equal(await b.uploads.purgeExpired(600), 1);
        assert.equal(await records.read(idle.uuid), null);
        assert.deepEqual(await objects(driver, paths.uploadDir(idle.uuid)), []);
        await assert.rejects(a.uploads.status(idle.uuid, 'r'), code('BLOB_UPLOAD_UNKNOWN'));
        assert.ok(await records.read(fresh.uuid));
        // Much later everything is expired; multipart objects are aborted.
        assert.equal(await b.uploads.purgeExpired(600, Date.now() + 3_600_000), 1);
        assert.equal(await records.read(fresh.uuid), null);
        assert.deepEqual(await objects(driver), []);
        if (driver instanceof MemoryDriver) assert.equal(driver.openMultiparts(), 0);
        await assert.rejects(a.uploads.append(fresh.uuid, 'r', body(bytes(5))), code('BLOB_UPLOAD_UNKNOWN'));
      });
    });
  }
}
