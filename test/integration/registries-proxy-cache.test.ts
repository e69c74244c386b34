// The proxy cache's read path (src/services/proxy-cache.ts) against a real upstream: Distribution
// with htpasswd Basic auth behind a small forwarding proxy that counts requests, can go down and
// can lie. What the service stores is then served by Berth's ordinary /v2 pull path, byte for byte.
// (Written so it holds whether or not the /v2 handlers call the service.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pino } from 'pino';
import { AppError } from '../../src/lib/errors.ts';
import type { ProxyCacheService, ProxyProject } from '../../src/services/proxy-cache.ts';
import { UpstreamClient } from '../../src/upstream/client.ts';
import { makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { missingDistribution, removeDistribution, startDistribution, type Distribution } from '../helpers/distribution.ts';
import { binary, bytes, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, sha256 } from '../helpers/oci.ts';

const skip = missingDistribution({ htpasswd: true });
const USER = 'cache';
const SECRET = 'Cache-S3cret-81a';

let dist: Distribution;
let upstream: UpstreamClient;
let t: TestApp;
let proxy: ProxyCacheService;
let project: ProxyProject;
let front: http.Server;
let mode: 'up' | 'down' | 'lie' = 'up';
const counts = new Map<string, number>();
const logLines: string[] = [];

/** Requests the front proxy passed on, by "METHOD kind" (kind: manifest, blob, other). */
function count(method: string, kind: string): number {
  return counts.get(`${method} ${kind}`) ?? 0;
}

async function startFront(target: number): Promise<string> {
  front = http.createServer((req, res) => {
    if (mode === 'down') return void req.socket.destroy();
    const kind = /\/manifests\//.test(req.url ?? '') ? 'manifest' : /\/blobs\/sha256:/.test(req.url ?? '') ? 'blob' : 'other';
    counts.set(`${req.method} ${kind}`, count(req.method ?? '', kind) + 1);
    const up = http.request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers }, (r) => {
      if (mode === 'lie' && kind === 'blob' && req.method === 'GET' && r.statusCode === 200) {
        // Same length, other bytes.
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const body = Buffer.concat(chunks);
          body[0] ^= 0xff;
          res.writeHead(200, r.headers).end(body);
        });
        return;
      }
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
}

interface Image {
  index: Buffer;
  digest: string;
  children: Buffer[];
  blobs: Map<string, Buffer>;
}

function image(seed: number): Image {
  const blobs = new Map<string, Buffer>();
  const children: Buffer[] = [];
  for (const [i, arch] of ['amd64', 'arm64'].entries()) {
    const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }));
    const layer = bytes(100_000 + i, seed * 7 + i);
    blobs.set(sha256(config), config);
    blobs.set(sha256(layer), layer);
    children.push(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length }, layers: [{ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length }] })));
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((c, i) => ({ mediaType: OCI_MANIFEST, digest: sha256(c), size: c.length, platform: { architecture: i ? 'arm64' : 'amd64', os: 'linux' } })) }));
  return { index, digest: sha256(index), children, blobs };
}

async function pushUpstream(repo: string, tag: string, img: Image): Promise<void> {
  for (const [digest, data] of img.blobs) await upstream.pushBlob(repo, digest, data.length, () => Readable.from([data]));
  for (const c of img.children) await upstream.putManifest(repo, sha256(c), c, OCI_MANIFEST);
  await upstream.putManifest(repo, tag, img.index, OCI_INDEX);
}

/** A pull through Berth's ordinary /v2 path: the bytes it serves. */
async function pull(path: string): Promise<{ status: number; body: Buffer }> {
  const res = await t.request.get(`/v2/${path}`).set('Authorization', t.adminAuth).set('Accept', `${OCI_INDEX}, ${OCI_MANIFEST}`).buffer(true).parse(binary);
  return { status: res.status, body: res.body as Buffer };
}

