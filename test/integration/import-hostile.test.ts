// Image-archive imports fed lying and malformed archives: tar headers that claim more than they hold,
// broken manifest.json / index.json / oci-layout files, blobs that do not match their digests, links,
// devices and escaping names, repository names /v2 forbids, oversized JSON, gzip-compressed archives
// and the archive's own tags. Every hostile archive must get a 4xx with a clear message; the process
// must live (GET /ping after each), nothing may be written outside the import's temp directory, no
// temp directory may be left behind, and a refused import must leave no repository behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { Oci, sha256 } from '../helpers/oci.ts';
import { ImportService } from '../../src/services/import.ts';

const PW = 'Passw0rd!x';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar';
const MiB = 1024 * 1024;

let t: TestApp;
let oci: Oci;
// A real server dies of an uncaught stream error; the test runner survives it and only logs it, so
// record them here and fail on any.
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);

before(async () => {
  process.on('uncaughtException', onUncaught);
  t = await makeApp({}, REAL_ACCESS);
  oci = new Oci(t.request, t.adminAuth);
  assert.equal((await t.request.post('/api/v2.0/projects').set('Authorization', t.adminAuth).send({ project_name: 'team', metadata: { public: 'false' } })).status, 201);
  assert.equal((await t.request.post('/api/v2.0/users').set('Authorization', t.adminAuth).send({ username: 'dev', password: PW })).status, 201);
  assert.equal((await t.request.post('/api/v2.0/projects/team/members').set('Authorization', t.adminAuth).send({ role_id: 2, member_user: { username: 'dev' } })).status, 201);
});
after(async () => {
  process.off('uncaughtException', onUncaught);
  await t.close();
});

// ---- building archives ------------------------------------------------------------------------

type Entry = { name: string; data?: Buffer; type?: 'file' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo' | 'directory'; linkname?: string };

async function tarOf(entries: (Entry | [string, Buffer])[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const { name, data, type, linkname } = Array.isArray(e) ? { name: e[0], data: e[1], type: undefined, linkname: undefined } : e;
    // A fixed mtime: the same entries make the same bytes (and digests) every time.
    if (type && type !== 'file') pack.entry({ name, type, linkname, devmajor: 1, devminor: 3, mtime: new Date(0) });
    else pack.entry({ name, mtime: new Date(0) }, data ?? Buffer.alloc(0));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A tar header for a regular file `name` that claims `size` bytes (whatever follows it). */
async function lyingHeader(name: string, size: number): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name, size }, Buffer.alloc(size));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks).subarray(0, 512);
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const hex = (d: string) => d.slice('sha256:'.length);

/** The parts of a valid docker save tarball: a config file and one layer. */
async function dockerParts(seed = 'x') {
  const layer = await tarOf([['hello.txt', Buffer.from(`hello ${seed}`)]]);
  const config = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] }, seed });
  return { layer, config, configName: `${hex(sha256(config))}.json`, entries: [[`${hex(sha256(config))}.json`, config], ['l/layer.tar', layer]] as [string, Buffer][] };
}

async function dockerSave(manifest: unknown, extra: (Entry | [string, Buffer])[] = []): Promise<Buffer> {
  const p = await dockerParts();
  return tarOf([...p.entries, ...extra, ['manifest.json', Buffer.isBuffer(manifest) ? manifest : json(manifest)]]);
}

/** The blobs of a valid single-image OCI layout; `mutate` may change any of them before packing. */
function ociParts(seed = 'o') {
  const blobs = new Map<string, Buffer>();
  const add = (b: Buffer) => {
    blobs.set(sha256(b), b);
    return { digest: sha256(b), size: b.length };
  };
  const layer = Buffer.from(`layer bytes ${seed}`.repeat(20));
  const config = json({ architecture: 'amd64', os: 'linux', seed });
  const manifest = json({ schemaVersion: 2, mediaType: MANIFEST, config: { mediaType: CONFIG, ...add(config) }, layers: [{ mediaType: LAYER, ...add(layer) }] });
  const top = { mediaType: MANIFEST, ...add(manifest) };
  return { blobs, layer, config, manifest, top };
}

