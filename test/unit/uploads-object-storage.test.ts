// Upload sessions on object storage (no append, no rename), over the memory driver with small
// parts so every path runs in milliseconds: chunks of any size become parts plus a tail object
// below the minimum part size; a restart (a new UploadStore over the same store) resumes by
// re-reading what was stored, even after a process died with parts it never recorded; nothing is
// left behind after completion, cancel or expiry. The same code runs on S3 (test/e2e/s3.test.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseDigest, type ParsedDigest } from '../../src/lib/digest.ts';
import { AppError } from '../../src/lib/errors.ts';
import { BlobStore } from '../../src/storage/blob-store.ts';
import { MemoryDriver } from '../../src/storage/driver/memory.ts';
import { paths } from '../../src/storage/paths.ts';
import { UploadStore } from '../../src/storage/uploads.ts';

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

function make(driver = new MemoryDriver({ minPartSize: MIN })) {
  const blobs = new BlobStore(driver);
  return { driver, blobs, uploads: new UploadStore(driver, blobs, undefined, { partSize: PART }) };
}

/** The registry's commit, without the database: verify, place, end. */
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
  await new Promise((r) => setTimeout(r, 20)); // the session's leftovers go after the answer
}

async function objects(driver: MemoryDriver): Promise<string[]> {
  const out: string[] = [];
  for await (const o of driver.walk('')) out.push(o.path);
  return out.sort();
}

