// Pooled read chunks: a released buffer is reused, a buffer is never handed out twice at once, and
// a blob streamed through sendStream arrives intact over a real socket, also with ranges and when
// the client goes away half way.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CHUNK_SIZE, giveChunk, takeChunk } from '../../src/lib/chunk-pool.ts';
import { FsDriver } from '../../src/storage/driver/fs.ts';
import { sendStream } from '../../src/http/raw.ts';

let tmp: string;
let driver: FsDriver;
const data = randomBytes(3 * CHUNK_SIZE + 12345);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-pool-'));
  driver = new FsDriver(tmp);
  fs.writeFileSync(path.join(tmp, 'blob'), data);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a given-back chunk is reused; giving it back twice does not put it in the pool twice', () => {
  const a = takeChunk();
  giveChunk(a.subarray(0, 10)); // a view is enough
  giveChunk(a);
  const b = takeChunk();
  const c = takeChunk();
  assert.equal(b.buffer, a.buffer, 'the released buffer is reused');
  assert.notEqual(c.buffer, a.buffer, 'and handed out only once');
  giveChunk(Buffer.alloc(CHUNK_SIZE)); // not from the pool: ignored
  assert.notEqual(takeChunk().buffer, b.buffer);
});

async function serve(start: number, end: number, destroyAfter?: number): Promise<{ status: number; body: Buffer; error?: unknown }> {
  const server = http.createServer((req, res) => {
    void driver.reader('blob', start, end).then((s) => {
      res.setHeader('Content-Length', end - start + 1);
      return sendStream(s, res).catch(() => undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    return await new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/' }, (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          n += c.length;
          if (destroyAfter !== undefined && n >= destroyAfter) req.destroy();
        });
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
        res.on('error', (error) => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), error }));
        res.on('close', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
      });
      req.on('error', (error) => resolve({ status: 0, body: Buffer.alloc(0), error }));
    });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

test('a whole file and ranges arrive byte for byte, several times in a row (buffers reused)', async () => {
  for (let i = 0; i < 3; i++) {
    const whole = await serve(0, data.length - 1);
    assert.equal(sha(whole.body), sha(data));
  }
  const mid = await serve(CHUNK_SIZE - 5, 2 * CHUNK_SIZE + 7);
  assert.ok(mid.body.equals(data.subarray(CHUNK_SIZE - 5, 2 * CHUNK_SIZE + 8)));
  const one = await serve(17, 17);
  assert.ok(one.body.equals(data.subarray(17, 18)));
});

test('a client that goes away half way does not break later downloads', async () => {
  const cut = await serve(0, data.length - 1, CHUNK_SIZE);
  assert.ok(cut.body.length < data.length);
  const again = await serve(0, data.length - 1);
  assert.equal(sha(again.body), sha(data));
});
