#!/usr/bin/env node
// node bench/s3-read.mjs [--n=100] [--rounds=2] [--modes=sdk-await,sdk,http,http-onread,fetch,onread,berth]
//                        [--start-flags] [--prof=DIR] [--base=DIR]
// (--start-flags: the servers get npm start's node flags; --prof=DIR: a CPU profile per server)
//
// Where a blob GET's CPU goes on S3 (the pull row of `npm run bench -- --backend=pg-s3`): starts a
// radosgw (bench/lib/engines.mjs), stores one 8 MiB object, and for each way of reading it starts a
// small server (this script with --serve=<mode>) that answers GET /b by streaming the object to the
// client, pulls it N times with 4 in flight and prints the server's CPU per MiB:
//   sdk-await  GetObjectCommand, Body written one awaited write per chunk (Berth's sendStream before 2026-12-06)
//   sdk        GetObjectCommand, Body sent by src/http/raw.ts sendStream (writes queued, corked per loop turn)
//   http       node:http's client with a presigned URL (kept per object for a while), sendStream
//   http-onread  as http, but the agent's sockets read with `onread` into one shared 1 MiB buffer and
//              hand each read to the HTTP parser (which copies the body out), so a read takes up to
//              1 MiB instead of libuv's 64 KiB
//   sdk-onread GetObjectCommand through a NodeHttpHandler whose agent is http-onread's, sendStream
//   fetch      Node's fetch (undici) with the presigned URL, Readable.fromWeb, sendStream
//   berth      src/storage/driver/s3.ts S3Driver.reader + sendStream: what Berth does now (http-onread)
//   base       as berth, with the two files of another checkout (--base=DIR): before/after
//   onread     a keep-alive net.Socket per request in flight reading with `onread` into pooled 1 MiB
//              buffers (no fresh Buffer per socket read), the request presigned by the SDK, each
//              filled slice written to the client before the socket reads again. A prototype only:
//              it parses the response head by hand (status and Content-Length; no chunked bodies,
//              no Connection: close, no https), which Berth does not do.
// S3_READ_BUFFER_KIB sets http-onread's read buffer (1024 by default; 128-4096 measured no better).
//
// Measured here (2 cores loaded by other work, 150 GETs, medians of 2-4 rounds): sdk-await 1.4-2.0
// ms CPU/MiB, sdk 1.7-2.1, sdk-onread 1.4-1.5, http-onread and berth 1.0-1.3, fetch 1.4-2.0, onread
// 0.75-0.9. What separates berth from onread: the HTTP parser copies every body byte into a fresh
// buffer (~0.3 ms/MiB) and those buffers are garbage (~0.15 ms/MiB of collection).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Readable } from 'node:stream';
import { cpuMs, startCommand } from './lib/servers.mjs';

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

  // The modes that use Berth's own code run this script under tsx (see main).
  // base: the same as berth with another checkout's files (--base=DIR), for before/after.
  const root = mode === 'base' ? pathToFileURL(process.env.S3_READ_BASE + '/').href : new URL('..', import.meta.url).href;
  const raw = mode === 'sdk-await' || mode === 'onread' ? null : await import(new URL('src/http/raw.ts', root).href);
  let cached = null;
  const presignCached = async () => {
    if (!cached || cached.until < Date.now()) cached = { url: await presign(), until: Date.now() + 300_000 };
    return cached.url;
  };
  const shared = Buffer.allocUnsafe(Number(process.env.S3_READ_BUFFER_KIB ?? 1024) * 1024);
  const onreadAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  onreadAgent.createConnection = (o, cb) => {
    const socket = net.connect({ host: o.host, port: o.port, onread: { buffer: shared, callback: (n, buf) => void socket.emit('data', buf.subarray(0, n)) } });
    return socket;
  };
  // The SDK with the same agent: its own requests, errors and retries, 1 MiB socket reads.
  const sdkOnread = mode === 'sdk-onread' ? (await import('@smithy/node-http-handler')).NodeHttpHandler : null;
  const s3o = sdkOnread ? new sdk.S3Client({ endpoint: env.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', requestHandler: new sdkOnread({ httpAgent: onreadAgent, connectionTimeout: 5_000, requestTimeout: 120_000 }) }) : null;
  const driver = mode === 'berth' || mode === 'base' ? await (await import(new URL('src/storage/driver/s3.ts', root).href)).S3Driver.create({ bucket: BUCKET, region: 'us-east-1', endpoint: env.endpoint, forcePathStyle: true, accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey, prefix: '' }) : null;

  const server = http.createServer(async (req, res) => {
    res.writeHead(200, { 'content-length': SIZE, 'content-type': 'application/octet-stream' });
    if (mode === 'sdk-await') {
      const r = await s3.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: KEY, Range: `bytes=0-${SIZE - 1}` }));
      await sendStream(r.Body, res);
    } else if (mode === 'sdk') {
      const r = await s3.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: KEY, Range: `bytes=0-${SIZE - 1}` }));
      await raw.sendStream(r.Body, res);
    } else if (mode === 'sdk-onread') {
      const r = await s3o.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: KEY, Range: `bytes=0-${SIZE - 1}` }));
      await raw.sendStream(r.Body, res);
    } else if (mode === 'http' || mode === 'http-onread') {
      const url = await presignCached();
      const body = await new Promise((resolve, reject) =>
        http.get({ host: url.hostname, port: url.port, path: url.pathname + url.search, agent: mode === 'http' ? agent : onreadAgent, headers: { range: `bytes=0-${SIZE - 1}` } }, resolve).on('error', reject),
      );
      await raw.sendStream(body, res);
    } else if (mode === 'fetch') {
      const url = await presignCached();
      const r = await fetch(url, { headers: { range: `bytes=0-${SIZE - 1}` } });
      await raw.sendStream(Readable.fromWeb(r.body), res);
    } else if (mode === 'berth' || mode === 'base') {
      await raw.sendStream(await driver.reader(KEY, 0, SIZE - 1), res);
    } else {
      await onread(res);
    }
  });
  process.on('SIGTERM', () => process.exit(0)); // so that --prof's profile is written
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
}

