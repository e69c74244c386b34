// The login throttle over HTTP: guessing is locked per (name, address) and answered 429 with
// Retry-After on every login edge, while the owner of a name signs in from elsewhere, and nobody is
// locked out because other names failed at their address. Addresses come from X-Forwarded-For,
// which the default configuration believes from supertest's loopback peer; BERTH_TRUSTED_PROXIES
// decides whose X-Forwarded-* counts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/http/logger.ts';
import { ADMIN_PASSWORD, basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';

const PW = 'Passw0rd!x';
const LOCK_MESSAGE = 'login locked after repeated failures';

function tokenFrom(t: TestApp, addr: string, user: string, password: string) {
  return t.request.get('/service/token?service=berth-registry').set('Authorization', basic(user, password)).set('X-Forwarded-For', addr);
}

function retryAfter(res: { headers: Record<string, string> }): number {
  const v = Number(res.headers['retry-after']);
  assert.ok(Number.isInteger(v) && v >= 1 && v <= 30, `Retry-After: ${res.headers['retry-after']}`);
  return v;
}

describe('login throttle (token service, /api, /c/login)', () => {
  let t: TestApp;
  const lines: string[] = [];

  before(async () => {
    t = await makeApp({}, { ...REAL_ACCESS, log: createLogger('warn', { write: (s: string) => void lines.push(s) }) });
    for (const u of ['dev', 'erin', 'carol', 'frank']) {
      const r = await t.request.post('/api/v2.0/users').set('Authorization', t.adminAuth).send({ username: u, password: PW, email: `${u}@example.com`, realname: u });
      assert.equal(r.status, 201);
    }
  });
  after(() => t.close());

  test('ten wrong passwords for ten made-up names from one address do not lock out the right password of another name there', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await tokenFrom(t, '203.0.113.7', `made-up-${i}`, 'wrong')).status, 401);
    assert.equal((await tokenFrom(t, '203.0.113.7', 'admin', ADMIN_PASSWORD)).status, 200);
    const web = await t.request.post('/c/login').set('X-Forwarded-For', '203.0.113.7').type('form').send({ principal: 'erin', password: PW });
    assert.equal(web.status, 200, 'a name that never failed there signs in at once');
  });

  test('five wrong passwords for admin from one address: admin signs in from another; the guessing address is refused 429 with Retry-After', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await tokenFrom(t, '198.51.100.1', 'admin', `guess-${i}`)).status, 401);
    const refused = await tokenFrom(t, '198.51.100.1', 'admin', 'guess-5');
    assert.equal(refused.status, 429);
    assert.equal(retryAfter(refused), 30);
    assert.equal((await tokenFrom(t, '198.51.100.2', 'admin', ADMIN_PASSWORD)).status, 200, 'the owner elsewhere is not locked out');
    const web = await t.request.post('/c/login').set('X-Forwarded-For', '198.51.100.3').type('form').send({ principal: 'admin', password: ADMIN_PASSWORD });
    assert.equal(web.status, 200);
    const locked = await tokenFrom(t, '198.51.100.1', 'admin', ADMIN_PASSWORD);
    assert.equal(locked.status, 429, 'while locked even the right password is refused (a cached one too)');
    retryAfter(locked);
  });

  test('a locked pair is answered 429 with Retry-After by the token service, the management API and /c/login', async () => {
    const from = '192.0.2.10';
    for (let i = 0; i < 5; i++) {
      const r = await t.request.get('/api/v2.0/users/current').set('X-Forwarded-For', from).set('Authorization', basic('dev', `guess-${i}`));
      assert.equal(r.status, 401);
    }
    const token = await tokenFrom(t, from, 'dev', PW);
    assert.equal(token.status, 429);
    assert.equal(token.body.errors[0].code, 'TOO_MANY_REQUESTS');
    retryAfter(token);
    const api = await t.request.get('/api/v2.0/users/current').set('X-Forwarded-For', from).set('Authorization', basic('dev', PW));
    assert.equal(api.status, 429);
    assert.equal(api.body.errors[0].code, 'TOO_MANY_REQUESTS');
    retryAfter(api);
    const web = await t.request.post('/c/login').set('X-Forwarded-For', from).type('form').send({ principal: 'dev', password: PW });
    assert.equal(web.status, 429);
    retryAfter(web);
    const elsewhere = await t.request.get('/api/v2.0/users/current').set('X-Forwarded-For', '192.0.2.11').set('Authorization', basic('dev', PW));
    assert.equal(elsewhere.status, 200);
    assert.equal(elsewhere.body.username, 'dev');
  });

  test('a parallel burst of guesses for one name from one address gets five checks, not one per request', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => tokenFrom(t, '192.0.2.40', 'erin', `burst-${i}`)));
    const statuses = answers.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 401).length, 5, statuses.join(' '));
    assert.equal(statuses.filter((s) => s === 429).length, 15, statuses.join(' '));
    // parallel logins with the right password from one address all get in (one check, the rest cached)
    const ok = await Promise.all(Array.from({ length: 10 }, () => t.request.get('/api/v2.0/users/current').set('X-Forwarded-For', '192.0.2.41').set('Authorization', basic('carol', PW))));
    assert.deepEqual(ok.map((r) => r.status), Array(10).fill(200));
  });

  test('a lock logs one warning line, with the name and the address and without the password', async () => {
    const before = lines.length;
    for (let i = 0; i < 9; i++) await tokenFrom(t, '192.0.2.20', 'carol', `S3cret-guess-${i}`);
    const fresh = lines.slice(before);
    const locks = fresh.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === LOCK_MESSAGE);
    assert.equal(locks.length, 1, fresh.join(''));
    assert.equal(locks[0].username, 'carol');
    assert.equal(locks[0].clientAddress, '192.0.2.20');
    assert.ok(!lines.join('').includes('S3cret-guess'), 'no password in the log');
  });

  test('audit entries of logins and failed logins carry the client address', async () => {
    assert.equal((await tokenFrom(t, '203.0.113.50', 'frank', 'wrong')).status, 401);
    const ok = await t.request.get('/api/v2.0/users/current').set('X-Forwarded-For', '203.0.113.51').set('Authorization', basic('frank', PW));
    assert.equal(ok.status, 200);
    await t.berth.audit.flush();
    const rows = await t.berth.db.auditLog.findMany({ where: { username: 'frank' }, orderBy: { id: 'asc' } });
    const byOp = (op: string) => rows.filter((r) => r.operation === op).map((r) => r.clientAddress);
    assert.ok(byOp('login_failed').includes('203.0.113.50'), JSON.stringify(rows));
    assert.ok(byOp('login').includes('203.0.113.51'), JSON.stringify(rows));
  });
});

