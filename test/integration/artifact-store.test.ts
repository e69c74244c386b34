// The list stores of the Harbor API (src/db/artifact-store.ts, and the members' page of
// src/db/list-store.ts) on SQLite and a real PostgreSQL, the
// way test/integration/stores.test.ts runs the registry store: the same cases on both engines, each
// engine's database opened through openDatabase (migrations included). Rows are written as a push
// writes them (RegistryStore) and read back through the prepared list statements.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Db } from '../../src/db/client.ts';
import { ArtifactStore } from '../../src/db/artifact-store.ts';
import { closeListReader, MemberListStore } from '../../src/db/list-store.ts';
import { RegistryStore, type NewManifest } from '../../src/db/registry-store.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';

// A process far from UTC: times must read back as the instants that were written.
process.env.TZ = 'Asia/Kolkata';

const D = (c: string) => 'sha256:' + c.repeat(64);
const OCI = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';

let pgServer: TestPostgres | null = null;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-artifact-store-'));
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

function manifest(c: string, over: Partial<NewManifest> = {}): NewManifest {
  const content = Buffer.from(JSON.stringify({ schemaVersion: 2, c }));
  return { digest: D(c), mediaType: OCI, artifactType: null, configType: 'application/vnd.oci.image.config.v1+json', size: content.length, subject: null, annotations: null, refs: [], content, ...over };
}

