// /v2 manifests: PUT/GET/HEAD/DELETE by tag and digest for every supported format, validation of
// references, size limit, name and tag grammar, content negotiation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { DOCKER_LIST, DOCKER_MANIFEST, EMPTY_JSON, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Oci, assertOciError, bytes, sha256, sha512 } from '../helpers/oci.ts';

let t: TestApp;
let oci: Oci;

before(async () => {
  t = await makeApp();
  oci = new Oci(t.request, t.adminAuth);
});
after(async () => {
  await t.close();
});

/** GET the manifest and check the exact bytes, type and digest come back. */
async function assertStored(repo: string, reference: string, raw: Buffer, mediaType: string): Promise<void> {
  const res = await oci.getBytes(`/v2/${repo}/manifests/${reference}`);
  assert.equal(res.status, 200, `GET ${reference}: ${res.status}`);
  assert.ok(Buffer.compare(res.body, raw) === 0, 'manifest bytes differ from what was pushed');
  assert.equal(res.headers['content-type'], mediaType);
  assert.equal(res.headers['docker-content-digest'], sha256(raw));
  assert.equal(res.headers['content-length'], String(raw.length));
  const head = await oci.head(`/v2/${repo}/manifests/${reference}`);
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-type'], mediaType);
  assert.equal(head.headers['docker-content-digest'], sha256(raw));
  assert.equal(head.headers['content-length'], String(raw.length));
}