async function ociLayout(index: unknown, blobs: Map<string, Buffer> | [string, Buffer][], layout: Buffer | null = json({ imageLayoutVersion: '1.0.0' })): Promise<Buffer> {
  const list = Array.isArray(blobs) ? blobs : [...blobs].map(([d, b]) => [`blobs/sha256/${hex(d)}`, b] as [string, Buffer]);
  return tarOf([...(layout ? [['oci-layout', layout] as [string, Buffer]] : []), ['index.json', Buffer.isBuffer(index) ? index : json(index)], ...list]);
}

// ---- driving the API --------------------------------------------------------------------------

function importAs(archive: Buffer, repo = 'hostile', query = '?tag=1', auth = basic('dev', PW), project = 'team') {
  return t.request.post(`/api/v2.0/projects/${project}/repositories/${repo}/import${query}`).set('Authorization', auth).attach('archive', archive, 'image.tar');
}

async function catalog(): Promise<string[]> {
  const res = await oci.get('/v2/_catalog?n=1000');
  assert.equal(res.status, 200);
  return res.body.repositories as string[];
}

/** The import was refused with a 4xx and a message matching `message`; the app lives; nothing is left behind. */
async function refused(label: string, res: { status: number; body: { errors?: { code: string; message: string }[] } }, message: RegExp, repo = 'team/hostile') {
  assert.ok(res.status >= 400 && res.status < 500, `${label}: expected a 4xx, got ${res.status} ${JSON.stringify(res.body)}`);
  const m = res.body.errors?.[0]?.message ?? '';
  assert.match(m, message, `${label}: unclear message "${m}"`);
  assert.equal((await t.request.get('/api/v2.0/ping')).status, 200, `${label}: the app no longer answers`);
  assert.deepEqual(uncaught.map(String), [], `${label}: an uncaught error would have killed the process`);
  const tmp = path.join(t.dataDir, 'tmp');
  const left = fs.existsSync(tmp) ? fs.readdirSync(tmp).filter((f) => f.startsWith('import-')) : [];
  assert.deepEqual(left, [], `${label}: temp directories left behind`);
  assert.ok(!(await catalog()).includes(repo), `${label}: a refused import left ${repo} in the catalog`);
}

// ---- the tests ----------------------------------------------------------------------------------

