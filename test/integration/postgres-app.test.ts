// Berth on PostgreSQL (BERTH_DATABASE_URL=postgresql://…) through createApp: a representative part
// of the registry and management API flows of the SQLite suites, against a real PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { Oci, OCI_INDEX, OCI_MANIFEST, bytes, sha256 } from '../helpers/oci.ts';
import pg from 'pg';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';
import { startServer } from '../helpers/server.ts';
import { PG_MIGRATIONS_DIR } from '../../src/db/migrate.ts';

let pgServer: TestPostgres;
let t: TestApp;
let oci: Oci;
const PW = 'Passw0rd!x';
/** Nodes on one database share BERTH_SECRET_KEY (it seals the shared token-signing key). */
const SECRET = 'postgres-app-test-secret-key-0123456789';

const api = (method: 'get' | 'post' | 'put' | 'delete', p: string, auth: string | null = t.adminAuth) => {
  const r = t.request[method](`/api/v2.0${p}`);
  return auth ? r.set('Authorization', auth) : r;
};

describe('Berth on PostgreSQL', { skip: missingPostgres() }, () => {
  before(async () => {
    pgServer = await startPostgres();
    t = await makeApp({ BERTH_DATABASE_URL: await pgServer.createDatabase(), BERTH_SECRET_KEY: SECRET }, REAL_ACCESS);
    oci = new Oci(t.request, t.adminAuth);
  });
  after(async () => {
    await t?.close();
    await pgServer?.stop();
  });

  test('the app runs on PostgreSQL, not on a SQLite file in the data directory', async () => {
    assert.match(t.berth.config.databaseUrl, /^postgresql:\/\//);
    const rows = await t.berth.db.$queryRawUnsafe<{ v: string }[]>('SELECT version() AS v');
    assert.match(rows[0].v, /^PostgreSQL/);
    assert.equal((await api('get', '/health', null)).status, 200);
  });

  test('push, pull by tag and digest, blob HEAD and GET', async () => {
    const img = await oci.pushImage('library/alpine', 'v1', 1);
    const byTag = await oci.getBytes('/v2/library/alpine/manifests/v1').set('Accept', OCI_MANIFEST);
    assert.equal(byTag.status, 200);
    assert.deepEqual(byTag.body, img.raw);
    assert.equal(byTag.headers['docker-content-digest'], img.digest);
    const byDigest = await oci.getBytes(`/v2/library/alpine/manifests/${img.digest}`).set('Accept', OCI_MANIFEST);
    assert.deepEqual(byDigest.body, img.raw);
    const head = await oci.head(`/v2/library/alpine/blobs/${img.layerDigest}`);
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers['content-length']), img.layer.length);
    const blob = await oci.getBytes(`/v2/library/alpine/blobs/${img.layerDigest}`);
    assert.deepEqual(blob.body, img.layer);
  });

  test('a chunked upload in two PATCHes completes', async () => {
    const data = bytes(70_000, 9);
    let loc = await oci.startUpload('library/chunked');
    const a = await oci.patch(loc).set('Content-Type', 'application/octet-stream').set('Content-Range', `0-39999`).send(data.subarray(0, 40_000));
    assert.equal(a.status, 202, JSON.stringify(a.body));
    loc = a.headers.location;
    const b = await oci.patch(loc).set('Content-Type', 'application/octet-stream').set('Content-Range', `40000-69999`).send(data.subarray(40_000));
    assert.equal(b.status, 202, JSON.stringify(b.body));
    loc = b.headers.location;
    const done = await oci.put(`${loc}${loc.includes('?') ? '&' : '?'}digest=${sha256(data)}`);
    assert.equal(done.status, 201, JSON.stringify(done.body));
    assert.deepEqual((await oci.getBytes(`/v2/library/chunked/blobs/${sha256(data)}`)).body, data);
  });

  test('tags list pages, catalog lists repositories', async () => {
    for (const tag of ['v2', 'v3', 'latest']) await oci.pushImage('library/alpine', tag, 1);
    const all = await oci.get('/v2/library/alpine/tags/list');
    assert.deepEqual(all.body, { name: 'library/alpine', tags: ['latest', 'v1', 'v2', 'v3'] });
    const page = await oci.get('/v2/library/alpine/tags/list?n=2&last=latest');
    assert.deepEqual(page.body.tags, ['v1', 'v2']);
    assert.match(page.headers.link, /last=v2/);
    const cat = await oci.get('/v2/_catalog');
    assert.deepEqual(cat.body.repositories, ['library/alpine', 'library/chunked']);
  });

  test('a multi-arch index and a referrer', async () => {
    const amd = await oci.pushImage('library/multi', 'amd', 11);
    const arm = await oci.pushImage('library/multi', 'arm', 12);
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [
      { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.raw.length, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: OCI_MANIFEST, digest: arm.digest, size: arm.raw.length, platform: { os: 'linux', architecture: 'arm64' } },
    ] };
    const raw = Buffer.from(JSON.stringify(index));
    assert.equal((await oci.putManifest('library/multi', 'v1', raw, OCI_INDEX)).status, 201);
    await oci.pushImage('library/multi', 'sig', 13, { artifactType: 'application/vnd.example.sig', subject: { mediaType: OCI_INDEX, digest: sha256(raw), size: raw.length } });
    const refs = await oci.get(`/v2/library/multi/referrers/${sha256(raw)}`);
    assert.equal(refs.status, 200);
    assert.deepEqual(refs.body.manifests.map((m: { artifactType: string }) => m.artifactType), ['application/vnd.example.sig']);
  });

  test('delete by digest: the manifest and its tags are gone', async () => {
    const img = await oci.pushImage('library/doomed', 'v1', 21);
    assert.equal((await oci.delete(`/v2/library/doomed/manifests/${img.digest}`)).status, 202);
    assert.equal((await oci.get(`/v2/library/doomed/manifests/${img.digest}`)).status, 404);
    assert.equal((await oci.get('/v2/library/doomed/manifests/v1')).status, 404);
    assert.deepEqual((await oci.get('/v2/library/doomed/tags/list')).body.tags, []);
    // a tag deleted alone
    await oci.pushImage('library/doomed', 'v2', 22);
    assert.equal((await oci.delete('/v2/library/doomed/manifests/v2')).status, 202);
    assert.equal((await oci.get('/v2/library/doomed/manifests/v2')).status, 404);
  });

  test('projects, users and members: a developer pushes, a guest only pulls', async () => {
    assert.equal((await api('post', '/projects').send({ project_name: 'team', metadata: { public: 'false' } })).status, 201);
    for (const u of ['dev', 'guest']) assert.equal((await api('post', '/users').send({ username: u, password: PW, email: `${u}@example.com`, realname: u })).status, 201);
    assert.equal((await api('post', '/projects/team/members').send({ role_id: 2, member_user: { username: 'dev' } })).status, 201);
    assert.equal((await api('post', '/projects/team/members').send({ role_id: 3, member_user: { username: 'guest' } })).status, 201);
    const dev = new Oci(t.request, basic('dev', PW));
    await dev.pushImage('team/app', 'v1', 31);
    const guest = new Oci(t.request, basic('guest', PW));
    assert.equal((await guest.get('/v2/team/app/manifests/v1')).status, 200);
    assert.equal((await guest.post('/v2/team/app/blobs/uploads/')).status, 403);
    const projects = await api('get', '/projects?name=team');
    assert.equal(projects.body[0].name, 'team');
    const members = await api('get', '/projects/team/members');
    const names = members.body.map((m: { entity_name: string }) => m.entity_name);
    assert.ok(names.includes('dev') && names.includes('guest'), JSON.stringify(names));
    const users = await api('get', '/users');
    assert.ok(users.body.some((u: { username: string }) => u.username === 'dev'));
  });

  test('a project robot pulls with its secret', async () => {
    const res = await api('post', '/robots').send({ name: 'ci', level: 'project', duration: 30, permissions: [{ kind: 'project', namespace: 'team', access: [{ resource: 'repository', action: 'pull' }] }] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const robot = new Oci(t.request, basic(res.body.name, res.body.secret));
    assert.equal((await robot.get('/v2/team/app/manifests/v1')).status, 200);
    assert.equal((await robot.post('/v2/team/app/blobs/uploads/')).status, 403);
    const list = await api('get', '/robots');
    assert.ok(list.body.some((r: { name: string }) => r.name === res.body.name));
  });

  test('a storage quota refuses a push over the limit', async () => {
    const res = await api('post', '/projects').send({ project_name: 'small', metadata: { public: 'false' }, storage_limit: 3000 });
    assert.equal(res.status, 201);
    await oci.pushBlob('small/a', bytes(2000, 41));
    const over = await oci.post(`/v2/small/a/blobs/uploads/?digest=${sha256(bytes(2000, 42))}`).set('Content-Type', 'application/octet-stream').send(bytes(2000, 42));
    assert.equal(over.status, 403, JSON.stringify(over.body));
    assert.equal(over.body.errors[0].code, 'DENIED');
  });

  test('two nodes on one database: concurrent pushes to a limited project never exceed its quota together', async () => {
    const url = t.berth.config.databaseUrl;
    const res = await api('post', '/projects').send({ project_name: 'shared', metadata: { public: 'false' }, storage_limit: 5000 });
    assert.equal(res.status, 201);
    const t2 = await makeApp({ BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: SECRET }, REAL_ACCESS);
    try {
      const nodes = [oci, new Oci(t2.request, t2.adminAuth)];
      const blobs = Array.from({ length: 12 }, (_, i) => bytes(1000, 100 + i));
      const statuses = await Promise.all(blobs.map((b, i) => nodes[i % 2].post(`/v2/shared/app${i % 3}/blobs/uploads/?digest=${sha256(b)}`).set('Content-Type', 'application/octet-stream').send(b).then((r) => r.status)));
      assert.deepEqual([...new Set(statuses)].sort(), [201, 403], JSON.stringify(statuses));
      assert.equal(statuses.filter((s) => s === 201).length, 5, JSON.stringify(statuses));
      const quotas = await api('get', '/quotas');
      const q = quotas.body.find((x: { ref: { name: string } }) => x.ref.name === 'shared');
      assert.equal(q.used.storage, 5000);
    } finally {
      await t2.close();
    }
  });

  test('pushes and deletes reach the audit log', async () => {
    await t.berth.audit.flush();
    const logs = await api('get', '/audit-logs?page_size=100');
    assert.equal(logs.status, 200);
    const ops = new Set(logs.body.map((l: { operation: string }) => l.operation));
    assert.ok(ops.has('push') && ops.has('delete'), JSON.stringify([...ops]));
  });

  test('connections the server drops are replaced: Berth keeps serving (an unhandled pool error would end the process)', async () => {
    const admin = new pg.Client({ connectionString: pgServer.url });
    await admin.connect();
    try {
      const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'berth' AND pid <> pg_backend_pid()`);
      assert.ok(killed.rowCount! > 0, 'Berth had connections open');
    } finally {
      await admin.end();
    }
    // Let the pool see the terminations of its idle connections.
    await new Promise((r) => setTimeout(r, 200));
    await oci.pushImage('library/after-drop', 'v1', 51);
    assert.deepEqual((await oci.get('/v2/library/after-drop/tags/list')).body.tags, ['v1']);
    assert.equal((await api('get', '/projects/library')).status, 200);
  });

  test('text PostgreSQL cannot hold (a NUL character) is a 400, not a 500', async () => {
    for (const [method, p] of [['get', '/projects/%00'], ['get', '/projects/%00/summary'], ['delete', '/projects/%00'], ['get', '/projects/library/repositories/%00'], ['get', '/projects/%00/repositories?q=name%3D~a']] as const) {
      const res = await api(method, p);
      assert.equal(res.status, 400, `${method} ${p}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.equal(res.body.errors[0].code, 'BAD_REQUEST');
    }
  });

  test('three apps created at once on a fresh database all start: the first admin and the default project are created once', async () => {
    const url = await pgServer.createDatabase();
    const started = await Promise.allSettled([1, 2, 3].map(() => makeApp({ BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: SECRET }, REAL_ACCESS)));
    try {
      for (const r of started) if (r.status === 'rejected') throw r.reason;
    } finally {
      for (const r of started) if (r.status === 'fulfilled') await r.value.close();
    }
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      assert.equal((await c.query(`SELECT 1 FROM "User" WHERE "username" = 'admin'`)).rowCount, 1);
      assert.equal((await c.query(`SELECT 1 FROM "Project" WHERE "name" = 'library'`)).rowCount, 1);
    } finally {
      await c.end();
    }
  });

  test('two Berth processes started at once on a fresh database both start (the first admin and the default project created once) and serve, and neither logs the password of the URL', async () => {
    const fresh = await pgServer.createDatabase();
    // trust authentication ignores the password, so a recognisable one can be looked for in the logs
    const url = fresh.replace('postgresql://postgres@', 'postgresql://postgres:Pg-Secret-4711@');
    const env = { BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: SECRET, BERTH_LOG_LEVEL: 'trace' };
    const started = await Promise.allSettled([startServer({ env }), startServer({ env })]);
    const running = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    try {
      for (const r of started) if (r.status === 'rejected') throw r.reason;
      const [a, b] = running;
      for (const s of [a, b]) {
        const res = await fetch(`${s.url}/v2/`, { headers: { Authorization: t.adminAuth } });
        assert.equal(res.status, 200);
      }
      const c = new pg.Client({ connectionString: fresh });
      await c.connect();
      try {
        const applied = await c.query('SELECT name FROM _berth_migrations');
        const dirs = fs.readdirSync(PG_MIGRATIONS_DIR, { withFileTypes: true }).filter((d) => d.isDirectory());
        assert.equal(applied.rowCount, dirs.length);
      } finally {
        await c.end();
      }
    } finally {
      for (const s of running) await s.stop();
    }
    for (const s of running) assert.ok(!s.output().includes('Pg-Secret-4711'), 'the password is not in the output');
  });

  test('pull counts are written', async () => {
    await t.berth.pulls.flush();
    const repo = await t.berth.db.repository.findUnique({ where: { name: 'library/alpine' } });
    assert.ok(repo!.pullCount >= 1);
  });
});
