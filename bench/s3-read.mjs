#!/usr/bin/env node
// node bench/s3-read.mjs [--n=100] [--modes=sdk,node-http,onread]
//
// Where a blob GET's CPU goes on S3 (the pull row of `npm run bench -- --backend=pg-s3`): starts a
// radosgw (bench/lib/engines.mjs), stores one 8 MiB object, and for each way of reading it starts a
// small server (this script with --serve=<mode>) that answers GET /b by streaming the object to the
// client, pulls it N times with 4 in flight and prints the server's CPU per MiB:
//   sdk        GetObjectCommand, Body written chunk by chunk as src/http/raw.ts sendStream does (Berth today)
//   node-http  the same bytes through node:http's client with a presigned URL: the SDK's own share
//   onread     a keep-alive net.Socket per request in flight reading with `onread` into pooled 1 MiB
//              buffers (no fresh Buffer per socket read), the request presigned by the SDK, each
//              filled slice written to the client before the socket reads again
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { cpuMs } from './lib/servers.mjs';

const args = process.argv.slice(2);
const opt = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const SIZE = 8 * 1024 * 1024;
const BUCKET = 's3-read';
const KEY = 'blob';

function client(env) {
  return import('@aws-sdk/client-s3').then((sdk) => ({
    sdk,
    s3: new sdk.S3Client({
      endpoint: env.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000 },
    }),
  }));
}

/** As src/http/raw.ts sendStream: one awaited write per chunk. */
async function sendStream(body, res) {
  const written = (chunk) => new Promise((resolve, reject) => res.write(chunk, (err) => (err ? reject(err) : resolve())));
  for await (const chunk of body) await written(chunk);
  await new Promise((resolve) => res.end(resolve));
}

async function serve(mode) {
  const env = JSON.parse(process.env.S3_READ_ENV);
  const { sdk, s3 } = await client(env);
  const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
  const presign = async () => new URL(await getSignedUrl(s3, new sdk.GetObjectCommand({ Bucket: BUCKET, Key: KEY }), { expiresIn: 600 }));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const pool = [];
  const idle = [];
  const take = () => pool.pop() ?? Buffer.allocUnsafe(1024 * 1024);

  async function onread(res) {
    const url = await presign();
    let c = idle.pop();
    if (!c) {
      const cc = { on: null };
      cc.socket = net.connect({ host: url.hostname, port: Number(url.port), onread: { buffer: take, callback: (n, buf) => cc.on(n, buf) } });
      c = cc;
    }
    await new Promise((resolve, reject) => {
      let head = null;
      let remaining = -1;
      const s = c.socket;
      s.once('error', reject);
      c.on = (n, buf) => {
        let body = buf.subarray(0, n);
        let owned = buf;
        if (remaining < 0) {
          head = head ? Buffer.concat([head, body]) : Buffer.from(body);
          pool.push(buf);
          owned = null;
          const i = head.indexOf('\r\n\r\n');
          if (i < 0) return;
          const status = Number(head.subarray(9, 12).toString('latin1'));
          const len = /\r\ncontent-length:\s*(\d+)/i.exec(head.subarray(0, i).toString('latin1'));
          if (status !== 200 || !len) return reject(new Error(`GET ${status}`));
          remaining = Number(len[1]);
          body = head.subarray(i + 4);
        }
        remaining -= body.length;
        const done = remaining === 0;
        s.pause();
        res.write(body, () => {
          if (owned) pool.push(owned);
          if (!done) return s.resume();
          s.off('error', reject);
          res.end();
          resolve();
        });
        return false;
      };
      s.resume();
      s.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
    });
    idle.push(c);
  }

  const server = http.createServer(async (req, res) => {
    res.writeHead(200, { 'content-length': SIZE, 'content-type': 'application/octet-stream' });
    if (mode === 'sdk') {
      const r = await s3.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: KEY, Range: `bytes=0-${SIZE - 1}` }));
      await sendStream(r.Body, res);
    } else if (mode === 'node-http') {
      const url = await presign();
      const body = await new Promise((resolve, reject) => http.get({ host: url.hostname, port: url.port, path: url.pathname + url.search, agent }, resolve).on('error', reject));
      await sendStream(body, res);
    } else {
      await onread(res);
    }
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
}

async function main() {
  const { startRgw } = await import('./lib/engines.mjs');
  const N = Number(opt('n') ?? 100);
  const modes = (opt('modes') ?? 'sdk,node-http,onread').split(',');
  const rgw = await startRgw({ memstoreBytes: 1024 * 1024 * 1024 });
  const results = [];
  try {
    const env = { endpoint: rgw.endpoint, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
    const { sdk, s3 } = await client(env);
    await s3.send(new sdk.CreateBucketCommand({ Bucket: BUCKET }));
    const data = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i += 4096) data.writeUInt32LE(i, i);
    await s3.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: data, ContentLength: SIZE }));
    s3.destroy();
    for (const round of [0, 1]) {
      for (const mode of round ? [...modes].reverse() : modes) {
        const child = spawn(process.execPath, [fileURLToPath(import.meta.url), `--serve=${mode}`], { env: { ...process.env, S3_READ_ENV: JSON.stringify(env) }, stdio: ['ignore', 'pipe', 'inherit'] });
        const port = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
        const agent = new http.Agent({ keepAlive: true });
        const get = () =>
          new Promise((resolve, reject) =>
            http
              .get({ host: '127.0.0.1', port, path: '/b', agent }, (res) => {
                let n = 0;
                res.on('data', (c) => (n += c.length));
                res.on('end', () => (n === SIZE ? resolve() : reject(new Error(`${mode}: ${n} bytes`))));
              })
              .on('error', reject),
          );
        for (let i = 0; i < 4; i++) await get();
        const c0 = cpuMs(child.pid);
        const t0 = performance.now();
        let next = 0;
        await Promise.all(Array.from({ length: 4 }, async () => {
          while (next++ < N) await get();
        }));
        const ms = performance.now() - t0;
        const cpu = cpuMs(child.pid) - c0;
        child.kill();
        agent.destroy();
        results.push({ round, mode, cpuPerMiB: cpu / ((N * SIZE) / 2 ** 20), mbps: (N * SIZE) / 2 ** 20 / (ms / 1000) });
        console.error(`[s3-read] ${mode}: ${results.at(-1).cpuPerMiB.toFixed(3)} ms CPU/MiB, ${results.at(-1).mbps.toFixed(0)} MB/s`);
      }
    }
  } finally {
    await rgw.stop();
  }
  console.log(`\nserver CPU per MiB of a blob GET streamed from radosgw (8 MiB object, ${N} GETs, 4 in flight, two rounds):`);
  for (const mode of modes) {
    const rs = results.filter((r) => r.mode === mode);
    console.log(`  ${mode.padEnd(10)} ${rs.map((r) => r.cpuPerMiB.toFixed(3)).join(' / ')} ms CPU/MiB   ${rs.map((r) => r.mbps.toFixed(0)).join(' / ')} MB/s`);
  }
}

const serveMode = opt('serve');
(serveMode ? serve(serveMode) : main()).catch((e) => {
  console.error('[s3-read] failed:', e);
  process.exit(1);
});
