// Object-storage uploads gather a part in a reused buffer: a request body's chunks are copied in as
// they arrive instead of being held until a part's worth has gathered (held, they outlived several
// minor collections and piled up as dead buffers waiting for a full one: Berth's peak RSS under
// `npm run bench -- --backend=pg-s3`). Over the memory driver with small parts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { parseDigest, type ParsedDigest } from '../../src/lib/digest.ts';
import { BlobStore } from '../../src/storage/blob-store.ts';
import { MemoryDriver } from '../../src/storage/driver/memory.ts';
import { UploadStore } from '../../src/storage/uploads.ts';

const KiB = 1024;
const PART = 64 * KiB;

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 10)) & 0xff;
  return b;
}

function digest(b: Buffer): ParsedDigest {
  return parseDigest(`sha256:${createHash('sha256').update(b).digest('hex')}`)!;
}

function fullGc(): void {
  v8.setFlagsFromString('--expose-gc');
  try {
    (vm.runInNewContext('gc') as () => void)();
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

function make() {
  const driver = new MemoryDriver({ minPartSize: KiB });
  const blobs = new BlobStore(driver);
  return { driver, blobs, uploads: new UploadStore(driver, blobs, undefined, { partSize: PART }) };
}

describe('object-storage uploads gather parts in reused buffers', () => {
  test("a body's chunks are not held until a part's worth has gathered", async () => {
    const { blobs, uploads } = make();
    const data = bytes(48 * KiB, 1); // below one part: nothing is uploaded while the body streams
    const refs: WeakRef<Buffer>[] = [];
    let go!: () => void;
    const paused = new Promise<void>((r) => (go = r));
    let allSent!: () => void;
    const sent = new Promise<void>((r) => (allSent = r));
    async function* chunks() {
      for (let off = 0; off < data.length; off += KiB) {
        const c = Buffer.from(data.subarray(off, off + KiB));
        refs.push(new WeakRef(c));
        yield c;
      }
      allSent();
      await paused; // the request is still under way: what it holds is what the session keeps
    }
    const s = await uploads.create('r');
    const appended = uploads.append(s.uuid, 'r', Readable.from(chunks(), { objectMode: false }));
    await sent;
    await new Promise((r) => setTimeout(r, 10)); // WeakRefs made in a job hold until it ends
    fullGc();
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    go();
    assert.equal((await appended).size, data.length);
    // A quarter of a part is kept as the chunks themselves (small blobs cost only their size).
    assert.ok(alive <= PART / 4 / KiB, `${alive} of ${refs.length} chunks still held`);
    const d = digest(data);
    await uploads.withSession(s.uuid, 'r', async (u) => {
      await u.verify(d);
      await u.place(d);
      u.end();
    });
    assert.ok((await blobs.getBytes(d))!.equals(data));
  });

  test('uploads at once, of several parts, with chunks of every size, each store their exact bytes', async () => {
    const { blobs, uploads } = make();
    const sizes = [1, 700, 16 * KiB, 16 * KiB + 1, 63 * KiB, PART, PART + 1, 2 * PART + 3, 5]; // some above a part and its room past it
    const blobsIn = [0, 1, 2, 3, 4, 5].map((i) => bytes(5 * PART + 1234 * i, i + 2));
    await Promise.all(
      blobsIn.map(async (data, i) => {
        const s = await uploads.create('r');
        let off = 0;
        for (let k = 0; off < data.length; k++) {
          const n = Math.min(sizes[(k + i) % sizes.length], data.length - off);
          const piece = data.subarray(off, off + n);
          const pieces = [piece.subarray(0, n >> 1), piece.subarray(n >> 1)].filter((p) => p.length);
          assert.equal((await uploads.append(s.uuid, 'r', Readable.from(pieces, { objectMode: false }), { start: off, end: off + n - 1 })).size, off + n);
          off += n;
          await new Promise((r) => setImmediate(r)); // interleave with the other uploads
        }
        const d = digest(data);
        await uploads.withSession(s.uuid, 'r', async (u) => {
          assert.equal(await u.verify(d), data.length);
          await u.place(d);
          u.end();
        });
      }),
    );
    for (const data of blobsIn) assert.ok((await blobs.getBytes(digest(data)))!.equals(data));
  });
});
