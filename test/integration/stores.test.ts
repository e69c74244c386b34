// The store suite: the same cases against SQLite and a real PostgreSQL (test/helpers/pg.ts), the way
// the driver conformance suite runs against every storage driver. Each case opens a fresh database
// through openDatabase, as the server does (migrations included).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, dialectOf, type Db } from '../../src/db/client.ts';
import { RegistryStore, type NewManifest } from '../../src/db/registry-store.ts';
import { MIGRATIONS_DIR, PG_MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { QuotaService } from '../../src/services/quotas.ts';
import { AuditService } from '../../src/services/audit.ts';
import { PullStats } from '../../src/services/pull-stats.ts';
import { SettingStore } from '../../src/db/setting-store.ts';
import { UserStore } from '../../src/db/user-store.ts';
import { RobotStore } from '../../src/db/robot-store.ts';
import { ProjectStore } from '../../src/db/project-store.ts';
import { AppError } from '../../src/lib/errors.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';

// A process far from UTC: timestamps written by Berth's own statements must still read back right.
process.env.TZ = 'America/Los_Angeles';

const quiet = { warn() {} };
const D = (c: string) => 'sha256:' + c.repeat(64);

interface Engine {
  name: string;
  skip: string | false;
  /** A URL for a new, empty database. */
  fresh(): Promise<string>;
  migrationsDir: string;
}

let pgServer: TestPostgres | null = null;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-stores-'));
let n = 0;
const pgSkip = missingPostgres();
const engines: Engine[] = [
  { name: 'sqlite', skip: false, fresh: async () => `file:${path.join(tmp, `db${++n}`, 'berth.db')}`, migrationsDir: MIGRATIONS_DIR },
  { name: 'postgresql', skip: pgSkip, fresh: () => pgServer!.createDatabase(), migrationsDir: PG_MIGRATIONS_DIR },
];

before(async () => {
  if (!pgSkip) pgServer = await startPostgres();
});
after(async () => {
  await pgServer?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function manifest(c: string, over: Partial<NewManifest> = {}): NewManifest {
  const content = Buffer.from(JSON.stringify({ schemaVersion: 2, c }));
  return { digest: D(c), mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: null, configType: 'application/vnd.oci.image.config.v1+json', size: content.length, subject: null, annotations: null, refs: [D('1'), D('2')], content, ...over };
}

for (const engine of engines) {
  describe(`stores on ${engine.name}`, { skip: engine.skip }, () => {
    let db: Db;
    let store: RegistryStore;
    let projectId: number;
    let repo: number;
    before(async () => {
      db = await openDatabase(await engine.fresh());
      store = new RegistryStore(db);
      projectId = (await db.project.create({ data: { name: 'library' } })).id;
      repo = await store.ensureRepository('library/alpine', projectId);
    });
    after(async () => {
      store?.close();
      await db?.$disconnect();
    });

    test('the dialect matches the engine', () => {
      assert.equal(dialectOf(db).engine, engine.name);
    });

    test('ensureRepository creates once and returns the same id', async () => {
      assert.equal(await store.ensureRepository('library/alpine', projectId), repo);
      assert.equal(await store.findRepositoryId('library/alpine'), repo);
      assert.equal(await store.findRepositoryId('library/none'), null);
      const again = await Promise.all([1, 2, 3, 4].map(() => store.ensureRepository('library/raced', projectId)));
      assert.equal(new Set(again).size, 1);
    });

    test('a linked blob of more than 4 GiB reads back with its exact size', async () => {
      await store.linkBlob(repo, D('1'), 5_000_000_123);
      await store.linkBlob(repo, D('2'), 300);
      assert.equal(await store.linkedBlobSize(repo, D('1')), 5_000_000_123);
      assert.equal(await store.linkedBlobSize(repo, D('9')), null);
      assert.deepEqual(await store.linkedDigests(repo, [D('1'), D('2'), D('9')]), new Set([D('1'), D('2')]));
      assert.deepEqual(await store.repositoriesWithBlob(D('1')), [{ name: 'library/alpine', size: 5_000_000_123 }]);
    });

    test('a manifest put with a tag reads back whole: record, bytes, tag, and times in UTC', async () => {
      const before = Date.now();
      const m = manifest('a');
      await store.putManifest(repo, m, 'latest');
      const rec = await store.findManifest(repo, m.digest);
      assert.deepEqual(rec, { digest: m.digest, mediaType: m.mediaType, artifactType: null, size: m.size, subject: null, annotations: null, refs: [D('1'), D('2')] });
      assert.deepEqual(await store.manifestContent(m.digest), m.content);
      assert.equal(await store.findTag(repo, 'latest'), m.digest);
      assert.deepEqual(await store.manifestDigests(repo, [m.digest, D('f')]), new Set([m.digest]));
      // The time Berth's own statement wrote is the time Prisma reads (no time-zone shift).
      const row = await db.manifest.findUnique({ where: { repositoryId_digest: { repositoryId: repo, digest: m.digest } } });
      assert.ok(Math.abs(row!.pushedAt.getTime() - before) < 60_000, `pushedAt ${row!.pushedAt.toISOString()} is not now`);
      const tag = await db.tag.findUnique({ where: { repositoryId_name: { repositoryId: repo, name: 'latest' } } });
      assert.ok(Math.abs(tag!.updatedAt.getTime() - before) < 60_000);
    });

    test('a tag moves to the manifest pushed last', async () => {
      await store.putManifest(repo, manifest('b'), 'latest');
      assert.equal(await store.findTag(repo, 'latest'), D('b'));
    });

    test('concurrent pushes are group-committed and all land', async () => {
      const names = Array.from({ length: 40 }, (_, i) => `t${String(i).padStart(2, '0')}`);
      await Promise.all(names.map((t, i) => store.putManifest(repo, manifest(String.fromCharCode(0x6b + (i % 6))), t)));
      const tags = await store.listTags(repo, undefined, 1000);
      for (const t of names) assert.ok(tags.includes(t), t);
    });

    test('tags and repositories page in lexical order (keyset)', async () => {
      const first = await store.listTags(repo, undefined, 3);
      assert.deepEqual(first, ['latest', 't00', 't01']);
      assert.deepEqual(await store.listTags(repo, 't01', 2), ['t02', 't03']);
      const other = (await db.project.create({ data: { name: 'other' } })).id;
      await store.ensureRepository('other/app', other);
      await store.ensureRepository('zzz/none', null);
      assert.deepEqual(await store.listRepositories(undefined, 100), ['library/alpine', 'library/raced', 'other/app', 'zzz/none']);
      assert.deepEqual(await store.listRepositories('library/raced', 100), ['other/app', 'zzz/none']);
      assert.deepEqual(await store.listRepositories(undefined, 100, [projectId]), ['library/alpine', 'library/raced']);
      assert.deepEqual(await store.listRepositories('library/alpine', 100, [projectId, other]), ['library/raced', 'other/app']);
      assert.deepEqual(await store.listRepositories(undefined, 100, []), []);
    });

    test('referrers by subject, optionally by artifact type', async () => {
      const subject = D('a');
      await store.putManifest(repo, manifest('c', { subject, artifactType: 'application/x-sig' }), null);
      await store.putManifest(repo, manifest('d', { subject, artifactType: 'application/x-sbom' }), null);
      assert.deepEqual((await store.referrers(repo, subject)).map((m) => m.digest), [D('c'), D('d')]);
      assert.deepEqual((await store.referrers(repo, subject, 'application/x-sbom')).map((m) => m.digest), [D('d')]);
    });

    test('deleting a manifest removes its tags; deleting a tag and a link', async () => {
      await store.putManifest(repo, manifest('e'), 'gone');
      assert.deepEqual(await store.deleteManifest(repo, D('e')), ['gone']);
      assert.equal(await store.findManifest(repo, D('e')), null);
      assert.equal(await store.findTag(repo, 'gone'), null);
      assert.equal(await store.deleteManifest(repo, D('e')), null);
      assert.equal(await store.deleteTag(repo, 't00'), true);
      assert.equal(await store.deleteTag(repo, 't00'), false);
      assert.equal(await store.unlinkBlob(repo, D('2')), true);
      assert.equal(await store.linkedBlobSize(repo, D('2')), null);
    });

    test('quota usage counts distinct bytes of the project, above 4 GiB, as a number', async () => {
      const quotas = new QuotaService({ db, projectId: async () => projectId });
      const used = await quotas.usage(projectId);
      const blobs = await db.blob.findMany({ where: { links: { some: { repository: { projectId } } } } });
      const expected = blobs.reduce((s, b) => s + Number(b.size), 0);
      assert.equal(typeof used, 'number');
      assert.ok(used > 5_000_000_000);
      assert.equal(used, expected);
      await quotas.setLimit(projectId, 6_000_000_000);
      assert.equal(await quotas.limit(projectId), 6_000_000_000);
      // A blob the project holds is admitted whatever its size; a new one over the limit is not.
      let wrote = 0;
      await quotas.admit('library/alpine', D('1'), 5_000_000_123, async () => void wrote++);
      await assert.rejects(quotas.admit('library/alpine', D('7'), 2_000_000_000, async () => void wrote++), /Quota exceeded/);
      assert.equal(wrote, 1);
    });

    test('audit events are written in one batch with their times, and purged by age and count', async () => {
      const audit = new AuditService(db, { retentionDays: 1, maxRows: 3, log: quiet });
      const t0 = Date.now();
      for (let i = 0; i < 5; i++) audit.record({ username: `u${i}`, operation: 'pull', resource: 'library/alpine:latest', resourceType: 'artifact', clientAddress: i === 0 ? '10.0.0.1' : undefined });
      await audit.flush();
      const rows = await db.auditLog.findMany({ orderBy: { id: 'asc' } });
      assert.deepEqual(rows.map((r) => r.username), ['u0', 'u1', 'u2', 'u3', 'u4']);
      assert.equal(rows[0].clientAddress, '10.0.0.1');
      assert.equal(rows[1].clientAddress, null);
      for (const r of rows) assert.ok(Math.abs(r.createdAt.getTime() - t0) < 60_000, `createdAt ${r.createdAt.toISOString()} is not now`);
      assert.equal(await audit.purge(), 2); // beyond maxRows: the two oldest
      assert.equal(await audit.purge(t0 + 2 * 86_400_000), 3); // all older than a day
      await audit.close();
    });

    test('pull counts add up per repository and pull times land on the pulled manifests', async () => {
      const pulls = new PullStats(db, quiet, 60_000);
      const t0 = Date.now();
      const before = (await db.repository.findUnique({ where: { name: 'library/alpine' } }))!.pullCount;
      for (let i = 0; i < 3; i++) pulls.record('library/alpine', D('a'));
      pulls.record('library/alpine', undefined);
      pulls.record('library/none', D('a'));
      await pulls.flush();
      pulls.record('library/alpine', undefined);
      await pulls.close();
      assert.equal((await db.repository.findUnique({ where: { name: 'library/alpine' } }))!.pullCount, before + 5);
      const m = await db.manifest.findUnique({ where: { repositoryId_digest: { repositoryId: repo, digest: D('a') } } });
      assert.ok(m!.pulledAt && Math.abs(m!.pulledAt.getTime() - t0) < 60_000);
      const other = await db.manifest.findUnique({ where: { repositoryId_digest: { repositoryId: repo, digest: D('b') } } });
      assert.equal(other!.pulledAt, null);
    });

    test('pull counts whose write fails are kept and written with the next batch', async () => {
      let failures = 1;
      // The database refuses one batch (busy, unreachable), then works again.
      const flaky = new Proxy(db, { get: (target, key, recv) => (key === '$transaction' && failures-- > 0 ? () => Promise.reject(new Error('database busy')) : Reflect.get(target, key, recv)) });
      const pulls = new PullStats(flaky, quiet, 60_000);
      const before = (await db.repository.findUnique({ where: { name: 'library/alpine' } }))!.pullCount;
      pulls.record('library/alpine', D('a'));
      pulls.record('library/alpine', D('a'));
      await pulls.flush();
      assert.equal((await db.repository.findUnique({ where: { name: 'library/alpine' } }))!.pullCount, before, 'the failed batch wrote nothing');
      pulls.record('library/alpine', undefined);
      await pulls.close();
      assert.equal((await db.repository.findUnique({ where: { name: 'library/alpine' } }))!.pullCount, before + 3, 'nothing was lost');
    });

    test('two starters at once apply the migrations once', async () => {
      const url = await engine.fresh();
      const [a, b] = await Promise.all([openDatabase(url), openDatabase(url)]);
      try {
        const names = fs.readdirSync(engine.migrationsDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
        const rows = await a.$queryRawUnsafe<{ name: string }[]>('SELECT name FROM _berth_migrations ORDER BY name');
        assert.deepEqual(rows.map((r) => r.name), names);
        // Both clients work on the one schema.
        await a.project.create({ data: { name: 'p1' } });
        assert.equal((await b.project.findUnique({ where: { name: 'p1' } }))?.name, 'p1');
        // A third start finds nothing to do.
        const c = await openDatabase(url);
        assert.equal((await c.$queryRawUnsafe<unknown[]>('SELECT name FROM _berth_migrations')).length, names.length);
        await c.$disconnect();
      } finally {
        await a.$disconnect();
        await b.$disconnect();
      }
    });
  });
}

// The stores of settings, users, robots and projects (their services' only way to the database).
for (const engine of engines) {
  describe(`account and project stores on ${engine.name}`, { skip: engine.skip }, () => {
    let db: Db;
    let url: string;
    before(async () => {
      url = await engine.fresh();
      db = await openDatabase(url);
    });
    after(async () => {
      await db?.$disconnect();
    });

    test('settings: saved, replaced, read back; a scrubbed rewrite leaves no old value in the SQLite file', async () => {
      const settings = new SettingStore(db);
      assert.deepEqual(await settings.all(), []);
      await settings.save([{ key: 'ldap_url', value: '"ldap://a"' }, { key: 'ldap_search_password', value: '"plain-old-secret"' }]);
      await settings.save([{ key: 'ldap_url', value: '"ldap://b"' }]);
      const byKey = (rows: { key: string; value: string }[]) => Object.fromEntries(rows.map((r) => [r.key, r.value]));
      assert.deepEqual(byKey(await settings.all()), { ldap_url: '"ldap://b"', ldap_search_password: '"plain-old-secret"' });
      await settings.replaceScrubbed([{ key: 'ldap_search_password', value: '"sealed"' }]);
      assert.deepEqual(byKey(await settings.all()), { ldap_url: '"ldap://b"', ldap_search_password: '"sealed"' });
      if (engine.name === 'sqlite') {
        const file = url.replace(/^file:/, '');
        const bytes = Buffer.concat([file, `${file}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)));
        assert.equal(bytes.includes('plain-old-secret'), false, 'the old value is still in the database file');
      }
      // A rewrite of a key never saved changes nothing and fails as a whole.
      await assert.rejects(settings.replaceScrubbed([{ key: 'ldap_url', value: '"x"' }, { key: 'nope', value: '"y"' }]));
      assert.equal(byKey(await settings.all()).ldap_url, '"ldap://b"');
    });

    /** An AppError CONFLICT (409) with this message. */
    const conflict = (message: string) => (e: unknown) => e instanceof AppError && e.code === 'CONFLICT' && e.status === 409 && e.message === message;

    test('users: a taken name is a CONFLICT (also when two create at once); search ignores case and pages by name', async () => {
      const users = new UserStore(db);
      for (const name of ['bob', 'Alice', 'malice', 'carol', 'ALINE']) await users.createLocal({ username: name, passwordHash: `h-${name}`, email: `${name}@x` });
      await assert.rejects(users.createLocal({ username: 'bob', passwordHash: 'x' }), conflict('username already exists'));
      const raced = await Promise.allSettled([1, 2, 3].map(() => users.createLocal({ username: 'dave', passwordHash: 'x' })));
      assert.equal(raced.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of raced) if (r.status === 'rejected') assert.ok(conflict('username already exists')(r.reason), String(r.reason));
      const all = await users.page({ page: 1, pageSize: 100 });
      assert.equal(all.total, 6);
      const hits = await users.page({ nameContains: 'ALI', page: 1, pageSize: 2 });
      assert.equal(hits.total, 3);
      const names = hits.items.map((u) => u.username);
      assert.equal(names.length, 2);
      const next = await users.page({ nameContains: 'ALI', page: 2, pageSize: 2 });
      assert.deepEqual([...names, ...next.items.map((u) => u.username)].map((n) => n.toLowerCase()).sort(), ['alice', 'aline', 'malice']);
      assert.ok(!('passwordHash' in hits.items[0]), 'a profile carries no password hash');
      // LIKE's wildcards in a search are plain characters (Prisma's contains passes them through).
      assert.equal((await users.page({ nameContains: '%', page: 1, pageSize: 100 })).total, 0, '% matches no name without a %');
      assert.equal((await users.page({ nameContains: '_', page: 1, pageSize: 100 })).total, 0, '_ matches no name without a _');
      await users.createLocal({ username: 'under_score', passwordHash: 'x' });
      assert.deepEqual((await users.page({ nameContains: 'R_S', page: 1, pageSize: 100 })).items.map((u) => u.username), ['under_score'], 'a literal _ is found, any case');
      await users.delete((await users.credentialsByName('under_score'))!.id);
      const bob = (await users.credentialsByName('bob'))!;
      assert.equal(bob.passwordHash, 'h-bob');
      assert.equal(bob.source, 'local');
      assert.equal((await users.profile(bob.id))!.email, 'bob@x');
      await users.updateProfile(bob.id, { realname: 'Bob B' });
      assert.deepEqual([(await users.profile(bob.id))!.email, (await users.profile(bob.id))!.realname], ['bob@x', 'Bob B']);
      await users.setSysadmin(bob.id, true);
      await users.setPasswordHash(bob.id, 'h2');
      assert.deepEqual(await users.credentials(bob.id), { id: bob.id, username: 'bob', source: 'local', passwordHash: 'h2', sysadmin: true });
    });

    test('users: the admin is created once; its password reset creates it when missing, else keeps its id', async () => {
      const users = new UserStore(db);
      const id = await users.setAdminPassword('first');
      assert.equal(await users.setAdminPassword('second'), id);
      await assert.rejects(users.createAdmin('x'), conflict('username already exists'));
      const admin = (await users.profile(id))!;
      assert.deepEqual([admin.username, admin.sysadmin, admin.source, admin.realname], ['admin', true, 'local', 'System Administrator']);
      assert.equal((await users.credentials(id))!.passwordHash, 'second');
    });

    test('users: a directory login creates or updates an ldap user, never a local one; its groups map to known groups', async () => {
      const users = new UserStore(db);
      const data = { email: 'e@x', realname: 'Eve', ldapDn: 'uid=eve,dc=x', ldapGroups: JSON.stringify(['cn=dev,dc=x', 'cn=ops,dc=x']), ldapAdmin: false };
      const eve = (await users.recordDirectoryUser('eve', data))!;
      assert.deepEqual(await users.recordDirectoryUser('eve', { ...data, realname: 'Eve E', ldapAdmin: true }), eve);
      const p = (await users.profile(eve.id))!;
      assert.deepEqual([p.source, p.realname, p.ldapAdmin, p.sysadmin], ['ldap', 'Eve E', true, false]);
      assert.equal(await users.recordDirectoryUser('bob', data), null);
      assert.deepEqual(await users.groupIdsOf(eve.id), []);
      const dev = await users.createGroup({ name: 'dev', ldapDn: 'cn=dev,dc=x' });
      await users.createGroup({ name: 'other', ldapDn: 'cn=other,dc=x' });
      assert.deepEqual(await users.groupIdsOf(eve.id), [dev.id]);
      assert.deepEqual(await users.groupIdsOf(999_999), []);
    });

    test('user groups: a known DN is a CONFLICT; found by DN or by name in any case, paged by id; renamed; deleted with their memberships', async () => {
      const users = new UserStore(db);
      await assert.rejects(users.createGroup({ name: 'again', ldapDn: 'cn=dev,dc=x' }), conflict('group already exists'));
      const g = await users.createGroup({ name: 'Developers-EU', ldapDn: 'cn=deveu,dc=x' });
      assert.deepEqual(await users.groupByDn('cn=deveu,dc=x'), { id: g.id, name: 'Developers-EU', groupType: 1, ldapDn: 'cn=deveu,dc=x' });
      assert.deepEqual(await users.group(g.id), g);
      assert.equal(await users.group(999_999), null);
      assert.deepEqual((await users.groupPage({ ldapDn: 'cn=deveu,dc=x', page: 1, pageSize: 10 })).items, [g]);
      const dev = await users.groupPage({ nameContains: 'DEV', page: 1, pageSize: 1 });
      assert.equal(dev.total, 2);
      assert.equal(dev.items[0].name, 'dev');
      assert.deepEqual((await users.groupPage({ nameContains: 'DEV', page: 2, pageSize: 1 })).items, [g]);
      assert.equal((await users.groupPage({ page: 1, pageSize: 10 })).total, 3);
      assert.equal(await users.renameGroup(g.id, 'Devs'), true);
      assert.equal((await users.group(g.id))!.name, 'Devs');
      assert.equal(await users.renameGroup(999_999, 'x'), false);
      const project = await db.project.create({ data: { name: 'grp' } });
      await db.member.create({ data: { projectId: project.id, groupId: g.id, roleId: 2 } });
      assert.equal(await users.deleteGroup(g.id), true);
      assert.equal(await users.deleteGroup(g.id), false);
      assert.equal(await db.member.count({ where: { groupId: g.id } }), 0);
    });

    test('personal tokens: found by prefix with their owner, listed oldest first, deleted only by their owner; a user goes with its tokens and memberships', async () => {
      const users = new UserStore(db);
      const carol = (await users.credentialsByName('carol'))!;
      const bob = (await users.credentialsByName('bob'))!;
      const exp = new Date(Date.now() + 86_400_000);
      const t1 = await users.createToken({ userId: carol.id, name: 'ci', prefix: 'pfx00001', secretHash: 's1', expiresAt: exp });
      const t2 = await users.createToken({ userId: carol.id, name: 'laptop', prefix: 'pfx00002', secretHash: 's2', expiresAt: null });
      await assert.rejects(users.createToken({ userId: bob.id, name: 'x', prefix: 'pfx00001', secretHash: 's3', expiresAt: null }), conflict('token prefix already in use; try again'));
      assert.deepEqual((await users.tokens(carol.id)).map((t) => [t.id, t.name, t.lastUsedAt]), [[t1, 'ci', null], [t2, 'laptop', null]]);
      const found = (await users.tokenByPrefix('pfx00001'))!;
      assert.deepEqual(found, { id: t1, secretHash: 's1', expiresAt: exp, user: { id: carol.id, username: 'carol', sysadmin: false, ldapAdmin: false } });
      assert.equal(await users.tokenByPrefix('nope'), null);
      const used = new Date(Date.now() - 5_000);
      await users.tokenUsed(t1, used);
      assert.equal((await users.tokens(carol.id))[0].lastUsedAt?.getTime(), used.getTime());
      assert.equal(await users.deleteToken(bob.id, t1), false);
      assert.equal(await users.deleteToken(carol.id, t1), true);
      assert.deepEqual((await users.tokens(carol.id)).map((t) => t.id), [t2]);
      const project = await db.project.create({ data: { name: 'carols' } });
      await db.member.create({ data: { projectId: project.id, userId: carol.id, roleId: 1 } });
      await users.delete(carol.id);
      assert.equal(await users.profile(carol.id), null);
      assert.equal(await users.tokenByPrefix('pfx00002'), null);
      assert.equal(await db.member.count({ where: { userId: carol.id } }), 0);
    });

    test('robots: a taken name is a CONFLICT; listed oldest first, all or by project; changed, re-keyed, deleted', async () => {
      const robots = new RobotStore(db);
      const base = { description: '', level: 'project', disabled: false, secretHash: 'h', expiresAt: null, permissions: '[]' };
      const a = await robots.create({ ...base, name: 'robot$p1+a', projectId: 1 });
      const b = await robots.create({ ...base, name: 'robot$sys', level: 'system', projectId: null });
      const c = await robots.create({ ...base, name: 'robot$p2+c', projectId: 2 });
      await assert.rejects(robots.create({ ...base, name: 'robot$p1+a', projectId: 1 }), conflict('robot robot$p1+a already exists'));
      assert.deepEqual((await robots.list()).map((r) => r.id), [a.id, b.id, c.id]);
      assert.deepEqual((await robots.list({ projectId: 2 })).map((r) => r.name), ['robot$p2+c']);
      assert.deepEqual(await robots.byName('robot$sys'), b);
      const exp = new Date(Date.now() + 3_600_000);
      await robots.update(a.id, { description: 'd', disabled: true, expiresAt: exp, permissions: '[{"kind":"project"}]' });
      await robots.setSecretHash(a.id, 'h2');
      const a2 = (await robots.find(a.id))!;
      assert.deepEqual([a2.description, a2.disabled, a2.expiresAt?.getTime(), a2.permissions, a2.secretHash, a2.name], ['d', true, exp.getTime(), '[{"kind":"project"}]', 'h2', 'robot$p1+a']);
      await robots.delete(a.id);
      assert.equal(await robots.find(a.id), null);
      await assert.rejects(robots.delete(a.id));
    });

    test('projects: a taken name is a CONFLICT (also when two create at once); ensure is idempotent under a race; found with owner and repository count', async () => {
      const projects = new ProjectStore(db);
      const users = new UserStore(db);
      const bob = (await users.credentialsByName('bob'))!;
      const id = await projects.create({ name: 'team-one', public: false, ownerId: bob.id, metadata: '{"public":"false"}', firstMember: { userId: bob.id, roleId: 1 } });
      await assert.rejects(projects.create({ name: 'team-one', public: true, ownerId: null, metadata: '{}' }), conflict('project team-one already exists'));
      const raced = await Promise.allSettled([1, 2, 3].map(() => projects.create({ name: 'raced', public: false, ownerId: null, metadata: '{}' })));
      assert.equal(raced.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of raced) if (r.status === 'rejected') assert.ok(conflict('project raced already exists')(r.reason), String(r.reason));
      await Promise.all([1, 2, 3].map(() => projects.ensure('library', true, '{"public":"true"}')));
      await projects.ensure('library', false, '{}');
      assert.deepEqual(await projects.ref({ name: 'library' }), { id: (await projects.ref({ name: 'library' }))!.id, name: 'library', public: true, registryId: null });
      const p = (await projects.find({ id }))!;
      assert.deepEqual([p.name, p.public, p.ownerId, p.ownerName, p.metadata, p.repoCount], ['team-one', false, bob.id, 'bob', '{"public":"false"}', 0]);
      assert.deepEqual(await projects.find({ name: 'team-one' }), p);
      assert.equal(await projects.find({ name: 'nope' }), null);
      assert.equal(await projects.ref({ id: 999_999 }), null);
      await new RegistryStore(db).ensureRepository('team-one/app', id);
      assert.equal((await projects.find({ id }))!.repoCount, 1);
      assert.equal((await projects.find({ name: 'raced' }))!.ownerName, '');
      const m = (await db.member.findMany({ where: { projectId: id } }))[0];
      assert.deepEqual([m.userId, m.roleId], [bob.id, 1]);
      await projects.update(id, { public: true, metadata: '{"public":"true","x":"y"}' });
      assert.deepEqual(await projects.ref({ id }), { id, name: 'team-one', public: true, registryId: null });
      assert.equal((await projects.find({ id }))!.metadata, '{"public":"true","x":"y"}');
      // A whole page at once: the same rows as one by one, unknown ids left out.
      const rawId = (await projects.ref({ name: 'raced' }))!.id;
      const libId = (await projects.ref({ name: 'library' }))!.id;
      const many = await projects.findMany([rawId, 999_999, id, libId]);
      const byId = new Map(many.map((x) => [x.id, x]));
      assert.equal(many.length, 3);
      for (const k of [id, rawId, libId]) assert.deepEqual(byId.get(k), await projects.find({ id: k }));
      assert.deepEqual([byId.get(id)!.ownerName, byId.get(id)!.repoCount, byId.get(rawId)!.ownerName, byId.get(rawId)!.repoCount], ['bob', 1, '', 0]);
      assert.deepEqual(await projects.findMany([]), []);
    });

    test('projects: pages by name among visible ids, name search ignores case, public filter', async () => {
      const projects = new ProjectStore(db);
      const ids: Record<string, number> = {};
      for (const [name, pub] of [['web-app', true], ['WEB-legacy', false], ['tools', true], ['webhooks', false]] as const) {
        ids[name] = await projects.create({ name: name.toLowerCase(), public: pub, ownerId: null, metadata: '{}' });
      }
      const names = async (q: Parameters<ProjectStore['page']>[0]) => {
        const r = await projects.page(q);
        return { total: r.total, names: await Promise.all(r.ids.map(async (i) => (await projects.ref({ id: i }))!.name)) };
      };
      assert.deepEqual(await names({ ids: null, nameContains: 'WEB', page: 1, pageSize: 2 }), { total: 3, names: ['web-app', 'web-legacy'] });
      assert.deepEqual(await names({ ids: null, nameContains: 'WEB', page: 2, pageSize: 2 }), { total: 3, names: ['webhooks'] });
      assert.deepEqual(await names({ ids: null, nameContains: '%', page: 1, pageSize: 10 }), { total: 0, names: [] }, 'a % in a search is a literal %');
      assert.deepEqual(await names({ ids: null, nameContains: 'B_', page: 1, pageSize: 10 }), { total: 0, names: [] }, 'a _ in a search is a literal _');
      assert.deepEqual(await names({ ids: null, nameContains: 'web', public: false, page: 1, pageSize: 10 }), { total: 2, names: ['web-legacy', 'webhooks'] });
      assert.deepEqual(await names({ ids: [ids['tools'], ids['webhooks']], page: 1, pageSize: 10 }), { total: 2, names: ['tools', 'webhooks'] });
      assert.deepEqual(await names({ ids: [], page: 1, pageSize: 10 }), { total: 0, names: [] });
      const pub = await projects.publicIds();
      assert.ok(pub.includes(ids['web-app']) && pub.includes(ids['tools']) && !pub.includes(ids['webhooks']));
      assert.deepEqual((await projects.idsNamed(['tools', 'webhooks', 'missing'])).sort((a, b) => a - b), [ids['tools'], ids['webhooks']].sort((a, b) => a - b));
    });

    test('members: one per user or group (a second add is null, also when two add at once); roles directly and through groups; role changes and removal', async () => {
      const projects = new ProjectStore(db);
      const users = new UserStore(db);
      const pid = (await projects.ref({ name: 'tools' }))!.id;
      const other = (await projects.ref({ name: 'webhooks' }))!.id;
      const bob = (await users.credentialsByName('bob'))!;
      const eve = (await users.credentialsByName('eve'))!;
      const [dev] = await users.groupIdsOf(eve.id);
      const raced = await Promise.all([1, 2, 3].map(() => projects.addMember({ projectId: pid, userId: bob.id, groupId: null, roleId: 1 })));
      assert.equal(raced.filter((x) => x !== null).length, 1);
      const bobM = raced.find((x) => x !== null)!;
      assert.equal(await projects.addMember({ projectId: pid, userId: bob.id, groupId: null, roleId: 2 }), null);
      const devM = (await projects.addMember({ projectId: pid, userId: null, groupId: dev, roleId: 2 }))!;
      assert.equal(await projects.addMember({ projectId: pid, userId: null, groupId: dev, roleId: 3 }), null);
      await projects.addMember({ projectId: other, userId: null, groupId: dev, roleId: 3 });
      assert.deepEqual(await projects.member(pid, bobM), { id: bobM, projectId: pid, roleId: 1, userId: bob.id, groupId: null, user: { username: 'bob' }, group: null });
      assert.deepEqual(await projects.member(pid, devM), { id: devM, projectId: pid, roleId: 2, userId: null, groupId: dev, user: null, group: { name: 'dev' } });
      assert.equal(await projects.member(other, bobM), null);
      assert.deepEqual(await projects.roleIds(pid, eve.id, [dev]), [2]);
      assert.deepEqual(await projects.roleIds(pid, eve.id, []), []);
      assert.deepEqual((await projects.memberProjectIds(eve.id, [dev])).sort((a, b) => a - b), [pid, other].sort((a, b) => a - b));
      assert.equal(await projects.countWithRole(pid, 1, bobM), 0);
      assert.equal(await projects.countWithRole(pid, 1, devM), 1);
      await projects.setMemberRole(devM, 1);
      assert.equal(await projects.countWithRole(pid, 1, bobM), 1);
      await projects.removeMember(bobM);
      assert.equal(await projects.member(pid, bobM), null);
      await assert.rejects(projects.removeMember(bobM));
    });

    test('projects: a delete takes its members and robots with it, and nothing of other projects', async () => {
      const projects = new ProjectStore(db);
      const robots = new RobotStore(db);
      const pid = (await projects.ref({ name: 'tools' }))!.id;
      const other = (await projects.ref({ name: 'webhooks' }))!.id;
      const base = { description: '', level: 'project', disabled: false, secretHash: 'h', expiresAt: null, permissions: '[]' };
      await robots.create({ ...base, name: 'robot$tools+ci', projectId: pid });
      await robots.create({ ...base, name: 'robot$webhooks+ci', projectId: other });
      await projects.delete(pid);
      assert.equal(await projects.ref({ id: pid }), null);
      assert.equal(await db.member.count({ where: { projectId: pid } }), 0);
      assert.equal(await robots.byName('robot$tools+ci'), null);
      assert.ok(await robots.byName('robot$webhooks+ci'));
      assert.equal(await db.member.count({ where: { projectId: other } }), 1);
      // A project that is gone: the delete fails and takes nothing else.
      await assert.rejects(projects.delete(pid));
      assert.ok(await robots.byName('robot$webhooks+ci'));
    });
  });
}

describe('pingDatabase', { skip: pgSkip }, () => {
  test('answers true while PostgreSQL is up and false once it is gone; queries then fail as unavailable', async () => {
    const { pingDatabase } = await import('../../src/db/client.ts');
    const server = await startPostgres();
    const db = await openDatabase(await server.createDatabase());
    try {
      assert.equal(await pingDatabase(db), true);
      await server.stop();
      assert.equal(await pingDatabase(db, 1000), false);
      // Reads and writes then fail as "unavailable" (a 503 at the edges), through Prisma and through the pool.
      const { DatabaseUnavailableError } = await import('../../src/db/client.ts');
      const store = new RegistryStore(db);
      await assert.rejects(db.project.findMany(), DatabaseUnavailableError);
      await assert.rejects(db.project.findMany(), DatabaseUnavailableError);
      await assert.rejects(store.findRepositoryId('library/alpine'), DatabaseUnavailableError);
      await assert.rejects(store.linkBlob(1, D('1'), 1), DatabaseUnavailableError);
    } finally {
      await db.$disconnect().catch(() => undefined);
    }
  });
});

describe('npm run db:diff, PostgreSQL half', { skip: pgSkip }, () => {
  test('a new column in the schema becomes an ALTER TABLE of the PostgreSQL migration; no change, no SQL', async () => {
    const { spawnSync } = await import('node:child_process');
    const server = await startPostgres();
    try {
      const script = `
        import fs from 'node:fs';
        import { pgSchema } from './scripts/pg-schema.mjs';
        import { pgMigrationSql } from './scripts/pg-diff.mjs';
        const old = pgSchema(fs.readFileSync('prisma/schema.prisma', 'utf8'));
        const changed = old.replace(/model Repository \\{/, 'model Repository {\\n  lastPulled DateTime?');
        const same = await pgMigrationSql(old, old, 'prisma/postgresql/schema.prisma');
        const diff = await pgMigrationSql(old, changed, 'prisma/postgresql/schema.prisma');
        console.log(JSON.stringify({ same, diff, committed: fs.readFileSync('prisma/postgresql/schema.prisma', 'utf8') === old }));
        process.exit(0);`;
      const r = spawnSync(process.execPath, ['--experimental-wasm-modules', '--no-warnings', '--input-type=module', '-e', script], {
        cwd: path.resolve(import.meta.dirname, '../..'),
        env: { ...process.env, BERTH_DIFF_PG_URL: server.url },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      assert.equal(out.same, '');
      assert.match(out.diff, /ALTER TABLE "Repository" ADD COLUMN\s+"lastPulled" TIMESTAMP\(3\)/);
      assert.equal(out.committed, true, 'prisma/postgresql/schema.prisma is the derived schema of prisma/schema.prisma');
    } finally {
      await server.stop();
    }
  });
});