describe('image manifests', () => {
  test('OCI image manifest: PUT by tag 201 with Location and digest, then GET/HEAD by tag and digest', async () => {
    const img = await oci.pushImage('man/oci', 'v1');
    const again = await oci.putManifest('man/oci', 'v1', img.raw, OCI_MANIFEST);
    assert.equal(again.status, 201);
    assert.equal(again.headers.location, `/v2/man/oci/manifests/${img.digest}`);
    assert.equal(again.headers['docker-content-digest'], img.digest);
    await assertStored('man/oci', 'v1', img.raw, OCI_MANIFEST);
    await assertStored('man/oci', img.digest, img.raw, OCI_MANIFEST);
  });

  test('the exact bytes are stored (whitespace and key order preserved)', async () => {
    const img = await oci.pushImage('man/oci', 'v1');
    const pretty = Buffer.from(JSON.stringify({ layers: img.manifest.layers, config: img.manifest.config, mediaType: OCI_MANIFEST, schemaVersion: 2 }, null, 3) + '\n');
    const res = await oci.putManifest('man/oci', 'pretty', pretty, OCI_MANIFEST);
    assert.equal(res.status, 201);
    assert.equal(res.headers['docker-content-digest'], sha256(pretty));
    await assertStored('man/oci', 'pretty', pretty, OCI_MANIFEST);
  });

  test('PUT by digest stores it untagged; a digest that does not match the body is DIGEST_INVALID', async () => {
    const img = await oci.pushImage('man/bydigest', 'tmp', 2);
    const m = Buffer.from(JSON.stringify({ ...img.manifest, annotations: { a: 'b' } }));
    const res = await oci.putManifest('man/bydigest', sha256(m), m, OCI_MANIFEST);
    assert.equal(res.status, 201);
    assert.equal(res.headers['docker-content-digest'], sha256(m));
    await assertStored('man/bydigest', sha256(m), m, OCI_MANIFEST);
    const tags = await oci.get('/v2/man/bydigest/tags/list');
    assert.deepEqual(tags.body.tags, ['tmp']);
    assertOciError(await oci.putManifest('man/bydigest', sha256('other'), m, OCI_MANIFEST), 400, 'DIGEST_INVALID');
    assertOciError(await oci.putManifest('man/bydigest', 'sha256:totallywrong', m, OCI_MANIFEST), 400, 'DIGEST_INVALID');
  });

  test('a manifest may be PUT under a sha512 digest', async () => {
    const img = await oci.pushImage('man/sha512', 'base', 3);
    const m = Buffer.from(JSON.stringify({ ...img.manifest, annotations: { alg: 'sha512' } }));
    const d = sha512(m);
    const res = await oci.putManifest('man/sha512', d, m, OCI_MANIFEST);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers['docker-content-digest'], d);
    const got = await oci.getBytes(`/v2/man/sha512/manifests/${d}`);
    assert.equal(got.status, 200);
    assert.ok(Buffer.compare(got.body, m) === 0);
    assert.equal(got.headers['docker-content-digest'], d);
  });

  test('Docker schema 2 manifest', async () => {
    const config = Buffer.from('{"architecture":"arm64","os":"linux"}');
    const layer = bytes(777, 5);
    const cd = await oci.pushBlob('man/docker', config);
    const ld = await oci.pushBlob('man/docker', layer);
    const m = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: cd, size: config.length },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: ld, size: layer.length }],
    }));
    const res = await oci.putManifest('man/docker', 'latest', m, DOCKER_MANIFEST);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    await assertStored('man/docker', 'latest', m, DOCKER_MANIFEST);
  });

  test('Content-Type parameters are ignored; a body mediaType that contradicts Content-Type is MANIFEST_INVALID', async () => {
    const img = await oci.pushImage('man/ctype', 'a', 4);
    const res = await oci.putManifest('man/ctype', 'b', img.raw, `${OCI_MANIFEST}; charset=utf-8`);
    assert.equal(res.status, 201);
    assert.equal((await oci.head('/v2/man/ctype/manifests/b')).headers['content-type'], OCI_MANIFEST);
    assertOciError(await oci.putManifest('man/ctype', 'c', img.raw, DOCKER_MANIFEST), 400, 'MANIFEST_INVALID');
  });

  test('a manifest referencing a blob that is not in the repository is MANIFEST_BLOB_UNKNOWN', async () => {
    const img = await oci.pushImage('man/refs', 'ok', 6);
    const missing = sha256('missing layer');
    const m = { ...img.manifest, layers: [...img.manifest.layers, { mediaType: OCI_LAYER, digest: missing, size: 13 }] };
    const res = await oci.putManifest('man/refs', 'bad', m);
    assertOciError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
    assert.deepEqual((res.body as { errors: { detail: { digests: string[] } }[] }).errors[0].detail.digests, [missing]);
    // A blob that exists in another repository only is unknown here too.
    const elsewhere = await oci.pushBlob('man/other', 'only elsewhere');
    const m2 = { ...img.manifest, layers: [{ mediaType: OCI_LAYER, digest: elsewhere, size: 14 }] };
    assertOciError(await oci.putManifest('man/refs', 'bad2', m2), 400, 'MANIFEST_BLOB_UNKNOWN');
    // A missing config is caught as well.
    const m3 = { ...img.manifest, config: { mediaType: OCI_CONFIG, digest: sha256('no config'), size: 9 } };
    assertOciError(await oci.putManifest('man/refs', 'bad3', m3), 400, 'MANIFEST_BLOB_UNKNOWN');
    assertOciError(await oci.get('/v2/man/refs/manifests/bad'), 404, 'MANIFEST_UNKNOWN');
  });

  test('foreign layers with urls need not be pushed', async () => {
    const img = await oci.pushImage('man/foreign', 'base', 7);
    const m = { ...img.manifest, layers: [...img.manifest.layers, { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: sha256('windows base'), size: 12, urls: ['https://example.com/layer'] }] };
    assert.equal((await oci.putManifest('man/foreign', 'with-foreign', m)).status, 201);
  });

  test('junk is MANIFEST_INVALID', async () => {
    const img = await oci.pushImage('man/junk', 'ok', 8);
    const cases: [string, string | Buffer, string][] = [
      ['not json', 'this is not json', OCI_MANIFEST],
      ['json array', '[]', OCI_MANIFEST],
      ['null', 'null', OCI_MANIFEST],
      ['schema 1', JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] }), 'application/vnd.docker.distribution.manifest.v1+prettyjws'],
      ['no schemaVersion', JSON.stringify({ ...img.manifest, schemaVersion: undefined }), OCI_MANIFEST],
      ['no config', JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }), OCI_MANIFEST],
      ['bad digest in layer', JSON.stringify({ ...img.manifest, layers: [{ mediaType: OCI_LAYER, digest: 'sha256:xyz', size: 1 }] }), OCI_MANIFEST],
      ['negative size', JSON.stringify({ ...img.manifest, layers: [{ ...img.manifest.layers[0], size: -1 }] }), OCI_MANIFEST],
      ['layers not array', JSON.stringify({ ...img.manifest, layers: {} }), OCI_MANIFEST],
      ['unknown type', JSON.stringify({ schemaVersion: 2, mediaType: 'application/x-foo' }), 'application/x-foo'],
      ['index with config', JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [], config: img.manifest.config }), OCI_INDEX],
      ['manifest with manifests', JSON.stringify({ ...img.manifest, manifests: [] }), OCI_MANIFEST],
      ['empty body', '', OCI_MANIFEST],
    ];
    for (const [what, body, type] of cases) {
      const res = await oci.putManifest('man/junk', 'bad', Buffer.from(body), type);
      assertOciError(res, 400, 'MANIFEST_INVALID');
      assert.ok(res.status === 400, what);
    }
    assertOciError(await oci.get('/v2/man/junk/manifests/bad'), 404, 'MANIFEST_UNKNOWN');
  });

  test('a manifest over 4 MiB is refused with 413; exactly 4 MiB is not refused for its size', async () => {
    const img = await oci.pushImage('man/big', 'ok', 9);
    const base = JSON.stringify({ ...img.manifest, annotations: { pad: '' } });
    const pad = (n: number) => Buffer.from(base.replace('"pad":""', `"pad":"${'x'.repeat(n - base.length)}"`));
    const exact = pad(4 * 1024 * 1024);
    assert.equal(exact.length, 4 * 1024 * 1024);
    const ok = await oci.putManifest('man/big', 'exact', exact, OCI_MANIFEST);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const over = await oci.putManifest('man/big', 'over', pad(4 * 1024 * 1024 + 1), OCI_MANIFEST);
    assert.equal(over.status, 413);
    assert.equal((over.body as { errors: { code: string }[] }).errors[0].code, 'SIZE_INVALID');
    assertOciError(await oci.get('/v2/man/big/manifests/over'), 404, 'MANIFEST_UNKNOWN');
  });
});