describe('hostile image archives', () => {
  test('tar headers that claim more bytes than the archive holds are a 400, and the process lives', async () => {
    const manifest = json([{ Config: 'c.json', Layers: [] }]);
    const cases: [string, Buffer][] = [
      ['the issue’s reproduction', Buffer.concat([await lyingHeader('x', 10 ** 6), Buffer.alloc(1000, 0x78)])],
      ['a short last entry after good ones', Buffer.concat([(await tarOf([['manifest.json', manifest]])).subarray(0, -1024), await lyingHeader('c.json', 5000), Buffer.from('{}')])],
      ['a header cut in half', (await lyingHeader('x', 10)).subarray(0, 200)],
      ['a corrupt header checksum', Buffer.concat([Buffer.from((await lyingHeader('x', 1)).map((b, i) => (i === 0 ? 0x79 : b))), Buffer.alloc(1535)])],
    ];
    for (const [label, archive] of cases) await refused(label, await importAs(archive), /tar|archive|truncated|end/i);
  });

  test('a malformed docker save manifest.json is a 400 that says what is wrong', async () => {
    const { configName } = await dockerParts();
    const nested = '['.repeat(100_000) + ']'.repeat(100_000);
    const cases: [string, Buffer | unknown, RegExp, (Entry | [string, Buffer])[]?][] = [
      ['not JSON', Buffer.from('[{"Config": '), /manifest\.json.*JSON/i],
      ['not an array', { Config: configName, Layers: ['l/layer.tar'] }, /manifest\.json/i],
      ['an empty array', [], /manifest\.json/i],
      ['null', null, /manifest\.json/i],
      ['Config not a string', [{ Config: 5, Layers: ['l/layer.tar'] }], /Config/],
      ['Config missing', [{ Layers: ['l/layer.tar'] }], /Config/],
      ['Layers not an array', [{ Config: configName, Layers: 'l/layer.tar' }], /Layers/],
      ['Layers not strings', [{ Config: configName, Layers: [5] }], /Layers/],
      ['Layers holding an object', [{ Config: configName, Layers: [{ toString: 'x' }] }], /Layers/],
      ['RepoTags not strings', [{ Config: configName, Layers: ['l/layer.tar'], RepoTags: [{}] }], /RepoTags/],
      ['a Config path escaping the archive', [{ Config: '../../../../etc/passwd', Layers: ['l/layer.tar'] }], /Config|path|archive/i],
      ['an absolute Config path', [{ Config: '/etc/passwd', Layers: ['l/layer.tar'] }], /Config|path|archive/i],
      ['a Layers path escaping the archive', [{ Config: configName, Layers: ['l/../../../etc/passwd'] }], /path|archive/i],
      ['a missing layer', [{ Config: configName, Layers: ['nope/layer.tar'] }], /nope\/layer\.tar.*missing/],
      ['a layer that is a directory', [{ Config: configName, Layers: ['l'] }], /missing|not a file/],
      ['deeply nested JSON', Buffer.from(`[{"Config":"${configName}","Layers":["l/layer.tar"],"x":${nested}}]`), /nest|deep/i],
      ['a manifest.json over 4 MiB', [{ Config: configName, Layers: ['l/layer.tar'], pad: 'x'.repeat(4 * MiB) }], /manifest\.json.*(large|MiB|bytes)/i],
      ['two manifest.json entries', [{ Config: configName, Layers: ['l/layer.tar'] }], /more than once|duplicate/i, [['manifest.json', json([{ Config: configName, Layers: ['l/layer.tar'] }])]]],
    ];
    for (const [label, manifest, message, extra] of cases) await refused(label, await importAs(await dockerSave(manifest, extra)), message);
  });

  test('a malformed OCI layout (index.json, oci-layout, blobs) is a 400 that says what is wrong', async () => {
    const p = ociParts();
    const index = { schemaVersion: 2, manifests: [p.top] };
    const swap = (digest: string, bytes: Buffer) => new Map([...p.blobs].map(([d, b]) => [d, d === digest ? bytes : b]));
    const badManifest = (m: unknown) => {
      const bytes = json(m);
      const blobs = new Map(p.blobs);
      blobs.set(sha256(bytes), bytes);
      return { index: { schemaVersion: 2, manifests: [{ mediaType: MANIFEST, digest: sha256(bytes), size: bytes.length }] }, blobs };
    };
    const noLayers = badManifest({ schemaVersion: 2, mediaType: MANIFEST, config: { mediaType: CONFIG, digest: sha256(p.config), size: p.config.length }, layers: 'x' });
    const notJson = Buffer.from('{"schemaVersion": 2,');
    const notJsonBlobs = new Map(p.blobs).set(sha256(notJson), notJson);
    const wrongSize = badManifest({ schemaVersion: 2, mediaType: MANIFEST, config: { mediaType: CONFIG, digest: sha256(p.config), size: p.config.length + 7 }, layers: [] });
    const missingLayer = badManifest({ schemaVersion: 2, mediaType: MANIFEST, config: { mediaType: CONFIG, digest: sha256(p.config), size: p.config.length }, layers: [{ mediaType: LAYER, digest: sha256('absent'), size: 6 }] });
    const big = json({ schemaVersion: 2, manifests: [p.top], annotations: { pad: 'x'.repeat(4 * MiB) } });
    const cases: [string, Buffer, RegExp][] = [
      ['index.json not JSON', await ociLayout(Buffer.from('{"manifests": ['), p.blobs), /index\.json.*JSON/i],
      ['index.json an array', await ociLayout([p.top], p.blobs), /index\.json/i],
      ['index.json manifests not an array', await ociLayout({ schemaVersion: 2, manifests: 'x' }, p.blobs), /manifests/],
      ['index.json manifests empty', await ociLayout({ schemaVersion: 2, manifests: [] }, p.blobs), /no manifests|manifests/],
      ['an index entry with a numeric digest', await ociLayout({ schemaVersion: 2, manifests: [{ ...p.top, digest: 5 }] }, p.blobs), /digest/],
      ['an index entry with a path as digest', await ociLayout({ schemaVersion: 2, manifests: [{ ...p.top, digest: 'sha256:../../../etc/passwd' }] }, p.blobs), /digest/],
      ['an index entry for a missing blob', await ociLayout({ schemaVersion: 2, manifests: [{ ...p.top, digest: sha256('nothing') }] }, p.blobs), /missing/],
      ['an index entry with the wrong size', await ociLayout({ schemaVersion: 2, manifests: [{ ...p.top, size: p.top.size + 1 }] }, p.blobs), /size/],
      ['index.json over 4 MiB', await ociLayout(big, p.blobs), /index\.json.*(large|MiB|bytes)/i],
      ['deeply nested index.json', await ociLayout(Buffer.from(`{"schemaVersion":2,"manifests":${JSON.stringify([p.top])},"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`), p.blobs), /nest|deep/i],
      ['oci-layout not JSON', await ociLayout(index, p.blobs, Buffer.from('imageLayoutVersion')), /oci-layout/],
      ['oci-layout of another version', await ociLayout(index, p.blobs, json({ imageLayoutVersion: '9.0.0' })), /oci-layout/],
      ['a manifest blob that is not JSON', await ociLayout({ schemaVersion: 2, manifests: [{ mediaType: MANIFEST, digest: sha256(notJson), size: notJson.length }] }, notJsonBlobs), /JSON/],
      ['a manifest whose layers are not an array', await ociLayout(noLayers.index, noLayers.blobs), /layers/],
      ['a manifest whose bytes do not match its digest', await ociLayout(index, swap(p.top.digest, json({ schemaVersion: 2, mediaType: MANIFEST, config: { mediaType: CONFIG, digest: sha256(p.config), size: p.config.length }, layers: [] }))), /digest/],
      ['a layer whose bytes do not match its digest', await ociLayout(index, swap(sha256(p.layer), Buffer.from('something else'))), /digest/],
      ['a config with the wrong size', await ociLayout(wrongSize.index, wrongSize.blobs), /size/],
      ['a missing layer', await ociLayout(missingLayer.index, missingLayer.blobs), /missing/],
      ['a blob stored twice', await ociLayout(index, [...[...p.blobs].map(([d, b]) => [`blobs/sha256/${hex(d)}`, b] as [string, Buffer]), [`blobs/sha256/${hex(sha256(p.layer))}`, p.layer]]), /more than once|duplicate/i],
    ];
    for (const [label, archive, message] of cases) await refused(label, await importAs(archive), message);
  });

  test('links, devices and names that escape are refused; nothing is written outside', async () => {
    const { configName } = await dockerParts();
    const good = [{ Config: configName, Layers: ['l/layer.tar'] }];
    const outside = path.join(os.tmpdir(), `berth-escape-${process.pid}.txt`);
    const cases: [string, Buffer, RegExp][] = [
      ['an entry named ../../escape.txt', await dockerSave(good, [['../../escape.txt', Buffer.from('x')]]), /escape|outside|path/i],
      ['an entry with an absolute name', await dockerSave(good, [[outside, Buffer.from('x')]]), /escape|outside|absolute|path/i],
      ['a symlink layer pointing at /etc/passwd', await dockerSave([{ Config: configName, Layers: ['s/layer.tar'] }], [{ name: 's/layer.tar', type: 'symlink', linkname: '/etc/passwd' }]), /link|escape|outside/i],
      ['a symlink layer climbing out', await dockerSave([{ Config: configName, Layers: ['s/layer.tar'] }], [{ name: 's/layer.tar', type: 'symlink', linkname: '../../../../../etc/passwd' }]), /link|escape|outside/i],
      ['a hard link to /etc/passwd', await dockerSave([{ Config: configName, Layers: ['h/layer.tar'] }], [{ name: 'h/layer.tar', type: 'link', linkname: '/etc/passwd' }]), /link|escape|outside/i],
      ['a symlink named manifest.json', await tarOf([{ name: 'manifest.json', type: 'symlink', linkname: '/etc/passwd' }]), /link|escape|outside/i],
      ['a character device', await dockerSave(good, [{ name: 'dev/null', type: 'character-device' }]), /device/i],
      ['a block device', await dockerSave(good, [{ name: 'dev/sda', type: 'block-device' }]), /device/i],
      ['a fifo', await dockerSave(good, [{ name: 'pipe', type: 'fifo' }]), /fifo|pipe/i],
    ];
    for (const [label, archive, message] of cases) {
      await refused(label, await importAs(archive), message);
      assert.ok(!fs.existsSync(path.join(t.dataDir, '..', 'escape.txt')) && !fs.existsSync(path.join(t.dataDir, 'escape.txt')), `${label}: wrote outside`);
      assert.ok(!fs.existsSync(outside), `${label}: wrote ${outside}`);
    }
  });

  test('a docker save tarball whose repeated layer is a symlink (as docker save writes it) imports', async () => {
    const p = await dockerParts('sym');
    const archive = await tarOf([...p.entries, { name: 'm/layer.tar', type: 'symlink', linkname: '../l/layer.tar' }, ['manifest.json', json([{ Config: p.configName, Layers: ['l/layer.tar', 'm/layer.tar'] }])]]);
    const res = await importAs(archive, 'symlinked');
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const m = JSON.parse((await oci.get('/v2/team/symlinked/manifests/1')).text);
    assert.deepEqual(m.layers.map((l: { digest: string }) => l.digest), [sha256(p.layer), sha256(p.layer)]);
  });

  test('repository names and tags that /v2 forbids are refused before anything is written', async () => {
    const archive = await dockerSave([{ Config: (await dockerParts()).configName, Layers: ['l/layer.tar'] }]);
    for (const [repo, full] of [['..%252F..%252Fother%252Fapp', 'library/../../other/app'], ['UPPER', 'library/UPPER'], ['a%252F%252Fb', 'library/a//b'], ['x-', 'library/x-']]) {
      await refused(full, await importAs(archive, repo, '?tag=1', t.adminAuth, 'library'), /name/i, full);
    }
    for (const tag of ['-bad', 'a'.repeat(129), 'x:y']) await refused(`tag ${tag}`, await importAs(archive, 'hostile', `?tag=${encodeURIComponent(tag)}`), /tag/i);
    const repos = await catalog();
    assert.ok(!repos.some((r) => r.includes('..') || r !== r.toLowerCase()), JSON.stringify(repos));
  });
});

