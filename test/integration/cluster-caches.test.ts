// Caches correct on every node (issue 14, item 3): two Berth apps in this process on one real
// PostgreSQL and one shared blob directory. What one node changes, the other sees within a second:
// through LISTEN/NOTIFY, after its listening connection was killed (flush on reconnect), and through
// the version poll when an announcement never came.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { basic, makeApp, type TestApp } from '../helpers/app.ts';
import { Oci, OCI_MANIFEST } from '../helpers/oci.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';
import { openDatabase, pgSql } from '../../src/db/client.ts';
import { announce, PgChanges } from '../../src/db/pg-changes.ts';
import type { Topic } from '../../src/db/changes.ts';
import { FsDriver } from '../../src/storage/driver/fs.ts';

let pgServer: TestPostgres;

/** Polls `check` until it holds; fails after 2 s (the issue asks for 1 s). */
async function eventually(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`not seen within 2 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Ends the listening connection of a node from the server side (what a failover or a proxy does). */
async function killListener(url: string, nodeId: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`berth-listen-${nodeId}`]);
    return r.rowCount ?? 0;
  } finally {
    await c.end();
  }
}

describe('cluster caches on PostgreSQL', { skip: missingPostgres() }, () => {
  before(async () => {
    pgServer = await startPostgres();
  });
  after(async () => {
    await pgServer?.stop();
  });

  describe('PgChanges', () => {
    let url: string;
    let db: Awaited<ReturnType<typeof openDatabase>>;
    let a: PgChanges;
    let b: PgChanges;
    const seen: { node: string; topic: Topic; key: string | null; local: boolean }[] = [];
    const watch = (node: string, c: PgChanges) => {
      for (const topic of ['tags', 'settings'] as Topic[]) c.subscribe(topic, (key, local) => seen.push({ node, topic, key, local }));
    };

    before(async () => {
      url = await pgServer.createDatabase();
      db = await openDatabase(url);
      a = await PgChanges.open({ url, sql: pgSql(db)!, pollMs: 200 });
      b = await PgChanges.open({ url, sql: pgSql(db)!, pollMs: 200 });
      watch('a', a);
      watch('b', b);
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await db?.$disconnect();
    });

    test('an announcement runs the publisher\'s listeners at once and the other node\'s soon after, once each', async () => {
      seen.length = 0;
      assert.ok(a.live && b.live);
      const genB = b.generation('tags');
      const p = a.publish('tags', '7@latest');
      assert.deepEqual(seen, [{ node: 'a', topic: 'tags', key: '7@latest', local: true }]);
      await p;
      await eventually('b hears a', () => seen.some((s) => s.node === 'b'));
      await new Promise((resolve) => setTimeout(resolve, 300)); // a poll or two: no extra flush
      assert.deepEqual(seen, [
        { node: 'a', topic: 'tags', key: '7@latest', local: true },
        { node: 'b', topic: 'tags', key: '7@latest', local: false },
      ]);
      assert.equal(b.generation('tags'), genB + 1);
    });

    test('content caches are dropped on a timer even when nothing was announced (a node killed between its commit and its announcement)', async () => {
      const quiet = await PgChanges.open({ url, sql: pgSql(db)!, pollMs: 200, refreshMs: 150 });
      try {
        const heard: string[] = [];
        for (const topic of ['tags', 'manifests', 'repositories', 'credentials', 'settings'] as Topic[]) quiet.subscribe(topic, (key) => heard.push(`${topic}:${key}`));
        await eventually('a refresh', () => heard.includes('tags:null') && heard.includes('manifests:null') && heard.includes('repositories:null'));
        assert.ok(!heard.some((h) => h.startsWith('credentials') || h.startsWith('settings')), `only content topics: ${heard.join(' ')}`);
      } finally {
        await quiet.close();
      }
    });

    test('an announcement from a process that does not listen (a command-line tool) reaches every node', async () => {
      seen.length = 0;
      await announce(pgSql(db)!, 'settings');
      await eventually('both nodes hear it', () => seen.filter((s) => s.topic === 'settings' && s.key === null && !s.local).length === 2);
    });

    test('a killed listening connection: not live, then reconnected, and every topic flushed', async () => {
      seen.length = 0;
      assert.equal(await killListener(url, b.nodeId), 1);
      await eventually('b flushes after reconnecting', () => b.live && seen.some((s) => s.node === 'b' && s.topic === 'settings' && s.key === null));
      assert.ok(seen.some((s) => s.node === 'b' && s.topic === 'tags' && s.key === null));
      // And it hears announcements again.
      seen.length = 0;
      await a.publish('settings');
      await eventually('b hears a after the reconnect', () => seen.some((s) => s.node === 'b' && s.topic === 'settings'));
    });

    test('a listening connection that hangs without breaking (its server process stopped) is noticed by the self-ping and replaced', async (t) => {
      if (process.getuid?.() !== 0) {
        if (process.env.CI === 'true' || process.env.CI === '1') assert.fail('under CI this test runs as root (it stops a PostgreSQL server process)');
        return t.skip('needs root to stop a PostgreSQL server process');
      }
      const c = await PgChanges.open({ url, sql: pgSql(db)!, pingEveryMs: 100, pingTimeoutMs: 300 });
      const flushed: string[] = [];
      c.subscribe('access', (key) => flushed.push(String(key)));
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      let pid = 0;
      try {
        pid = (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [`berth-listen-${c.nodeId}`])).rows[0].pid;
        process.kill(pid, 'SIGSTOP');
        await eventually('the hung connection is given up', () => !c.live);
        await eventually('a new one listens, and the caches are flushed', () => c.live && flushed.includes('null'));
        const now = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> $2', [`berth-listen-${c.nodeId}`, pid]);
        assert.equal(now.rowCount, 1);
      } finally {
        if (pid) process.kill(pid, 'SIGCONT');
        await admin.end();
        await c.close();
      }
    });

    test('a version bump nobody announced is noticed by the poll and flushes that topic', async () => {
      seen.length = 0;
      await pgSql(db)!.query(`UPDATE "CacheEpoch" SET "version" = "version" + 1 WHERE "topic" = 'tags'`, []);
      await eventually('both nodes flush tags', () => seen.filter((s) => s.topic === 'tags' && s.key === null).length === 2);
      assert.ok(!seen.some((s) => s.topic === 'settings'));
    });
  });

  describe('two nodes on one database and one blob store', () => {
    let storageDir: string;
    let a: TestApp;
    let b: TestApp;
    let onA: Oci;
    let onB: Oci;
    const PW = 'Passw0rd!x';
    const api = (t: TestApp, method: 'get' | 'post' | 'put' | 'delete', p: string, auth: string | null = t.adminAuth) => {
      const r = t.request[method](`/api/v2.0${p}`);
      return auth ? r.set('Authorization', auth) : r;
    };
    const digestOn = async (t: TestApp, p: string, auth: string | null = t.adminAuth) => {
      const r = t.request.get(p).set('Accept', OCI_MANIFEST);
      const res = await (auth ? r.set('Authorization', auth) : r);
      return res.status === 200 ? (res.headers['docker-content-digest'] as string) : res.status;
    };

    before(async () => {
      const url = await pgServer.createDatabase();
      storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cluster-storage-'));
      // Both nodes: the same database, the same blob directory, the same secret key; Basic auth on
      // /v2 with the real access rules (the token service's key sharing is not what this tests).
      const env = { BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: 'cluster-caches-test-secret-key-0123456789' };
      a = await makeApp(env, { auth: 'basic', policy: undefined, driver: new FsDriver(storageDir) });
      b = await makeApp(env, { auth: 'basic', policy: undefined, driver: new FsDriver(storageDir) });
      onA = new Oci(a.request, a.adminAuth);
      onB = new Oci(b.request, b.adminAuth);
    });
    after(async () => {
      await a?.close();
      await b?.close();
      if (storageDir) fs.rmSync(storageDir, { recursive: true, force: true });
    });

    test('an image pushed through one node is pulled through the other', async () => {
      assert.ok(a.berth.changes.live && b.berth.changes.live);
      const img = await onA.pushImage('library/app', 'v1', 1);
      const res = await onB.getBytes('/v2/library/app/manifests/v1').set('Accept', OCI_MANIFEST);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, img.raw);
      assert.equal((await onB.head(`/v2/library/app/blobs/${img.layerDigest}`)).status, 200);
    });

    test('a tag moved on one node: the other serves the new digest', async () => {
      const first = await onA.pushImage('library/moving', 'latest', 2);
      // Node B reads, and caches, the tag and the manifest.
      assert.equal(await digestOn(b, '/v2/library/moving/manifests/latest'), first.digest);
      assert.equal(await digestOn(b, '/v2/library/moving/manifests/latest'), first.digest);
      const second = await onA.pushImage('library/moving', 'latest', 3);
      assert.notEqual(second.digest, first.digest);
      await eventually('B serves the moved tag', async () => (await digestOn(b, '/v2/library/moving/manifests/latest')) === second.digest);
      await eventually('B lists the tag once', async () => JSON.stringify((await onB.get('/v2/library/moving/tags/list')).body.tags) === '["latest"]');
    });

    test('a manifest deleted on one node is a 404 on the other, and so is its tag', async () => {
      const img = await onA.pushImage('library/doomed', 'v1', 4);
      assert.equal(await digestOn(b, `/v2/library/doomed/manifests/${img.digest}`), img.digest);
      assert.equal(await digestOn(b, '/v2/library/doomed/manifests/v1'), img.digest);
      assert.deepEqual((await onB.get('/v2/library/doomed/tags/list')).body.tags, ['v1']);
      assert.equal((await onA.delete(`/v2/library/doomed/manifests/${img.digest}`)).status, 202);
      await eventually('B answers 404 by digest', async () => (await digestOn(b, `/v2/library/doomed/manifests/${img.digest}`)) === 404);
      assert.equal(await digestOn(b, '/v2/library/doomed/manifests/v1'), 404);
      assert.deepEqual((await onB.get('/v2/library/doomed/tags/list')).body.tags, []);
    });

    test('a repository deleted through the API of one node is gone on the other, from /v2 and from the lists', async () => {
      await onA.pushImage('library/gone', 'v1', 5);
      await onA.pushImage('library/stays', 'v1', 6);
      const names = async () => ((await api(b, 'get', '/projects/library/repositories?page_size=100')).body as { name: string }[]).map((r) => r.name);
      assert.ok((await names()).includes('library/gone'));
      assert.equal(await digestOn(b, '/v2/library/gone/manifests/v1'), (await onA.getBytes('/v2/library/gone/manifests/v1').set('Accept', OCI_MANIFEST)).headers['docker-content-digest']);
      const total = Number((await api(b, 'get', '/projects/library/repositories?page_size=1')).headers['x-total-count']);
      assert.equal((await api(a, 'delete', '/projects/library/repositories/gone')).status, 200);
      await eventually('B answers 404', async () => (await digestOn(b, '/v2/library/gone/manifests/v1')) === 404);
      await eventually('B no longer lists it', async () => !(await names()).includes('library/gone'));
      assert.ok((await names()).includes('library/stays'));
      assert.equal(Number((await api(b, 'get', '/projects/library/repositories?page_size=1')).headers['x-total-count']), total - 1);
    });

    test('a push on one node reorders the other node\'s remembered pages by update time at once; its statistics follow', async () => {
      assert.equal((await api(a, 'post', '/projects').send({ project_name: 'order', metadata: { public: 'false' } })).status, 201);
      for (const [i, n] of ['s', 'q', 't', 'p', 'r'].entries()) await onA.pushImage(`order/${n}`, 'v1', 40 + i); // created in this order
      const pageOn = async (t: TestApp, sort: string, n: number) =>
        ((await api(t, 'get', `/projects/order/repositories?sort=${sort}&page=${n}&page_size=2`)).body as { name: string }[]).map((r) => r.name);
      const walk = async (t: TestApp, sort: string) => [...(await pageOn(t, sort, 3)), ...(await pageOn(t, sort, 2)), ...(await pageOn(t, sort, 1))];
      assert.deepEqual(await walk(b, '-update_time'), ['order/s', 'order/t', 'order/q', 'order/r', 'order/p']); // pages 3, 2, 1
      assert.deepEqual(await walk(b, '-update_time'), ['order/s', 'order/t', 'order/q', 'order/r', 'order/p'], 'again, from the remembered positions');
      const stats = async () => (await api(b, 'get', '/statistics')).body as { private_repo_count: number; private_project_count: number };
      const before = await stats();
      await onA.pushImage('order/p', 'v2', 50);
      await onA.pushImage('order/u', 'v1', 51);
      await eventually('B lists the pushed repositories first', async () => JSON.stringify(await pageOn(b, '-update_time', 1)) === JSON.stringify(['order/u', 'order/p']));
      assert.deepEqual(await walk(b, '-update_time'), ['order/q', 'order/s', 'order/r', 'order/t', 'order/u', 'order/p']);
      assert.deepEqual(await walk(b, 'creation_time'), ['order/r', 'order/u', 'order/t', 'order/p', 'order/s', 'order/q']);
      await eventually('B counts the new repository', async () => (await stats()).private_repo_count === before.private_repo_count + 1);
      assert.equal((await api(a, 'delete', '/projects/order/repositories/u')).status, 200);
      await eventually('B counts the deletion', async () => (await stats()).private_repo_count === before.private_repo_count);
      await eventually('B no longer lists it', async () => JSON.stringify(await pageOn(b, '-update_time', 1)) === JSON.stringify(['order/p', 'order/r']));
      assert.deepEqual(await walk(b, '-update_time'), ['order/s', 'order/t', 'order/q', 'order/p', 'order/r']);
    });

    test('a project made private on one node: anonymous pulls through the other are refused', async () => {
      assert.equal((await api(a, 'post', '/projects').send({ project_name: 'open', metadata: { public: 'true' } })).status, 201);
      const img = await onA.pushImage('open/app', 'v1', 7);
      assert.equal(await digestOn(b, '/v2/open/app/manifests/v1', null), img.digest);
      assert.equal((await api(a, 'put', '/projects/open').send({ metadata: { public: 'false' } })).status, 200);
      await eventually('B refuses the anonymous pull', async () => [401, 403, 404].includes((await digestOn(b, '/v2/open/app/manifests/v1', null)) as number));
    });

    test('a member removed on one node loses access on the other', async () => {
      assert.equal((await api(a, 'post', '/projects').send({ project_name: 'team', metadata: { public: 'false' } })).status, 201);
      assert.equal((await api(a, 'post', '/users').send({ username: 'dev', password: PW, email: 'dev@example.com', realname: 'dev' })).status, 201);
      assert.equal((await api(a, 'post', '/projects/team/members').send({ role_id: 2, member_user: { username: 'dev' } })).status, 201);
      const img = await onA.pushImage('team/app', 'v1', 8);
      assert.equal(await digestOn(b, '/v2/team/app/manifests/v1', basic('dev', PW)), img.digest);
      const members = (await api(a, 'get', '/projects/team/members')).body as { id: number; entity_name: string }[];
      const dev = members.find((m) => m.entity_name === 'dev')!;
      assert.equal((await api(a, 'delete', `/projects/team/members/${dev.id}`)).status, 200);
      await eventually('B refuses dev', async () => (await digestOn(b, '/v2/team/app/manifests/v1', basic('dev', PW))) !== img.digest);
    });

    test('a password changed on one node: the other refuses the old one and takes the new one', async () => {
      assert.equal((await api(a, 'post', '/users').send({ username: 'mover', password: PW, email: 'mover@example.com', realname: 'mover' })).status, 201);
      const me = await api(b, 'get', '/users/current', basic('mover', PW));
      assert.equal(me.status, 200);
      const NEW = 'N3w-Passw0rd!';
      assert.equal((await api(a, 'put', `/users/${me.body.user_id}/password`).send({ new_password: NEW })).status, 200);
      await eventually('B refuses the old password', async () => (await api(b, 'get', '/users/current', basic('mover', PW))).status === 401);
      assert.equal((await api(b, 'get', '/users/current', basic('mover', NEW))).status, 200);
    });

    test('a robot deleted on one node: the other refuses its secret', async () => {
      const res = await api(a, 'post', '/robots').send({ name: 'ci', level: 'system', duration: 30, permissions: [{ kind: 'project', namespace: 'library', access: [{ resource: 'repository', action: 'pull' }] }] });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const robot = basic(res.body.name, res.body.secret);
      assert.equal((await b.request.get('/v2/').set('Authorization', robot)).status, 200);
      assert.equal(await digestOn(b, '/v2/library/app/manifests/v1', robot), (await onA.getBytes('/v2/library/app/manifests/v1').set('Accept', OCI_MANIFEST)).headers['docker-content-digest']);
      assert.equal((await api(a, 'delete', `/robots/${res.body.id}`)).status, 200);
      await eventually('B refuses the robot', async () => (await b.request.get('/v2/').set('Authorization', robot)).status === 401);
    });

    test('a setting changed on one node applies on the other', async () => {
      assert.equal((await api(a, 'post', '/users').send({ username: 'maker', password: PW, email: 'maker@example.com', realname: 'maker' })).status, 201);
      const create = (name: string) => api(b, 'post', '/projects', basic('maker', PW)).send({ project_name: name, metadata: { public: 'false' } });
      assert.equal((await create('refused')).status, 403);
      assert.equal((await api(a, 'put', '/configurations').send({ project_creation_restriction: 'everyone' })).status, 200);
      await eventually('B lets everyone create projects', async () => (await api(b, 'get', '/configurations')).body.project_creation_restriction?.value === 'everyone');
      assert.equal((await create('allowed')).status, 201);
      assert.equal((await api(a, 'put', '/configurations').send({ project_creation_restriction: 'adminonly' })).status, 200);
      await eventually('B is back to admins only', async () => (await create(`late-${Date.now()}`)).status === 403);
    });

    test('the other node\'s listening connection killed: what changes meanwhile is still seen there', async () => {
      const first = await onA.pushImage('library/gap', 'latest', 9);
      assert.equal(await digestOn(b, '/v2/library/gap/manifests/latest'), first.digest);
      const nodeB = b.berth.changes as PgChanges;
      assert.equal(await killListener(b.berth.config.databaseUrl, nodeB.nodeId), 1);
      // Right away, while B may not be listening: the announcement may be lost.
      const second = await onA.pushImage('library/gap', 'latest', 10);
      await eventually('B serves the new digest', async () => (await digestOn(b, '/v2/library/gap/manifests/latest')) === second.digest);
      await eventually('B listens again', () => nodeB.live);
      const third = await onA.pushImage('library/gap', 'latest', 11);
      await eventually('B serves the next digest', async () => (await digestOn(b, '/v2/library/gap/manifests/latest')) === third.digest);
    });

    test('an announcement that never came: the version poll flushes the caches on the other node', async () => {
      const first = await onA.pushImage('library/silent', 'latest', 12);
      assert.equal(await digestOn(b, '/v2/library/silent/manifests/latest'), first.digest);
      // The tag moved behind both nodes' backs, with only the topic's version bumped (as a writer
      // whose NOTIFY was lost would leave it).
      const second = await onA.pushImage('library/silent', 'v2', 13);
      assert.equal(await digestOn(b, '/v2/library/silent/manifests/latest'), first.digest);
      const sql = pgSql(a.berth.db)!;
      const repo = await sql.query<{ id: number }>('SELECT "id" FROM "Repository" WHERE "name" = $1', ['library/silent']);
      await sql.query('UPDATE "Tag" SET "digest" = $1 WHERE "repositoryId" = $2 AND "name" = $3', [second.digest, repo.rows[0].id, 'latest']);
      await sql.query(`UPDATE "CacheEpoch" SET "version" = "version" + 1 WHERE "topic" = 'tags'`, []);
      await eventually('B serves the new digest', async () => (await digestOn(b, '/v2/library/silent/manifests/latest')) === second.digest);
    });
  });
});
