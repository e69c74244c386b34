// The Harbor API's artifact and repository lists as they are paged at scale (issue 17): counts kept
// per repository, pages read in index order from the row before them. Functional checks only: every
// way of reaching a page (page 1, a walk page after page, a deep page asked directly, the same page
// asked again) gives the same artifacts, and counts follow every change (push, tag, untag, delete,
// garbage collection, repository deletion).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { OCI_MANIFEST, Oci, sha256 } from '../helpers/oci.ts';
import { startPostgres, type TestPostgres } from '../helpers/pg.ts';

let t: TestApp;
let oci: Oci;
const INDEX = 'application/vnd.oci.image.index.v1+json';
const REPO = 'library/lists';
const BASE = '/projects/library/repositories/lists';

const api = (method: 'get' | 'post' | 'delete', p: string) => t.request[method](`/api/v2.0${p}`).set('Authorization', t.adminAuth);

before(async () => {
  t = await makeApp();
  oci = new Oci(t.request, t.adminAuth);
});
after(async () => {
  await t?.close();
});

type Art = { digest: string; push_time: string; tags: { name: string }[] | null };

async function page(p: number, size: number): Promise<{ items: Art[]; total: number; link: string | undefined }> {
  const res = await api('get', `${BASE}/artifacts?page=${p}&page_size=${size}&with_tag=true`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return { items: res.body, total: Number(res.headers['x-total-count']), link: res.headers.link };
}

/** Every way of paging the list agrees with `expected` (the set of artifact digests). */
async function checkList(expected: Set<string>) {
  const all = await page(1, 100);
  assert.equal(all.total, expected.size, 'X-Total-Count');
  const digests = all.items.map((a) => a.digest);
  assert.deepEqual(new Set(digests), expected);
  assert.equal(digests.length, expected.size, 'no artifact twice');
  for (let i = 1; i < all.items.length; i++) assert.ok(all.items[i - 1].push_time >= all.items[i].push_time, 'newest first');
  // a walk, page after page (each next page seeks from the row before it)
  const walked: string[] = [];
  const pages = Math.ceil(expected.size / 5);
  for (let p = 1; p <= pages + 1; p++) {
    const r = await page(p, 5);
    assert.equal(r.total, expected.size);
    walked.push(...r.items.map((a) => a.digest));
    if (p < pages) assert.match(r.link ?? '', /rel="next"/, `page ${p} links the next`);
    else assert.doesNotMatch(r.link ?? '', /rel="next"/, `page ${p} is the last`);
  }
  assert.deepEqual(walked, digests);
  // a deep page asked directly, twice (the second time from the remembered row), and with another size
  for (let i = 0; i < 2; i++) assert.deepEqual((await page(3, 4)).items.map((a) => a.digest), digests.slice(8, 12));
  assert.deepEqual((await page(2, 7)).items.map((a) => a.digest), digests.slice(7, 14));
  // the repository's artifact count, in the list of repositories and on its own
  const repos = await api('get', '/projects/library/repositories?page_size=100');
  assert.equal(repos.body.find((r: { name: string }) => r.name === REPO)?.artifact_count, expected.size);
  assert.equal((await api('get', BASE)).body.artifact_count, expected.size);
  return digests;
}

describe('artifact lists paged by keys, with counts kept per repository', () => {
  test('pages and counts agree after every kind of change', async () => {
    const expected = new Set<string>();
    const images: Record<string, Awaited<ReturnType<Oci['pushImage']>>> = {};
    for (let i = 0; i < 23; i++) {
      images[`i${i}`] = await oci.pushImage(REPO, `i${i}`, 100 + i);
      expected.add(images[`i${i}`].digest);
    }
    await checkList(expected);

    // an index with a tagged child (an artifact) and an untagged one (shown only as a reference)
    const a = await oci.pushImage(REPO, 'a-amd', 201);
    const b = await oci.pushImage(REPO, 'b-tmp', 202);
    assert.equal((await oci.delete(`/v2/${REPO}/manifests/b-tmp`)).status, 202);
    const index = { schemaVersion: 2, mediaType: INDEX, manifests: [a, b].map((x, i) => ({ mediaType: OCI_MANIFEST, digest: x.digest, size: x.raw.length, platform: { os: 'linux', architecture: ['amd64', 'arm64'][i] } })) };
    const raw = Buffer.from(JSON.stringify(index));
    assert.equal((await oci.putManifest(REPO, 'multi', raw, INDEX)).status, 201);
    const idx = sha256(raw);
    expected.add(a.digest).add(idx);
    // a signature of the index: an accessory, not an artifact
    await oci.pushImage(REPO, 'sig', 203, { artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', subject: { mediaType: INDEX, digest: idx, size: raw.length } });
    assert.equal((await oci.delete(`/v2/${REPO}/manifests/sig`)).status, 202);
    await checkList(expected);

    // untagging the tagged child makes it a reference only; tagging it again (Harbor API) an artifact
    assert.equal((await oci.delete(`/v2/${REPO}/manifests/a-amd`)).status, 202);
    expected.delete(a.digest);
    await checkList(expected);
    assert.equal((await api('post', `${BASE}/artifacts/${a.digest}/tags`).send({ name: 'a-again' })).status, 201);
    expected.add(a.digest);
    await checkList(expected);

    // a new push comes first; a deleted artifact goes
    const fresh = await oci.pushImage(REPO, 'fresh', 300);
    expected.add(fresh.digest);
    const order = await checkList(expected);
    assert.equal(order[0], fresh.digest);
    assert.equal((await api('delete', `${BASE}/artifacts/${images.i5.digest}`)).status, 200);
    expected.delete(images.i5.digest);
    await checkList(expected);

    // an untagged image is still an artifact until garbage collection removes it
    assert.equal((await oci.delete(`/v2/${REPO}/manifests/i7`)).status, 202);
    await checkList(expected);
    const gc = await api('post', '/system/gc/schedule').send({ schedule: { type: 'Manual' }, parameters: { delete_untagged: true, dry_run: false, time_window: 0 } });
    assert.equal(gc.status, 201, JSON.stringify(gc.body));
    await t.berth.gc.idle();
    expected.delete(images.i7.digest);
    await checkList(expected);

    // the repository deleted and pushed again: a new, small list
    assert.equal((await api('delete', BASE)).status, 200);
    const again = await oci.pushImage(REPO, 'again', 400);
    await checkList(new Set([again.digest]));
  });

  test('a filtered list (by tag) still counts and pages what matches', async () => {
    const r = await api('get', `${BASE}/artifacts?q=${encodeURIComponent('tags=again')}&page=1&page_size=5`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-total-count'], '1');
    assert.deepEqual(r.body.map((x: Art) => x.tags?.map((tg) => tg.name)), [['again']]);
  });
});

describe('repository lists paged by name, with totals kept', () => {
  async function repoPage(p: number, size: number, extra = '') {
    const res = await api('get', `/projects/team/repositories?page=${p}&page_size=${size}${extra}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return { names: (res.body as { name: string }[]).map((r) => r.name), total: Number(res.headers['x-total-count']) };
  }

  async function checkRepos(expected: string[]) {
    const want = [...expected].sort();
    const all = await repoPage(1, 100);
    assert.deepEqual(all.names, want);
    assert.equal(all.total, want.length);
    const walked: string[] = [];
    for (let p = 1; p <= Math.ceil(want.length / 4) + 1; p++) {
      const r = await repoPage(p, 4);
      assert.equal(r.total, want.length);
      walked.push(...r.names);
    }
    assert.deepEqual(walked, want);
    for (let i = 0; i < 2; i++) assert.deepEqual((await repoPage(3, 3)).names, want.slice(6, 9));
    // a name filter is its own list, with its own total
    const filtered = await repoPage(2, 2, `&q=${encodeURIComponent('name=~r1')}`);
    const matching = want.filter((n) => n.includes('r1'));
    assert.equal(filtered.total, matching.length);
    assert.deepEqual(filtered.names, matching.slice(2, 4));
  }

  test('walks, deep pages and totals follow created and deleted repositories', async () => {
    assert.equal((await api('post', '/projects').send({ project_name: 'team', metadata: { public: 'true' } })).status, 201);
    const names: string[] = [];
    for (let i = 0; i < 14; i++) {
      const n = `team/r${String(i * 7 % 20).padStart(2, '0')}`;
      await oci.pushImage(n, 'v1', 600 + i);
      names.push(n);
    }
    await checkRepos(names);
    await oci.pushImage('team/a-first', 'v1', 650); // sorts first: every page after it shifts
    names.push('team/a-first');
    await checkRepos(names);
    assert.equal((await api('delete', '/projects/team/repositories/r07')).status, 200);
    names.splice(names.indexOf('team/r07'), 1);
    await checkRepos(names);
  });
});

describe('the same pages on PostgreSQL', () => {
  // The seek by row value and the left-out children as an array parameter, in the other engine's SQL.
  let pgs: TestPostgres;
  let sqliteApp: TestApp;
  before(async () => {
    pgs = await startPostgres();
    sqliteApp = t;
    t = await makeApp({ BERTH_DATABASE_URL: await pgs.createDatabase() });
    oci = new Oci(t.request, t.adminAuth);
  });
  after(async () => {
    await t?.close();
    t = sqliteApp;
    await pgs?.stop();
  });

  test('walks, deep pages and counts agree, with index children left out', async () => {
    const expected = new Set<string>();
    for (let i = 0; i < 13; i++) expected.add((await oci.pushImage(REPO, `p${i}`, 500 + i)).digest);
    const b = await oci.pushImage(REPO, 'b-tmp', 520);
    assert.equal((await oci.delete(`/v2/${REPO}/manifests/b-tmp`)).status, 202);
    const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: b.digest, size: b.raw.length, platform: { os: 'linux', architecture: 'arm64' } }] }));
    assert.equal((await oci.putManifest(REPO, 'multi', raw, INDEX)).status, 201);
    expected.add(sha256(raw));
    await checkList(expected);
    assert.equal((await oci.delete(`/v2/${REPO}/manifests/p3`)).status, 202);
    await checkList(expected);
    const fresh = await oci.pushImage(REPO, 'fresh', 530);
    expected.add(fresh.digest);
    await checkList(expected);
  });
});
