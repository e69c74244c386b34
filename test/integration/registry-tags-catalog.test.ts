// /v2 content discovery: tag lists and the catalog, with n/last pagination and Link headers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { OCI_MANIFEST, Oci, assertOciError } from '../helpers/oci.ts';

let t: TestApp;
let oci: Oci;
const TAGS = ['1.0', '1.1', '2.0', 'Latest', 'alpha', 'beta', 'latest', 'v10', 'v9'];

before(async () => {
  t = await makeApp();
  oci = new Oci(t.request, t.adminAuth);
  const img = await oci.pushImage('tl/app', 'seed', 1);
  for (const tag of TAGS) assert.equal((await oci.putManifest('tl/app', tag, img.raw, OCI_MANIFEST)).status, 201);
  assert.equal((await oci.delete('/v2/tl/app/manifests/seed')).status, 202);
});
after(async () => {
  await t.close();
});

/** Follows Link headers from `first` to the end; returns every page's items. */
async function walk(first: string, key: 'tags' | 'repositories'): Promise<string[][]> {
  const pages: string[][] = [];
  let url: string | undefined = first;
  for (let guard = 0; url && guard < 100; guard++) {
    const res = await oci.get(url);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    pages.push(res.body[key]);
    const link = res.headers.link as string | undefined;
    if (!link) break;
    const m = /^<([^>]+)>; rel="next"$/.exec(link);
    assert.ok(m, `malformed Link header: ${link}`);
    url = m[1];
  }
  return pages;
}

describe('tags list', () => {
  test('lists every tag in lexical order with the repository name', async () => {
    const res = await oci.get('/v2/tl/app/tags/list');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(res.body, { name: 'tl/app', tags: [...TAGS].sort() });
    assert.equal(res.headers.link, undefined);
  });

  test('n limits the page and a Link header points at the next page', async () => {
    const res = await oci.get('/v2/tl/app/tags/list?n=4');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.tags, [...TAGS].sort().slice(0, 4));
    assert.equal(res.headers.link, `</v2/tl/app/tags/list?n=4&last=${encodeURIComponent([...TAGS].sort()[3])}>; rel="next"`);
  });

  test('following Link headers visits every tag exactly once', async () => {
    const pages = await walk('/v2/tl/app/tags/list?n=2', 'tags');
    assert.equal(pages.length, 5);
    assert.deepEqual(pages.flat(), [...TAGS].sort());
    for (const p of pages.slice(0, -1)) assert.equal(p.length, 2);
  });

  test('last starts after the given tag (exclusive), with or without n', async () => {
    const sorted = [...TAGS].sort();
    const res = await oci.get(`/v2/tl/app/tags/list?n=2&last=${sorted[2]}`);
    assert.deepEqual(res.body.tags, sorted.slice(3, 5));
    const all = await oci.get(`/v2/tl/app/tags/list?last=${sorted[2]}`);
    assert.deepEqual(all.body.tags, sorted.slice(3));
    assert.equal(all.headers.link, undefined);
    const past = await oci.get('/v2/tl/app/tags/list?last=zzz');
    assert.deepEqual(past.body.tags, []);
  });

  test('n equal to the number of tags returns them all without a Link header', async () => {
    const res = await oci.get(`/v2/tl/app/tags/list?n=${TAGS.length}`);
    assert.equal(res.body.tags.length, TAGS.length);
    assert.equal(res.headers.link, undefined);
  });

  test('n=0 returns an empty list and no Link header', async () => {
    const res = await oci.get('/v2/tl/app/tags/list?n=0');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { name: 'tl/app', tags: [] });
    assert.equal(res.headers.link, undefined);
  });

  test('a non-numeric n is 400 PAGINATION_NUMBER_INVALID', async () => {
    assertOciError(await oci.get('/v2/tl/app/tags/list?n=abc'), 400, 'PAGINATION_NUMBER_INVALID');
    assertOciError(await oci.get('/v2/tl/app/tags/list?n=-1'), 400, 'PAGINATION_NUMBER_INVALID');
  });

  test('an unknown repository is 404 NAME_UNKNOWN', async () => {
    assertOciError(await oci.get('/v2/tl/unknown/tags/list'), 404, 'NAME_UNKNOWN');
  });

  test('a repository with only blobs lists no tags', async () => {
    await oci.pushBlob('tl/blobs-only', 'just a blob');
    const res = await oci.get('/v2/tl/blobs-only/tags/list');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { name: 'tl/blobs-only', tags: [] });
  });

  test('a deleted tag disappears from the list', async () => {
    assert.equal((await oci.delete('/v2/tl/app/manifests/beta')).status, 202);
    const res = await oci.get('/v2/tl/app/tags/list');
    assert.ok(!res.body.tags.includes('beta'));
    assert.equal(res.body.tags.length, TAGS.length - 1);
    const img = await oci.get('/v2/tl/app/manifests/alpha').buffer(true);
    assert.equal((await oci.putManifest('tl/app', 'beta', img.text, OCI_MANIFEST)).status, 201);
  });

  test('listings follow every tag change, also between the pages of one walk', async () => {
    const img = await oci.pushImage('tl/live', 'b', 2);
    const tags = async () => (await oci.get('/v2/tl/live/tags/list')).body.tags as string[];
    assert.deepEqual(await tags(), ['b']);
    assert.equal((await oci.putManifest('tl/live', 'a', img.raw, OCI_MANIFEST)).status, 201);
    assert.equal((await oci.putManifest('tl/live', 'c', img.raw, OCI_MANIFEST)).status, 201);
    assert.deepEqual(await tags(), ['a', 'b', 'c']);
    // a page, then a new tag sorting after it: the next page shows it
    const first = await oci.get('/v2/tl/live/tags/list?n=1');
    assert.deepEqual(first.body.tags, ['a']);
    assert.equal((await oci.putManifest('tl/live', 'bb', img.raw, OCI_MANIFEST)).status, 201);
    const rest = await walk(/^<([^>]+)>/.exec(first.headers.link as string)![1], 'tags');
    assert.deepEqual(rest.flat(), ['b', 'bb', 'c']);
    // the same page asked again after a change (pages are kept serialized between walks)
    assert.deepEqual((await oci.get('/v2/tl/live/tags/list?n=2')).body.tags, ['a', 'b']);
    assert.equal((await oci.putManifest('tl/live', 'aa', img.raw, OCI_MANIFEST)).status, 201);
    assert.deepEqual((await oci.get('/v2/tl/live/tags/list?n=2')).body.tags, ['a', 'aa']);
    assert.equal((await oci.delete('/v2/tl/live/manifests/aa')).status, 202);
    assert.deepEqual((await oci.get('/v2/tl/live/tags/list?n=2')).body.tags, ['a', 'b']);
    // deleting the manifest by digest removes all its tags from the list
    assert.equal((await oci.delete(`/v2/tl/live/manifests/${img.digest}`)).status, 202);
    assert.deepEqual(await tags(), []);
  });
});

