// The S3 driver's fast reads (src/storage/driver/s3.ts FastReads) against a small in-process S3
// stand-in that records each request: a read from a plain-http endpoint is a GET presigned by the
// SDK (kept per object), on keep-alive sockets whose 1 MiB reads share one buffer; bytes arrive
// intact under slow consumers; anything but a 200/206 goes back to the SDK, whose answers are
// today's (404 → PathNotFoundError, a retried 503); a cut mid-body is an error on the stream.
// The radosgw half (signatures checked for real) is the driver suite in test/e2e/s3.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { PathNotFoundError } from '../../src/storage/driver/driver.ts';
import { S3Driver } from '../../src/storage/driver/s3.ts';

const MiB = 1024 * 1024;
const objects = new Map<string, Buffer>();
interface Seen {
  key: string;
  presigned: boolean;
  range?: string;
  url: string;
  port: number;
}
const seen: Seen[] = [];
/** Per key: what the next presigned (or SDK) GETs get instead of the object, consumed in order. */
const faults = new Map<string, ('503' | 'cut')[]>();
let server: http.Server;
let driver: S3Driver;

before(async () => {
  server = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    const key = decodeURIComponent(u.pathname.replace(/^\/bucket\//, ''));
    const presigned = u.searchParams.has('X-Amz-Signature');
    assert.ok(presigned || req.headers.authorization, 'every request is signed');
    seen.push({ key, presigned, range: req.headers.range, url: req.url!, port: req.socket.remotePort! });
    const fault = faults.get(key)?.shift();
    if (fault === '503') {
      res.writeHead(503, { 'content-type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>busy</Message></Error>');
      return;
    }
    const body = objects.get(key);
    if (!body) {
      res.writeHead(404, { 'content-type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>NoSuchKey</Code><Message>none</Message></Error>');
      return;
    }
    let start = 0;
    let end = body.length - 1;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m && Number(m[1]) >= body.length) {
      res.writeHead(416, { 'content-type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>InvalidRange</Code><Message>past the end</Message></Error>');
      return;
    }
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), end) : end;
      res.statusCode = 206;
      res.setHeader('content-range', `bytes ${start}-${end}/${body.length}`);
    }
    res.setHeader('content-length', end - start + 1);
    res.setHeader('etag', '"e"');
    res.setHeader('last-modified', new Date().toUTCString());
    if (fault === 'cut') {
      res.write(body.subarray(start, start + Math.floor((end - start) / 2)), () => res.destroy());
      return;
    }
    res.end(body.subarray(start, end + 1));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  driver = await S3Driver.create({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, accessKeyId: 'AK', secretAccessKey: 'SK', bucket: 'bucket', prefix: '' });
});

after(async () => {
  driver.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(s: Readable, slow = false): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) {
    out.push(Buffer.from(c as Buffer)); // a copy: the bytes as they were when handed over
    if (slow) await sleep(2);
  }
  return Buffer.concat(out);
}

test('a read is a GET presigned by the SDK, kept per object, on a kept-alive socket; a range goes along', async () => {
  const data = randomBytes(3 * MiB + 17);
  objects.set('a/data', data);
  seen.length = 0;
  assert.equal(sha(await readAll(await driver.reader('a/data'))), sha(data));
  assert.equal(sha(await readAll(await driver.reader('a/data'))), sha(data));
  const part = await readAll(await driver.reader('a/data', MiB - 3, 2 * MiB + 4));
  assert.ok(part.equals(data.subarray(MiB - 3, 2 * MiB + 5)));
  assert.equal(seen.length, 3);
  assert.ok(seen.every((s) => s.presigned), 'no SDK request for a read');
  assert.equal(seen[1].url, seen[0].url, 'the presigned URL is reused');
  assert.equal(seen[1].port, seen[0].port, 'the connection is kept alive');
  assert.equal(seen[2].range, `bytes=${MiB - 3}-${2 * MiB + 4}`);
  assert.equal(seen[0].range, undefined);
});

test('bytes arrive intact when concurrent reads share the read buffer and their consumers are slow', async () => {
  const datas = Array.from({ length: 4 }, (_, i) => {
    const d = randomBytes(4 * MiB + i);
    objects.set(`b/${i}`, d);
    return d;
  });
  const got = await Promise.all(datas.map(async (_, i) => readAll(await driver.reader(`b/${i}`), true)));
  got.forEach((g, i) => assert.equal(sha(g), sha(datas[i]), `object ${i}`));
});

test('a missing object is PathNotFoundError (asked again through the SDK); a 503 goes to the SDK, which retries', async () => {
  seen.length = 0;
  await assert.rejects(driver.reader('nothing/here'), PathNotFoundError);
  assert.deepEqual(seen.map((s) => s.presigned), [true, false], 'the presigned 404, then the SDK');

  const data = randomBytes(MiB);
  objects.set('c/data', data);
  faults.set('c/data', ['503', '503']); // the presigned GET, then the SDK's first attempt
  seen.length = 0;
  assert.equal(sha(await readAll(await driver.reader('c/data'))), sha(data));
  assert.deepEqual(seen.map((s) => s.presigned), [true, false, false], 'the SDK retried its 503');
  // A range past the end is empty, as before.
  assert.equal((await readAll(await driver.reader('c/data', MiB + 10))).length, 0);
});

test('a connection cut in the middle of the body is an error on the stream, and later reads work', async () => {
  const data = randomBytes(2 * MiB);
  objects.set('d/data', data);
  faults.set('d/data', ['cut']);
  await assert.rejects(readAll(await driver.reader('d/data')));
  assert.equal(sha(await readAll(await driver.reader('d/data'))), sha(data));
});