describe('manifests as blobs', () => {
  test('a pushed manifest is kept in the database and also readable as a blob, with ranges', async () => {
    const img = await oci.pushImage('man/asblob', 'v1', 41);
    const { parseDigest } = await import('../../src/lib/digest.ts');
    const { paths } = await import('../../src/storage/paths.ts');
    const file = path.join(t.dataDir, 'storage', paths.blobData(parseDigest(img.digest)!));
    assert.equal(fs.existsSync(file), false, 'a manifest PUT writes no blob file');
    const blob = await oci.getBytes(`/v2/man/asblob/blobs/${img.digest}`);
    assert.equal(blob.status, 200);
    assert.ok(Buffer.compare(blob.body, img.raw) === 0);
    assert.equal(blob.headers['docker-content-digest'], img.digest);
    const head = await oci.head(`/v2/man/asblob/blobs/${img.digest}`);
    assert.equal(head.headers['content-length'], String(img.raw.length));
    const part = await oci.getBytes(`/v2/man/asblob/blobs/${img.digest}`).set('Range', 'bytes=2-9');
    assert.equal(part.status, 206);
    assert.equal(part.body.toString(), img.raw.subarray(2, 10).toString());
    // another repository does not get it without its own link
    assert.equal((await oci.head(`/v2/man/other/blobs/${img.digest}`)).status, 404);
  });

  test('a manifest stored as a file by an older version is still served', async () => {
    const img = await oci.pushImage('man/legacy', 'v1', 42);
    const { parseDigest } = await import('../../src/lib/digest.ts');
    const { paths } = await import('../../src/storage/paths.ts');
    const file = path.join(t.dataDir, 'storage', paths.blobData(parseDigest(img.digest)!));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, img.raw);
    await t.berth.db.manifestContent.delete({ where: { digest: img.digest } });
    t.berth.registry.forgetRepository('man/legacy');
    await assertStored('man/legacy', 'v1', img.raw, OCI_MANIFEST);
    const blob = await oci.getBytes(`/v2/man/legacy/blobs/${img.digest}`);
    assert.ok(Buffer.compare(blob.body, img.raw) === 0);
  });
});

