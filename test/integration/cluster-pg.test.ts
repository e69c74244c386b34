// Several Berth nodes on one PostgreSQL and one storage directory (two apps in this process, each
// with its own pools, caches and timers, as two processes would have): one garbage collection per
// cluster, a stop asked on another node, a dead node's run, the push/GC interlock across nodes,
// quotas across nodes, and scheduled jobs that run once per cluster.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { Oci, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, bytes, sha256 } from '../helpers/oci.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';
import { FsDriver } from '../../src/storage/driver/fs.ts';
import { RUN_SPACE, WRITES_SPACE } from '../../src/db/cluster-lock.ts';

const SECRET = 'cluster-test-secret-key-0123456789abcdef';
let pgServer: TestPostgres;
let dbUrl: string;
let storageDir: string;
let sql: pg.Client;
const open: TestApp[] = [];
/** Whatever a test holds (locks, paused pushes), let go before the nodes close even when the test failed. */
const releases: (() => void)[] = [];

/**
 * The filesystem driver over the shared directory. `gate` runs after the driver has looked at or
 * placed a blob's bytes at its content address (an upload's place step: "already stored?", then the
 * rename), i.e. between a push's check and its record.
 */
class SharedFs extends FsDriver {
  constructor(root: string, private readonly gate?: (path: string) => Promise<void>) {
    super(root);
    if (!gate) return;
    const inner = this.files;
    Object.defineProperty(this, 'files', {
      value: {
        writer: inner.writer,
        move: async (from: string, to: string) => {
          await inner.move(from, to);
          await gate(to);
        },
      },
    });
  }

  override async stat(p: string) {
    const info = await super.stat(p);
    if (this.gate && p.startsWith('blobs/')) await this.gate(p);
    return info;
  }
}

async function node(gate?: (path: string) => Promise<void>): Promise<TestApp> {
  const t = await makeApp({ BERTH_DATABASE_URL: dbUrl, BERTH_SECRET_KEY: SECRET }, { driver: new SharedFs(storageDir, gate) });
  open.push(t);
  return t;
}

async function close(t: TestApp): Promise<void> {
  open.splice(open.indexOf(t), 1);
  await t.close();
}

