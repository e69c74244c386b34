// Garbage collection through Harbor's API (/api/v2.0/system/gc) on SQLite: the scenarios shared
// with PostgreSQL (test/integration/gc-scenarios.ts: what is deleted, what is kept, the time window,
// dry runs, untagged artifacts, files without records, pushes during a run), then history, log and
// schedule.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { basic, makeApp, type TestApp } from '../helpers/app.ts';
import { assertHarborShape } from '../helpers/harbor-shapes.ts';
import { gcApi, gcScenarios } from './gc-scenarios.ts';

let t: TestApp;

const api = (method: 'get' | 'post' | 'put', p: string, auth: string | null = t.adminAuth) => gcApi(t)(method, p, auth);

before(async () => {
  t = await makeApp();
});
after(async () => {
  await t?.close();
});

describe('garbage collection', () => {
  gcScenarios({
    app: () => t,
    async age(app, repository, digests, hours) {
      const when = new Date(Date.now() - hours * 3600_000).toISOString();
      const db = new Database(path.join(app.dataDir, 'berth.db'));
      try {
        db.prepare(`UPDATE "BlobLink" SET "createdAt" = ? WHERE "repositoryId" = (SELECT "id" FROM "Repository" WHERE "name" = ?)`).run(when, repository);
        for (const d of digests) db.prepare(`UPDATE "Blob" SET "createdAt" = ? WHERE "digest" = ?`).run(when, d);
      } finally {
        db.close();
      }
    },
  });
});

describe('garbage collection API', () => {
  test('history is paged, newest first, in Harbor shapes', async () => {
    const res = await api('get', '/system/gc?page=1&page_size=2');
    assert.equal(res.status, 200);
    assert.ok(Number(res.headers['x-total-count']) >= 6);
    assert.equal(res.body.length, 2);
    assert.ok(res.body[0].id > res.body[1].id);
    const h = res.body[0];
    assertHarborShape('GCHistory', h, ['manifests_deleted', 'blobs_deleted', 'freed_bytes']);
    assert.equal(h.job_name, 'GARBAGE_COLLECTION');
    assert.equal(h.job_kind, 'MANUAL');
    assert.deepEqual(h.schedule, { type: 'Manual' });
    assert.equal(typeof h.job_parameters, 'string');
    assert.equal(h.deleted, false);
    assert.ok(!Number.isNaN(Date.parse(h.creation_time)));
    assert.ok(res.headers.link?.includes('rel="next"'));
  });

  test('unknown runs are 404, bad ids and parameters 400', async () => {
    assert.equal((await api('get', '/system/gc/99999')).status, 404);
    assert.equal((await api('get', '/system/gc/99999/log')).status, 404);
    assert.equal((await api('put', '/system/gc/99999')).status, 404);
    assert.equal((await api('get', '/system/gc/abc')).status, 400);
    for (const parameters of [{ dry_run: 'yes' }, { time_window: -1 }, { time_window: 'soon' }, []]) {
      const res = await api('post', '/system/gc/schedule').send({ schedule: { type: 'Manual' }, parameters });
      assert.equal(res.status, 400, JSON.stringify(parameters));
      assert.equal(res.body.errors[0].code, 'BAD_REQUEST');
    }
    assert.equal((await api('post', '/system/gc/schedule').send({ parameters: {} })).status, 400);
    assert.equal((await api('post', '/system/gc/schedule').send({ schedule: { type: 'Sometimes' } })).status, 400);
  });

  test('only system administrators may see or run it', async () => {
    assert.equal((await api('get', '/system/gc', null)).status, 401);
    assert.equal((await api('post', '/users').send({ username: 'plain', password: 'Passw0rd!x' })).status, 201);
    const plain = basic('plain', 'Passw0rd!x');
    assert.equal((await api('get', '/system/gc', plain)).status, 403);
    assert.equal((await api('post', '/system/gc/schedule', plain).send({ schedule: { type: 'Manual' } })).status, 403);
    assert.equal((await api('get', '/system/gc/schedule', plain)).status, 403);
  });

  test('schedule: fixed types, custom cron, validation, removal', async () => {
    let s = await api('get', '/system/gc/schedule');
    assert.equal(s.status, 200);
    assertHarborShape('GCHistory', s.body);
    assert.equal(s.body.schedule.type, 'None');
    assert.equal((await api('put', '/system/gc/schedule').send({ schedule: { type: 'Daily' }, parameters: { delete_untagged: true } })).status, 200);
    s = await api('get', '/system/gc/schedule');
    assert.equal(s.body.schedule.type, 'Daily');
    assert.equal(s.body.schedule.cron, '0 0 0 * * *');
    assert.equal(JSON.parse(s.body.job_parameters).delete_untagged, true);
    const next = Date.parse(s.body.schedule.next_scheduled_time);
    assert.ok(next > Date.now() && next <= Date.now() + 24 * 3600_000);
    assert.equal((await api('post', '/system/gc/schedule').send({ schedule: { type: 'Custom', cron: '0 30 2 * * 6' } })).status, 201);
    s = await api('get', '/system/gc/schedule');
    assert.equal(s.body.schedule.cron, '0 30 2 * * 6');
    assert.equal(new Date(s.body.schedule.next_scheduled_time).getDay(), 6);
    for (const cron of ['0 30 2 * *', 'every day', '0 99 2 * * *']) {
      assert.equal((await api('put', '/system/gc/schedule').send({ schedule: { type: 'Custom', cron } })).status, 400, cron);
    }
    assert.equal((await api('put', '/system/gc/schedule').send({ schedule: { type: 'None' } })).status, 200);
    s = await api('get', '/system/gc/schedule');
    assert.equal(s.body.schedule.type, 'None');
    assert.equal(s.body.schedule.next_scheduled_time, undefined);
  });
});
