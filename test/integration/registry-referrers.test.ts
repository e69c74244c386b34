// /v2 referrers: manifests with a subject, the OCI-Subject header, GET /v2/<name>/referrers/<digest>
// with and without the artifactType filter.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { EMPTY_JSON, OCI_INDEX, OCI_MANIFEST, Oci, assertOciError, sha256 } from '../helpers/oci.ts';

let t: TestApp;
let oci: Oci;
const REPO = 'ref/app';
const SBOM = 'application/vnd.example.sbom.v1';
const SIG = 'application/vnd.example.signature.v1';
const CFG_TYPE = 'application/vnd.example.config.v1+json';

interface Desc { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }

let subject: Awaited<ReturnType<Oci['pushImage']>>;
let emptyDigest: string;
const pushed = new Map<string, { raw: Buffer; artifactType?: string; annotations: Record<string, string>; mediaType: string }>();

function artifact(subjectDigest: string, subjectSize: number, opts: { artifactType?: string; configType?: string; note: string }): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(opts.artifactType ? { artifactType: opts.artifactType } : {}),
    config: opts.configType ? { mediaType: opts.configType, digest: emptyDigest, size: 2 } : { mediaType: EMPTY_JSON, digest: emptyDigest, size: 2 },
    layers: [{ mediaType: EMPTY_JSON, digest: emptyDigest, size: 2 }],
    subject: { mediaType: OCI_MANIFEST, digest: subjectDigest, size: subjectSize },
    annotations: { 'org.example.note': opts.note },
  }));
}

async function listReferrers(digest: string, query = '') {
  const res = await oci.get(`/v2/${REPO}/referrers/${digest}${query}`).buffer(true);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers['content-type'], OCI_INDEX);
  const index = JSON.parse(res.text) as { schemaVersion: number; mediaType: string; manifests: Desc[] };
  assert.equal(index.schemaVersion, 2);
  assert.equal(index.mediaType, OCI_INDEX);
  return { res, manifests: index.manifests };
}

before(async () => {
  t = await makeApp();
  oci = new Oci(t.request, t.adminAuth);
  emptyDigest = await oci.pushBlob(REPO, '{}');
  subject = await oci.pushImage(REPO, 'v1', 1);
});
after(async () => {
  await t.close();
});

describe('pushing manifests with a subject', () => {
  test('PUT answers 201 with OCI-Subject naming the subject', async () => {
    const cases = [
      { artifactType: SBOM, note: 'sbom via artifactType' },
      { configType: SBOM, note: 'sbom via config media type' },
      { artifactType: SIG, note: 'signature' },
      { configType: CFG_TYPE, note: 'custom config' },
    ];
    for (const c of cases) {
      const raw = artifact(subject.digest, subject.raw.length, c);
      const res = await oci.putManifest(REPO, sha256(raw), raw, OCI_MANIFEST);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.headers['oci-subject'], subject.digest);
      pushed.set(sha256(raw), { raw, artifactType: c.artifactType ?? c.configType ?? EMPTY_JSON, annotations: { 'org.example.note': c.note }, mediaType: OCI_MANIFEST });
    }
  });

  test('an index with a subject is a referrer too (artifactType omitted when it has none)', async () => {
    const child = [...pushed.keys()][0];
    const idx = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: child, size: pushed.get(child)!.raw.length }],
      subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.raw.length },
      annotations: { 'org.example.note': 'index' },
    }));
    const res = await oci.putManifest(REPO, sha256(idx), idx, OCI_INDEX);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers['oci-subject'], subject.digest);
    pushed.set(sha256(idx), { raw: idx, annotations: { 'org.example.note': 'index' }, mediaType: OCI_INDEX });
  });

  test('a manifest without subject gets no OCI-Subject header', async () => {
    const res = await oci.putManifest(REPO, 'plain', subject.raw, OCI_MANIFEST);
    assert.equal(res.status, 201);
    assert.equal(res.headers['oci-subject'], undefined);
  });

  test('the subject need not exist yet (push referrers first)', async () => {
    const future = sha256('a manifest pushed later');
    const raw = artifact(future, 123, { artifactType: SBOM, note: 'early' });
    const res = await oci.putManifest(REPO, sha256(raw), raw, OCI_MANIFEST);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers['oci-subject'], future);
    const { manifests } = await listReferrers(future);
    assert.deepEqual(manifests.map((m) => m.digest), [sha256(raw)]);
  });

  test('a malformed subject descriptor is MANIFEST_INVALID', async () => {
    const raw = JSON.stringify({ ...subject.manifest, subject: { mediaType: OCI_MANIFEST, digest: 'sha256:nope', size: 1 } });
    assertOciError(await oci.putManifest(REPO, 'badsubject', raw, OCI_MANIFEST), 400, 'MANIFEST_INVALID');
  });
});

