// The stores behind GC runs and scheduled jobs, the same cases on SQLite and a real PostgreSQL:
// a job's slot is claimed once, a sweep is one transaction (all of it or none), and the run rows
// that let any node stop a run or clear a dead node's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Db } from '../../src/db/client.ts';
import { JobStore } from '../../src/db/job-store.ts';
import { GcStore } from '../../src/db/gc-store.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';

// Far from UTC: dates written by the stores' own statements must compare right.
process.env.TZ = 'America/Los_Angeles';

const D = (c: string) => 'sha256:' + c.repeat(64);
let pgServer: TestPostgres | null = null;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cluster-stores-'));
let n = 0;
const pgSkip = missingPostgres();
const engines = [
  { name: 'sqlite', skip: false as string | false, fresh: async () => `file:${path.join(tmp, `db${++n}`, 'berth.db')}` },
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
  describe(`job and GC stores on ${engine.name}`, { skip: engine.skip }, () => {
    let db: Db;
    before(async () => {
      db = await openDatabase(await engine.fresh());
    });
    after(async () => {
      await db?.$disconnect();
    });

    test('a slot is claimed once; the history is purged by age', async () => {
      const jobs = new JobStore(db);
      const slot = new Date(Date.UTC(2031, 5, 1, 12, 0, 0));
      const claims = await Promise.all([jobs.claim('j', slot, 'a'), jobs.claim('j', slot, 'b'), jobs.claim('j', slot, 'c')]);
      assert.equal(claims.filter(Boolean).length, 1);
      assert.equal(await jobs.claim('j', slot, 'a'), false);
      assert.equal(await jobs.claim('other', slot, 'a'), true, 'another job, same slot');
      assert.equal(await jobs.claim('j', new Date(slot.getTime() + 60_000), 'b', new Date(Date.now() - 10 * 86_400_000)), true);
      const runs = await jobs.runs('j');
      assert.equal(runs.length, 2);
      assert.equal(runs[0].slot.getTime(), slot.getTime() + 60_000, 'newest slot first, read back as written');
      assert.equal(await jobs.purge(new Date(Date.now() - 86_400_000)), 1, 'only the run started ten days ago');
      assert.equal((await jobs.runs('j')).length, 1);
    });

    test('a sweep is one transaction: a failure part-way deletes nothing', async () => {
      const gc = new GcStore(db);
      const old = new Date(Date.now() - 3 * 3600_000);
      const repo = await db.repository.create({ data: { name: 'sweep/one' } });
      for (const c of ['a', 'b']) {
        await db.blob.create({ data: { digest: D(c), size: 10n, createdAt: old } });
        await db.blobLink.create({ data: { repositoryId: repo.id, digest: D(c), createdAt: old } });
      }
      const cutoff = new Date(Date.now() - 3600_000);
      await assert.rejects(
        gc.sweep(cutoff, function* (s) {
          const gone = yield* s.deleteLinks(repo.id, [D('a'), D('b')]);
          assert.equal(gone.length, 2);
          throw new Error('part-way');
        }),
        /part-way/,
      );
      assert.equal(await db.blobLink.count({ where: { repositoryId: repo.id } }), 2);
      // Run to the end, the same body deletes the links, then the blobs nothing links any more.
      const result = await gc.sweep(cutoff, function* (s) {
        const links = yield* s.deleteLinks(repo.id, [D('a'), D('b')]);
        const blobs = yield* s.deleteBlobs([D('a'), D('b')]);
        return { links, blobs };
      });
      assert.deepEqual(result.links.sort(), [D('a'), D('b')]);
      assert.deepEqual(result.blobs.map((b) => b.size), [10, 10]);
      assert.equal((await gc.blobRowsOf([D('a'), D('b')])).size, 0);
    });

    test("a sweep finds what was pushed since the run began, also when the pushing node's clock is behind", async () => {
      const gc = new GcStore(db);
      const repo = await db.repository.create({ data: { name: 'sweep/fresh' } });
      const m = (c: string, pushedAt: Date) => db.manifest.create({ data: { repositoryId: repo.id, digest: D(c), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, refs: JSON.stringify([D('0')]), pushedAt } });
      await m('c', new Date(Date.now() - 3 * 3600_000));
      const since = new Date();
      const sinceId = await gc.highestManifestId();
      assert.ok(sinceId > 0);
      await m('d', new Date(since.getTime() + 1000)); // a node whose clock agrees
      await m('e', new Date(since.getTime() - 2000)); // a node whose clock is two seconds behind
      const fresh = await gc.sweep(new Date(0), (s) => s.pushedSince(repo.id, since, sinceId));
      assert.deepEqual(fresh.map((f) => f.digest).sort(), [D('d'), D('e')]);
      assert.deepEqual(fresh[0].refs, [D('0')]);
    });

    test('run rows: a stop asked for from anywhere, a run stopped while pending, dead runs marked Stopped', async () => {
      const gc = new GcStore(db);
      const id = await gc.createRun('MANUAL', '{}');
      assert.equal(await gc.requestStop(id), true);
      assert.equal(await gc.runStatus(id), 'Stopping');
      assert.equal(await gc.markRunning(id, 'log'), false, 'stopped before it began');
      assert.equal(await gc.updateRun(id, { manifestsDeleted: 1 }), 'Stopping', 'the running node reads the request back');
      assert.equal(await gc.updateRun(id, { status: 'Stopped' }), 'Stopped');
      assert.equal(await gc.requestStop(id), false, 'an ended run');
      const live = await gc.createRun('MANUAL', '{}');
      assert.equal(await gc.markRunning(live, 'log'), true);
      const dead = await gc.createRun('SCHEDULE', '{}');
      assert.equal(await gc.markInterrupted(live), 1);
      assert.equal(await gc.runStatus(dead), 'Stopped');
      assert.equal(await gc.runStatus(live), 'Running');
      assert.equal(await gc.runStatus(999_999), null);
    });
  });
}