describe('indexes and artifacts', () => {
  test('OCI index: children must exist (MANIFEST_BLOB_UNKNOWN), then PUT/GET works', async () => {
    const a = await oci.pushImage('man/index', 'amd64', 10);
    const b = await oci.pushImage('man/index', 'arm64', 11);
    const missing = sha256('no such child');
    const bad = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: missing, size: 100 }] };
    const r = await oci.putManifest('man/index', 'bad', bad);
    assertOciError(r, 400, 'MANIFEST_BLOB_UNKNOWN');
    assert.deepEqual((r.body as { errors: { detail: { digests: string[] } }[] }).errors[0].detail.digests, [missing]);
    const index = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: a.digest, size: a.raw.length, platform: { architecture: 'amd64', os: 'linux' } },
        { mediaType: OCI_MANIFEST, digest: b.digest, size: b.raw.length, platform: { architecture: 'arm64', os: 'linux' } },
      ],
    }));
    assert.equal((await oci.putManifest('man/index', 'multi', index, OCI_INDEX)).status, 201);
    await assertStored('man/index', 'multi', index, OCI_INDEX);
    await assertStored('man/index', sha256(index), index, OCI_INDEX);
  });

  test('a child manifest from another repository is MANIFEST_BLOB_UNKNOWN', async () => {
    const other = await oci.pushImage('man/index-other', 'x', 12);
    const idx = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: other.digest, size: other.raw.length }] };
    assertOciError(await oci.putManifest('man/index-lonely', 'x', idx), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  test('Docker manifest list', async () => {
    const a = await oci.pushImage('man/dlist', 'a', 13);
    const list = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_LIST,
      manifests: [{ mediaType: OCI_MANIFEST, digest: a.digest, size: a.raw.length, platform: { architecture: 'amd64', os: 'linux' } }],
    }));
    assert.equal((await oci.putManifest('man/dlist', 'list', list, DOCKER_LIST)).status, 201);
    await assertStored('man/dlist', 'list', list, DOCKER_LIST);
  });

  test('OCI artifact: artifactType, custom config type, empty layers and the empty descriptor', async () => {
    const empty = await oci.pushBlob('man/artifact', '{}');
    assert.equal(empty, 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    const withType = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.sbom.v1',
      config: { mediaType: EMPTY_JSON, digest: empty, size: 2, data: 'e30=' },
      layers: [{ mediaType: EMPTY_JSON, digest: empty, size: 2 }],
    }));
    assert.equal((await oci.putManifest('man/artifact', 'sbom', withType, OCI_MANIFEST)).status, 201);
    await assertStored('man/artifact', 'sbom', withType, OCI_MANIFEST);

    const cfg = await oci.pushBlob('man/artifact', '{"chart":"demo"}');
    const helmish = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.cncf.helm.config.v1+json', digest: cfg, size: 16 },
      layers: [],
    }));
    assert.equal((await oci.putManifest('man/artifact', 'chart', helmish, OCI_MANIFEST)).status, 201);
    await assertStored('man/artifact', 'chart', helmish, OCI_MANIFEST);

    // No layers field at all is fine for OCI.
    const noLayers = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: EMPTY_JSON, digest: empty, size: 2 } }));
    assert.equal((await oci.putManifest('man/artifact', 'nolayers', noLayers, OCI_MANIFEST)).status, 201);
  });

  test('without Content-Type the body mediaType decides', async () => {
    const img = await oci.pushImage('man/notype', 'a', 14);
    const res = await oci.put('/v2/man/notype/manifests/b').set('Content-Type', '').send(img.raw.toString('utf8'));
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal((await oci.head('/v2/man/notype/manifests/b')).headers['content-type'], OCI_MANIFEST);
  });
});