async function rejectsApp(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AppError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

before(async () => {
  if (skip) return;
  dist = await startDistribution({ users: { [USER]: SECRET } });
  upstream = new UpstreamClient({ url: dist.url, credential: { username: USER, password: SECRET } });
  const frontUrl = await startFront(dist.port);
  const log = pino({ level: 'info' }, { write: (s: string) => void logLines.push(s) });
  t = await makeApp({}, { ...REAL_ACCESS, log });
  const reg = await t.request.post('/api/v2.0/registries').set('Authorization', t.adminAuth).send({ name: 'upstream', type: 'docker-registry', url: frontUrl, credential: { type: 'basic', access_key: USER, access_secret: SECRET } });
  assert.equal(reg.status, 201, reg.text);
  const registryId = Number(String(reg.headers.location).split('/').pop());
  assert.equal((await t.request.post('/api/v2.0/projects').set('Authorization', t.adminAuth).send({ project_name: 'hub-cache' })).status, 201);
  // Proxy-cache projects are created through POST /projects with registry_id later in issue 16.
  await t.berth.db.project.update({ where: { name: 'hub-cache' }, data: { registryId } });
  project = { name: 'hub-cache', registryId };
  proxy = t.berth.proxyCache;
});

after(async () => {
  upstream?.close();
  if (skip) return;
  front.closeAllConnections();
  await new Promise<void>((r) => front.close(() => r()));
  await t.close();
  await removeDistribution(dist);
});

describe('proxy cache read path', { skip }, () => {
  const app = image(1);

  test('first pull by tag: the index, both children and all blobs are fetched, verified and stored; /v2 serves them byte for byte', async () => {
    await pushUpstream('team/app', 'v1', app);
    const m = await proxy.manifest(project, 'hub-cache/team/app', 'v1');
    assert.equal(m.digest, app.digest);
    assert.ok(m.bytes.equals(app.index));
    const top = await pull('hub-cache/team/app/manifests/v1');
    assert.equal(top.status, 200);
    assert.ok(top.body.equals(app.index));
    for (const c of app.children) assert.ok((await pull(`hub-cache/team/app/manifests/${sha256(c)}`)).body.equals(c));
    for (const [digest, data] of app.blobs) {
      const b = await pull(`hub-cache/team/app/blobs/${digest}`);
      assert.equal(b.status, 200);
      assert.ok(b.body.equals(data), `blob ${digest}`);
    }
    assert.equal(count('GET', 'blob'), 4);
  });

  test('again by tag: one HEAD upstream, nothing fetched; by digest: no upstream request at all', async () => {
    const before = new Map(counts);
    assert.equal((await proxy.manifest(project, 'hub-cache/team/app', 'v1')).digest, app.digest);
    assert.equal(count('HEAD', 'manifest'), (before.get('HEAD manifest') ?? 0) + 1);
    assert.equal(count('GET', 'manifest'), before.get('GET manifest') ?? 0);
    assert.equal(count('GET', 'blob'), before.get('GET blob') ?? 0);
    const requests = [...counts.values()].reduce((a, b) => a + b, 0);
    assert.equal((await proxy.manifest(project, 'hub-cache/team/app', app.digest)).digest, app.digest);
    assert.equal((await proxy.manifest(project, 'hub-cache/team/app', sha256(app.children[1]))).digest, sha256(app.children[1]));
    assert.equal([...counts.values()].reduce((a, b) => a + b, 0), requests);
  });

  test('quota counts what is cached', async () => {
    const s = await t.request.get('/api/v2.0/projects/hub-cache/summary').set('Authorization', t.adminAuth);
    const blobBytes = [...app.blobs.values()].reduce((n, b) => n + b.length, 0);
    assert.ok(s.body.quota.used.storage >= blobBytes, JSON.stringify(s.body.quota));
  });

  test('concurrent pulls of the same missing image fetch each blob once', async () => {
    const other = image(2);
    await pushUpstream('team/other', 'v1', other);
    const before = count('GET', 'blob');
    const results = await Promise.all([1, 2, 3].map(() => proxy.manifest(project, 'hub-cache/team/other', 'v1')));
    for (const r of results) assert.equal(r.digest, other.digest);
    assert.equal(count('GET', 'blob') - before, 4);
  });

  test('upstream down: the cached tag and digest are served (and the log says so); what is not cached fails naming the cause', async () => {
    mode = 'down';
    try {
      logLines.length = 0;
      assert.equal((await proxy.manifest(project, 'hub-cache/team/app', 'v1')).digest, app.digest);
      assert.ok(logLines.some((l) => l.includes('serving the cached copy') && l.includes('hub-cache/team/app')), logLines.join('\n'));
      assert.equal((await proxy.manifest(project, 'hub-cache/team/app', app.digest)).digest, app.digest);
      await rejectsApp(proxy.manifest(project, 'hub-cache/team/app', 'v2'), 'UNAVAILABLE', /upstream registry of proxy cache project hub-cache cannot be used, and v2 is not cached: cannot reach http:\/\/127\.0\.0\.1:\d+\/v2\/.*connection reset/);
    } finally {
      mode = 'up';
    }
  });

  test('a tag moved upstream: the new digest is fetched; the old one stays by digest; a tag the upstream lacks is unknown', async () => {
    const v2 = image(3);
    await pushUpstream('team/app', 'v1', v2);
    assert.equal((await proxy.manifest(project, 'hub-cache/team/app', 'v1')).digest, v2.digest);
    assert.ok((await pull('hub-cache/team/app/manifests/v1')).body.equals(v2.index));
    assert.ok((await pull(`hub-cache/team/app/manifests/${app.digest}`)).body.equals(app.index));
    await rejectsApp(proxy.manifest(project, 'hub-cache/team/app', 'nope'), 'MANIFEST_UNKNOWN', /unknown to the upstream registry of proxy cache project hub-cache/);
  });

  test('a lying upstream (wrong bytes for a blob digest): refused, nothing stored', async () => {
    const lie = image(4);
    await pushUpstream('team/liar', 'v1', lie);
    mode = 'lie';
    try {
      await rejectsApp(proxy.manifest(project, 'hub-cache/team/liar', 'v1'), 'UNAVAILABLE', /hash to sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}: refused/);
    } finally {
      mode = 'up';
    }
    for (const digest of lie.blobs.keys()) assert.equal(await t.berth.registry.blobSize('hub-cache/team/liar', digest), null);
    // Asked of the store itself: once /v2 calls the proxy cache, a pull would fetch (honestly) again.
    await rejectsApp(t.berth.registry.getManifest('hub-cache/team/liar', 'v1'), 'MANIFEST_UNKNOWN', /./);
    await rejectsApp(t.berth.registry.getManifest('hub-cache/team/liar', lie.digest), 'MANIFEST_UNKNOWN', /./);
    // Once the upstream is honest again, the pull works.
    assert.equal((await proxy.manifest(project, 'hub-cache/team/liar', 'v1')).digest, lie.digest);
  });

  test('a missing blob GET streams to the client while it is stored; a concurrent pull waits for that fetch and is served from the cache', async () => {
    const data = bytes(300_000, 41);
    await upstream.pushBlob('team/stream', sha256(data), data.length, () => Readable.from([data]));
    const before = count('GET', 'blob');
    const first = await proxy.openBlob(project, 'hub-cache/team/stream', sha256(data));
    assert.ok(first, 'the first pull streams from the upstream');
    assert.equal(first.size, data.length);
    const second = proxy.openBlob(project, 'hub-cache/team/stream', sha256(data));
    assert.ok((await buffer(first.stream)).equals(data));
    assert.equal(await second, null, 'the second pull is served from the cache');
    assert.equal(await t.berth.registry.blobSize('hub-cache/team/stream', sha256(data)), data.length);
    assert.equal(count('GET', 'blob') - before, 1);
    assert.equal(await proxy.openBlob(project, 'hub-cache/team/stream', sha256(data)), null);
    assert.ok((await pull(`hub-cache/team/stream/blobs/${sha256(data)}`)).body.equals(data));
  });

  test('a client that goes away mid-blob does not stop the storing', async () => {
    const data = bytes(500_000, 42);
    await upstream.pushBlob('team/gone', sha256(data), data.length, () => Readable.from([data]));
    const got = await proxy.openBlob(project, 'hub-cache/team/gone', sha256(data));
    assert.ok(got);
    await new Promise<void>((resolve) => got.stream.once('data', () => resolve()));
    got.stream.destroy();
    assert.equal(await proxy.blob(project, 'hub-cache/team/gone', sha256(data)), data.length);
    assert.ok((await pull(`hub-cache/team/gone/blobs/${sha256(data)}`)).body.equals(data));
  });

  test('a streamed blob with the wrong bytes: the client stream errors before its end, nothing is stored', async () => {
    const data = bytes(200_000, 43);
    await upstream.pushBlob('team/lie2', sha256(data), data.length, () => Readable.from([data]));
    mode = 'lie';
    try {
      const got = await proxy.openBlob(project, 'hub-cache/team/lie2', sha256(data));
      assert.ok(got);
      await assert.rejects(buffer(got.stream), /hash to sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}: refused/);
      await rejectsApp(proxy.blob(project, 'hub-cache/team/lie2', sha256(data)), 'UNAVAILABLE', /hash to sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}: refused/);
    } finally {
      mode = 'up';
    }
    assert.equal(await t.berth.registry.blobSize('hub-cache/team/lie2', sha256(data)), null);
  });

  test('referrers of a cached image (a signature upstream) are fetched for the listing; with the upstream down the cached ones are listed', async () => {
    const empty = Buffer.from('{}');
    const sig = Buffer.from('{"sig":1}');
    for (const b of [empty, sig]) await upstream.pushBlob('team/app', sha256(b), b.length, () => Readable.from([b]));
    const v2 = (await proxy.manifest(project, 'hub-cache/team/app', 'v1')).digest;
    const sigManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.example.sig',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 },
        layers: [{ mediaType: 'application/vnd.example.sig.v1', digest: sha256(sig), size: sig.length }],
        subject: { mediaType: OCI_INDEX, digest: v2, size: (await upstream.headManifest('team/app', v2))!.size },
      }),
    );
    await upstream.putManifest('team/app', sha256(sigManifest), sigManifest, OCI_MANIFEST);
    // Distribution 2.8 has no referrers API: the signature is listed under the fallback tag.
    const fallback = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256(sigManifest), size: sigManifest.length, artifactType: 'application/vnd.example.sig' }] }));
    await upstream.putManifest('team/app', v2.replace(':', '-'), fallback, OCI_INDEX);

    assert.deepEqual(await t.berth.registry.referrers('hub-cache/team/app', v2), []);
    assert.equal(await proxy.referrers(project, 'hub-cache/team/app', v2), 1);
    assert.deepEqual((await t.berth.registry.referrers('hub-cache/team/app', v2)).map((r) => r.digest), [sha256(sigManifest)]);
    assert.equal(await proxy.referrers(project, 'hub-cache/team/app', v2), 0, 'already cached');
    mode = 'down';
    try {
      assert.equal(await proxy.referrers(project, 'hub-cache/team/app', v2), 0);
      assert.deepEqual((await t.berth.registry.referrers('hub-cache/team/app', v2)).map((r) => r.digest), [sha256(sigManifest)]);
    } finally {
      mode = 'up';
    }
  });

  test('a blob asked for directly is fetched once and then served from the cache', async () => {
    const data = Buffer.from('a loose blob');
    await upstream.pushBlob('team/loose', sha256(data), data.length, () => Readable.from([data]));
    assert.equal(await proxy.blob(project, 'hub-cache/team/loose', sha256(data)), data.length);
    const before = count('GET', 'blob');
    assert.equal(await proxy.blob(project, 'hub-cache/team/loose', sha256(data)), data.length);
    assert.equal(count('GET', 'blob'), before);
    assert.ok((await pull(`hub-cache/team/loose/blobs/${sha256(data)}`)).body.equals(data));
    await rejectsApp(proxy.blob(project, 'hub-cache/team/loose', sha256('missing')), 'BLOB_UNKNOWN', /unknown to the upstream registry/);
    await rejectsApp(proxy.manifest(project, 'hub-cache', 'v1'), 'NAME_INVALID', /below the project/);
  });
});
