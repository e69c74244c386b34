// Slow and stalled clients: a body that stops arriving is cut off after BERTH_BODY_TIMEOUT_SECONDS,
// for every kind of request (uploads, API bodies), while a client that keeps sending is never cut.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { makeApp, type TestApp } from '../helpers/app.ts';

let t: TestApp;
let server: http.Server;
let port: number;

before(async () => {
  t = await makeApp({ BERTH_BODY_TIMEOUT_SECONDS: '5' });
  server = http.createServer(t.berth.app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as net.AddressInfo).port;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await t.close();
});

/** Opens a connection, sends `head` and `body`, and resolves with what came back when the server closes it. */
function stall(head: string, body: string, limitMs: number): Promise<{ closedByServer: boolean; reply: string }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let reply = '';
    const give = setTimeout(() => {
      s.destroy();
      resolve({ closedByServer: false, reply });
    }, limitMs);
    s.on('data', (d) => (reply += d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(give);
      resolve({ closedByServer: true, reply });
    });
    s.write(head + body);
  });
}

test('stalled upload bodies and API bodies are cut off, many at once', async () => {
  const auth = t.adminAuth.slice('Basic '.length);
  const start = await t.request.post('/v2/slow/app/blobs/uploads/').set('Authorization', t.adminAuth);
  assert.equal(start.status, 202);
  const loc = start.headers.location as string;
  const patch = `PATCH ${loc} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${auth}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n`;
  const api = `POST /api/v2.0/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${auth}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`;
  const chunked = `PUT /v2/slow/app/manifests/v1 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${auth}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\n\r\n`;
  // Without the idle timeout these stay open for ever; 40 s is far beyond the 5 s limit.
  const results = await Promise.all([
    stall(patch, '0123456789', 40_000),
    ...Array.from({ length: 20 }, () => stall(api, '{"project_na', 40_000)),
    stall(chunked, '5\r\n{"sch\r\n', 40_000),
  ]);
  for (const r of results) assert.ok(r.closedByServer, `connection left open; got: ${r.reply.slice(0, 100)}`);
  // The server is alive and the upload session still exists (it can be resumed).
  const st = await t.request.get(loc).set('Authorization', t.adminAuth);
  assert.equal(st.status, 204);
});

test('a slow but steady body is not cut off, and a slow answer after the body is not either', async () => {
  const auth = t.adminAuth.slice('Basic '.length);
  const body = JSON.stringify({ project_name: 'steady', metadata: { public: 'false' } });
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => {
      out += d;
      if (out.includes('\r\n\r\n')) {
        s.end();
        resolve(out);
      }
    });
    s.on('error', reject);
    s.write(`POST /api/v2.0/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${auth}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    // 8 s in all, more than the 5 s limit, but never 5 s without a byte.
    let i = 0;
    const parts = [body.slice(0, 10), body.slice(10, 20), body.slice(20, 30), body.slice(30)];
    const tick = setInterval(() => {
      s.write(parts[i++]);
      if (i === parts.length) clearInterval(tick);
    }, 2_000);
  });
  assert.match(reply, /^HTTP\/1.1 201/);
});
