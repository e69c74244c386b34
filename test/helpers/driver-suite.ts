// The StorageDriver contract (src/storage/driver/driver.ts) as one suite, run against every
// driver: memory and fs in test/unit/driver-conformance.test.ts, S3 (a real radosgw) in
// test/e2e/s3.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidPartError, PathNotFoundError, type StorageDriver } from '../../src/storage/driver/driver.ts';

export interface Backend {
  name: string;
  /** A fresh, empty store. */
  make(): StorageDriver | Promise<StorageDriver>;
  /** A second driver instance over the same store as the last make() (another "node"), if the driver can share one. */
  sibling?(): StorageDriver | Promise<StorageDriver>;
  /** Files on disk that are not part of the driver's visible content (temp files, parts), if it has a disk. */
  strayFiles?(): string[];
  /** Every file under the last make()'s root, if it has a disk. */
  allFiles?(): string[];
  /**
   * What the driver offers beyond the common contract. Cases for a feature are registered only for
   * drivers that declare it (and each checks the declaration), so no case is skipped under CI.
   */
  features: { refusesSmallParts: boolean; redirect: boolean; local: boolean };
}

export function allFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((p) => fs.statSync(path.join(dir, p), { throwIfNoEntry: false })?.isFile() ?? false).sort();
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

async function walked(d: StorageDriver, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of d.walk(prefix)) out.set(o.path, o.size);
  return out;
}

const DATA = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');