describe('content negotiation', () => {
  let img: Awaited<ReturnType<Oci['pushImage']>>;
  before(async () => {
    img = await oci.pushImage('man/accept', 'v1', 15);
  });

  test('no Accept, a matching Accept, a list or wildcards get the manifest as stored', async () => {
    for (const accept of [undefined, OCI_MANIFEST, `${DOCKER_MANIFEST}, ${OCI_MANIFEST};q=0.9`, '*/*', 'application/*', `${DOCKER_MANIFEST}, application/json`]) {
      const req = oci.get('/v2/man/accept/manifests/v1');
      if (accept !== undefined) req.set('Accept', accept);
      const res = await req;
      assert.equal(res.status, 200, String(accept));
      assert.equal(res.headers['content-type'], OCI_MANIFEST);
    }
  });

  test('multiple Accept headers are combined', async () => {
    const res = await oci.get('/v2/man/accept/manifests/v1').set('Accept', [DOCKER_MANIFEST, OCI_MANIFEST] as unknown as string); // two header lines
    assert.equal(res.status, 200);
  });

  test('an Accept listing only other manifest types is 404 MANIFEST_UNKNOWN', async () => {
    const res = await oci.get('/v2/man/accept/manifests/v1').set('Accept', `${DOCKER_MANIFEST}, ${DOCKER_LIST}`);
    assertOciError(res, 404, 'MANIFEST_UNKNOWN');
  });
});

describe('delete', () => {
  test('DELETE by tag removes only the tag (202); the manifest stays reachable by digest', async () => {
    const img = await oci.pushImage('man/del', 'keep', 16);
    assert.equal((await oci.putManifest('man/del', 'drop', img.raw, OCI_MANIFEST)).status, 201);
    assert.equal((await oci.delete('/v2/man/del/manifests/drop')).status, 202);
    assertOciError(await oci.get('/v2/man/del/manifests/drop'), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await oci.head('/v2/man/del/manifests/drop')).status, 404);
    assert.equal((await oci.get(`/v2/man/del/manifests/${img.digest}`)).status, 200);
    assert.equal((await oci.get('/v2/man/del/manifests/keep')).status, 200);
    assertOciError(await oci.delete('/v2/man/del/manifests/drop'), 404, 'MANIFEST_UNKNOWN');
  });

  test('DELETE by digest removes the manifest and every tag pointing at it', async () => {
    const img = await oci.pushImage('man/del2', 'a', 17);
    assert.equal((await oci.putManifest('man/del2', 'b', img.raw, OCI_MANIFEST)).status, 201);
    await oci.get('/v2/man/del2/manifests/a'); // warm the caches
    assert.equal((await oci.delete(`/v2/man/del2/manifests/${img.digest}`)).status, 202);
    for (const ref of ['a', 'b', img.digest]) {
      assertOciError(await oci.get(`/v2/man/del2/manifests/${ref}`), 404, 'MANIFEST_UNKNOWN');
      assert.equal((await oci.head(`/v2/man/del2/manifests/${ref}`)).status, 404);
    }
    const tags = await oci.get('/v2/man/del2/tags/list');
    assert.equal(tags.status, 200);
    assert.deepEqual(tags.body.tags, []);
    assertOciError(await oci.delete(`/v2/man/del2/manifests/${img.digest}`), 404, 'MANIFEST_UNKNOWN');
    // The layers stay (deleting a manifest does not delete blobs).
    assert.equal((await oci.head(`/v2/man/del2/blobs/${img.layerDigest}`)).status, 200);
    // And it can be pushed again.
    assert.equal((await oci.putManifest('man/del2', 'again', img.raw, OCI_MANIFEST)).status, 201);
    assert.equal((await oci.get('/v2/man/del2/manifests/again')).status, 200);
  });

  test('DELETE in a repository that does not exist is 404', async () => {
    assertOciError(await oci.delete(`/v2/man/nothing/manifests/${sha256('x')}`), 404, 'MANIFEST_UNKNOWN');
    assertOciError(await oci.delete('/v2/man/nothing/manifests/latest'), 404, 'MANIFEST_UNKNOWN');
  });

  test('re-tagging moves the tag (the cached tag follows)', async () => {
    const a = await oci.pushImage('man/retag', 'latest', 18);
    assert.equal((await oci.get('/v2/man/retag/manifests/latest')).headers['docker-content-digest'], a.digest);
    const b = await oci.pushImage('man/retag', 'latest', 19);
    assert.equal((await oci.get('/v2/man/retag/manifests/latest')).headers['docker-content-digest'], b.digest);
  });
});