describe('gzip-compressed archives', () => {
  test('a .tar.gz docker save tarball imports like the plain tar', async () => {
    const p = await dockerParts('gz');
    const archive = zlib.gzipSync(await tarOf([...p.entries, ['manifest.json', json([{ Config: p.configName, Layers: ['l/layer.tar'] }])]]));
    const res = await importAs(archive, 'gzipped', '?tag=gz');
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const m = JSON.parse((await oci.get('/v2/team/gzipped/manifests/gz')).text);
    assert.equal(m.layers[0].digest, sha256(p.layer));
  });

  test('a truncated or corrupt gzip stream is a 400, and the process lives', async () => {
    const whole = zlib.gzipSync(await dockerSave([{ Config: (await dockerParts()).configName, Layers: ['l/layer.tar'] }]));
    const corrupt = Buffer.from(whole);
    corrupt.fill(0x55, 20, 60);
    await refused('truncated gzip', await importAs(whole.subarray(0, Math.floor(whole.length / 2))), /gzip/);
    await refused('corrupt gzip', await importAs(corrupt), /gzip/);
    await refused('gzip of junk', await importAs(zlib.gzipSync(Buffer.from('not a tar at all'.repeat(100)))), /tar|archive/i);
  });

  test('a gzip bomb is stopped by the unpacked-size limit, and its temp files are removed', async () => {
    // 64 MiB of zeros in one entry compress to ~64 KiB; the importer here allows 1 MiB unpacked.
    const tmpDir = path.join(t.dataDir, 'tmp-bomb');
    const small = new ImportService({ registry: t.berth.registry, tmpDir, maxUnpackedBytes: MiB });
    const file = path.join(t.dataDir, 'bomb.tar.gz');
    fs.writeFileSync(file, zlib.gzipSync(await tarOf([['zeros', Buffer.alloc(64 * MiB)], ['manifest.json', json([])]])));
    await assert.rejects(small.importImages('team/bomb', '1', file), (e: Error & { status?: number }) => {
      assert.ok(e.status === 413 || e.status === 400, String(e.status));
      assert.match(e.message, /unpack|large|limit/i);
      return true;
    });
    assert.deepEqual(fs.readdirSync(tmpDir), []);
  });
});

