// Garbage collection on PostgreSQL (BERTH_DATABASE_URL=postgresql://…): the scenarios of
// test/integration/gc-scenarios.ts, which test/integration/gc.test.ts runs on SQLite, against a
// real PostgreSQL — what is deleted, what is kept, the time window, dry runs, untagged artifacts
// and their children, files without records, blobs pushed again, pushes during a run, a run's
// progress; and what only PostgreSQL has: how a sweep's statements are planned.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openDatabase, pgSql } from '../../src/db/client.ts';
import { GcStore, type Step } from '../../src/db/gc-store.ts';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';
import { gcScenarios } from './gc-scenarios.ts';

let pgServer: TestPostgres;
let dbUrl: string;
let t: TestApp;

describe('garbage collection on PostgreSQL', { skip: missingPostgres() }, () => {
  before(async () => {
    pgServer = await startPostgres();
    dbUrl = await pgServer.createDatabase();
    t = await makeApp({ BERTH_DATABASE_URL: dbUrl });
  });
  after(async () => {
    await t?.close();
    await pgServer?.stop();
  });

  gcScenarios({
    app: () => t,
    async age(_app, repository, digests, hours) {
      const when = new Date(Date.now() - hours * 3600_000).toISOString();
      const db = new pg.Client({ connectionString: dbUrl });
      await db.connect();
      try {
        await db.query(`UPDATE "BlobLink" SET "createdAt" = $1 WHERE "repositoryId" = (SELECT "id" FROM "Repository" WHERE "name" = $2)`, [when, repository]);
        await db.query(`UPDATE "Blob" SET "createdAt" = $1 WHERE "digest" = ANY($2::text[])`, [when, digests]);
      } finally {
        await db.end();
      }
    },
  });

  test('a sweep plans its statements for their arguments, inside its own transaction only', async () => {
    // A generic plan (PostgreSQL's choice for a named statement used five times) made for an average
    // repository read every link of a large one to delete a batch of them.
    const db = await openDatabase(dbUrl);
    try {
      const mode = `SELECT current_setting('plan_cache_mode') AS "mode"`;
      const inside = await new GcStore(db).sweep(new Date(0), function* (): Step<unknown[]> {
        return yield { sql: mode, args: [] };
      });
      assert.deepEqual(inside, [{ mode: 'force_custom_plan' }]);
      // The pool's connections, the sweep's among them, keep the default for every other statement.
      const pool = pgSql(db)!;
      for (let i = 0; i < 3; i++) assert.deepEqual((await pool.query(mode, [])).rows, [{ mode: 'auto' }]);
      assert.deepEqual(await pool.transaction(async (q) => (await q(mode, [])).rows), [{ mode: 'auto' }]);
    } finally {
      await db.$disconnect();
    }
  });
});
