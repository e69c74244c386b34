// Browser sessions live in the database: they survive a restart of the app, the database never
// holds the id a cookie carries, and on PostgreSQL a session started on one node works on another
// (CSRF-protected changes included) and a logout on one node ends it on the other within a second.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { createApp, type BerthApp } from '../../src/app.ts';
import { SessionStore } from '../../src/auth/session.ts';
import { LocalChanges } from '../../src/db/changes.ts';
import { BrowserSessionStore } from '../../src/db/session-store.ts';
import { loadConfig } from '../../src/config/index.ts';
import { ADMIN_PASSWORD, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';

const SECRET = 'shared-secret-key-for-every-node-0123456789';

interface Browser {
  id: string;
  cookie: string;
  csrf: string;
}

type Request = ReturnType<typeof supertest>;

async function signIn(request: Request): Promise<Browser> {
  const res = await request.post('/c/login').send({ principal: 'admin', password: ADMIN_PASSWORD });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const cookies = res.headers['set-cookie'] as unknown as string[];
  const value = (name: string) => cookies.find((c) => c.startsWith(`${name}=`))!.split(';')[0].slice(name.length + 1);
  return { id: value('berth_session'), cookie: cookies.map((c) => c.split(';')[0]).join('; '), csrf: value('__csrf') };
}

const current = async (request: Request, b: Browser) => (await request.get('/api/v2.0/users/current').set('Cookie', b.cookie)).status;

/** A change through the browser session: needs the CSRF header. */
const createProject = (request: Request, b: Browser, name: string, csrf: string | null = b.csrf) => {
  const r = request.post('/api/v2.0/projects').set('Cookie', b.cookie);
  return (csrf === null ? r : r.set('X-Harbor-CSRF-Token', csrf)).send({ project_name: name });
};

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('sessions on SQLite', () => {
  let dataDir: string;
  const boot = () => createApp(loadConfig({ BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD, BERTH_LOG_LEVEL: 'silent' }), { auth: 'token' });
  before(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-sessions-'));
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  test('a session survives a restart of the app, CSRF check included; the database holds only the id’s hash', async () => {
    let berth: BerthApp = await boot();
    let browser: Browser;
    try {
      browser = await signIn(supertest(berth.app));
      assert.equal(await current(supertest(berth.app), browser), 200);
      assert.ok(await berth.db.browserSession.findUnique({ where: { idHash: sha256(browser.id) } }), 'stored under the SHA-256 of the id');
    } finally {
      await berth.close();
    }
    const files = ['berth.db', 'berth.db-wal'].map((f) => path.join(dataDir, f)).filter((f) => fs.existsSync(f));
    assert.ok(!Buffer.concat(files.map((f) => fs.readFileSync(f))).includes(browser.id), 'the raw session id is not in the database files');

    berth = await boot();
    try {
      const request = supertest(berth.app);
      assert.equal(await current(request, browser), 200, 'still signed in after the restart');
      assert.equal((await createProject(request, browser, 'no-csrf', null)).status, 403, 'a change without the CSRF token is refused');
      assert.equal((await createProject(request, browser, 'wrong-csrf', 'x'.repeat(browser.csrf.length))).status, 403);
      assert.equal((await createProject(request, browser, 'after-restart')).status, 201);
      assert.equal((await request.get('/c/log_out').set('Cookie', browser.cookie)).status, 200);
      assert.equal(await current(request, browser), 401);
      assert.equal(await berth.db.browserSession.findUnique({ where: { idHash: sha256(browser.id) } }), null, 'logout removes the row');
    } finally {
      await berth.close();
    }
  });

  test('idle sessions end, expired rows are purged, a session in use stays', async () => {
    let berth = await boot();
    const ago = (minutes: number) => new Date(Date.now() - minutes * 60_000);
    let live: Browser, idle: Browser, stale: Browser;
    try {
      const request = supertest(berth.app);
      [live, idle, stale] = [await signIn(request), await signIn(request), await signIn(request)];
      // Idle past the 30 minutes, but within the minute purges leave for other nodes' sightings.
      await berth.db.browserSession.update({ where: { idHash: sha256(idle.id) }, data: { lastSeen: ago(30.5) } });
      await berth.db.browserSession.update({ where: { idHash: sha256(stale.id) }, data: { lastSeen: ago(180) } });
      assert.equal(await new SessionStore(new BrowserSessionStore(berth.db), new LocalChanges()).purgeExpired(), 1);
      assert.equal(await berth.db.browserSession.count({ where: { idHash: sha256(stale.id) } }), 0);
    } finally {
      await berth.close();
    }
    berth = await boot();
    try {
      const request = supertest(berth.app);
      assert.equal(await current(request, live), 200);
      assert.equal(await current(request, idle), 401);
      assert.equal(await berth.db.browserSession.count({ where: { idHash: sha256(idle.id) } }), 0, 'an expired session found by a request is removed');
      assert.equal(await current(request, stale), 401);
    } finally {
      await berth.close();
    }
  });
});

describe('sessions across two nodes on PostgreSQL', { skip: missingPostgres() }, () => {
  let pgServer: TestPostgres;
  let url: string;
  let node1: TestApp;
  let node2: TestApp;
  before(async () => {
    pgServer = await startPostgres();
    url = await pgServer.createDatabase();
    const env = { BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: SECRET };
    node1 = await makeApp(env, REAL_ACCESS);
    node2 = await makeApp(env, REAL_ACCESS);
  });
  after(async () => {
    await node1?.close();
    await node2?.close();
    await pgServer?.stop();
  });

  test('a session from node 1 works on node 2, CSRF-protected changes included', async () => {
    const browser = await signIn(node1.request);
    assert.equal(await current(node2.request, browser), 200);
    assert.equal((await createProject(node2.request, browser, 'from-node-2', null)).status, 403);
    assert.equal((await createProject(node2.request, browser, 'from-node-2')).status, 201);
    assert.equal((await createProject(node1.request, browser, 'from-node-1')).status, 201);
  });

  test('a logout on node 2 ends the session on node 1 within a second', async () => {
    const browser = await signIn(node1.request);
    assert.equal(await current(node1.request, browser), 200); // node 1 has it cached now
    assert.equal(await current(node2.request, browser), 200);
    assert.equal((await node2.request.get('/c/log_out').set('Cookie', browser.cookie)).status, 200);
    const deadline = Date.now() + 1_000;
    let status = await current(node1.request, browser);
    while (status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      status = await current(node1.request, browser);
    }
    assert.equal(status, 401, 'node 1 refuses the session within a second');
    assert.equal(await current(node2.request, browser), 401);
  });

  test('a password change on node 2 ends the user’s sessions on node 1', async () => {
    const create = await node1.request.post('/api/v2.0/users').set('Authorization', node1.adminAuth).send({ username: 'dev', password: 'Passw0rd!x', email: 'dev@example.com', realname: 'Dev' });
    assert.equal(create.status, 201);
    const id = Number(String(create.headers.location).split('/').pop());
    const login = await node1.request.post('/c/login').send({ principal: 'dev', password: 'Passw0rd!x' });
    const cookie = (login.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ');
    assert.equal((await node1.request.get('/api/v2.0/users/current').set('Cookie', cookie)).status, 200);
    assert.equal((await node2.request.put(`/api/v2.0/users/${id}/password`).set('Authorization', node2.adminAuth).send({ new_password: 'N3wPassw0rd!y' })).status, 200);
    const deadline = Date.now() + 1_000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await node1.request.get('/api/v2.0/users/current').set('Cookie', cookie)).status;
    }
    assert.equal(status, 401);
  });

  test('sessions survive a restart of both nodes; the raw id is not in the table', async () => {
    const browser = await signIn(node2.request);
    const rows = await node1.berth.db.browserSession.findMany();
    assert.ok(rows.some((r) => r.idHash === sha256(browser.id)));
    assert.ok(!JSON.stringify(rows).includes(browser.id));
    await node1.close();
    await node2.close();
    const env = { BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: SECRET };
    node1 = await makeApp(env, REAL_ACCESS);
    node2 = await makeApp(env, REAL_ACCESS);
    assert.equal(await current(node1.request, browser), 200);
    assert.equal((await createProject(node1.request, browser, 'after-restart')).status, 201);
  });
});
