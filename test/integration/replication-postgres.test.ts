// Replication on PostgreSQL with two Berth nodes sharing the database and the blob directory: an
// execution running on one node is stopped through the other (the row carries the stop; the
// running node reads it at its next heartbeat), a schedule's slot runs on one node only, and the
// reaper fails only executions whose node stopped refreshing them, never a live one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { UpstreamClient } from '../../src/upstream/client.ts';
import { ReplicationStore } from '../../src/db/replication-store.ts';
import { FsDriver } from '../../src/storage/driver/fs.ts';
import { ADMIN_PASSWORD, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { missingDistribution, removeDistribution, startDistribution, type Distribution } from '../helpers/distribution.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';
import { bytes, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, sha256 } from '../helpers/oci.ts';

const skip = missingPostgres() || missingDistribution({ htpasswd: true });
const USER = 'pg-replicator';
const SECRET = 'Pg-repl-S3cret-8c';
const KEY = 'replication-postgres-test-key-0123456789';

let pgServer: TestPostgres;
let dist: Distribution;
let a: TestApp;
let b: TestApp;
let server: http.Server;
let aUrl: string;
let storageDir: string;
const clients: UpstreamClient[] = [];

const api = (t: TestApp, method: 'get' | 'post' | 'put' | 'delete', p: string, body?: unknown) => {
  const r = t.request[method](`/api/v2.0${p}`).set('Authorization', t.adminAuth);
  return body === undefined ? r : r.send(body as object);
};
const idOf = (res: { headers: Record<string, unknown> }) => Number(String(res.headers.location).split('/').pop());

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An image of one manifest with a 300 KiB layer, pushed to node A over HTTP. */
async function pushSlowImage(repo: string, tag: string): Promise<void> {
  const c = new UpstreamClient({ url: aUrl, timeoutMs: 10_000, credential: { username: 'admin', password: ADMIN_PASSWORD } });
  clients.push(c);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = bytes(300 * 1024, 77);
  for (const blob of [config, layer]) await c.pushBlob(repo, sha256(blob), blob.length, () => Readable.from([blob]));
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length }, layers: [{ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length }] }));
  await c.putManifest(repo, tag, body, OCI_MANIFEST);
}

describe('replication on PostgreSQL, two nodes', { skip }, () => {
  let policy: number;

  before(async () => {
    pgServer = await startPostgres();
    dist = await startDistribution({ users: { [USER]: SECRET } });
    storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-repl-pg-'));
    const url = await pgServer.createDatabase();
    a = await makeApp({ BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: KEY }, { ...REAL_ACCESS, driver: new FsDriver(storageDir) });
    b = await makeApp({ BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: KEY }, { ...REAL_ACCESS, driver: new FsDriver(storageDir) });
    server = http.createServer(a.berth.app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    aUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    assert.equal((await api(a, 'post', '/projects', { project_name: 'slow' })).status, 201);
    await pushSlowImage('slow/app', 'v1');
    const reg = await api(a, 'post', '/registries', { name: 'dist', type: 'docker-registry', url: dist.url, credential: { type: 'basic', access_key: USER, access_secret: SECRET } });
    const res = await api(a, 'post', '/replication/policies', { name: 'Slow-To-Dist', dest_registry: { id: idOf(reg) }, filters: [{ type: 'name', value: 'slow/**' }], speed: 1 });
    assert.equal(res.status, 201, res.text);
    policy = idOf(res);
  });

  after(async () => {
    for (const c of clients) c.close();
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
    await a?.close();
    await b?.close();
    if (dist) await removeDistribution(dist);
    await pgServer?.stop();
    if (storageDir) fs.rmSync(storageDir, { recursive: true, force: true });
  });

  test('the policy is seen by both nodes; the name search ignores case', async () => {
    const found = await api(b, 'get', '/replication/policies?q=name%3D~slow-to');
    assert.equal(found.status, 200);
    assert.deepEqual(found.body.map((p: { id: number }) => p.id), [policy]);
  });

  test('an execution running on node A is stopped through node B; the reaper leaves it alone while it lives', async () => {
    const exec = idOf(await api(a, 'post', '/replication/executions', { policy_id: policy }));
    await until('the task to start', async () => (await api(b, 'get', `/replication/executions/${exec}/tasks`)).body[0]?.status === 'InProgress');
    assert.deepEqual(await b.berth.replication.reap(), [], 'a live execution is not reaped');
    assert.equal((await api(b, 'put', `/replication/executions/${exec}`)).status, 200);
    await until('the task to stop on node A', async () => (await api(b, 'get', `/replication/executions/${exec}/tasks`)).body[0].status === 'Stopped');
    await a.berth.replication.settled(exec);
    const e = (await api(b, 'get', `/replication/executions/${exec}`)).body;
    assert.deepEqual([e.status, e.stopped, e.succeed], ['Stopped', 1, 0]);
  });

  test("a scheduled slot runs on one node; a dead node's execution is failed by the other", async () => {
    const res = await api(a, 'post', '/replication/policies', { name: 'nightly', dest_registry: { id: 1 }, filters: [{ type: 'name', value: 'none/**' }], trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 3 * * *' } } });
    assert.equal(res.status, 201, res.text);
    const id = idOf(res);
    const slot = new Date('2026-12-07T03:00:00Z');
    const ran = await Promise.all([a.berth.replication.fireSchedule(id, slot), b.berth.replication.fireSchedule(id, slot)]);
    assert.equal(ran.filter(Boolean).length, 1);
    const list = (await api(b, 'get', `/replication/executions?policy_id=${id}`)).body;
    assert.equal(list.length, 1);
    assert.equal(list[0].trigger, 'scheduled');

    const dead = await new ReplicationStore(a.berth.db).createExecution(id, 'manual', 'gone:1:abc', new Date(Date.now() - 5 * 60_000));
    assert.deepEqual(await b.berth.replication.reap(), [dead]);
    const e = (await api(a, 'get', `/replication/executions/${dead}`)).body;
    assert.equal(e.status, 'Failed');
    assert.ok(e.end_time);
  });
});
