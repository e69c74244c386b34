// sendStream (src/http/raw.ts) over a real socket: chunks that are ready together leave in one
// writev instead of one awaited write each; a client that reads late or not at all holds the body
// back (backpressure: at most ~2 MiB queued); a body that fails or ends early cuts the response and
// rejects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { sendStream } from '../../src/http/raw.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Served {
  body: Buffer;
  sent: unknown;
}

/** Serves one GET with `make()`'s stream as the body, declared `length` long; the client waits `pauseMs` before reading. */
async function serve(make: () => Readable, length: number, onSocket?: (s: Socket) => void, pauseMs = 0): Promise<Served> {
  let sent!: Promise<unknown>;
  const server = http.createServer((req, res) => {
    onSocket?.(res.socket!);
    res.setHeader('Content-Length', length);
    sent = sendStream(make(), res).then(() => 'ok', (e: Error) => e);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const body = await new Promise<Buffer>((resolve) => {
      http.get({ host: '127.0.0.1', port, path: '/' }, (res) => {
        const chunks: Buffer[] = [];
        res.pause();
        setTimeout(() => res.resume(), pauseMs);
        res.on('data', (c: Buffer) => chunks.push(c));
        const done = () => resolve(Buffer.concat(chunks));
        res.on('end', done);
        res.on('error', done);
        res.on('close', done);
      }).on('error', () => resolve(Buffer.alloc(0)));
    });
    return { body, sent: await sent };
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

test('chunks that are ready together leave in one writev, not one awaited write each', async () => {
  const chunks = Array.from({ length: 6 }, () => randomBytes(32 * KiB));
  const batches: number[] = [];
  const r = await serve(
    () =>
      new Readable({
        read() {
          for (const c of chunks) this.push(c);
          this.push(null);
        },
      }),
    6 * 32 * KiB,
    (socket) => {
      const writev = (socket as unknown as { _writev: (c: { chunk: Buffer }[], cb: () => void) => void })._writev.bind(socket);
      (socket as unknown as { _writev: typeof writev })._writev = (c, cb) => {
        batches.push(c.length);
        writev(c, cb);
      };
    },
  );
  assert.equal(r.sent, 'ok');
  assert.equal(sha(r.body), sha(Buffer.concat(chunks)));
  assert.ok(Math.max(0, ...batches) >= chunks.length, `writev batches: ${batches.join(',')}`);
});

test('a client that starts reading late gets every byte of a body far larger than what is queued', async () => {
  const total = 48 * MiB;
  const data = randomBytes(MiB);
  let produced = 0;
  const r = await serve(
    () =>
      new Readable({
        read() {
          produced += data.length;
          this.push(produced > total ? null : data);
        },
      }),
    total,
    undefined,
    300,
  );
  assert.equal(r.sent, 'ok');
  assert.equal(r.body.length, total);
  assert.ok(r.body.subarray(5 * MiB, 6 * MiB).equals(data));
  assert.ok(r.body.subarray(total - MiB).equals(data));
});

test('a body that fails half way cuts the response and rejects; so does one that ends early', async () => {
  const failing = await serve(
    () =>
      new Readable({
        read() {
          this.push(randomBytes(256 * KiB));
          setTimeout(() => this.destroy(new Error('disk gone')), 5);
        },
      }),
    4 * MiB,
  );
  assert.ok(failing.body.length < 4 * MiB);
  assert.match(String((failing.sent as Error).message), /disk gone/);

  const short = await serve(() => {
    const s = new Readable({ read() {} });
    s.push(randomBytes(64 * KiB));
    setTimeout(() => s.destroy(), 5); // closed without an end
    return s;
  }, MiB);
  assert.ok(short.body.length < MiB);
  assert.ok(short.sent instanceof Error);
});

test('the body is read no more than a few MiB ahead of a client that is not reading', async () => {
  const data = randomBytes(MiB);
  let produced = 0;
  let server!: http.Server;
  const sent = new Promise<unknown>((resolve) => {
    server = http.createServer((req, res) => {
      res.setHeader('Content-Length', 64 * MiB);
      const body = new Readable({
        read() {
          produced += data.length;
          this.push(produced > 64 * MiB ? null : data);
        },
      });
      sendStream(body, res).then(() => resolve('ok'), resolve);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const req = http.get({ host: '127.0.0.1', port, path: '/' }, (res) => res.pause());
  await sleep(500);
  // The client's and the server's socket buffers take some MiB; sendStream adds at most 2 MiB, and
  // the body's own buffer one chunk. Without backpressure all 64 MiB would be read by now.
  assert.ok(produced < 24 * MiB, `${produced / MiB} MiB read while the client read nothing`);
  req.destroy();
  assert.ok((await sent) instanceof Error, 'the client went away');
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