describe('login throttle on /v2 with Basic', () => {
  let t: TestApp;
  before(async () => {
    t = await makeApp({}, { auth: 'basic' });
  });
  after(() => t.close());

  test('a locked pair gets 429 with Retry-After in the OCI error shape; the same name from elsewhere gets in', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await t.request.get('/v2/').set('X-Forwarded-For', '192.0.2.30').set('Authorization', basic('admin', `guess-${i}`))).status, 401);
    const locked = await t.request.get('/v2/').set('X-Forwarded-For', '192.0.2.30').set('Authorization', t.adminAuth);
    assert.equal(locked.status, 429);
    assert.equal(locked.body.errors[0].code, 'TOOMANYREQUESTS');
    retryAfter(locked);
    assert.equal((await t.request.get('/v2/').set('X-Forwarded-For', '192.0.2.31').set('Authorization', t.adminAuth)).status, 200);
  });
});

describe('BERTH_TRUSTED_PROXIES', () => {
  test('by default a loopback proxy is believed: X-Forwarded-Proto https makes the token realm https', async () => {
    const t = await makeApp({}, REAL_ACCESS);
    try {
      const r = await t.request.get('/v2/').set('X-Forwarded-Proto', 'https');
      assert.equal(r.status, 401);
      assert.match(r.headers['www-authenticate'], /^Bearer realm="https:\/\//);
    } finally {
      await t.close();
    }
  });

  test('when only 10.0.0.0/8 is listed, the loopback peer is not a proxy: its X-Forwarded-For and X-Forwarded-Proto are ignored', async () => {
    const t = await makeApp({ BERTH_TRUSTED_PROXIES: '10.0.0.0/8' }, REAL_ACCESS);
    try {
      const r = await t.request.get('/v2/').set('X-Forwarded-Proto', 'https');
      assert.match(r.headers['www-authenticate'], /^Bearer realm="http:\/\//);
      // five "different" forwarded addresses are one client, the peer: the pair locks
      for (let i = 0; i < 5; i++) assert.equal((await tokenFrom(t, `203.0.113.${i + 1}`, 'admin', `guess-${i}`)).status, 401);
      assert.equal((await tokenFrom(t, '198.51.100.77', 'admin', ADMIN_PASSWORD)).status, 429);
      await t.berth.audit.flush();
      const rows = await t.berth.db.auditLog.findMany({ where: { operation: 'login_failed' } });
      assert.ok(rows.length >= 5);
      for (const row of rows) assert.match(row.clientAddress ?? '', /^(::ffff:)?127\.0\.0\.1$|^::1$/, 'the peer, not a forwarded value');
    } finally {
      await t.close();
    }
  });
});
