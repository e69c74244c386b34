// The management API for repositories and artifacts, archive import, browser sessions with CSRF,
// the generated OpenAPI document, and Harbor contract checks.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tar from 'tar-stream';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { Oci, sha256, bytes } from '../helpers/oci.ts';
import { SessionStore } from '../../src/auth/session.ts';
import { LocalChanges } from '../../src/db/changes.ts';
import { BrowserSessionStore } from '../../src/db/session-store.ts';
import { assertHarborShape } from '../helpers/harbor-shapes.ts';
import { startPostgres, type TestPostgres } from '../helpers/pg.ts';

let t: TestApp;
let oci: Oci;
const PW = 'Passw0rd!x';
const INDEX = 'application/vnd.oci.image.index.v1+json';
let indexDigest: string;
let amd: Awaited<ReturnType<Oci['pushImage']>>;

const api = (method: 'get' | 'post' | 'put' | 'delete', p: string, auth: string | null = t.adminAuth) => {
  const r = t.request[method](`/api/v2.0${p}`);
  return auth ? r.set('Authorization', auth) : r;
};

before(async () => {
  t = await makeApp({}, REAL_ACCESS);
  oci = new Oci(t.request, t.adminAuth);
  assert.equal((await api('post', '/projects').send({ project_name: 'team', metadata: { public: 'false' } })).status, 201);
  for (const u of ['guest', 'dev']) assert.equal((await api('post', '/users').send({ username: u, password: PW })).status, 201);
  assert.equal((await api('post', '/projects/team/members').send({ role_id: 3, member_user: { username: 'guest' } })).status, 201);
  assert.equal((await api('post', '/projects/team/members').send({ role_id: 2, member_user: { username: 'dev' } })).status, 201);
  // a multi-arch index with two platform images, tagged; plus a signature referring to it
  amd = await oci.pushImage('team/app/api', 'amd64-only', 1);
  const arm = await oci.pushImage('team/app/api', 'arm64-only', 2);
  const index = { schemaVersion: 2, mediaType: INDEX, manifests: [
    { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd.digest, size: amd.raw.length, platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: arm.digest, size: arm.raw.length, platform: { os: 'linux', architecture: 'arm64' } },
  ] };
  const raw = Buffer.from(JSON.stringify(index));
  indexDigest = sha256(raw);
  assert.equal((await oci.putManifest('team/app/api', 'v1', raw, INDEX)).status, 201);
  await oci.pushImage('team/app/api', 'sig', 3, { artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', subject: { mediaType: INDEX, digest: indexDigest, size: raw.length } });
  assert.equal((await oci.delete('/v2/team/app/api/manifests/sig')).status, 202); // untag the signature: it stays as a referrer
  assert.equal((await oci.delete('/v2/team/app/api/manifests/amd64-only')).status, 202);
  assert.equal((await oci.delete('/v2/team/app/api/manifests/arm64-only')).status, 202);
});
after(async () => {
  await t.close();
});

describe('repositories and artifacts', () => {
  test('repositories of a project, with double-encoded names', async () => {
    const list = await api('get', '/projects/team/repositories');
    assert.equal(list.status, 200);
    assert.equal(list.headers['x-total-count'], '1');
    assert.equal(list.body[0].name, 'team/app/api');
    const one = await api('get', '/projects/team/repositories/app%252Fapi');
    assert.equal(one.status, 200);
    assert.equal(one.body.name, 'team/app/api');
    assert.equal((await api('get', '/projects/team/repositories/nope')).status, 404);
    assert.equal((await api('put', '/projects/team/repositories/app%252Fapi').send({ description: 'the API' })).status, 200);
    assert.equal((await api('get', '/projects/team/repositories/app%252Fapi')).body.description, 'the API');
    const all = await api('get', '/repositories', basic('guest', PW));
    assert.ok(all.body.some((r: { name: string }) => r.name === 'team/app/api'));
    const anon = await api('get', '/repositories', null);
    assert.ok(!anon.body.some((r: { name: string }) => r.name === 'team/app/api'));
  });

  test('the index is one artifact with its platforms, tags and the signature as an accessory', async () => {
    const res = await api('get', '/projects/team/repositories/app%252Fapi/artifacts?with_tag=true', basic('guest', PW));
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 1, JSON.stringify(res.body.map((a: { digest: string }) => a.digest)));
    const a = res.body[0];
    assert.equal(a.digest, indexDigest);
    assert.equal(a.type, 'IMAGE');
    assert.equal(a.manifest_media_type, INDEX);
    assert.deepEqual(a.tags.map((x: { name: string }) => x.name), ['v1']);
    assert.deepEqual(a.references.map((r: { platform: { architecture: string } }) => r.platform.architecture).sort(), ['amd64', 'arm64']);
    assert.equal(a.accessories.length, 1);
    assert.equal(a.accessories[0].type, 'signature.cosign');
    assert.equal(a.accessories[0].artifact_type, 'application/vnd.dev.cosign.artifact.sig.v1+json');
    assert.ok(a.size > 0);
    const byTag = await api('get', '/projects/team/repositories/app%252Fapi/artifacts/v1', basic('guest', PW));
    assert.equal(byTag.body.digest, indexDigest);
    const child = await api('get', `/projects/team/repositories/app%252Fapi/artifacts/${amd.digest}`, basic('guest', PW));
    assert.equal(child.status, 200);
    assert.equal(child.body.extra_attrs.architecture, 'amd64');
  });

  test('tags: developers create, guests cannot; only maintainers+ delete', async () => {
    const base = `/projects/team/repositories/app%252Fapi/artifacts/${indexDigest}/tags`;
    assert.equal((await api('post', base, basic('guest', PW)).send({ name: 'g1' })).status, 403);
    assert.equal((await api('post', base, basic('dev', PW)).send({ name: 'stable' })).status, 201);
    assert.equal((await api('post', base, basic('dev', PW)).send({ name: 'stable' })).status, 409);
    assert.equal((await oci.get('/v2/team/app/api/manifests/stable')).status, 200);
    const tags = await api('get', `${base}?page=1&page_size=1&q=name%3D~sta`);
    assert.equal(tags.headers['x-total-count'], '1');
    assert.deepEqual(tags.body.map((x: { name: string }) => x.name), ['stable']);
    assert.equal((await api('delete', `${base}/stable`, basic('dev', PW))).status, 403);
    assert.equal((await api('delete', `${base}/stable`)).status, 200);
    assert.equal((await oci.get('/v2/team/app/api/manifests/stable')).status, 404);
  });

  test('paging artifacts with X-Total-Count and Link', async () => {
    for (let i = 0; i < 5; i++) await oci.pushImage('team/many', `t${i}`, 100 + i);
    const p1 = await api('get', '/projects/team/repositories/many/artifacts?page=1&page_size=2');
    assert.equal(p1.headers['x-total-count'], '5');
    assert.equal(p1.body.length, 2);
    assert.match(p1.headers.link, /page=2/);
    const q = await api('get', '/projects/team/repositories/many/artifacts?q=tags%3D~t3');
    assert.deepEqual(q.body.map((a: { tags: { name: string }[] }) => a.tags[0].name), ['t3']);
  });

  test('deleting an artifact and a repository', async () => {
    assert.equal((await api('delete', '/projects/team/repositories/many/artifacts/t0', basic('dev', PW))).status, 403);
    assert.equal((await api('delete', '/projects/team/repositories/many/artifacts/t0')).status, 200);
    assert.equal((await oci.get('/v2/team/many/manifests/t0')).status, 404);
    assert.equal((await api('delete', '/projects/team/repositories/many')).status, 200);
    assert.equal((await oci.get('/v2/team/many/manifests/t1')).status, 404);
    assert.equal((await oci.get('/v2/team/many/tags/list')).status, 404);
  });

  test('pulls are counted per repository and stamp the artifact pull time', async () => {
    assert.equal((await oci.get('/v2/team/app/api/manifests/v1')).status, 200);
    assert.equal((await oci.get('/v2/team/app/api/manifests/v1')).status, 200);
    await t.berth.pulls.flush();
    const repo = await api('get', '/projects/team/repositories/app%252Fapi');
    assert.ok(repo.body.pull_count >= 2);
    const a = await api('get', '/projects/team/repositories/app%252Fapi/artifacts/v1');
    assert.ok(new Date(a.body.pull_time).getFullYear() >= 2024);
  });

  test('summary, statistics, search, quotas, project logs', async () => {
    const s = await api('get', '/projects/team/summary');
    assert.equal(s.body.repo_count, 1);
    assert.equal(s.body.developer_count, 1);
    assert.ok(s.body.quota.used.storage > 0);
    const st = await api('get', '/statistics');
    assert.ok(st.body.total_project_count >= 2);
    const se = await api('get', '/search?q=app', basic('guest', PW));
    assert.ok(se.body.repository.some((r: { repository_name: string }) => r.repository_name === 'team/app/api'));
    const quotas = await api('get', '/quotas');
    assert.ok(quotas.body.some((q: { ref: { name: string } }) => q.ref.name === 'team'));
    await t.berth.audit.flush();
    const logs = await api('get', '/projects/team/logs');
    assert.equal(logs.status, 200);
    assert.ok(logs.body.some((l: { operation: string }) => l.operation === 'push'));
    const pullsOnly = await api('get', '/projects/team/logs?q=operation%3Dpull');
    assert.ok(pullsOnly.body.length > 0 && pullsOnly.body.every((l: { operation: string }) => l.operation === 'pull'));
    // The index alone: its untagged images show as its references, the signature as an accessory;
    // the same count as the repository's artifact page.
    assert.equal(s.body.artifact_count, 1);
    assert.equal((await api('get', '/projects/team/logs', basic('dev', PW))).status, 403);
  });
});

describe('repository lists in every Harbor sort', () => {
  type Repo = { id: number; name: string; pull_count: number; update_time: string; creation_time: string };
  const SORTS = ['name', '-name', 'creation_time', '-creation_time', 'update_time', '-update_time', 'pull_count', '-pull_count'];
  const keyOf = (r: Repo, sort: string): (string | number)[] => {
    const k = sort.replace(/^-/, '');
    return k === 'name' ? [r.name] : k === 'creation_time' ? [r.id] : k === 'update_time' ? [Date.parse(r.update_time), r.id] : [r.pull_count, r.id];
  };
  const ordered = (rows: Repo[], sort: string) =>
    [...rows].sort((a, b) => {
      const [x, y] = [keyOf(a, sort), keyOf(b, sort)];
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] < y[i] ? -1 : 1) * (sort.startsWith('-') ? -1 : 1);
      return 0;
    });
  const page = async (sort: string, n: number, size = 2) => {
    const res = await api('get', `/projects/sorted/repositories?sort=${encodeURIComponent(sort)}&page=${n}&page_size=${size}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-total-count'], '7');
    return (res.body as Repo[]).map((r) => r.name);
  };
  const walk = async (sort: string, order: number[]) => {
    const pages = new Map<number, string[]>();
    for (const n of order) pages.set(n, await page(sort, n));
    return [...pages.keys()].sort((a, b) => a - b).flatMap((n) => pages.get(n)!);
  };

  before(async () => {
    assert.equal((await api('post', '/projects').send({ project_name: 'sorted', metadata: { public: 'true' } })).status, 201);
    // Created in an order that is neither alphabetical nor reversed.
    for (const [i, n] of ['m', 'c', 'x', 'a', 'q', 'e', 'k'].entries()) await oci.pushImage(`sorted/${n}`, 'v1', 400 + i);
    for (const [n, pulls] of [['c', 3], ['x', 1], ['a', 3], ['k', 2]] as const) for (let i = 0; i < pulls; i++) assert.equal((await oci.get(`/v2/sorted/${n}/manifests/v1`)).status, 200);
    await t.berth.pulls.flush();
  });

  test('every page of every sort, walked forwards, backwards and again, is the whole list in that order', async () => {
    for (const sort of SORTS) {
      const whole = (await api('get', `/projects/sorted/repositories?sort=${encodeURIComponent(sort)}&page_size=100`)).body as Repo[];
      const expected = ordered(whole, sort).map((r) => r.name);
      assert.deepEqual(whole.map((r) => r.name), expected, `${sort}: one page`);
      assert.deepEqual(await walk(sort, [1, 2, 3, 4]), expected, `${sort}: forwards`);
      assert.deepEqual(await walk(sort, [4, 3, 2, 1]), expected, `${sort}: backwards`);
      assert.deepEqual(await walk(sort, [3, 1, 4, 2]), expected, `${sort}: again, out of order`);
      assert.deepEqual(await page(sort, 5), [], `${sort}: past the end`);
    }
    // A list of keys: the first decides. An unknown key: by name, as before.
    assert.deepEqual(await page('-pull_count,name', 1, 7), await page('-pull_count', 1, 7));
    assert.deepEqual(await page('size', 1, 7), await page('name', 1, 7));
  });

  test('a push moves its repository to the top of -update_time at once; the deep pages follow', async () => {
    for (const n of [1, 2, 3, 4]) await page('-update_time', n); // positions remembered
    await oci.pushImage('sorted/m', 'v2', 420);
    const whole = (await api('get', '/projects/sorted/repositories?sort=-update_time&page_size=100')).body as Repo[];
    assert.equal(whole[0].name, 'sorted/m');
    assert.deepEqual(await walk('-update_time', [4, 3, 2, 1]), whole.map((r) => r.name));
    assert.deepEqual(await walk('update_time', [4, 3, 2, 1]), [...whole].reverse().map((r) => r.name));
  });
});

describe('artifacts as people push them', () => {
  // Per-architecture tags next to a multi-arch tag: app:1.0 is the index, app:1.0-amd64 its amd64
  // image; the arm64 image has no tag of its own.
  const base = '/projects/team/repositories/perarch/artifacts';
  let idx: string;
  let amdChild: string;
  before(async () => {
    const a = await oci.pushImage('team/perarch', '1.0-amd64', 21);
    const b = await oci.pushImage('team/perarch', 'arm-tmp', 22);
    assert.equal((await oci.delete('/v2/team/perarch/manifests/arm-tmp')).status, 202);
    const index = { schemaVersion: 2, mediaType: INDEX, manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: a.digest, size: a.raw.length, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: b.digest, size: b.raw.length, platform: { os: 'linux', architecture: 'arm64' } },
    ] };
    const raw = Buffer.from(JSON.stringify(index));
    assert.equal((await oci.putManifest('team/perarch', '1.0', raw, INDEX)).status, 201);
    idx = sha256(raw);
    amdChild = a.digest;
  });

  const tagsOf = (body: { digest: string; tags: { name: string }[] }[]) => body.map((x) => [x.digest, x.tags.map((t) => t.name)]);

  test('a child of an index with its own tag is an artifact with its tags; an untagged child is not', async () => {
    const res = await api('get', `${base}?with_tag=true&page=1&page_size=10`, basic('guest', PW));
    assert.equal(res.status, 200);
    assert.deepEqual(tagsOf(res.body), [[idx, ['1.0']], [amdChild, ['1.0-amd64']]]);
    assert.equal(res.headers['x-total-count'], '2');
    assert.equal(res.body[1].extra_attrs.architecture, 'amd64');
  });

  test('the tag filter finds it: fuzzy and exact', async () => {
    const fuzzy = await api('get', `${base}?q=${encodeURIComponent('tags=~amd64')}`);
    assert.deepEqual(tagsOf(fuzzy.body), [[amdChild, ['1.0-amd64']]]);
    assert.equal(fuzzy.headers['x-total-count'], '1');
    const exact = await api('get', `${base}?q=${encodeURIComponent('tags=1.0-amd64')}`);
    assert.deepEqual(tagsOf(exact.body), [[amdChild, ['1.0-amd64']]]);
    // An exact filter is exact: "1.0" is the index only, not every tag containing "1.0".
    const index = await api('get', `${base}?q=${encodeURIComponent('tags=1.0')}`);
    assert.deepEqual(tagsOf(index.body), [[idx, ['1.0']]]);
    const both = await api('get', `${base}?q=${encodeURIComponent('tags=~1.0')}`);
    assert.equal(both.headers['x-total-count'], '2');
  });

  test('the repository’s artifact count agrees with its page, everywhere it is shown', async () => {
    const page = await api('get', base);
    const total = Number(page.headers['x-total-count']);
    assert.equal(total, 2);
    assert.equal((await api('get', '/projects/team/repositories/perarch')).body.artifact_count, total);
    const inProject = (await api('get', '/projects/team/repositories?page_size=100')).body as { name: string; artifact_count: number }[];
    assert.equal(inProject.find((r) => r.name === 'team/perarch')?.artifact_count, total);
    const everywhere = (await api('get', '/repositories?page_size=100')).body as { name: string; artifact_count: number }[];
    assert.equal(everywhere.find((r) => r.name === 'team/perarch')?.artifact_count, total);
    const search = (await api('get', '/search?q=perarch')).body as { repository: { repository_name: string; artifact_count: number }[] };
    assert.equal(search.repository.find((r) => r.repository_name === 'team/perarch')?.artifact_count, total);
    // The index with untagged images and a signature: one artifact, on its page and in its count.
    const app = await api('get', '/projects/team/repositories/app%252Fapi/artifacts');
    assert.equal((await api('get', '/projects/team/repositories/app%252Fapi')).body.artifact_count, Number(app.headers['x-total-count']));
    // The project's count is the sum of its repositories' counts.
    const summary = await api('get', '/projects/team/summary');
    assert.equal(summary.body.artifact_count, inProject.reduce((n, r) => n + r.artifact_count, 0));
  });

  test('untagging the child hides it again; the index still lists it as a reference', async () => {
    assert.equal((await oci.delete('/v2/team/perarch/manifests/1.0-amd64')).status, 202);
    const res = await api('get', base);
    assert.deepEqual(tagsOf(res.body), [[idx, ['1.0']]]);
    assert.equal((await api('get', '/projects/team/repositories/perarch')).body.artifact_count, 1);
    assert.ok(res.body[0].references.some((r: { child_digest: string }) => r.child_digest === amdChild));
  });
});

describe('statistics', () => {
  // A fresh registry, so the counts are exact: the public library with two repositories, private
  // p1 (one repository, alice is a member) and p2 (two repositories, nobody's).
  let s: TestApp;
  const stats = (auth: string | null) => {
    const r = s.request.get('/api/v2.0/statistics');
    return auth ? r.set('Authorization', auth) : r;
  };
  before(async () => {
    s = await makeApp({}, REAL_ACCESS);
    const o = new Oci(s.request, s.adminAuth);
    const admin = (m: 'post', p: string) => s.request[m](`/api/v2.0${p}`).set('Authorization', s.adminAuth);
    for (const p of ['p1', 'p2']) assert.equal((await admin('post', '/projects').send({ project_name: p, metadata: { public: 'false' } })).status, 201);
    for (const u of ['alice', 'bob']) assert.equal((await admin('post', '/users').send({ username: u, password: PW })).status, 201);
    assert.equal((await admin('post', '/projects/p1/members').send({ role_id: 3, member_user: { username: 'alice' } })).status, 201);
    let seed = 200;
    for (const r of ['library/a', 'library/b', 'p1/x', 'p2/y', 'p2/z']) await o.pushImage(r, 'v1', seed++);
  });
  after(async () => {
    await s?.close();
  });

  test('a system admin sees public and private projects and repositories, totals and storage', async () => {
    const res = await stats(s.adminAuth);
    assert.equal(res.status, 200);
    const { total_storage_consumption: storage, ...counts } = res.body;
    assert.deepEqual(counts, { public_project_count: 1, public_repo_count: 2, private_project_count: 2, private_repo_count: 3, total_project_count: 3, total_repo_count: 5 });
    assert.ok(storage > 0);
  });

  test('a user sees the public counts and the private projects they belong to; totals are for admins (Harbor)', async () => {
    const alice = await stats(basic('alice', PW));
    assert.deepEqual(alice.body, { public_project_count: 1, public_repo_count: 2, private_project_count: 1, private_repo_count: 1, total_project_count: 0, total_repo_count: 0, total_storage_consumption: 0 });
    const bob = await stats(basic('bob', PW));
    assert.deepEqual(bob.body, { public_project_count: 1, public_repo_count: 2, private_project_count: 0, private_repo_count: 0, total_project_count: 0, total_repo_count: 0, total_storage_consumption: 0 });
  });

  test('anonymous callers must sign in (Harbor requires authentication here)', async () => {
    assert.equal((await stats(null)).status, 401);
  });

  test('the counts follow new projects, repositories, visibility changes and deletions at once', async () => {
    const admin = (m: 'post' | 'put' | 'delete', p: string) => s.request[m](`/api/v2.0${p}`).set('Authorization', s.adminAuth);
    const counts = async (auth: string) => {
      const { total_storage_consumption: _, ...c } = (await stats(auth)).body;
      return c;
    };
    const base = { public_project_count: 1, public_repo_count: 2, private_project_count: 2, private_repo_count: 3, total_project_count: 3, total_repo_count: 5 };
    assert.deepEqual(await counts(s.adminAuth), base);
    assert.equal((await admin('post', '/projects').send({ project_name: 'p3', metadata: { public: 'false' } })).status, 201);
    assert.deepEqual(await counts(s.adminAuth), { ...base, private_project_count: 3, total_project_count: 4 });
    await new Oci(s.request, s.adminAuth).pushImage('p3/new', 'v1', 260);
    assert.deepEqual(await counts(s.adminAuth), { ...base, private_project_count: 3, private_repo_count: 4, total_project_count: 4, total_repo_count: 6 });
    assert.equal((await admin('put', '/projects/p3').send({ metadata: { public: 'true' } })).status, 200);
    assert.deepEqual(await counts(s.adminAuth), { public_project_count: 2, public_repo_count: 3, private_project_count: 2, private_repo_count: 3, total_project_count: 4, total_repo_count: 6 });
    assert.deepEqual((await counts(basic('bob', PW))).public_repo_count, 3);
    assert.equal((await admin('delete', '/projects/p3/repositories/new')).status, 200);
    assert.equal((await admin('delete', '/projects/p3')).status, 200);
    assert.deepEqual(await counts(s.adminAuth), base);
  });
});

describe('artifact lists and counts on PostgreSQL', () => {
  // The same rule in the SQL of the other engine: per-architecture tags, the exact and fuzzy tag
  // filters (case-insensitive, as on SQLite), and the counts of the repository and the project.
  let pgs: TestPostgres;
  let g: TestApp;
  before(async () => {
    pgs = await startPostgres();
    g = await makeApp({ BERTH_DATABASE_URL: await pgs.createDatabase() }, REAL_ACCESS);
  });
  after(async () => {
    await g?.close();
    await pgs?.stop();
  });

  test('a tagged child of an index is listed and counted; filters and counts agree', async () => {
    const o = new Oci(g.request, g.adminAuth);
    const get = (p: string) => g.request.get(`/api/v2.0${p}`).set('Authorization', g.adminAuth);
    const a = await o.pushImage('library/perarch', '1.0-amd64', 31);
    const b = await o.pushImage('library/perarch', 'arm-tmp', 32);
    assert.equal((await o.delete('/v2/library/perarch/manifests/arm-tmp')).status, 202);
    const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: a.digest, size: a.raw.length, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: b.digest, size: b.raw.length, platform: { os: 'linux', architecture: 'arm64' } },
    ] }));
    assert.equal((await o.putManifest('library/perarch', '1.0', raw, INDEX)).status, 201);
    const base = '/projects/library/repositories/perarch';
    const list = await get(`${base}/artifacts?with_tag=true`);
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.deepEqual(list.body.map((x: { digest: string; tags: { name: string }[] }) => [x.digest, x.tags.map((t) => t.name)]), [[sha256(raw), ['1.0']], [a.digest, ['1.0-amd64']]]);
    assert.equal(list.headers['x-total-count'], '2');
    assert.deepEqual((await get(`${base}/artifacts?q=${encodeURIComponent('tags=~AMD64')}`)).body.map((x: { digest: string }) => x.digest), [a.digest]);
    assert.deepEqual((await get(`${base}/artifacts?q=${encodeURIComponent('tags=1.0')}`)).body.map((x: { digest: string }) => x.digest), [sha256(raw)]);
    assert.equal((await get(base)).body.artifact_count, 2);
    assert.equal((await get('/projects/library/repositories')).body[0].artifact_count, 2);
    assert.equal((await get('/projects/library/summary')).body.artifact_count, 2);
    assert.equal((await get('/statistics')).body.public_repo_count, 1);
  });
});

/** A tar archive from [name, content] pairs. */
async function tarOf(entries: [string, Buffer][]): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, data] of entries) pack.entry({ name }, data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('importing image archives', () => {
  test('a docker save tarball becomes an image whose layers keep their digests', async () => {
    const layer = await tarOf([['hello.txt', Buffer.from('hello from docker save')]]);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
    const archive = await tarOf([
      [`${sha256(config).slice(7)}.json`, config],
      ['abc/layer.tar', layer],
      ['manifest.json', Buffer.from(JSON.stringify([{ Config: `${sha256(config).slice(7)}.json`, RepoTags: ['x:1'], Layers: ['abc/layer.tar'] }]))],
    ]);
    const res = await t.request.post('/api/v2.0/projects/team/repositories/imported%252Fdocker/import?tag=1.0').set('Authorization', basic('dev', PW)).attach('archive', archive, 'image.tar');
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const m = await oci.get('/v2/team/imported/docker/manifests/1.0');
    assert.equal(m.status, 200);
    const manifest = JSON.parse(m.text ?? Buffer.from(m.body).toString());
    assert.equal(manifest.layers[0].digest, sha256(layer));
    assert.equal(manifest.config.digest, sha256(config));
    assert.equal(res.body.digest, m.headers['docker-content-digest']);
  });

  test('an OCI image-layout tar (multi-arch index) is imported whole', async () => {
    const blobs: [string, Buffer][] = [];
    const add = (b: Buffer) => {
      blobs.push([`blobs/sha256/${sha256(b).slice(7)}`, b]);
      return { digest: sha256(b), size: b.length };
    };
    const manifests = ['amd64', 'arm64'].map((arch, i) => {
      const layer = bytes(3000, 50 + i);
      const cfg = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux' }));
      const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...add(cfg) }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...add(layer) }] }));
      return { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...add(m), platform: { os: 'linux', architecture: arch } };
    });
    const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests }));
    const top = add(idx);
    const archive = await tarOf([['oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')], ['index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: INDEX, ...top }] }))], ...blobs]);
    const res = await t.request.post('/api/v2.0/projects/team/repositories/imported%252Foci/import?tag=multi').set('Authorization', basic('dev', PW)).attach('archive', archive, 'oci.tar');
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.digest, top.digest);
    for (const m of manifests) assert.equal((await oci.head(`/v2/team/imported/oci/manifests/${m.digest}`)).status, 200);
  });

  test('junk, a missing blob, a guest, and a path-escaping entry are refused cleanly', async () => {
    const junk = await t.request.post('/api/v2.0/projects/team/repositories/x/import?tag=1').set('Authorization', basic('dev', PW)).attach('archive', Buffer.from('not a tar at all'), 'x.tar');
    assert.equal(junk.status, 400);
    assert.equal(junk.body.errors[0].code, 'BAD_REQUEST');
    const missing = await tarOf([['index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: INDEX, digest: sha256('x'), size: 1 }] }))]]);
    assert.equal((await t.request.post('/api/v2.0/projects/team/repositories/x/import?tag=1').set('Authorization', basic('dev', PW)).attach('archive', missing, 'x.tar')).status, 400);
    const guest = await t.request.post('/api/v2.0/projects/team/repositories/x/import?tag=1').set('Authorization', basic('guest', PW)).attach('archive', missing, 'x.tar');
    assert.equal(guest.status, 403);
    const evil = await tarOf([['../../escape.txt', Buffer.from('x')], ['manifest.json', Buffer.from('[]')]]);
    assert.equal((await t.request.post('/api/v2.0/projects/team/repositories/x/import?tag=1').set('Authorization', basic('dev', PW)).attach('archive', evil, 'x.tar')).status, 400);
    assert.ok(!fs.existsSync(path.join(t.dataDir, '..', 'escape.txt')));
    assert.equal((await oci.get('/v2/team/x/tags/list')).status, 404, 'a failed import leaves no repository content');
  });
});

describe('browser sessions', () => {
  test('login sets an HttpOnly session and a CSRF cookie; changes need the CSRF header; logout ends it', async () => {
    const bad = await t.request.post('/c/login').type('form').send({ principal: 'dev', password: 'nope' });
    assert.equal(bad.status, 401);
    const login = await t.request.post('/c/login').type('form').send({ principal: 'dev', password: PW });
    assert.equal(login.status, 200);
    assert.equal(login.body.username, 'dev');
    const cookies = login.headers['set-cookie'] as unknown as string[];
    const session = cookies.find((c) => c.startsWith('berth_session='))!;
    assert.match(session, /HttpOnly/);
    const csrf = cookies.find((c) => c.startsWith('__csrf='))!.split(';')[0].split('=')[1];
    const jar = cookies.map((c) => c.split(';')[0]).join('; ');
    const me = await t.request.get('/api/v2.0/users/current').set('Cookie', jar);
    assert.equal(me.body.username, 'dev');
    const noCsrf = await t.request.post('/api/v2.0/users/current/tokens').set('Cookie', jar).send({ name: 'x' });
    assert.equal(noCsrf.status, 403);
    const withCsrf = await t.request.post('/api/v2.0/users/current/tokens').set('Cookie', jar).set('X-Harbor-CSRF-Token', csrf).send({ name: 'x' });
    assert.equal(withCsrf.status, 201);
    assert.equal((await t.request.get('/c/log_out').set('Cookie', jar)).status, 200);
    const after = await t.request.get('/api/v2.0/projects').set('Cookie', jar);
    assert.equal(after.status, 401, 'an ended session is a 401, not an anonymous call');
    assert.ok((after.headers['set-cookie'] as unknown as string[]).some((c) => c.startsWith('berth_session=;')));
  });

  test('an admin changing a user ends that user’s browser sessions', async () => {
    const login = await t.request.post('/c/login').send({ principal: 'guest', password: PW });
    const jar = (login.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ');
    const me = await t.request.get('/api/v2.0/users/current').set('Cookie', jar);
    assert.equal(me.status, 200);
    assert.equal((await api('put', `/users/${me.body.user_id}/sysadmin`).send({ sysadmin_flag: false })).status, 200);
    assert.equal((await t.request.get('/api/v2.0/users/current').set('Cookie', jar)).status, 401);
  });

  test('sessions expire when idle', async () => {
    let now = 0;
    const store = new SessionStore(new BrowserSessionStore(t.berth.db), new LocalChanges(), { idleMs: 1000, now: () => now });
    const headers: string[] = [];
    const res = { append: (_k: string, v: string) => headers.push(v) } as never;
    await store.create(res, { kind: 'user', id: 1, name: 'a', sysadmin: false }, false);
    const cookie = headers.map((h) => h.split(';')[0]).join('; ');
    const req = { headers: { cookie } } as never;
    now = 900;
    assert.ok(await store.get(req));
    now = 1800; // 900 ms after the last use: still alive
    assert.ok(await store.get(req));
    now = 3000;
    assert.equal(await store.get(req), null);
  });
});

describe('API description', () => {
  test('the OpenAPI document lists every mounted route', async () => {
    const res = await api('get', '/openapi.json', null);
    assert.equal(res.status, 200);
    assert.equal(res.body.openapi, '3.0.3');
    for (const p of ['/projects', '/projects/{p}/members', '/projects/{p}/repositories/{r}/artifacts', '/robots', '/users/current', '/ldap/ping', '/configurations', '/audit-logs', '/projects/{p}/repositories/{r}/import', '/system/gc', '/system/gc/schedule', '/quotas/{id}']) {
      assert.ok(res.body.paths[p], `documents ${p}`);
    }
    assert.ok(res.body.paths['/projects'].post && res.body.paths['/projects'].get);
  });

  test('answers use Harbor’s field names and JSON types', async () => {
    // Berth's documented additions (marked "Berth's addition" in the OpenAPI document).
    const additions: Record<string, string[]> = { ProjectSummary: ['artifact_count'], UserResp: ['source'] };
    const check = (name: string, obj: Record<string, unknown>) => assertHarborShape(name, obj, additions[name] ?? []);
    check('Project', (await api('get', '/projects/team')).body);
    check('Repository', (await api('get', '/projects/team/repositories/app%252Fapi')).body);
    check('Artifact', (await api('get', `/projects/team/repositories/app%252Fapi/artifacts/${indexDigest}`)).body);
    for (const m of (await api('get', '/projects/team/members')).body) check('ProjectMemberEntity', m);
    check('UserResp', (await api('get', '/users/current')).body);
    for (const a of (await api('get', '/audit-logs')).body) check('AuditLog', a);
    check('ProjectSummary', (await api('get', '/projects/team/summary')).body);
    check('Statistic', (await api('get', '/statistics')).body);
    const robot = await api('post', '/robots').send({ name: 'c', level: 'project', duration: -1, permissions: [{ kind: 'project', namespace: 'team', access: [{ resource: 'repository', action: 'pull' }] }] });
    check('RobotCreated', robot.body);
    check('Robot', (await api('get', `/robots/${robot.body.id}`)).body);
  });
});