for (const engine of engines) {
  describe(`artifact list store on ${engine.name}`, { skip: engine.skip }, () => {
    let db: Db;
    let reg: RegistryStore;
    let store: ArtifactStore;
    let lib: number;
    let other: number;
    let repo: number;
    const t0 = Date.parse('2026-03-01T10:00:00.000Z');
    /** Manifest c pushed at t0 + i seconds (so the list order is known). */
    const push = async (c: string, i: number, tag: string | null, over: Partial<NewManifest> = {}) => {
      await reg.putManifest(repo, manifest(c, over), tag);
      await db.manifest.update({ where: { repositoryId_digest: { repositoryId: repo, digest: D(c) } }, data: { pushedAt: new Date(t0 + i * 1000) } });
    };

    before(async () => {
      db = await openDatabase(await engine.fresh());
      reg = new RegistryStore(db);
      store = new ArtifactStore(db);
      lib = (await db.project.create({ data: { name: 'library' } })).id;
      other = (await db.project.create({ data: { name: 'other' } })).id;
      repo = await reg.ensureRepository('library/app', lib);
      // a..f images, newest last; g an index over e (untagged: not an artifact) and f (tagged: one);
      // s a signature of a (an accessory); a has two tags.
      for (const [i, c] of ['a', 'b', 'c', 'd', 'e', 'f'].entries()) await push(c, i, c === 'e' ? null : `v-${c}`);
      await reg.putManifest(repo, manifest('a'), 'latest');
      await db.manifest.update({ where: { repositoryId_digest: { repositoryId: repo, digest: D('a') } }, data: { pushedAt: new Date(t0) } });
      await push('g', 10, 'multi', { mediaType: INDEX, configType: null, refs: [D('e'), D('f')], annotations: JSON.stringify({ k: 'v' }) });
      await push('s', 11, null, { subject: D('a'), artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' });
    });
    after(async () => {
      reg?.close();
      if (db) closeListReader(db);
      await db?.$disconnect();
    });

    test('a repository by name, with its times as the instants written', async () => {
      const r = await store.repository('library/app');
      assert.ok(r);
      assert.equal(r.id, repo);
      assert.equal(r.projectId, lib);
      assert.equal(r.description, '');
      assert.equal(r.pullCount, 0);
      const row = await db.repository.findUnique({ where: { id: repo } });
      assert.equal(r.createdAt.getTime(), row!.createdAt.getTime());
      assert.equal(r.updatedAt.getTime(), row!.updatedAt.getTime());
      assert.equal(await store.repository('library/none'), null);
    });

    test('facts: non-referrers counted, untagged index children named', async () => {
      const f = await store.artifactFacts(repo);
      assert.equal(f.nonReferrers, 7); // a..g
      assert.deepEqual(f.excluded, [D('e')]);
    });

    test('pages newest first: page 1, after a row, after an offset, the whole order, by ids', async () => {
      const ex = [D('e')];
      const want = ['g', 'f', 'd', 'c', 'b', 'a'].map(D);
      const digests = (rows: { digest: string }[]) => rows.map((r) => r.digest);
      const first = await store.artifactPage(repo, ex, { offset: 0 }, 2);
      assert.deepEqual(digests(first), want.slice(0, 2));
      assert.deepEqual(digests(await store.artifactPage(repo, ex, { after: first[1].id }, 3)), want.slice(2, 5));
      assert.deepEqual(digests(await store.artifactPage(repo, ex, { offset: 3 }, 10)), want.slice(3));
      const order = await store.artifactOrder(repo, ex);
      assert.equal(order.length, 6);
      // read in chunks (of 2 and 4 here), each from the last id of the one before: the same order
      for (const orderChunk of [2, 4]) assert.deepEqual(await new ArtifactStore(db, { orderChunk }).artifactOrder(repo, ex), order);
      assert.deepEqual(Array.from(await new ArtifactStore(db, { orderChunk: 3 }).artifactOrder(repo, [])).length, 7);
      assert.deepEqual(digests(await store.artifactsByIds(order)), want);
      const byIds = await store.artifactsByIds([order[4], order[1], 999_999]);
      assert.deepEqual(digests(byIds), [want[4], want[1]]);
      // nothing left out: the untagged child is a row like the others
      assert.deepEqual(digests(await store.artifactPage(repo, [], { offset: 0 }, 10)), ['g', 'f', 'e', 'd', 'c', 'b', 'a'].map(D));
      // every column, as written
      const g = first[0];
      assert.equal(g.mediaType, INDEX);
      assert.equal(g.configType, null);
      assert.equal(g.artifactType, null);
      assert.equal(g.pushedAt.toISOString(), new Date(t0 + 10_000).toISOString());
      assert.equal(g.pulledAt, null);
      assert.equal(g.annotations, JSON.stringify({ k: 'v' }));
      assert.equal(typeof g.size, 'number');
    });

    test('a filter by tag (exact or part, its wildcards literal) or digest: the matches in list order', async () => {
      const matches = async (f: Parameters<ArtifactStore['filteredOrder']>[1]) => (await store.artifactsByIds(await store.filteredOrder(repo, f))).map((r) => r.digest);
      assert.deepEqual(await matches({ tag: 'v-f', exactTag: true }), [D('f')]);
      assert.deepEqual(await matches({ tag: 'V-' }), [D('f'), D('d'), D('c'), D('b'), D('a')], 'part of a name, ignoring case; e is untagged');
      assert.deepEqual(await matches({ tag: '_' }), []);
      assert.deepEqual(await matches({ tag: 'latest', digest: D('a') }), [D('a')]);
      assert.deepEqual(await matches({ digest: D('e') }), [], 'an untagged index child is not an artifact');
      assert.deepEqual(await matches({ digest: D('s') }), [], 'a referrer is not an artifact');
    });

    test('one manifest, tags, accessories and project counts', async () => {
      assert.equal((await store.manifest(repo, D('c')))?.digest, D('c'));
      assert.equal(await store.manifest(repo, D('9')), null);
      assert.equal(await store.tagDigest(repo, 'latest'), D('a'));
      assert.equal(await store.tagDigest(repo, 'nope'), null);
      const tags = await store.tagsOf(repo, [D('a'), D('b')]);
      assert.deepEqual(tags.map((t) => `${t.name}>${t.digest}`).sort(), [`latest>${D('a')}`, `v-a>${D('a')}`, `v-b>${D('b')}`]);
      assert.ok(tags.every((t) => t.updatedAt instanceof Date && Math.abs(t.updatedAt.getTime() - Date.now()) < 600_000));
      const acc = await store.accessoriesOf(repo, [D('a'), D('b')]);
      assert.deepEqual(acc.map((a) => [a.digest, a.subject, a.artifactType]), [[D('s'), D('a'), 'application/vnd.dev.cosign.artifact.sig.v1+json']]);
      assert.deepEqual(await store.tagsOf(repo, []), []);
      assert.equal(await store.projectArtifactCount(lib), 6);
      assert.equal(await store.projectArtifactCount(other), 0);
    });

    test('repositories: counts and pages by scope, name filter and sort', async () => {
      for (const n of ['library/b_x', 'library/bax', 'library/c']) await reg.ensureRepository(n, lib);
      await reg.ensureRepository('other/app', other);
      await reg.ensureRepository('loose/one', null);
      await db.repository.update({ where: { name: 'library/c' }, data: { pullCount: 5 } });
      const names = (rows: { name: string }[]) => rows.map((r) => r.name);
      assert.equal(await store.countRepositories({ projectIds: null }), 6);
      assert.equal(await store.countRepositories({ projectIds: [lib] }), 4);
      assert.equal(await store.countRepositories({ projectIds: [lib, other] }), 5);
      assert.equal(await store.countRepositories({ projectIds: [] }), 0);
      assert.equal(await store.countRepositories({ projectIds: [lib], name: 'B_' }), 1, 'the name filter ignores case and takes _ literally');
      const all = ['library/app', 'library/b_x', 'library/bax', 'library/c'];
      const byName = { by: 'name', desc: false } as const;
      const after = (name: string) => ({ after: { value: name, id: 0 } });
      assert.deepEqual(names(await store.repositoryPage({ projectIds: [lib] }, byName, { offset: 0 }, 10)), all);
      assert.deepEqual(names(await store.repositoryPage({ projectIds: [lib] }, byName, { offset: 1 }, 2)), all.slice(1, 3));
      assert.deepEqual(names(await store.repositoryPage({ projectIds: [lib] }, byName, after('library/b_x'), 10)), all.slice(2));
      assert.deepEqual(names(await store.repositoryPage({ projectIds: [lib, other] }, byName, after('library/bax'), 10)), ['library/c', 'other/app']);
      assert.deepEqual(names(await store.repositoryPage({ projectIds: null }, byName, after('library/c'), 10)), ['loose/one', 'other/app']);
      assert.deepEqual(names(await store.repositoryPage({ projectIds: null, name: 'AP' }, byName, { offset: 0 }, 10)), ['library/app', 'other/app']);
      assert.deepEqual(names(await store.repositoryPage({ projectIds: [lib] }, { by: 'pulls', desc: true }, { offset: 0 }, 1)), ['library/c']);
      // newest update first: the one whose pull count was just written, then the one created last
      assert.deepEqual(names(await store.repositoryPage({ projectIds: null }, { by: 'update', desc: true }, { offset: 0 }, 2)), ['library/c', 'loose/one']);
      const r = (await store.repository('library/c'))!;
      assert.equal(r.pullCount, 5);
    });

    test('repositories: every sort pages by cursor exactly as by offset, ties by id, in one project or many', async () => {
      const pid = (await db.project.create({ data: { name: 'sorts' } })).id;
      const names: string[] = [];
      for (let i = 0; i < 23; i++) {
        const n = `sorts/r${String((i * 7) % 23).padStart(2, '0')}`;
        names.push(n);
        await reg.ensureRepository(n, pid);
      }
      // Equal pull counts and equal update times in runs, so ties must be broken by id.
      const same = new Date(Date.now() - 60_000);
      for (let i = 0; i < names.length; i++) await db.repository.update({ where: { name: names[i] }, data: { pullCount: i % 4, updatedAt: i % 3 === 0 ? same : new Date(Date.now() - i * 1000) } });
      const key = (r: { id: number; name: string; pullCount: number; updatedAt: Date }, by: string) =>
        by === 'name' ? [r.name] : by === 'creation' ? [r.id] : by === 'update' ? [r.updatedAt.getTime(), r.id] : [r.pullCount, r.id];
      const cmp = (a: (string | number)[], b: (string | number)[]) => {
        for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
        return 0;
      };
      for (const scope of [{ projectIds: [pid] }, { projectIds: [pid, lib] }, { projectIds: null }]) {
        for (const by of ['name', 'creation', 'update', 'pulls'] as const) {
          for (const desc of [false, true]) {
            const sort = { by, desc };
            const whole = await store.repositoryPage(scope, sort, { offset: 0 }, 1_000);
            const expected = [...whole].sort((a, b) => (desc ? -1 : 1) * cmp(key(a, by), key(b, by)));
            assert.deepEqual(whole.map((r) => r.name), expected.map((r) => r.name), `${by} ${desc ? 'desc' : 'asc'} is in order`);
            for (const size of [1, 4, 5]) {
              const walked: string[] = [];
              let page = await store.repositoryPage(scope, sort, { offset: 0 }, size);
              for (let n = 1; page.length; n++) {
                assert.deepEqual(page.map((r) => r.name), (await store.repositoryPage(scope, sort, { offset: (n - 1) * size }, size)).map((r) => r.name), `${by} ${desc} page ${n} of ${size}`);
                walked.push(...page.map((r) => r.name));
                page = await store.repositoryPage(scope, sort, { after: store.repositoryCursor(page[page.length - 1], sort) }, size);
              }
              assert.deepEqual(walked, whole.map((r) => r.name), `${by} ${desc ? 'desc' : 'asc'} walked by cursor, ${size} a page`);
            }
          }
        }
      }
    });

    test('members: one page oldest first, a case-sensitive name filter over users and groups, the count', async () => {
      const pid = (await db.project.create({ data: { name: 'members' } })).id;
      const user = async (username: string) => (await db.user.create({ data: { username } })).id;
      const ids: number[] = [];
      for (const name of ['ann', 'Bob', 'anna', 'carl']) ids.push((await db.member.create({ data: { projectId: pid, userId: await user(name), roleId: 2 } })).id);
      const g = await db.userGroup.create({ data: { name: 'annex-team', ldapDn: 'cn=annex,dc=x' } });
      await db.member.create({ data: { projectId: pid, groupId: g.id, roleId: 3 } });
      await db.member.create({ data: { projectId: lib, userId: await user('annie'), roleId: 1 } }); // another project
      const members = new MemberListStore(db);
      const all = await members.page(pid, undefined, 0, 100);
      assert.equal(all.total, 5);
      assert.deepEqual(all.rows.map((m) => m.entityName), ['ann', 'Bob', 'anna', 'carl', 'annex-team']);
      assert.deepEqual(all.rows.slice(0, 4).map((m) => m.id), ids);
      assert.deepEqual([all.rows[4].userId, all.rows[4].groupId, all.rows[4].roleId], [null, g.id, 3]);
      const page = await members.page(pid, undefined, 1, 2);
      assert.deepEqual([page.total, page.rows.map((m) => m.entityName)], [5, ['Bob', 'anna']]);
      const ann = await members.page(pid, 'ann', 1, 10);
      assert.deepEqual([ann.total, ann.rows.map((m) => m.entityName)], [3, ['anna', 'annex-team']]);
      assert.equal((await members.page(pid, 'BOB', 0, 10)).total, 0, 'the filter keeps case');
      assert.equal((await members.page(pid, '%', 0, 10)).total, 0, 'and takes wildcards literally');
    });
  });
}
