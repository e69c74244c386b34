// One access-log line per request: method, path without query secrets, status, duration, bytes,
// principal and client address, with level names and ISO times.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { createLogger } from '../../src/http/logger.ts';

let t: TestApp;
const lines: string[] = [];

before(async () => {
  const dest = new Writable({ write(chunk, _enc, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
  t = await makeApp({}, { log: createLogger('info', dest as never) });
});
after(async () => {
  await t.close();
});

const requests = () => lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');

test('each request writes one line with what an operator needs, and no secrets', async () => {
  lines.length = 0;
  await t.request.get('/v2/').set('Authorization', t.adminAuth).expect(200);
  await t.request.get('/service/token?service=berth-registry&scope=repository:a/b:pull&password=hunter2').set('X-Forwarded-For', '203.0.113.9').expect(200);
  const blob = Buffer.alloc(1000, 7);
  await t.request.post('/v2/log/app/blobs/uploads/?digest=sha256:' + (await import('node:crypto')).createHash('sha256').update(blob).digest('hex')).set('Authorization', t.adminAuth).set('Content-Type', 'application/octet-stream').send(blob).expect(201);
  await t.request.get('/api/v2.0/nope').expect(404);
  // 'finish' may come a tick after the client saw the answer
  await new Promise((r) => setTimeout(r, 50));
  const got = requests();
  assert.equal(got.length, 4, JSON.stringify(got));
  const [v2, token, push, api] = got;
  for (const l of got) {
    assert.equal(l.level, 'info');
    assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(typeof l.ms, 'number');
    assert.ok(l.out > 0);
  }
  assert.deepEqual([v2.method, v2.path, v2.status, v2.principal], ['GET', '/v2/', 200, 'admin']);
  assert.equal(token.principal, null, 'an anonymous token request');
  assert.equal(push.principal, 'admin');
  assert.equal(token.client, '203.0.113.9', 'the client behind a trusted (loopback) proxy');
  assert.doesNotMatch(JSON.stringify(token), /hunter2/);
  assert.match(token.path, /password=\[redacted\]/);
  assert.equal(push.status, 201);
  assert.ok(push.in >= 1000, `bytes received: ${push.in}`);
  assert.equal(api.status, 404);
  assert.doesNotMatch(lines.join('\n'), /Harbor12345|Basic [A-Za-z0-9+/=]{8,}/);
});