/** Minor page faults of a process so far (fresh memory touched: a new buffer's pages, say). */
function minorFaults(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

async function main() {
  const { startRgw } = await import('./lib/engines.mjs');
  const N = Number(opt('n') ?? 100);
  let ROUNDS = 2;
  // --start-flags: the servers run with npm start's node flags and environment (as the benchmark's Berth).
  const start = args.includes('--start-flags') ? startCommand(fileURLToPath(new URL('..', import.meta.url))) : { env: {}, nodeArgs: [] };
  const PROF = opt('prof'); // a directory: each server (and tsx's loader thread) writes its .cpuprofile there
  const modes = (opt('modes') ?? 'sdk-await,sdk,http,http-onread,fetch,onread,berth').split(',');
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
    ROUNDS = Number(opt('rounds') ?? 2);
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of round % 2 ? [...modes].reverse() : modes) {
        const child = spawn(process.execPath, [...start.nodeArgs, '--import', 'tsx', ...(PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF}/${mode}-${round}`] : []), fileURLToPath(import.meta.url), `--serve=${mode}`], { env: { ...process.env, ...start.env, NODE_NO_WARNINGS: '1', ...(opt('base') ? { S3_READ_BASE: path.resolve(opt('base')) } : {}), S3_READ_ENV: JSON.stringify(env) }, stdio: ['ignore', 'pipe', 'inherit'] });
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
        const f0 = minorFaults(child.pid);
        const t0 = performance.now();
        let next = 0;
        await Promise.all(Array.from({ length: 4 }, async () => {
          while (next++ < N) await get();
        }));
        const ms = performance.now() - t0;
        const cpu = cpuMs(child.pid) - c0;
        const faults = minorFaults(child.pid) - f0;
        child.kill();
        agent.destroy();
        results.push({ round, mode, cpuPerMiB: cpu / ((N * SIZE) / 2 ** 20), mbps: (N * SIZE) / 2 ** 20 / (ms / 1000), faultsPerMiB: faults / ((N * SIZE) / 2 ** 20) });
        console.error(`[s3-read] ${mode}: ${results.at(-1).cpuPerMiB.toFixed(3)} ms CPU/MiB, ${results.at(-1).mbps.toFixed(0)} MB/s, ${results.at(-1).faultsPerMiB.toFixed(0)} page faults/MiB`);
      }
    }
  } finally {
    await rgw.stop();
  }
  console.log(`\nserver CPU per MiB of a blob GET streamed from radosgw (8 MiB object, ${N} GETs, 4 in flight, ${ROUNDS} rounds):`);
  for (const mode of modes) {
    const rs = results.filter((r) => r.mode === mode);
    console.log(`  ${mode.padEnd(11)} ${rs.map((r) => r.cpuPerMiB.toFixed(3)).join(' / ')} ms CPU/MiB   ${rs.map((r) => r.mbps.toFixed(0)).join(' / ')} MB/s   ${rs.map((r) => r.faultsPerMiB.toFixed(0)).join(' / ')} minor page faults/MiB`);
  }
}

const serveMode = opt('serve');
(serveMode ? serve(serveMode) : main()).catch((e) => {
  console.error('[s3-read] failed:', e);
  process.exit(1);
});
