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
