// The audit log's listing (AuditService.list over AuditStore) on SQLite and a real PostgreSQL: pages
// newest first whichever way they are reached (page 1, a walk, a deep page asked directly, again),
// counts and pages that follow every added and purged entry although both are kept between
// requests, and the filters (exact, part ignoring case, a project's own entries, wildcards literal).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Db } from '../../src/db/client.ts';
import { closeListReader } from '../../src/db/list-store.ts';
import { AuditService, type AuditFilter } from '../../src/services/audit.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';

let pgServer: TestPostgres | null = null;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-audit-list-'));
const pgSkip = missingPostgres();
const engines = [
  { name: 'sqlite', skip: false as string | false, fresh: async () => `file:${path.join(tmp, 'berth.db')}` },
  { name: 'postgresql', skip: pgSkip, fresh: () => pgServer!.createDatabase() },
];

before(async () => {
  if (!pgSkip) pgServer = await startPostgres();
});
after(async () => {
  await pgServer?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

for (const engine of engines) {
  describe(`audit log listing on ${engine.name}`, { skip: engine.skip }, () => {
    let db: Db;
    let audit: AuditService;
    /** What the log holds, oldest first: [username, operation, resource]. */
    const log: [string, string, string][] = [];

    const record = async (n: number, f: (i: number) => [string, string, string]) => {
      for (let i = 0; i < n; i++) {
        const e = f(log.length);
        log.push(e);
        audit.record({ username: e[0], operation: e[1], resource: e[2], resourceType: 'artifact' });
      }
      await audit.flush();
    };
    const shown = (items: { username: string; operation: string; resource: string }[]) => items.map((a) => `${a.username} ${a.operation} ${a.resource}`);
    const expected = (keep: (e: [string, string, string]) => boolean) => log.filter(keep).reverse().map((e) => e.join(' '));

    /** Every way of paging the filter's list agrees with the log. */
    async function check(f: AuditFilter, keep: (e: [string, string, string]) => boolean) {
      const want = expected(keep);
      const all = await audit.list(f, 1, 500);
      assert.equal(all.total, want.length, 'total');
      assert.deepEqual(shown(all.items), want);
      const walked: string[] = [];
      for (let p = 1; p <= Math.ceil(want.length / 7) + 1; p++) {
        const r = await audit.list(f, p, 7);
        assert.equal(r.total, want.length);
        walked.push(...shown(r.items));
      }
      assert.deepEqual(walked, want, 'a walk');
      for (let i = 0; i < 2; i++) assert.deepEqual(shown((await audit.list(f, 4, 5)).items), want.slice(15, 20), 'a deep page, twice');
      assert.deepEqual(shown((await audit.list(f, 3, 6)).items), want.slice(12, 18), 'another page size');
    }

    before(async () => {
      db = await openDatabase(await engine.fresh());
      // settleMs 0: on PostgreSQL too, counts and ranks are kept up to the newest entry (this test
      // writes one batch at a time, so nothing commits late), and it is their upkeep that is checked.
      audit = new AuditService(db, { retentionDays: 30, maxRows: 1_000_000, log: { warn() {} }, settleMs: 0 });
    });
    after(async () => {
      await audit?.close();
      if (db) closeListReader(db);
      await db?.$disconnect();
    });

    test('pages, counts and filters follow added entries', async () => {
      await record(40, (i) => [i % 3 ? 'alice' : 'Bob', i % 4 ? 'pull' : 'create', [`team/app:v${i}`, `team:${i}`, 'team', `teamx/app:v${i}`, `a_b/x:${i}`][i % 5]]);
      const all = () => true;
      const team = (e: [string, string, string]) => e[2] === 'team' || e[2].startsWith('team/') || e[2].startsWith('team:');
      await check({}, all);
      await check({ project: 'team' }, team);
      await check({ username: { contains: 'BO' } }, (e) => e[0] === 'Bob');
      await check({ username: { exact: 'alice' }, operation: { exact: 'pull' } }, (e) => e[0] === 'alice' && e[1] === 'pull');
      assert.equal((await audit.list({ resource: { contains: '_' } }, 1, 100)).total, 8, 'an underscore matches itself only');
      assert.equal((await audit.list({ project: 'a_b' }, 1, 100)).total, 8);
      assert.equal((await audit.list({ project: 'a%b' }, 1, 100)).total, 0);
      // Entries added after the lists were read (and their counts kept): every list follows.
      await record(9, (i) => ['carol', 'delete', `team/app:v${i}`]);
      await check({}, all);
      await check({ project: 'team' }, team);
      await check({ username: { exact: 'carol' } }, (e) => e[0] === 'carol');
    });

    test('a purge of the oldest entries shows in counts and pages at once', async () => {
      await check({}, () => true);
      // The oldest 20 entries become older than the retention period.
      const ids = (await db.auditLog.findMany({ orderBy: { id: 'asc' }, take: 20, select: { id: true } })).map((r) => r.id);
      await db.auditLog.updateMany({ where: { id: { in: ids } }, data: { createdAt: new Date(Date.now() - 40 * 86_400_000) } });
      assert.equal(await audit.purge(), 20);
      log.splice(0, 20);
      await check({}, () => true);
      await check({ project: 'team' }, (e) => e[2] === 'team' || e[2].startsWith('team/') || e[2].startsWith('team:'));
    });
  });
}