describe('GET /v2/<name>/referrers/<digest>', () => {
  test('lists every referrer as a descriptor with artifactType and annotations', async () => {
    const { res, manifests } = await listReferrers(subject.digest);
    assert.equal(res.headers['oci-filters-applied'], undefined);
    assert.equal(manifests.length, pushed.size);
    assert.deepEqual(new Set(manifests.map((m) => m.digest)), new Set(pushed.keys()));
    for (const m of manifests) {
      const p = pushed.get(m.digest)!;
      assert.equal(m.mediaType, p.mediaType);
      assert.equal(m.size, p.raw.length);
      assert.equal(m.artifactType, p.artifactType, m.digest);
      assert.deepEqual(m.annotations, p.annotations);
      if (p.mediaType === OCI_INDEX) assert.ok(!('artifactType' in m));
    }
  });

  test('the artifactType filter narrows the list and says so in OCI-Filters-Applied', async () => {
    const { res, manifests } = await listReferrers(subject.digest, `?artifactType=${encodeURIComponent(SBOM)}`);
    assert.equal(res.headers['oci-filters-applied'], 'artifactType');
    assert.equal(manifests.length, 2);
    for (const m of manifests) assert.equal(m.artifactType, SBOM);
    const cfg = await listReferrers(subject.digest, `?artifactType=${encodeURIComponent(CFG_TYPE)}`);
    assert.equal(cfg.manifests.length, 1);
    const none = await listReferrers(subject.digest, '?artifactType=application/x-none');
    assert.deepEqual(none.manifests, []);
    assert.equal(none.res.headers['oci-filters-applied'], 'artifactType');
  });

  test('a digest without referrers, or an unknown repository, gives an empty index (never 404)', async () => {
    assert.deepEqual((await listReferrers(sha256('nothing refers to me'))).manifests, []);
    const other = await oci.get(`/v2/ref/unknown/referrers/${subject.digest}`).buffer(true);
    assert.equal(other.status, 200);
    assert.equal(other.headers['content-type'], OCI_INDEX);
    assert.deepEqual(JSON.parse(other.text).manifests, []);
  });

  test('referrers are per repository', async () => {
    const res = await oci.get(`/v2/ref/other/referrers/${subject.digest}`).buffer(true);
    assert.deepEqual(JSON.parse(res.text).manifests, []);
  });

  test('a malformed digest is 400', async () => {
    assertOciError(await oci.get(`/v2/${REPO}/referrers/sha256:xyz`), 400, 'DIGEST_INVALID');
    assertOciError(await oci.get(`/v2/${REPO}/referrers/latest`), 400, 'DIGEST_INVALID');
  });

  test('a deleted referrer disappears; deleting the subject does not remove referrers', async () => {
    const victim = [...pushed.entries()].find(([, p]) => p.artifactType === SIG)![0];
    assert.equal((await oci.delete(`/v2/${REPO}/manifests/${victim}`)).status, 202);
    pushed.delete(victim);
    const after1 = await listReferrers(subject.digest);
    assert.equal(after1.manifests.length, pushed.size);
    assert.ok(!after1.manifests.some((m) => m.digest === victim));
    assert.equal((await oci.delete(`/v2/${REPO}/manifests/${subject.digest}`)).status, 202);
    assert.equal((await listReferrers(subject.digest)).manifests.length, pushed.size);
  });
});
