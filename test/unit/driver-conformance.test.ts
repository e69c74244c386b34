// One suite of the StorageDriver contract (src/storage/driver/driver.ts), run against every driver.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PathNotFoundError, type StorageDriver } from '../../src/storage/driver/driver.ts';
import { FsDriver } from '../../src/storage/driver/fs.ts';
import { MemoryDriver } from '../../src/storage/driver/memory.ts';

interface Backend {
  name: string;
  make(): StorageDriver;
  /** Files on disk that are not part of the driver's visible content (temp files), if it has a disk. */
  strayFiles?(): string[];
}

const roots: string[] = [];
let fsRoot = '';

function allFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((p) => fs.statSync(path.join(dir, p)).isFile()).sort();
}

const backends: Backend[] = [
  {
    name: 'fs',
    make() {
      fsRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-driver-'));
      roots.push(fsRoot);
      return new FsDriver(fsRoot);
    },
    strayFiles() {
      return allFiles(fsRoot).filter((f) => /tmp/i.test(path.basename(f)));
    },
  },
  { name: 'memory', make: () => new MemoryDriver() },
];

after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

const DATA = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');

for (const b of backends) {
  describe(`StorageDriver contract: ${b.name}`, () => {
    test('absent paths: stat and getContent give null, reader throws PathNotFoundError, list gives []', async () => {
      const d = b.make();
      assert.equal(await d.stat('nope/file'), null);
      assert.equal(await d.getContent('nope/file'), null);
      await assert.rejects(d.reader('nope/file'), (e: unknown) => e instanceof PathNotFoundError && e.path === 'nope/file');
      assert.deepEqual(await d.list('nope'), []);
      await d.delete('nope/file'); // not an error
    });

    test('putContent/getContent round trip, replace, stat size and mtime', async () => {
      const d = b.make();
      const before = Date.now();
      await d.putContent('a/b/c.json', DATA);
      assert.deepEqual(await d.getContent('a/b/c.json'), DATA);
      const st = await d.stat('a/b/c.json');
      assert.equal(st?.size, DATA.length);
      assert.ok(st!.modTime instanceof Date);
      assert.ok(st!.modTime.getTime() >= before - 2000);
      await d.putContent('a/b/c.json', Buffer.from('short'));
      assert.deepEqual(await d.getContent('a/b/c.json'), Buffer.from('short'));
      assert.equal((await d.stat('a/b/c.json'))?.size, 5);
      await d.putContent('a/empty', Buffer.alloc(0));
      assert.deepEqual(await d.getContent('a/empty'), Buffer.alloc(0));
      assert.equal((await d.stat('a/empty'))?.size, 0);
    });

    test('getContent returns a copy the caller may change', async () => {
      const d = b.make();
      const src = Buffer.from('abc');
      await d.putContent('x', src);
      src[0] = 0x7a;
      const got = (await d.getContent('x'))!;
      assert.deepEqual(got, Buffer.from('abc'));
      got[1] = 0x7a;
      assert.deepEqual(await d.getContent('x'), Buffer.from('abc'));
    });

    test('directories: stat reports size 0, list names direct children only', async () => {
      const d = b.make();
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
      const d = b.make();
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
      const d = b.make();
      await d.putContent('r/f', DATA);
      const r = await d.reader('r/f', 2, 5);
      assert.equal(r.readableObjectMode, false);
      assert.deepEqual(await readAll(r), DATA.subarray(2, 6));
    });

    test('writer: truncate, append, size() exact after commit/close, creates parents', async () => {
      const d = b.make();
      const w = await d.writer('w/deep/file', false);
      w.stream.write(DATA.subarray(0, 10));
      w.stream.write(DATA.subarray(10, 20));
      await w.commit();
      assert.equal(w.size(), 20);
      assert.deepEqual(await d.getContent('w/deep/file'), DATA.subarray(0, 20));

      const a = await d.writer('w/deep/file', true);
      assert.equal(a.size(), 20);
      a.stream.write(DATA.subarray(20));
      await a.close();
      assert.equal(a.size(), DATA.length);
      assert.deepEqual(await d.getContent('w/deep/file'), DATA);
      assert.equal((await d.stat('w/deep/file'))?.size, DATA.length);

      const t = await d.writer('w/deep/file', false);
      assert.equal(t.size(), 0);
      await t.commit();
      assert.deepEqual(await d.getContent('w/deep/file'), Buffer.alloc(0));

      const n = await d.writer('w/new-by-append', true);
      n.stream.write(Buffer.from('xyz'));
      await n.commit();
      assert.equal(n.size(), 3);
      assert.deepEqual(await d.getContent('w/new-by-append'), Buffer.from('xyz'));
    });

    test('writer: committing an already ended stream is fine (pipeline ends it)', async () => {
      const d = b.make();
      const w = await d.writer('w/ended', false);
      await new Promise<void>((resolve) => w.stream.end(Buffer.from('done'), () => resolve()));
      await w.commit();
      await w.close();
      assert.equal(w.size(), 4);
      assert.deepEqual(await d.getContent('w/ended'), Buffer.from('done'));
    });

    test('writer: megabytes in socket-sized chunks arrive whole and in order, with backpressure', async () => {
      const d = b.make();
      const big = randomBytes(3 * 1024 * 1024 + 12345);
      const w = await d.writer('w/big', false);
      await pipeline(
        Readable.from((function* () {
          for (let off = 0; off < big.length; off += 65536) yield big.subarray(off, off + 65536);
        })()),
        w.stream,
      );
      await w.commit();
      assert.equal(w.size(), big.length);
      assert.ok((await d.getContent('w/big'))?.equals(big), 'file content differs from what was written');
    });

    test('writer: a stream destroyed mid-write closes cleanly and keeps a prefix of the bytes', async () => {
      const d = b.make();
      const w = await d.writer('w/cut', false);
      const chunk = Buffer.alloc(65536, 7);
      for (let i = 0; i < 40; i++) w.stream.write(chunk); // 2.5 MiB: at least one batch is in flight
      w.stream.on('error', () => undefined); // pipeline listens in real use
      w.stream.destroy(new Error('client went away'));
      await w.close().catch(() => undefined); // settles (either way) once nothing is in flight
      const left = await d.getContent('w/cut');
      assert.ok(left !== null && left.length <= 40 * 65536 && left.every((x) => x === 7), 'a prefix of the written bytes');
    });

    test('move: renames, replaces the destination, creates parents, PathNotFoundError when absent', async () => {
      const d = b.make();
      await d.putContent('m/src', DATA);
      await d.move('m/src', 'm/x/y/dst');
      assert.equal(await d.stat('m/src'), null);
      assert.deepEqual(await d.getContent('m/x/y/dst'), DATA);
      await d.putContent('m/src2', Buffer.from('new'));
      await d.move('m/src2', 'm/x/y/dst');
      assert.deepEqual(await d.getContent('m/x/y/dst'), Buffer.from('new'));
      await assert.rejects(d.move('m/absent', 'm/other'), PathNotFoundError);
      assert.equal(await d.stat('m/other'), null);
    });

    test('delete: a file, or a whole tree, and nothing else', async () => {
      const d = b.make();
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
    });

    test('paths are normalised: leading, trailing and double slashes', async () => {
      const d = b.make();
      await d.putContent('/n//x/', DATA);
      assert.deepEqual(await d.getContent('n/x'), DATA);
      assert.deepEqual(await d.list('/n/'), ['x']);
    });

    if (b.strayFiles) {
      test('no temporary files are left after putContent, move, writer or a failed putContent', async () => {
        const d = b.make();
        for (let i = 0; i < 5; i++) await d.putContent(`t/file${i}`, DATA);
        await d.putContent('t/file0', Buffer.from('replaced'));
        await d.move('t/file1', 't/moved/file1');
        const w = await d.writer('t/w', false);
        w.stream.write(DATA);
        await w.commit();
        // A putContent that fails (its target is a directory) must clean up too.
        await d.putContent('t/dir/child', DATA);
        await assert.rejects(d.putContent('t/dir', DATA));
        assert.deepEqual(b.strayFiles!(), []);
        assert.deepEqual(allFiles(fsRoot), ['t/dir/child', 't/file0', 't/file2', 't/file3', 't/file4', 't/moved/file1', 't/w']);
      });
    }

    test('concurrent putContent of the same path leaves one complete version', async () => {
      const d = b.make();
      const versions = Array.from({ length: 8 }, (_, i) => Buffer.alloc(10_000 + i, i + 1));
      await Promise.all(versions.map((v) => d.putContent('c/same', v)));
      const got = (await d.getContent('c/same'))!;
      assert.ok(versions.some((v) => v.equals(got)), 'content is a mix of versions');
      if (b.strayFiles) assert.deepEqual(b.strayFiles(), []);
    });
  });
}