describe('names and references', () => {
  test('GET of an unknown manifest, tag or repository is 404 MANIFEST_UNKNOWN', async () => {
    await oci.pushImage('man/known', 'v1', 20);
    assertOciError(await oci.get('/v2/man/known/manifests/nope'), 404, 'MANIFEST_UNKNOWN');
    assertOciError(await oci.get(`/v2/man/known/manifests/${sha256('nope')}`), 404, 'MANIFEST_UNKNOWN');
    assertOciError(await oci.get('/v2/man/unknown-repo/manifests/v1'), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await oci.head('/v2/man/known/manifests/nope')).status, 404);
  });

  test('repository name grammar: NAME_INVALID for bad names, deep and separator-rich names work', async () => {
    for (const name of ['Upper/case', 'a//b', 'a/-b', 'a/b-', 'a..b/c', 'a/.b', '_a/b']) {
      assertOciError(await oci.get(`/v2/${name}/manifests/latest`), 400, 'NAME_INVALID');
    }
    const long = 'a'.repeat(256);
    assertOciError(await oci.get(`/v2/${long}/tags/list`), 400, 'NAME_INVALID');
    for (const name of ['a/b/c/d', 'a.b_c__d-e---f/g', 'x0/1y', 'a'.repeat(255)]) {
      const img = await oci.pushImage(name, 'v1', 21);
      assert.equal((await oci.get(`/v2/${name}/manifests/v1`)).status, 200, name);
      assert.equal((await oci.head(`/v2/${name}/blobs/${img.layerDigest}`)).status, 200, name);
    }
  });

  test('tag grammar: TAG_INVALID for bad tags; 128 characters is the limit', async () => {
    const img = await oci.pushImage('man/tags', 'ok', 22);
    for (const tag of ['-dash', '.dot', 'a'.repeat(129), 'bad%21tag']) {
      assertOciError(await oci.putManifest('man/tags', tag, img.raw, OCI_MANIFEST), 400, 'TAG_INVALID');
    }
    for (const tag of ['_under', 'A.b-C_1', 'a'.repeat(128)]) {
      assert.equal((await oci.putManifest('man/tags', tag, img.raw, OCI_MANIFEST)).status, 201, tag);
      assert.equal((await oci.get(`/v2/man/tags/manifests/${tag}`)).status, 200, tag);
    }
  });
});

describe('writers other than /v2', () => {
  test('no writer creates a repository whose name /v2 would refuse (replication, import and the proxy cache write through the same service)', async () => {
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
    for (const name of [`library/${'a'.repeat(300)}`, 'library/UPPER', 'library//x', 'library/x/']) {
      await assert.rejects(t.berth.registry.putManifest(name, 'v1', OCI_INDEX, index), (e: { code?: string }) => e.code === 'NAME_INVALID', name);
    }
    // A valid name takes the same manifest.
    assert.equal((await t.berth.registry.putManifest('library/fine', 'v1', OCI_INDEX, index)).digest, sha256(index));
  });
});
