// The S3 driver keeps a presigned URL per object read lately (presigning costs ~1 ms), within a
// budget of bytes rather than a count of entries: past it, the URL read longest ago is dropped and
// that object's next read is signed again. Against a small in-process stand-in that answers every
// signed GET with the key's bytes and records the URL it was asked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { S3Driver } from '../../src/storage/driver/s3.ts';

const asked: { key: string; url: string }[] = [];
let server: http.Server;
let driver: S3Driver;

before(async () => {
  server = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    assert.ok(u.searchParams.has('X-Amz-Signature'), 'a read is a presigned GET');
    const key = decodeURIComponent(u.pathname.replace(/^\/bucket\//, ''));
    asked.push({ key, url: req.url! });
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(key);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  // A presigned URL here is ~400 characters: room for about four.
  driver = await S3Driver.create({ bucket: 'bucket', region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, accessKeyId: 'id', secretAccessKey: 'secret', prefix: '', readUrlBytes: 2200 });
});

after(async () => {
  driver.close();
  await new Promise((r) => server.close(r));
});

async function read(key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of (await driver.reader(key)) as Readable) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks).toString();
  assert.equal(body, key);
  return asked.at(-1)!.url;
}

test('presigned read URLs are kept within a budget of bytes; the one read longest ago goes first', async () => {
  const first = await read('blobs/a/data');
  assert.equal(await read('blobs/a/data'), first, 'kept: the same URL again');
  const b = await read('blobs/b/data');
  await sleep(1100); // a URL signed again now differs (its X-Amz-Date is in seconds)
  assert.equal(await read('blobs/b/data'), b, 'still kept');
  for (const k of ['c', 'd', 'e', 'f', 'g']) await read(`blobs/${k}/data`);
  assert.equal(await read('blobs/g/data'), asked.at(-2)!.url, 'the newest is kept');
  assert.notEqual(await read('blobs/a/data'), first, 'the oldest was dropped and is signed again');
});