export function driverSuite(b: Backend, opts: { many?: number; skip?: string | false } = {}): void {
  describe(`StorageDriver contract: ${b.name}`, { skip: opts.skip }, () => {
    test('absent paths: stat and getContent give null, reader throws PathNotFoundError, list gives []', async () => {
      const d = await b.make();
      assert.equal(await d.stat('nope/file'), null);
      assert.equal(await d.getContent('nope/file'), null);
      await assert.rejects(d.reader('nope/file'), (e: unknown) => e instanceof PathNotFoundError && e.path === 'nope/file');
      assert.deepEqual(await d.list('nope'), []);
      assert.deepEqual(await walked(d, 'nope'), new Map());
      await d.delete('nope/file'); // not an error
      await assert.rejects(d.copy('nope/file', 'nope/other'), PathNotFoundError);
    });

    test('putContent/getContent round trip, replace, stat size and mtime', async () => {
      const d = await b.make();
      const before = Date.now();
      await d.putContent('a/b/c.json', DATA);
      assert.deepEqual(await d.getContent('a/b/c.json'), DATA);
      const st = await d.stat('a/b/c.json');
      assert.equal(st?.size, DATA.length);
      assert.ok(st!.modTime instanceof Date);
      assert.ok(st!.modTime.getTime() >= before - 5000);
      await d.putContent('a/b/c.json', Buffer.from('short'));
      assert.deepEqual(await d.getContent('a/b/c.json'), Buffer.from('short'));
      assert.equal((await d.stat('a/b/c.json'))?.size, 5);
      await d.putContent('a/empty', Buffer.alloc(0));
      assert.deepEqual(await d.getContent('a/empty'), Buffer.alloc(0));
      assert.equal((await d.stat('a/empty'))?.size, 0);
    });

    test('getContent returns a copy the caller may change', async () => {
      const d = await b.make();
      const src = Buffer.from('abc');
      await d.putContent('x', src);
      src[0] = 0x7a;
      const got = (await d.getContent('x'))!;
      assert.deepEqual(got, Buffer.from('abc'));
      got[1] = 0x7a;
      assert.deepEqual(await d.getContent('x'), Buffer.from('abc'));
    });

    test('directories: stat reports size 0, list names direct children only', async () => {
      const d = await b.make();
      await d.putContent('dir/one', DATA);
      await d.putContent('dir/two', DATA);
      await d.putContent('dir/sub/three', DATA);
      await d.putContent('dirx/other', DATA);
      assert.equal((await d.stat('dir'))?.size, 0);
      assert.deepEqual((await d.list('dir')).sort(), ['one', 'sub', 'two']);
      assert.deepEqual(await d.list('dir/sub'), ['three']);
      assert.deepEqual(await d.list('dir/one'), []);
      assert.deepEqual((await d.list('')).sort(), ['dir', 'dirx']);
    });

    test('reader: whole file, inclusive ranges, open end, end past EOF, empty file', async () => {
      const d = await b.make();
      await d.putContent('r/f', DATA);
      assert.deepEqual(await readAll(await d.reader('r/f')), DATA);
      assert.deepEqual(await readAll(await d.reader('r/f', 0, 0)), DATA.subarray(0, 1));
      assert.deepEqual(await readAll(await d.reader('r/f', 10, 19)), DATA.subarray(10, 20));
      assert.deepEqual(await readAll(await d.reader('r/f', 30)), DATA.subarray(30));
      assert.deepEqual(await readAll(await d.reader('r/f', 30, 1000)), DATA.subarray(30));
      assert.deepEqual(await readAll(await d.reader('r/f', DATA.length - 1, DATA.length - 1)), DATA.subarray(-1));
      await d.putContent('r/empty', Buffer.alloc(0));
      assert.deepEqual(await readAll(await d.reader('r/empty')), Buffer.alloc(0));
    });

    test('reader streams bytes, not objects', async () => {
      const d = await b.make();
      await d.putContent('r/f', DATA);
      const r = await d.reader('r/f', 2, 5);
      assert.equal(r.readableObjectMode, false);
      assert.deepEqual(await readAll(r), DATA.subarray(2, 6));
    });

    test('delete: an object, or everything under a prefix, and nothing else', async () => {
      const d = await b.make();
      await d.putContent('del/a/1', DATA);
      await d.putContent('del/a/2/3', DATA);
      await d.putContent('del/ab', DATA);
      await d.putContent('del/keep', DATA);
      await d.delete('del/keep');
      assert.equal(await d.stat('del/keep'), null);
      await d.delete('del/a');
      assert.equal(await d.stat('del/a/1'), null);
      assert.equal(await d.stat('del/a/2/3'), null);
      assert.equal(await d.stat('del/a'), null);
      assert.deepEqual(await d.getContent('del/ab'), DATA);
      assert.deepEqual(await d.list('del'), ['ab']);
      assert.deepEqual(await walked(d, ''), new Map([['del/ab', DATA.length]]));
    });

    test('paths are normalised: leading, trailing and double slashes', async () => {
      const d = await b.make();
      await d.putContent('/n//x/', DATA);
      assert.deepEqual(await d.getContent('n/x'), DATA);
      assert.deepEqual(await d.list('/n/'), ['x']);
    });

    test(`walk: every object under a prefix with its size, across pages (${opts.many ?? 1005} objects), nothing outside it`, async () => {
      const d = await b.make();
      const many = opts.many ?? 1005;
      const want = new Map<string, number>();
      for (let i = 0; i < many; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, many - i) }, (_, j) => {
          const p = `w/${String(i + j).padStart(2, '0').slice(0, 2)}/${i + j}/data`;
          want.set(p, (i + j) % 7);
          return d.putContent(p, Buffer.alloc((i + j) % 7, 1));
        }));
      }
      await d.putContent('wx/outside', DATA);
      await d.putContent('other', DATA);
      assert.deepEqual(await walked(d, 'w'), want);
      assert.deepEqual(await walked(d, 'w/10'), new Map([...want].filter(([k]) => k.startsWith('w/10/'))));
      for await (const o of d.walk('w')) {
        assert.ok(o.modTime instanceof Date);
        break;
      }
      await d.delete('w');
      assert.deepEqual(await walked(d, ''), new Map([['wx/outside', DATA.length], ['other', DATA.length]]));
    });

    test('copy: a new object with the same bytes, replacing the destination; the source stays', async () => {
      const d = await b.make();
      const big = randomBytes(3 * 1024 * 1024 + 17);
      await d.putContent('cp/src', big);
      await d.copy('cp/src', 'cp/x/y/dst');
      assert.ok((await d.getContent('cp/x/y/dst'))!.equals(big));
      assert.ok((await d.getContent('cp/src'))!.equals(big));
      await d.putContent('cp/src2', Buffer.from('new'));
      await d.copy('cp/src2', 'cp/x/y/dst');
      assert.deepEqual(await d.getContent('cp/x/y/dst'), Buffer.from('new'));
      await d.putContent('cp/src2', Buffer.from('changed later'));
      assert.deepEqual(await d.getContent('cp/x/y/dst'), Buffer.from('new'));
    });

    test('multipart: nothing visible before completion; parts in order make the object; replaces an existing one', async () => {
      const d = await b.make();
      const min = d.minPartSize;
      const p1 = randomBytes(Math.max(min, 1000));
      const p2 = randomBytes(Math.max(min, 1000) + 3);
      const p3 = Buffer.from('last part, any size');
      await d.putContent('mp/obj', Buffer.from('old'));
      const id = await d.startMultipart('mp/obj');
      // Uploaded out of order: the list given to completeMultipart decides.
      const b2 = await d.uploadPart('mp/obj', id, 2, p2);
      const b1 = await d.uploadPart('mp/obj', id, 1, p1);
      const b3 = await d.uploadPart('mp/obj', id, 3, p3);
      assert.deepEqual(await d.getContent('mp/obj'), Buffer.from('old'));
      await d.completeMultipart('mp/obj', id, [b1, b2, b3]);
      assert.ok((await d.getContent('mp/obj'))!.equals(Buffer.concat([p1, p2, p3])));
      assert.equal((await d.stat('mp/obj'))?.size, p1.length + p2.length + p3.length);
      assert.deepEqual(await walked(d, ''), new Map([['mp/obj', p1.length + p2.length + p3.length]]));
      // A single part of any size is a whole object.
      const one = await d.startMultipart('mp/one');
      await d.completeMultipart('mp/one', one, [await d.uploadPart('mp/one', one, 1, Buffer.from('x'))]);
      assert.deepEqual(await d.getContent('mp/one'), Buffer.from('x'));
    });

    test('multipart: a part re-uploaded under the same number replaces the first one; listParts names what was uploaded', async () => {
      const d = await b.make();
      const id = await d.startMultipart('mp/re');
      await d.uploadPart('mp/re', id, 1, Buffer.from('first'));
      const again = await d.uploadPart('mp/re', id, 1, Buffer.alloc(Math.max(d.minPartSize, 6), 's'.charCodeAt(0)));
      const p3 = await d.uploadPart('mp/re', id, 3, Buffer.from('third'));
      assert.deepEqual(await d.listParts('mp/re', id), [{ ...again, size: Math.max(d.minPartSize, 6) }, { ...p3, size: 5 }], 'listParts: every uploaded part, by number, with its size');
      // Every uploaded part is listed: radosgw refuses a completion that leaves one out (InvalidPart).
      await d.completeMultipart('mp/re', id, [again, p3]);
      assert.deepEqual(await d.getContent('mp/re'), Buffer.concat([Buffer.alloc(Math.max(d.minPartSize, 6), 's'.charCodeAt(0)), Buffer.from('third')]));
    });

    if (b.sibling) {
      test('multipart: parts uploaded by two driver instances (two nodes) complete into one object', async () => {
        const a = await b.make();
        const other = await b.sibling!();
        const min = a.minPartSize;
        const p1 = randomBytes(Math.max(min, 100));
        const p2 = randomBytes(100);
        const id = await a.startMultipart('mp/nodes');
        const x1 = await a.uploadPart('mp/nodes', id, 1, p1);
        const x2 = await other.uploadPart('mp/nodes', id, 2, p2);
        await other.completeMultipart('mp/nodes', id, [x1, x2]);
        assert.ok((await a.getContent('mp/nodes'))!.equals(Buffer.concat([p1, p2])));
      });
    }

    test(`declares its features: ${JSON.stringify(b.features)}`, async () => {
      const d = await b.make();
      assert.equal(d.minPartSize > 1, b.features.refusesSmallParts);
      assert.equal(!!d.redirectUrl, b.features.redirect);
      assert.equal(!!d.files, b.features.local);
    });

    if (b.features.refusesSmallParts) test('multipart: a part below minPartSize that is not the last is refused at completion (InvalidPartError), and nothing appears', async () => {
      const d = await b.make();
      const id = await d.startMultipart('mp/small');
      const s1 = await d.uploadPart('mp/small', id, 1, Buffer.alloc(d.minPartSize - 1, 1));
      const s2 = await d.uploadPart('mp/small', id, 2, Buffer.alloc(d.minPartSize, 2));
      await assert.rejects(d.completeMultipart('mp/small', id, [s1, s2]), InvalidPartError);
      assert.equal(await d.stat('mp/small'), null);
      await d.abortMultipart('mp/small', id);
    });

    test('multipart: abort leaves nothing behind, and aborting twice is fine', async () => {
      const d = await b.make();
      const id = await d.startMultipart('mp/gone');
      await d.uploadPart('mp/gone', id, 1, Buffer.alloc(1000, 3));
      await d.abortMultipart('mp/gone', id);
      await d.abortMultipart('mp/gone', id);
      assert.equal(await d.stat('mp/gone'), null);
      assert.deepEqual(await walked(d, ''), new Map());
      assert.deepEqual(await d.list(''), []);
      if (b.allFiles) assert.deepEqual(b.allFiles(), []);
    });

    if (b.strayFiles) {
      test('no temporary files are left after putContent, copy, multipart, the local writer or a failed putContent', async () => {
        const d = await b.make();
        for (let i = 0; i < 5; i++) await d.putContent(`t/file${i}`, DATA);
        await d.putContent('t/file0', Buffer.from('replaced'));
        await d.copy('t/file1', 't/copied/file1');
        const id = await d.startMultipart('t/mp');
        await d.completeMultipart('t/mp', id, [await d.uploadPart('t/mp', id, 1, DATA)]);
        if (d.files) {
          await d.files.move('t/file1', 't/moved/file1');
          const w = await d.files.writer('t/w', false);
          w.stream.write(DATA);
          await w.commit();
        }
        // A putContent that fails (its target is a directory) must clean up too.
        await d.putContent('t/dir/child', DATA);
        await assert.rejects(d.putContent('t/dir', DATA));
        assert.deepEqual(b.strayFiles!(), []);
        assert.deepEqual(b.allFiles!(), ['t/copied/file1', 't/dir/child', 't/file0', 't/file2', 't/file3', 't/file4', 't/mp', ...(d.files ? ['t/moved/file1', 't/w'] : ['t/file1'])].sort());
      });
    }

    test('concurrent putContent of the same path leaves one complete version', async () => {
      const d = await b.make();
      const versions = Array.from({ length: 8 }, (_, i) => Buffer.alloc(10_000 + i, i + 1));
      await Promise.all(versions.map((v) => d.putContent('c/same', v)));
      const got = (await d.getContent('c/same'))!;
      assert.ok(versions.some((v) => v.equals(got)), 'content is a mix of versions');
      if (b.strayFiles) assert.deepEqual(b.strayFiles(), []);
    });

    if (b.features.redirect) test('redirectUrl: a URL that serves the bytes (with Range) without credentials', async () => {
      const d = await b.make();
      assert.ok(d.redirectUrl);
      const big = randomBytes(100_000);
      await d.putContent('rd/blob', big);
      const url = await d.redirectUrl('rd/blob', 60);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(big));
      const part = await fetch(url, { headers: { Range: 'bytes=10-19' } });
      assert.equal(part.status, 206);
      assert.ok(Buffer.from(await part.arrayBuffer()).equals(big.subarray(10, 20)));
      const other = new URL(url);
      other.pathname = other.pathname.replace(/rd\/blob$/, 'rd/other');
      assert.equal((await fetch(other)).status, 403, 'the signature covers the key');
    });

    if (b.features.local) describe('local fast path (drivers over a filesystem)', () => {
      const local = async (_t?: unknown) => {
        const d = await b.make();
        assert.ok(d.files, 'a local driver has the append/rename fast path');
        return d;
      };

      test('writer: truncate, append, size() exact after commit/close, creates parents', async (t) => {
        const d = await local(t);
        if (!d) return;
        const w = await d.files!.writer('w/deep/file', false);
        w.stream.write(DATA.subarray(0, 10));
        w.stream.write(DATA.subarray(10, 20));
        await w.commit();
        assert.equal(w.size(), 20);
        assert.deepEqual(await d.getContent('w/deep/file'), DATA.subarray(0, 20));
        const a = await d.files!.writer('w/deep/file', true);
        assert.equal(a.size(), 20);
        a.stream.write(DATA.subarray(20));
        await a.close();
        assert.equal(a.size(), DATA.length);
        assert.deepEqual(await d.getContent('w/deep/file'), DATA);
        const tr = await d.files!.writer('w/deep/file', false);
        assert.equal(tr.size(), 0);
        await tr.commit();
        assert.deepEqual(await d.getContent('w/deep/file'), Buffer.alloc(0));
        const n = await d.files!.writer('w/new-by-append', true);
        n.stream.write(Buffer.from('xyz'));
        await n.commit();
        assert.equal(n.size(), 3);
        assert.deepEqual(await d.getContent('w/new-by-append'), Buffer.from('xyz'));
      });

      test('writer: committing an already ended stream is fine (pipeline ends it)', async (t) => {
        const d = await local(t);
        if (!d) return;
        const w = await d.files!.writer('w/ended', false);
        await new Promise<void>((resolve) => w.stream.end(Buffer.from('done'), () => resolve()));
        await w.commit();
        await w.close();
        assert.equal(w.size(), 4);
        assert.deepEqual(await d.getContent('w/ended'), Buffer.from('done'));
      });

      test('writer: megabytes in socket-sized chunks arrive whole and in order, with backpressure', async (t) => {
        const d = await local(t);
        if (!d) return;
        const big = randomBytes(3 * 1024 * 1024 + 12345);
        const w = await d.files!.writer('w/big', false);
        await pipeline(Readable.from((function* () {
          for (let off = 0; off < big.length; off += 65536) yield big.subarray(off, off + 65536);
        })()), w.stream);
        await w.commit();
        assert.equal(w.size(), big.length);
        assert.ok((await d.getContent('w/big'))?.equals(big), 'file content differs from what was written');
      });

      test('writer: a stream destroyed mid-write closes cleanly and keeps a prefix of the bytes', async (t) => {
        const d = await local(t);
        if (!d) return;
        const w = await d.files!.writer('w/cut', false);
        const chunk = Buffer.alloc(65536, 7);
        for (let i = 0; i < 40; i++) w.stream.write(chunk); // 2.5 MiB: at least one batch is in flight
        w.stream.on('error', () => undefined); // pipeline listens in real use
        w.stream.destroy(new Error('client went away'));
        await w.close().catch(() => undefined); // settles (either way) once nothing is in flight
        const left = await d.getContent('w/cut');
        assert.ok(left !== null && left.length <= 40 * 65536 && left.every((x) => x === 7), 'a prefix of the written bytes');
      });

      test('move: renames, replaces the destination, creates parents, PathNotFoundError when absent', async (t) => {
        const d = await local(t);
        if (!d) return;
        await d.putContent('m/src', DATA);
        await d.files!.move('m/src', 'm/x/y/dst');
        assert.equal(await d.stat('m/src'), null);
        assert.deepEqual(await d.getContent('m/x/y/dst'), DATA);
        await d.putContent('m/src2', Buffer.from('new'));
        await d.files!.move('m/src2', 'm/x/y/dst');
        assert.deepEqual(await d.getContent('m/x/y/dst'), Buffer.from('new'));
        await assert.rejects(d.files!.move('m/absent', 'm/other'), PathNotFoundError);
        assert.equal(await d.stat('m/other'), null);
      });
    });
  });
}