describe('the archive’s own tags', () => {
  // The route passes no tag when ?tag= is absent; driven through the service so these hold whatever the route does.
  const service = () => new ImportService({ registry: t.berth.registry, tmpDir: path.join(t.dataDir, 'tmp-tags') });
  const file = (name: string, bytes: Buffer) => {
    const f = path.join(t.dataDir, name);
    fs.writeFileSync(f, bytes);
    return f;
  };

  test('without a tag, docker save’s RepoTags name the tags (their tag part, in the route’s repository)', async () => {
    const p = await dockerParts('tags');
    const archive = await tarOf([...p.entries, ['manifest.json', json([{ Config: p.configName, RepoTags: ['docker.io/library/alpine:3.19', 'localhost:5000/some/app:edge'], Layers: ['l/layer.tar'] }])]]);
    const result = await service().importImages('team/own-tags', undefined, file('own.tar', archive));
    assert.deepEqual(result.tags.map((x) => x.tag).sort(), ['3.19', 'edge']);
    const list = await oci.get('/v2/team/own-tags/tags/list');
    assert.deepEqual(list.body.tags.sort(), ['3.19', 'edge']);
    assert.ok(!(await catalog()).some((r) => r.includes('alpine') || r.includes('some/app')));
  });

  test('without a tag, an OCI layout’s org.opencontainers.image.ref.name annotations name the tags', async () => {
    const a = ociParts('a');
    const b = ociParts('b');
    const blobs = new Map([...a.blobs, ...b.blobs]);
    const index = { schemaVersion: 2, manifests: [{ ...a.top, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }, { ...b.top, annotations: { 'org.opencontainers.image.ref.name': 'v2', 'io.containerd.image.name': 'docker.io/library/x:v2' } }] };
    const result = await service().importImages('team/oci-tags', undefined, file('oci-tags.tar', await ociLayout(index, blobs)));
    assert.deepEqual(result.tags, [{ tag: 'v1', digest: a.top.digest }, { tag: 'v2', digest: b.top.digest }]);
    assert.equal((await oci.head('/v2/team/oci-tags/manifests/v2')).headers['docker-content-digest'], b.top.digest);
  });

  test('over HTTP, an import without ?tag= keeps the archive’s tags', async () => {
    const p = await dockerParts('http-tags');
    const archive = await tarOf([...p.entries, ['manifest.json', json([{ Config: p.configName, RepoTags: ['example.com/x/y:from-archive'], Layers: ['l/layer.tar'] }])]]);
    const res = await importAs(archive, 'http-tags', '');
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual((await oci.get('/v2/team/http-tags/tags/list')).body.tags, ['from-archive']);
    // The import is in the audit log, and so in the project's activity.
    await t.berth.audit.flush();
    const logs = (await t.request.get('/api/v2.0/projects/team/logs?page_size=100').set('Authorization', t.adminAuth)).body as { username: string; operation: string; resource: string }[];
    assert.ok(logs.some((l) => l.operation === 'import' && l.username === 'dev' && l.resource === 'team/http-tags:from-archive'), JSON.stringify(logs));
    const untagged = await tarOf([...p.entries, ['manifest.json', json([{ Config: p.configName, Layers: ['l/layer.tar'] }])]]);
    await refused('no tag anywhere', await importAs(untagged, 'http-untagged', ''), /tag/, 'team/http-untagged');
  });

  test('without a tag, an archive that names none is a 400, and with a tag the archive’s names are not used', async () => {
    const p = await dockerParts('untagged');
    const untagged = await tarOf([...p.entries, ['manifest.json', json([{ Config: p.configName, RepoTags: null, Layers: ['l/layer.tar'] }])]]);
    await assert.rejects(service().importImages('team/untagged', undefined, file('untagged.tar', untagged)), (e: Error & { status?: number }) => e.status === 400 && /tag/.test(e.message));
    const bad = await tarOf([...p.entries, ['manifest.json', json([{ Config: p.configName, RepoTags: ['x:-bad'], Layers: ['l/layer.tar'] }])]]);
    await assert.rejects(service().importImages('team/untagged', undefined, file('bad.tar', bad)), (e: Error & { status?: number }) => e.status === 400 && /tag/.test(e.message));
    const twice = await tarOf([...p.entries, ['manifest.json', json([{ Config: p.configName, RepoTags: ['a:same'], Layers: ['l/layer.tar'] }, { Config: p.configName, RepoTags: ['b:same'], Layers: [] }])]]);
    await assert.rejects(service().importImages('team/untagged', undefined, file('twice.tar', twice)), (e: Error & { status?: number }) => e.status === 400 && /same.*more than one image/.test(e.message));
    const tagged = await tarOf([...p.entries, ['manifest.json', json([{ Config: p.configName, RepoTags: ['x:named'], Layers: ['l/layer.tar'] }])]]);
    const res = await importAs(tagged, 'given', '?tag=given');
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual((await oci.get('/v2/team/given/tags/list')).body.tags, ['given']);
  });
});
