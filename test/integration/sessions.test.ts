// Browser sessions: a password change ends the user's other sessions, and sessions are capped per
// user (the least recently seen one goes) and in total.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionStore } from '../../src/auth/session.ts';
import { LocalChanges } from '../../src/db/changes.ts';
import { BrowserSessionStore } from '../../src/db/session-store.ts';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';

const PW = 'Passw0rd!x';
const NEW_PW = 'N3wPassw0rd!y';

interface Browser {
  cookie: string;
  csrf: string;
}

async function signIn(t: TestApp, username: string, password: string): Promise<Browser> {
  const res = await t.request.post('/c/login').send({ principal: username, password });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const cookies = res.headers['set-cookie'] as unknown as string[];
  return {
    cookie: cookies.map((c) => c.split(';')[0]).join('; '),
    csrf: cookies.find((c) => c.startsWith('__csrf='))!.split(';')[0].split('=')[1],
  };
}

async function current(t: TestApp, b: Browser): Promise<number> {
  return (await t.request.get('/api/v2.0/users/current').set('Cookie', b.cookie)).status;
}

async function createUser(t: TestApp, username: string): Promise<number> {
  const res = await t.request.post('/api/v2.0/users').set('Authorization', t.adminAuth).send({ username, password: PW, email: `${username}@example.com`, realname: username });
  assert.equal(res.status, 201);
  return Number(String(res.headers.location).split('/').pop());
}

describe('password changes end sessions', () => {
  let t: TestApp;
  before(async () => {
    t = await makeApp({}, REAL_ACCESS);
  });
  after(() => t.close());

  test('a user changing their password in the browser keeps that session and ends the others; an admin reset ends all', async () => {
    const id = await createUser(t, 'dev');
    const here = await signIn(t, 'dev', PW);
    const elsewhere = await signIn(t, 'dev', PW);
    const other = await createUser(t, 'bystander');
    const bystander = await signIn(t, 'bystander', PW);
    assert.equal(await current(t, elsewhere), 200);

    const change = await t.request.put(`/api/v2.0/users/${id}/password`).set('Cookie', here.cookie).set('X-Harbor-CSRF-Token', here.csrf).send({ old_password: PW, new_password: NEW_PW });
    assert.equal(change.status, 200, JSON.stringify(change.body));
    assert.equal(await current(t, elsewhere), 401, 'the other browser is signed out');
    assert.equal(await current(t, here), 200, 'the browser that made the change stays signed in');
    assert.equal(await current(t, bystander), 200, 'other users keep their sessions');
    assert.equal((await t.request.get('/api/v2.0/users/current').set('Authorization', basic('dev', PW))).status, 401, 'the old password is forgotten at once');
    assert.equal((await t.request.get('/api/v2.0/users/current').set('Authorization', basic('dev', NEW_PW))).status, 200);

    const again = await signIn(t, 'dev', NEW_PW);
    const reset = await t.request.put(`/api/v2.0/users/${id}/password`).set('Authorization', t.adminAuth).send({ new_password: PW });
    assert.equal(reset.status, 200);
    assert.equal(await current(t, here), 401, 'an admin reset ends every session of the user');
    assert.equal(await current(t, again), 401);
    assert.equal((await t.request.get('/api/v2.0/users/current').set('Authorization', basic('dev', NEW_PW))).status, 401);
    assert.equal(await current(t, bystander), 200);

    // A change made with Basic auth (no session to keep) ends every browser session of the user.
    const b1 = await signIn(t, 'bystander', PW);
    const byBasic = await t.request.put(`/api/v2.0/users/${other}/password`).set('Authorization', basic('bystander', PW)).send({ old_password: PW, new_password: NEW_PW });
    assert.equal(byBasic.status, 200);
    assert.equal(await current(t, b1), 401);
    assert.equal(await current(t, bystander), 401);

    // Deleting a user ends their sessions too.
    const last = await signIn(t, 'dev', PW);
    assert.equal((await t.request.delete(`/api/v2.0/users/${id}`).set('Authorization', t.adminAuth)).status, 200);
    assert.equal(await current(t, last), 401);
  });
});

describe('session caps', () => {
  test('the 21st session of a user ends the first (default cap 20)', async () => {
    const t = await makeApp({}, REAL_ACCESS);
    try {
      await createUser(t, 'many');
      const browsers: Browser[] = [];
      for (let i = 0; i < 21; i++) browsers.push(await signIn(t, 'many', PW));
      assert.equal(await current(t, browsers[0]), 401);
      assert.equal(await current(t, browsers[1]), 200);
      assert.equal(await current(t, browsers[20]), 200);
    } finally {
      await t.close();
    }
  });

  test('the least recently seen session goes first, and only the same user’s', async () => {
    const t = await makeApp({ BERTH_MAX_SESSIONS_PER_USER: '3' }, REAL_ACCESS);
    try {
      await createUser(t, 'ann');
      await createUser(t, 'bob');
      const bob = await signIn(t, 'bob', PW);
      const [a1, a2, a3] = [await signIn(t, 'ann', PW), await signIn(t, 'ann', PW), await signIn(t, 'ann', PW)];
      assert.equal(await current(t, a1), 200); // a1 is now the most recently seen
      const a4 = await signIn(t, 'ann', PW);
      assert.equal(await current(t, a2), 401, 'the least recently seen session ended');
      for (const b of [a1, a3, a4, bob]) assert.equal(await current(t, b), 200);
    } finally {
      await t.close();
    }
  });

  test('the store as a whole is bounded: past the total cap the least recently seen session goes', async () => {
    const t = await makeApp({}, REAL_ACCESS);
    try {
      let now = 0;
      const store = new SessionStore(new BrowserSessionStore(t.berth.db), new LocalChanges(), { idleMs: 60_000, now: () => now, maxPerUser: 20, maxTotal: 5 });
      const cookies: string[] = [];
      for (let id = 1; id <= 6; id++) {
        now += 10;
        const headers: string[] = [];
        await store.create({ append: (_k: string, v: string) => headers.push(v) } as never, { kind: 'user', id, name: `u${id}`, sysadmin: false }, false);
        cookies.push(headers.map((h) => h.split(';')[0]).join('; '));
        if (id === 5) assert.ok(await store.get({ headers: { cookie: cookies[0] } } as never), 'seen again: no longer the oldest');
      }
      const alive = [];
      for (const cookie of cookies) alive.push(!!(await store.get({ headers: { cookie } } as never)));
      assert.deepEqual(alive, [true, false, true, true, true, true]);
    } finally {
      await t.close();
    }
  });
});
