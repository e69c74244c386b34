// The browser-session and signing-key stores on SQLite and a real PostgreSQL: which sessions a cap
// ends, ending a user's sessions but one, idle deletes; the signing key created once when two
// nodes race, and a rotation as a compare-and-swap.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Db } from '../../src/db/client.ts';
import { BrowserSessionStore, type SessionRow } from '../../src/db/session-store.ts';
import { SigningKeyStore } from '../../src/db/signing-key-store.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';

// Far from UTC: the DateTime columns must still compare right.
process.env.TZ = 'America/Los_Angeles';

let pgServer: TestPostgres | null = null;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-session-stores-'));
let n = 0;
const pgSkip = missingPostgres();
const engines = [
  { name: 'sqlite', skip: false as const, fresh: async () => `file:${path.join(tmp, `db${++n}`, 'berth.db')}` },
  { name: 'postgresql', skip: pgSkip, fresh: () => pgServer!.createDatabase() },
];

before(async () => {
  if (!pgSkip) pgServer = await startPostgres();
});
after(async () => {
  await pgServer?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000);
const row = (idHash: string, owner: string, created: number, seen: number): SessionRow => ({ idHash, owner, principal: '{}', csrf: 'c', createdAt: at(created), lastSeen: at(seen) });

for (const engine of engines) {
  describe(`session and signing-key stores on ${engine.name}`, { skip: engine.skip }, () => {
    let url: string;
    let db: Db;
    before(async () => {
      url = await engine.fresh();
      db = await openDatabase(url);
    });
    after(() => db?.$disconnect());

    test('caps: the owner keeps the new session and the most recently seen others; the table drops the least recently seen', async () => {
      const s = new BrowserSessionStore(db);
      await s.insert(row('a', 'user:1', 1, 10));
      await s.insert(row('b', 'user:1', 2, 30));
      await s.insert(row('c', 'user:1', 3, 20));
      await s.insert(row('x', 'user:2', 4, 5));
      await s.insert(row('new', 'user:1', 9, 0)); // made on a node whose clock is behind
      assert.deepEqual(await s.trimOwner('user:1', 3, 'new'), ['a']);
      assert.equal(await s.find('a'), null);
      assert.ok(await s.find('new'));
      assert.equal(await s.count(), 4);
      assert.deepEqual(await s.trimTotal(2, 'new'), ['x', 'c']);
      assert.deepEqual((await db.browserSession.findMany({ orderBy: { idHash: 'asc' } })).map((r) => r.idHash), ['b', 'new']);
      assert.deepEqual(await s.trimTotal(2, 'new'), []);
      await db.browserSession.deleteMany({});
    });

    test('touch, idle deletes, a user’s sessions but one, purge', async () => {
      const s = new BrowserSessionStore(db);
      for (const [id, created] of [['u1', 1], ['u2', 2], ['u3', 100]] as const) await s.insert(row(id, 'user:7', created, created));
      await s.insert(row('other', 'user:8', 1, 1));
      assert.equal(await s.touch('u1', at(50)), true);
      assert.equal(await s.touch('missing', at(50)), false);
      assert.equal((await s.find('u1'))!.lastSeen.getTime(), at(50).getTime());
      await s.touchMany([{ idHash: 'u2', at: at(60) }, { idHash: 'gone', at: at(60) }]);
      assert.equal((await s.find('u2'))!.lastSeen.getTime(), at(60).getTime());

      assert.equal(await s.deleteIdle('u1', at(50)), false, 'seen at the limit: not idle');
      assert.equal(await s.deleteIdle('u1', at(51)), true);
      assert.equal(await s.delete('u1'), false);

      assert.deepEqual((await s.deleteOwner('user:7', 'u2')).sort(), ['u3']);
      assert.ok(await s.find('u2'), 'the one kept');
      assert.ok(await s.find('other'), 'another user’s');
      assert.deepEqual(await s.deleteOwner('user:7'), ['u2']);

      assert.equal(await s.purgeIdle(at(2)), 1, 'only "other" (seen at 1) is older');
      assert.equal(await s.count(), 0);
      await db.browserSession.deleteMany({});
    });

    test('the signing key is created once when nodes race; a rotation is a compare-and-swap', async () => {
      const other = await openDatabase(url); // a second node's client
      try {
        const [a, b] = [new SigningKeyStore(db), new SigningKeyStore(other)];
        assert.equal(await a.read(), null);
        const winners = await Promise.all([a.createOnce('sealed-by-a'), b.createOnce('sealed-by-b'), a.createOnce('sealed-by-a2')]);
        assert.equal(new Set(winners).size, 1, `one value for all: ${winners.join(', ')}`);
        const stored = winners[0];
        assert.equal(await b.read(), stored);
        assert.equal(await b.createOnce('late'), stored, 'a later start keeps the stored key');
        assert.equal(await a.replace('not-the-stored-value', 'x'), false);
        assert.equal(await a.replace(stored, 'rotated'), true);
        assert.equal(await b.replace(stored, 'rotated-too'), false, 'the second of two rotations from the same state loses');
        assert.equal(await b.read(), 'rotated');
      } finally {
        await other.$disconnect();
      }
    });
  });
}