describe('upload sessions on object storage', () => {
  test('chunks of a few bytes up to several parts make the exact blob; only the blob is left', async () => {
    const { driver, blobs, uploads } = make();
    const data = bytes(5 * PART + 123);
    const s = await uploads.create('r');
    let off = 0;
    for (const n of [3, 500, MIN - 1, 1, PART * 2 + 5, 17, PART + MIN]) {
      const st = await uploads.append(s.uuid, 'r', body(data.subarray(off, off + n)), { start: off, end: off + n - 1 });
      off += n;
      assert.equal(st.size, off);
      assert.equal((await uploads.status(s.uuid, 'r')).size, off);
    }
    const d = digest(data);
    assert.equal(await complete(uploads, s.uuid, d, data.subarray(off)), data.length);
    await settled();
    assert.ok((await blobs.getBytes(d))!.equals(data));
    assert.deepEqual(await objects(driver), [paths.blobData(d)]);
    assert.equal(driver.openMultiparts(), 0);
  });

  test('a chunk that does not start at the end of the session is RANGE_INVALID, and the session is unchanged', async () => {
    const { uploads } = make();
    const s = await uploads.create('r');
    await uploads.append(s.uuid, 'r', body(bytes(100)));
    await assert.rejects(uploads.append(s.uuid, 'r', body(bytes(10)), { start: 50, end: 59 }), (e: unknown) => e instanceof AppError && e.code === 'RANGE_INVALID');
    assert.equal((await uploads.status(s.uuid, 'r')).size, 100);
  });

  test('after a restart the session resumes: its size from the stored state, its hash re-read from the stored parts and tail', async () => {
    const { driver, uploads } = make();
    const data = bytes(3 * PART + 2 * MIN + 9, 2);
    const s = await uploads.create('r');
    await uploads.append(s.uuid, 'r', body(data.subarray(0, 2 * PART + 300)));
    await uploads.append(s.uuid, 'r', body(data.subarray(2 * PART + 300, 2 * PART + 310)));
    const restarted = make(driver).uploads;
    assert.equal((await restarted.status(s.uuid, 'r')).size, 2 * PART + 310);
    await restarted.append(s.uuid, 'r', body(data.subarray(2 * PART + 310, 3 * PART)), { start: 2 * PART + 310, end: 3 * PART - 1 });
    const again = make(driver).uploads; // a PUT without a body on yet another process
    const d = digest(data);
    assert.equal(await complete(again, s.uuid, d, data.subarray(3 * PART)), data.length);
    await settled();
    assert.ok((await driver.getContent(paths.blobData(d)))!.equals(data));
    assert.deepEqual(await objects(driver), [paths.blobData(d)]);
    assert.equal(driver.openMultiparts(), 0);
  });

  test('a process that died mid-request with parts it never recorded: the session resumes at its last answered size', async () => {
    const { driver, uploads } = make();
    const data = bytes(4 * PART, 3);
    const s = await uploads.create('r');
    await uploads.append(s.uuid, 'r', body(data.subarray(0, PART + 200)));
    // What the dead request left: a part uploaded after the recorded ones (holding the tail and more).
    const info = JSON.parse((await driver.getContent(paths.uploadInfo(s.uuid)))!.toString()) as { multipartId: string; parts: unknown[] };
    assert.equal(info.parts.length, 1);
    await driver.uploadPart(paths.uploadData(s.uuid), info.multipartId, 2, Buffer.alloc(PART, 0xee));
    const restarted = make(driver).uploads;
    assert.equal((await restarted.status(s.uuid, 'r')).size, PART + 200);
    const d = digest(data);
    assert.equal(await complete(restarted, s.uuid, d, data.subarray(PART + 200)), data.length);
    assert.ok((await driver.getContent(paths.blobData(d)))!.equals(data));
  });

  test('a wrong digest is DIGEST_INVALID and the session keeps its bytes; a sha512 digest is checked by re-reading', async () => {
    const { driver, uploads } = make();
    const data = bytes(2 * PART + 77, 4);
    const s = await uploads.create('r');
    await uploads.append(s.uuid, 'r', body(data.subarray(0, PART + 5)));
    await assert.rejects(complete(uploads, s.uuid, digest(Buffer.from('other')), data.subarray(PART + 5)), (e: unknown) => e instanceof AppError && e.code === 'DIGEST_INVALID');
    assert.equal((await uploads.status(s.uuid, 'r')).size, data.length);
    const d = digest(data, 'sha512');
    assert.equal(await complete(uploads, s.uuid, d), data.length);
    await settled();
    assert.ok((await driver.getContent(paths.blobData(d)))!.equals(data));
    assert.deepEqual(await objects(driver), [paths.blobData(d)]);
  });

  test('a blob already stored is not written again; the session is removed and its multipart object aborted', async () => {
    const { driver, uploads } = make();
    const data = bytes(PART * 2 + 1, 5);
    const d = digest(data);
    for (let i = 0; i < 2; i++) {
      const s = await uploads.create('r');
      await uploads.append(s.uuid, 'r', body(data.subarray(0, PART * 2)));
      await complete(uploads, s.uuid, d, data.subarray(PART * 2));
    }
    await settled();
    assert.deepEqual(await objects(driver), [paths.blobData(d)]);
    assert.equal(driver.openMultiparts(), 0);
  });

  test('cancel and expiry leave nothing behind (multipart objects aborted)', async () => {
    const { driver, uploads } = make();
    const a = await uploads.create('r');
    await uploads.append(a.uuid, 'r', body(bytes(PART * 2 + 10)));
    await uploads.cancel(a.uuid, 'r');
    const b = await uploads.create('r');
    await uploads.append(b.uuid, 'r', body(bytes(PART + 10)));
    // Expired by a process that knows the session only from what was stored (after a restart).
    const restarted = make(driver).uploads;
    assert.equal(await restarted.purgeExpired(60, Date.now() + 3600_000), 1);
    assert.deepEqual(await objects(driver), []);
    assert.equal(driver.openMultiparts(), 0);
    await assert.rejects(restarted.status(b.uuid, 'r'), (e: unknown) => e instanceof AppError && e.code === 'BLOB_UPLOAD_UNKNOWN');
  });

  test('a body that ends early keeps what arrived: the session resumes from there', async () => {
    const { driver, uploads } = make();
    const data = bytes(PART * 2 + 500, 6);
    const s = await uploads.create('r');
    const broken = new Readable({ read() {} });
    broken.push(data.subarray(0, PART + 100));
    setTimeout(() => broken.destroy(new Error('client went away')), 10);
    await assert.rejects(uploads.append(s.uuid, 'r', broken), (e: unknown) => e instanceof AppError && e.code === 'BLOB_UPLOAD_INVALID');
    assert.equal((await uploads.status(s.uuid, 'r')).size, PART + 100);
    assert.equal((await make(driver).uploads.status(s.uuid, 'r')).size, PART + 100, 'written down for a restart too');
    const d = digest(data);
    assert.equal(await complete(uploads, s.uuid, d, data.subarray(PART + 100)), data.length);
    assert.ok((await driver.getContent(paths.blobData(d)))!.equals(data));
  });
});