describe('catalog', () => {
  const REPOS = ['tl/app', 'tl/blobs-only', 'tl/live', 'cat/a', 'cat/b', 'cat/c/d', 'zeta'];
  before(async () => {
    for (const r of REPOS) if (!r.startsWith('tl/')) await oci.pushBlob(r, `content of ${r}`);
  });

  test('lists repositories in lexical order', async () => {
    const res = await oci.get('/v2/_catalog');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { repositories: [...REPOS].sort() });
  });

  test('n and last page through it with Link headers', async () => {
    const first = await oci.get('/v2/_catalog?n=2');
    assert.deepEqual(first.body.repositories, [...REPOS].sort().slice(0, 2));
    assert.equal(first.headers.link, `</v2/_catalog?n=2&last=${encodeURIComponent([...REPOS].sort()[1])}>; rel="next"`);
    const pages = await walk('/v2/_catalog?n=2', 'repositories');
    assert.deepEqual(pages.flat(), [...REPOS].sort());
    assert.equal(pages.length, 4);
    const after = await oci.get('/v2/_catalog?last=cat/b');
    assert.deepEqual(after.body.repositories, ['cat/c/d', 'tl/app', 'tl/blobs-only', 'tl/live', 'zeta']);
    const none = await oci.get('/v2/_catalog?n=0');
    assert.deepEqual(none.body.repositories, []);
    assert.equal(none.headers.link, undefined);
  });

  test('requires credentials', async () => {
    assertOciError(await t.request.get('/v2/_catalog'), 401, 'UNAUTHORIZED');
  });
});