const api = (t: TestApp, method: 'get' | 'post' | 'put', p: string) => t.request[method](`/api/v2.0${p}`).set('Authorization', t.adminAuth);
const startGc = (t: TestApp, parameters: Record<string, unknown> = { time_window: 0 }) => api(t, 'post', '/system/gc/schedule').send({ schedule: { type: 'Manual' }, parameters });
const runId = (location: string) => Number(/(\d+)$/.exec(location)![1]);
const blobFile = (digest: string) => path.join(storageDir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data');

/** Holds the cluster's push/GC lock shared through node t (as a push between its check and its write) until release(). */
async function holdShared(t: TestApp): Promise<{ release: () => void; done: Promise<void> }> {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const done = t.berth.registry.writes.shared(async () => {
    entered();
    await held;
  });
  await inside;
  releases.push(release);
  return { release, done };
}

/** Waits (bounded) until some session waits for the push/GC lock; false if `gaveUp` resolves first. */
async function someoneWaitsForWrites(gaveUp: () => boolean): Promise<boolean> {
  for (let i = 0; i < 500; i++) {
    const r = await sql.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = $1`, [WRITES_SPACE]);
    if (r.rows[0].n > 0) return true;
    if (gaveUp()) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

async function waitForStatus(t: TestApp, id: number, want: string): Promise<string> {
  let status = '';
  for (let i = 0; i < 500; i++) {
    status = (await api(t, 'get', `/system/gc/${id}`)).body.job_status;
    if (status === want) return status;
    await new Promise((r) => setTimeout(r, 20));
  }
  return status;
}

describe('several nodes on one PostgreSQL', { skip: missingPostgres() }, () => {
  before(async () => {
    pgServer = await startPostgres();
    dbUrl = await pgServer.createDatabase();
    storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-shared-storage-'));
    sql = new pg.Client({ connectionString: dbUrl });
    await sql.connect();
  });
  after(async () => {
    for (const r of releases) r();
    for (const t of [...open]) await close(t).catch(() => undefined);
    await sql?.end();
    await pgServer?.stop();
    if (storageDir) fs.rmSync(storageDir, { recursive: true, force: true });
  });

  describe('garbage collection', () => {
    let a: TestApp;
    let b: TestApp;
    before(async () => {
      a = await node();
      b = await node();
    });

    test('started on both nodes at once: exactly one runs, the other answers 409', async () => {
      const hold = await holdShared(a); // keeps whichever run starts from getting past its start
      const [ra, rb] = await Promise.all([startGc(a), startGc(b)]);
      const statuses = [ra.status, rb.status].sort();
      assert.deepEqual(statuses, [201, 409], `${ra.status} ${JSON.stringify(ra.body)} / ${rb.status} ${JSON.stringify(rb.body)}`);
      const loser = ra.status === 409 ? ra : rb;
      assert.equal(loser.body.errors[0].code, 'CONFLICT');
      // Started again on the node that lost, while the other still runs: still 409.
      assert.equal((await startGc(ra.status === 409 ? a : b)).status, 409);
      hold.release();
      await hold.done;
      await Promise.all([a.berth.gc.idle(), b.berth.gc.idle()]);
      const winner = ra.status === 201 ? ra : rb;
      assert.equal((await api(a, 'get', `/system/gc/${runId(winner.headers.location)}`)).body.job_status, 'Success');
      // The lock is free again: the other node may run now.
      const next = await startGc(ra.status === 409 ? a : b);
      assert.equal(next.status, 201);
      await Promise.all([a.berth.gc.idle(), b.berth.gc.idle()]);
    });

    test('a stop asked on another node than the one running it stops the run', async () => {
      const hold = await holdShared(a);
      const res = await startGc(a);
      assert.equal(res.status, 201);
      const id = runId(res.headers.location);
      assert.equal(await waitForStatus(b, id, 'Running'), 'Running');
      assert.equal((await api(b, 'put', `/system/gc/${id}`)).status, 200);
      hold.release();
      await hold.done;
      await a.berth.gc.idle();
      const run = (await api(b, 'get', `/system/gc/${id}`)).body;
      assert.equal(run.job_status, 'Stopped');
      assert.match((await api(b, 'get', `/system/gc/${id}/log`)).text, /garbage collection stopped/);
    });

    test("a node that starts leaves another node's live run alone, and marks a dead node's run Stopped", async () => {
      const hold = await holdShared(a);
      const res = await startGc(a);
      assert.equal(res.status, 201);
      const id = runId(res.headers.location);
      assert.equal(await waitForStatus(a, id, 'Running'), 'Running');
      const c = await node(); // starts while a's run holds the cluster's run lock
      assert.equal((await api(c, 'get', `/system/gc/${id}`)).body.job_status, 'Running');
      await b.berth.gc.clearDeadRuns(); // a live node's periodic check, too, leaves it
      assert.equal((await api(c, 'get', `/system/gc/${id}`)).body.job_status, 'Running');
      hold.release();
      await hold.done;
      await a.berth.gc.idle();
      assert.equal((await api(c, 'get', `/system/gc/${id}`)).body.job_status, 'Success');
      await close(c);
      // A node killed in the middle of a run: its row says Running, its lock went with its connection.
      const dead = (await sql.query(`INSERT INTO "GcRun" ("kind", "status", "parameters", "updatedAt") VALUES ('MANUAL', 'Running', '{}', now()) RETURNING "id"`)).rows[0].id as number;
      const d = await node();
      assert.equal((await api(d, 'get', `/system/gc/${dead}`)).body.job_status, 'Stopped');
      await close(d);
      // Another dies; no node starts after it, but a live node's periodic check marks its run.
      const dead2 = (await sql.query(`INSERT INTO "GcRun" ("kind", "status", "parameters", "updatedAt") VALUES ('SCHEDULE', 'Running', '{}', now()) RETURNING "id"`)).rows[0].id as number;
      await b.berth.gc.clearDeadRuns();
      assert.equal((await api(a, 'get', `/system/gc/${dead2}`)).body.job_status, 'Stopped');
    });

    test('a run whose node lost its database connection stops, and another node may run', async () => {
      const hold = await holdShared(a);
      const res = await startGc(a);
      assert.equal(res.status, 201);
      const id = runId(res.headers.location);
      assert.equal(await waitForStatus(a, id, 'Running'), 'Running');
      // The connection holding the run lock dies (as when the node's network to the database breaks).
      const killed = await sql.query(`SELECT pg_terminate_backend(pid) AS ok FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1`, [RUN_SPACE]);
      assert.equal(killed.rowCount, 1);
      // The lock goes when the backend has exited (pg_terminate_backend only signals it).
      for (let i = 0; i < 250; i++) {
        const held = await sql.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1`, [RUN_SPACE]);
        if (!held.rowCount) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const other = await startGc(b); // the lock is free: b runs; a's run, told it lost the lock, stops at its next step
      assert.equal(other.status, 201, JSON.stringify(other.body));
      hold.release();
      await hold.done;
      await Promise.all([a.berth.gc.idle(), b.berth.gc.idle()]);
      assert.equal((await api(b, 'get', `/system/gc/${id}`)).body.job_status, 'Stopped');
      assert.equal((await api(a, 'get', `/system/gc/${runId(other.headers.location)}`)).body.job_status, 'Success');
    });

    test("a push on one node while another node's run collects keeps the image whole", async () => {
      // A layer pushed earlier and referred to by nothing: older than the run's window (0), it is garbage...
      const layer = bytes(5000, 77);
      const layerDigest = await new Oci(a.request, a.adminAuth).pushBlob('cluster/app', layer);
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed: 77 }));
      // ...until node e pushes it again. e stops right after placing the bytes, before recording them.
      let placed!: () => void;
      const atPlace = new Promise<void>((r) => (placed = r));
      let resume!: () => void;
      const resumed = new Promise<void>((r) => (resume = r));
      releases.push(() => resume());
      let paused = false;
      const e = await node(async (p) => {
        if (paused || !p.includes(layerDigest.slice(7))) return;
        paused = true;
        placed();
        await resumed;
      });
      const pusher = new Oci(e.request, e.adminAuth);
      const push = pusher.pushBlob('cluster/app', layer);
      await atPlace;
      const res = await startGc(a);
      assert.equal(res.status, 201);
      // The run on node a must wait for the push on node e (or, without a cluster lock, it ends first).
      let ended = false;
      void a.berth.gc.idle().then(() => (ended = true));
      const waited = await someoneWaitsForWrites(() => ended);
      resume();
      assert.equal(await push, layerDigest);
      assert.equal(await pusher.pushBlob('cluster/app', config), sha256(config));
      const manifest = {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
        layers: [{ mediaType: OCI_LAYER, digest: layerDigest, size: layer.length }],
      };
      const put = await pusher.putManifest('cluster/app', 'v1', manifest);
      assert.equal(put.status, 201, JSON.stringify(put.body));
      await a.berth.gc.idle();
      assert.equal((await api(a, 'get', `/system/gc/${runId(res.headers.location)}`)).body.job_status, 'Success');
      // Pulled back through both nodes, digest for digest.
      for (const t of [a, e]) {
        const oci = new Oci(t.request, t.adminAuth);
        const m = await oci.getBytes('/v2/cluster/app/manifests/v1').set('Accept', OCI_MANIFEST);
        assert.equal(m.status, 200);
        assert.equal(sha256(m.body), put.headers['docker-content-digest']);
        for (const d of [layerDigest, sha256(config)]) {
          const blob = await oci.getBytes(`/v2/cluster/app/blobs/${d}`);
          assert.equal(blob.status, 200, d);
          assert.equal(sha256(blob.body), d);
        }
      }
      assert.ok(fs.existsSync(blobFile(layerDigest)));
      assert.ok(waited, 'the run waited for the push on the other node');
      await close(e);
    });
  });

  describe('scheduled jobs', () => {
    let a: TestApp;
    let b: TestApp;
    before(async () => {
      a = await node();
      b = await node();
    });

    test('a slot runs on exactly one of two nodes, however many times each fires for it', async () => {
      const ran: string[] = [];
      const slots = Array.from({ length: 10 }, (_, i) => new Date(Date.UTC(2030, 0, 1, 0, i)));
      const fire = (t: TestApp, name: string, slot: Date) => t.berth.jobs.runSlot('test.job', slot, async () => void ran.push(`${name} ${slot.toISOString()}`));
      const results = await Promise.all(slots.flatMap((slot) => [fire(a, 'a', slot), fire(b, 'b', slot), fire(a, 'a', slot), fire(b, 'b', slot)]));
      assert.equal(results.filter(Boolean).length, slots.length);
      assert.equal(ran.length, slots.length, ran.join('\n'));
      for (const slot of slots) assert.equal(ran.filter((r) => r.endsWith(slot.toISOString())).length, 1, slot.toISOString());
      // A node that fires late, after the slot ran elsewhere, skips it too.
      assert.equal(await fire(b, 'b', slots[0]), false);
      const history = await sql.query(`SELECT "node" FROM "JobRun" WHERE "job" = 'test.job'`);
      assert.equal(history.rowCount, slots.length);
      assert.deepEqual(new Set(history.rows.map((r) => r.node)).size <= 2, true);
      for (const r of history.rows) assert.ok([a.berth.jobs.node, b.berth.jobs.node].includes(r.node), r.node);
    });

    test('a GC schedule fires on both nodes and each of its slots is claimed once', async () => {
      await Promise.all([a.berth.gc.idle(), b.berth.gc.idle()]);
      const before = (await sql.query(`SELECT count(*)::int AS n FROM "GcRun" WHERE "kind" = 'SCHEDULE'`)).rows[0].n as number;
      assert.equal((await api(a, 'put', '/system/gc/schedule').send({ schedule: { type: 'Custom', cron: '* * * * * *' }, parameters: { dry_run: true } })).status, 200);
      let slots: { slot: Date; node: string }[] = [];
      for (let i = 0; i < 300 && slots.length < 3; i++) {
        slots = (await sql.query(`SELECT "slot", "node" FROM "JobRun" WHERE "job" = 'gc.schedule' ORDER BY "slot"`)).rows;
        if (slots.length < 3) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal((await api(b, 'put', '/system/gc/schedule').send({ schedule: { type: 'None' } })).status, 200);
      await Promise.all([a.berth.gc.idle(), b.berth.gc.idle()]);
      assert.ok(slots.length >= 3, `slots: ${JSON.stringify(slots)}`);
      for (const s of slots) assert.equal(new Date(s.slot).getUTCMilliseconds(), 0, 'a slot is the scheduled second');
      const runs = (await sql.query(`SELECT count(*)::int AS n FROM "GcRun" WHERE "kind" = 'SCHEDULE'`)).rows[0].n - before;
      const claimed = (await sql.query(`SELECT count(*)::int AS n FROM "JobRun" WHERE "job" = 'gc.schedule'`)).rows[0].n as number;
      assert.ok(runs >= 1 && runs <= claimed, `${runs} runs for ${claimed} slots`);
    });

    test('a GC schedule saved on one node is armed on the other', async () => {
      assert.equal((await api(a, 'put', '/system/gc/schedule').send({ schedule: { type: 'Custom', cron: '0 30 2 * * 6' } })).status, 200);
      let s = '';
      for (let i = 0; i < 200 && s !== '0 30 2 * * 6'; i++) {
        s = (await api(b, 'get', '/system/gc/schedule')).body.schedule.cron;
        if (s !== '0 30 2 * * 6') await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(s, '0 30 2 * * 6');
      assert.ok((await api(b, 'get', '/system/gc/schedule')).body.schedule.next_scheduled_time);
      assert.equal((await api(b, 'put', '/system/gc/schedule').send({ schedule: { type: 'None' } })).status, 200);
    });
  });

  describe('quotas', () => {
    let a: TestApp;
    let b: TestApp;
    before(async () => {
      a = await node();
      b = await node();
    });

    const createProject = async (name: string, limit?: number) => {
      const res = await api(a, 'post', '/projects').send({ project_name: name, metadata: { public: 'false' }, ...(limit !== undefined ? { storage_limit: limit } : {}) });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return Number(/(\d+)$/.exec(res.headers.location)![1]);
    };
    const post = (t: TestApp, repo: string, data: Buffer) =>
      t.request.post(`/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`).set('Authorization', t.adminAuth).set('Content-Type', 'application/octet-stream').send(data);

    test('parallel pushes to one project through two nodes cannot together overshoot its limit', async () => {
      for (let round = 0; round < 5; round++) {
        await createProject(`quota${round}`, 3000);
        const [ra, rb] = await Promise.all([post(a, `quota${round}/x`, bytes(2000, 100 + round)), post(b, `quota${round}/y`, bytes(2000, 200 + round))]);
        assert.deepEqual([ra.status, rb.status].sort(), [201, 403], `round ${round}: ${JSON.stringify(ra.body)} ${JSON.stringify(rb.body)}`);
        const denied = ra.status === 403 ? ra : rb;
        assert.equal(denied.body.errors[0].code, 'DENIED');
      }
    });

    test('a limit set on one node holds on the other', async () => {
      const id = await createProject('later');
      // Node b pushes while the project has no limit (and keeps that in its cache)...
      assert.equal((await post(b, 'later/app', bytes(1500, 300))).status, 201);
      assert.equal((await api(b, 'get', `/quotas/${id}`)).body.hard.storage, -1);
      // ...then an admin sets one through node a.
      assert.equal((await api(a, 'put', `/quotas/${id}`).send({ hard: { storage: 2000 } })).status, 200);
      let hard = -1;
      for (let i = 0; i < 100 && hard !== 2000; i++) {
        hard = (await api(b, 'get', `/quotas/${id}`)).body.hard.storage;
        if (hard !== 2000) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(hard, 2000, 'node b sees the new limit within 2 s');
      const over = await post(b, 'later/app', bytes(1000, 301));
      assert.equal(over.status, 403, JSON.stringify(over.body));
      assert.equal((await api(a, 'get', `/quotas/${id}`)).body.used.storage, 1500);
    });
  });
});