// After the catalog cases: these add repositories the catalog's exact lists do not expect.
describe('tag lists kept across pushes and deletes', () => {
  /** A small deterministic PRNG, so a failure replays. */
  function rng(seed: number) {
    return () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  }

  /** Asserts the page (n, last) is the model's: items, and a Link exactly when more follow. */
  async function checkPage(repo: string, model: Set<string>, n: number | undefined, last: string | undefined) {
    const qs = [n === undefined ? '' : `n=${n}`, last === undefined ? '' : `last=${encodeURIComponent(last)}`].filter(Boolean).join('&');
    const res = await oci.get(`/v2/${repo}/tags/list${qs ? `?${qs}` : ''}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const after = [...model].sort().filter((x) => last === undefined || x > last);
    const want = n === undefined ? after : after.slice(0, n);
    assert.deepEqual(res.body.tags, want, `page n=${n} last=${last}`);
    const link = n !== undefined && n > 0 && after.length > n ? `</v2/${repo}/tags/list?n=${n}&last=${encodeURIComponent(want[want.length - 1])}>; rel="next"` : undefined;
    assert.equal(res.headers.link, link, `Link of page n=${n} last=${last}`);
  }

  test('interleaved pushes, deletes (by tag and by digest), GC and repository deletion keep every page right', async () => {
    const repo = 'library/model';
    const rand = rng(17);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
    const images = [await oci.pushImage(repo, 'x0', 11), await oci.pushImage(repo, 'x1', 12), await oci.pushImage(repo, 'x2', 13)];
    const model = new Map<string, number>([['x0', 0], ['x1', 1], ['x2', 2]]);
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'A', 'Z', '0', '9', '_'].flatMap((x) => [x, `${x}.1`, `${x}-2`]);
    const queries: [number | undefined, string | undefined][] = [[1, undefined], [2, undefined], [3, undefined], [5, 'b'], [2, 'd-2'], [4, 'Z'], [undefined, undefined], [undefined, 'c'], [0, undefined], [100, undefined], [3, 'zzz']];
    const checkAll = async () => {
      for (const [n, last] of queries) await checkPage(repo, new Set(model.keys()), n, last);
    };
    await checkAll(); // fills the caches, so what follows exercises updating them
    for (let step = 0; step < 120; step++) {
      const r = rand();
      if (r < 0.55) {
        const tag = pick(names);
        const img = Math.floor(rand() * images.length);
        assert.equal((await oci.putManifest(repo, tag, images[img].raw, OCI_MANIFEST)).status, 201);
        model.set(tag, img);
      } else if (r < 0.85) {
        const tag = model.size && rand() < 0.8 ? pick([...model.keys()]) : pick(names);
        const res = await oci.delete(`/v2/${repo}/manifests/${tag}`);
        assert.equal(res.status, model.has(tag) ? 202 : 404);
        model.delete(tag);
      } else if (r < 0.93) {
        const img = Math.floor(rand() * images.length);
        const tagged = [...model].filter(([, i]) => i === img);
        if (!tagged.length) continue;
        assert.equal((await oci.delete(`/v2/${repo}/manifests/${images[img].digest}`)).status, 202);
        for (const [tag] of tagged) model.delete(tag);
        // the manifest is gone with its tags: push it again so it can be tagged later
        assert.equal((await oci.putManifest(repo, images[img].digest, images[img].raw, OCI_MANIFEST)).status, 201);
      } else {
        // a walk with n=2 from the start, pages kept between walks
        const walked = await walk(`/v2/${repo}/tags/list?n=2`, 'tags');
        assert.deepEqual(walked.flat(), [...model.keys()].sort());
      }
      const [n, last] = pick(queries);
      await checkPage(repo, new Set(model.keys()), n, last);
      if (step % 20 === 19) await checkAll();
    }
    await checkAll();

    // garbage collection removes untagged manifests, never tags: every page stays as it was
    const gc = await t.request.post('/api/v2.0/system/gc/schedule').set('Authorization', t.adminAuth).send({ schedule: { type: 'Manual' }, parameters: { delete_untagged: true, dry_run: false, time_window: 0 } });
    assert.equal(gc.status, 201, JSON.stringify(gc.body));
    await t.berth.gc.idle();
    await checkAll();

    // the repository deleted through the API: its tags are gone, and a new one of that name starts empty
    const del = await t.request.delete('/api/v2.0/projects/library/repositories/model').set('Authorization', t.adminAuth);
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assertOciError(await oci.get(`/v2/${repo}/tags/list?n=2`), 404, 'NAME_UNKNOWN');
    const img = await oci.pushImage(repo, 'only', 21);
    model.clear();
    model.set('only', 0);
    await checkAll();
    assert.equal((await oci.putManifest(repo, 'first', img.raw, OCI_MANIFEST)).status, 201);
    model.set('first', 0);
    await checkAll();
  });

  test('a push or a delete updates the cached tag list instead of reading every tag again', async () => {
    const repo = 'tl/kept';
    const img = await oci.pushImage(repo, 't000', 31);
    for (let i = 1; i < 40; i++) assert.equal((await oci.putManifest(repo, `t${String(i).padStart(3, '0')}`, img.raw, OCI_MANIFEST)).status, 201);
    await checkPage(repo, new Set(Array.from({ length: 40 }, (_, i) => `t${String(i).padStart(3, '0')}`)), 10, undefined);
    const misses = () => t.berth.registry.cacheStats().tag_lists.misses;
    const before = misses();
    const model = new Set(Array.from({ length: 40 }, (_, i) => `t${String(i).padStart(3, '0')}`));
    for (const tag of ['t0055', 's', 'u', 't039a']) {
      assert.equal((await oci.putManifest(repo, tag, img.raw, OCI_MANIFEST)).status, 201);
      model.add(tag);
      await checkPage(repo, model, 10, undefined);
      await checkPage(repo, model, 10, 't030');
      await checkPage(repo, model, 10, 't029'); // t039a is the 11th after t029: the page gains a Link
    }
    for (const tag of ['s', 't005', 'u', 't039a']) {
      assert.equal((await oci.delete(`/v2/${repo}/manifests/${tag}`)).status, 202);
      model.delete(tag);
      await checkPage(repo, model, 10, undefined);
      await checkPage(repo, model, 10, 't030');
      await checkPage(repo, model, 10, 't029'); // and loses it again
    }
    assert.equal(misses(), before, 'every listing after the first was answered from the cached list');
  });
});
