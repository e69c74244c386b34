// The upstream registry client (src/upstream) against real registries on loopback: CNCF
// Distribution (Debian's docker-registry) anonymous and with htpasswd Basic auth, and a second
// Berth with Docker token auth. A multi-arch image pushed with the client to one is copied to the
// other by digest and comes out digest-identical; hand-written servers play a lying upstream, a
// token service and a redirect to object storage.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import { UpstreamClient, parseChallenge } from '../../src/upstream/client.ts';
import { copyArtifact } from '../../src/upstream/copy.ts';
import { UpstreamError } from '../../src/upstream/errors.ts';
import { ADMIN_PASSWORD, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { missingDistribution, removeDistribution, startDistribution, type Distribution } from '../helpers/distribution.ts';
import { bytes, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, sha256 } from '../helpers/oci.ts';
import { missingTool } from '../helpers/tools.ts';

const skip = missingDistribution({ htpasswd: true });
/** skopeo double-checks a copy when installed (CI installs it: there its absence fails). */
const noSkopeo = missingTool('skopeo');
const USER = 'replicator';
const PASSWORD = 'Dist-pa55-7c1e';

let open: Distribution;
let basicDist: Distribution;
let berth: TestApp;
let berthServer: http.Server;
let berthUrl: string;
const clients: UpstreamClient[] = [];

function client(url: string, opts: Partial<ConstructorParameters<typeof UpstreamClient>[0]> = {}): UpstreamClient {
  const c = new UpstreamClient({ url, timeoutMs: 10_000, ...opts });
  clients.push(c);
  return c;
}

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

/** Rejects with an UpstreamError of `kind` whose message matches `message`. */
async function rejectsUpstream(p: Promise<unknown>, kind: string, message?: RegExp): Promise<UpstreamError> {
  let caught: unknown;
  await p.then(
    () => assert.fail(`expected an UpstreamError (${kind})`),
    (e: unknown) => (caught = e),
  );
  assert.ok(caught instanceof UpstreamError, `not an UpstreamError: ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

interface Image {
  index: Buffer;
  indexDigest: string;
  children: { body: Buffer; digest: string }[];
  blobs: Map<string, Buffer>;
}

/** A two-platform OCI image: an index of two manifests, each with its config and one layer (one of them 300 KiB). */
function multiArch(seed: number): Image {
  const blobs = new Map<string, Buffer>();
  const children: Image['children'] = [];
  for (const [i, arch] of (['amd64', 'arm64'] as const).entries()) {
    const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }));
    const layer = bytes(i === 0 ? 300 * 1024 : 2048, seed * 10 + i);
    blobs.set(sha256(config), config);
    blobs.set(sha256(layer), layer);
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
        layers: [{ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length }],
      }),
    );
    children.push({ body, digest: sha256(body) });
  }
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((c, i) => ({ mediaType: OCI_MANIFEST, digest: c.digest, size: c.body.length, platform: { architecture: i ? 'arm64' : 'amd64', os: 'linux' } })),
    }),
  );
  return { index, indexDigest: sha256(index), children, blobs };
}

/** Pushes an image with the client (blobs over 64 KiB in 64 KiB PATCHes). */
async function pushImage(c: UpstreamClient, repo: string, img: Image, tag: string): Promise<void> {
  for (const [digest, data] of img.blobs) await c.pushBlob(repo, digest, data.length, () => Readable.from([data]), { chunkSize: 64 * 1024 });
  for (const child of img.children) await c.putManifest(repo, child.digest, child.body, OCI_MANIFEST);
  await c.putManifest(repo, tag, img.index, OCI_INDEX);
}

before(async () => {
  if (skip) return;
  open = await startDistribution();
  basicDist = await startDistribution({ users: { [USER]: PASSWORD } });
  berth = await makeApp({}, REAL_ACCESS);
  ({ server: berthServer, url: berthUrl } = await listen(berth.berth.app));
  for (const name of ['mirror', 'other']) {
    const r = await berth.request.post('/api/v2.0/projects').set('Authorization', berth.adminAuth).send({ project_name: name });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
});

after(async () => {
  for (const c of clients) c.close();
  if (skip) return;
  await removeDistribution(open);
  await removeDistribution(basicDist);
  await close(berthServer);
  await berth.close();
});

describe('ping', { skip }, () => {
  test('anonymous Distribution: reachable', async () => {
    await client(open.url).ping();
  });

  test('Distribution with Basic auth: the right password passes, a wrong one and none fail naming the cause', async () => {
    await client(basicDist.url, { credential: { username: USER, password: PASSWORD } }).ping();
    const wrong = await rejectsUpstream(client(basicDist.url, { credential: { username: USER, password: 'not-it' } }).ping(), 'unauthorized', /refused the credentials of user "replicator"/);
    assert.ok(!wrong.message.includes('not-it'), 'the password appears in the error');
    await rejectsUpstream(client(basicDist.url).ping(), 'unauthorized', /requires credentials/);
  });

  test('Berth with token auth: the token flow with Basic credentials at the realm; a wrong password is refused by its token service', async () => {
    await client(berthUrl, { credential: { username: 'admin', password: ADMIN_PASSWORD } }).ping();
    const e = await rejectsUpstream(client(berthUrl, { credential: { username: 'admin', password: 'Wrong-pass-1' } }).ping(), 'unauthorized', /token service .*\/service\/token refused the credentials of user "admin"/);
    assert.ok(!e.message.includes('Wrong-pass-1'));
  });

  test('nothing listening: unreachable, connection refused; not a registry: says so', async () => {
    const { server, url } = await listen((_req, res) => res.writeHead(404).end('no'));
    await close(server);
    await rejectsUpstream(client(url).ping(), 'unreachable', /cannot reach http:\/\/127\.0\.0\.1:\d+\/v2\/: connection refused/);
    const web = await listen((_req, res) => res.writeHead(404).end('<html>'));
    try {
      await rejectsUpstream(client(web.url).ping(), 'not-found', /has no registry API \(GET \/v2\/ answered 404\)/);
    } finally {
      await close(web.server);
    }
  });

  test('an upstream that never answers: a timeout, not a hang', async () => {
    const { server, url } = await listen(() => undefined);
    try {
      await rejectsUpstream(client(url, { timeoutMs: 500 }).ping(), 'timeout', /did not answer within/);
    } finally {
      await close(server);
    }
  });
});

describe('images', { skip, timeout: 60_000 }, () => {
  const img = () => multiArch(7);

  test('push a multi-arch image to Distribution (Basic, chunked uploads), copy it to Berth (token) by digest: digest-identical', async () => {
    const src = client(basicDist.url, { credential: { username: USER, password: PASSWORD } });
    const dst = client(berthUrl, { credential: { username: 'admin', password: ADMIN_PASSWORD } });
    const image = img();
    await pushImage(src, 'team/app', image, 'v1');

    const head = await src.headManifest('team/app', 'v1');
    assert.deepEqual(head, { digest: image.indexDigest, mediaType: OCI_INDEX, size: image.index.length });

    const result = await copyArtifact({ client: src, repository: 'team/app' }, { client: dst, repository: 'mirror/app' }, 'v1');
    assert.equal(result.digest, image.indexDigest);
    assert.equal(result.manifestsPushed, 3);
    assert.equal(result.blobsUploaded, 4);
    assert.equal(result.bytesUploaded, [...image.blobs.values()].reduce((n, b) => n + b.length, 0));

    // The destination holds the same bytes under the same digests.
    const top = await dst.getManifest('mirror/app', 'v1');
    assert.equal(top?.digest, image.indexDigest);
    assert.ok(top?.body.equals(image.index));
    for (const child of image.children) assert.ok((await dst.getManifest('mirror/app', child.digest))?.body.equals(child.body));
    for (const [digest, data] of image.blobs) {
      const b = await dst.getBlob('mirror/app', digest, data.length);
      assert.equal(b.size, data.length);
      assert.ok((await buffer(b.stream)).equals(data), `blob ${digest} differs`);
    }

    // A real client agrees (asynchronously: this process serves the Berth it asks).
    if (!noSkopeo) {
      const { stdout: raw } = await promisify(execFile)('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', `admin:${ADMIN_PASSWORD}`, `docker://${new URL(berthUrl).host}/mirror/app:v1`], { encoding: 'buffer' });
      assert.equal(sha256(raw), image.indexDigest);
    }

    // Copied again: everything is there already.
    const again = await copyArtifact({ client: src, repository: 'team/app' }, { client: dst, repository: 'mirror/app' }, image.indexDigest);
    assert.equal(again.manifestsPushed, 0);
    assert.equal(again.manifestsSkipped, 1);
    assert.equal(again.blobsUploaded, 0);
  });

  test('copy into another repository of the destination mounts the blobs it already holds', async () => {
    const src = client(basicDist.url, { credential: { username: USER, password: PASSWORD } });
    const dst = client(berthUrl, { credential: { username: 'admin', password: ADMIN_PASSWORD } });
    const image = img();
    const r = await copyArtifact({ client: src, repository: 'team/app' }, { client: dst, repository: 'other/app' }, 'v1', { mountFrom: ['mirror/app'] });
    assert.equal(r.blobsMounted, 4);
    assert.equal(r.blobsUploaded, 0);
    assert.equal((await dst.headManifest('other/app', 'v1'))?.digest, image.indexDigest);
  });

  test('copy from Berth to anonymous Distribution by digest (through the throttle), no tag; tags and delete', async () => {
    const src = client(berthUrl, { credential: { username: 'admin', password: ADMIN_PASSWORD } });
    const dst = client(open.url);
    const image = img();
    const r = await copyArtifact({ client: src, repository: 'mirror/app' }, { client: dst, repository: 'copy/app' }, image.indexDigest, { bytesPerSecond: 64 * 1024 * 1024 });
    assert.equal(r.manifestsPushed, 3);
    assert.equal((await dst.getManifest('copy/app', image.indexDigest))?.digest, image.indexDigest);
    assert.deepEqual(await dst.tags('copy/app'), []);
    await dst.putManifest('copy/app', 'b', image.index, OCI_INDEX);
    await dst.putManifest('copy/app', 'a', image.index, OCI_INDEX);
    assert.deepEqual((await dst.tags('copy/app')).sort(), ['a', 'b']);
    assert.deepEqual(await dst.tags('no/such'), []);
    assert.equal(await dst.deleteManifest('copy/app', image.indexDigest), true);
    assert.equal(await dst.getManifest('copy/app', 'a'), null);
    assert.equal(await dst.headManifest('copy/app', image.indexDigest), null);
  });

  test('referrers: Berth answers the referrers API; Distribution 2.8 has none and the fallback tag is read', async () => {
    const image = img();
    const sig = Buffer.from('{"signature":"x"}');
    const empty = Buffer.from('{}');
    const sigManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.example.sig',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 },
        layers: [{ mediaType: 'application/vnd.example.sig.v1', digest: sha256(sig), size: sig.length }],
        subject: { mediaType: OCI_INDEX, digest: image.indexDigest, size: image.index.length },
      }),
    );
    const berthClient = client(berthUrl, { credential: { username: 'admin', password: ADMIN_PASSWORD } });
    for (const b of [empty, sig]) await berthClient.pushBlob('mirror/app', sha256(b), b.length, () => Readable.from([b]));
    await berthClient.putManifest('mirror/app', sha256(sigManifest), sigManifest, OCI_MANIFEST);
    const found = await berthClient.referrers('mirror/app', image.indexDigest);
    assert.deepEqual(found.map((d) => d.digest), [sha256(sigManifest)]);
    assert.deepEqual(await berthClient.referrers('mirror/app', image.indexDigest, 'application/vnd.other'), []);

    // Distribution 2.8 has no referrers API: the copy lists the signature under the fallback tag
    // "sha256-<hex>", where the client (and cosign, oras, notation) look.
    const dist = client(open.url);
    assert.equal(await dist.referrersApi('sig/app', image.indexDigest), null);
    const copied = await copyArtifact({ client: berthClient, repository: 'mirror/app' }, { client: dist, repository: 'sig/app' }, image.indexDigest, { referrers: true });
    assert.equal(copied.manifestsPushed, 4, 'index, two children and the signature');
    const listed = await dist.referrers('sig/app', image.indexDigest);
    assert.deepEqual(listed, [{ mediaType: OCI_MANIFEST, digest: sha256(sigManifest), size: sigManifest.length, artifactType: 'application/vnd.example.sig' }]);
    assert.deepEqual(await dist.referrers('sig/app', image.indexDigest, 'application/vnd.other'), []);
    // Copied again, the fallback index does not list it twice; and back into Berth, digest for digest.
    await copyArtifact({ client: berthClient, repository: 'mirror/app' }, { client: dist, repository: 'sig/app' }, image.indexDigest, { referrers: true });
    assert.equal((await dist.referrers('sig/app', image.indexDigest)).length, 1);
    const back = await copyArtifact({ client: dist, repository: 'sig/app' }, { client: berthClient, repository: 'other/signed' }, image.indexDigest, { referrers: true });
    assert.equal(back.manifestsPushed, 4);
    assert.deepEqual((await berthClient.referrers('other/signed', image.indexDigest)).map((d) => d.digest), [sha256(sigManifest)]);
    assert.equal(await berthClient.headManifest('other/signed', image.indexDigest.replace(':', '-')), null, 'no fallback tag where the API exists');
  });

  test('Docker schema 2 list and manifests copy digest-identical; the catalog lists the repositories', async () => {
    const src = client(open.url);
    const dst = client(berthUrl, { credential: { username: 'admin', password: ADMIN_PASSWORD } });
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const layer = bytes(4096, 99);
    for (const b of [config, layer]) await src.pushBlob('docker/app', sha256(b), b.length, () => Readable.from([b]));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: sha256(layer), size: layer.length }],
      }),
    );
    await src.putManifest('docker/app', sha256(manifest), manifest, 'application/vnd.docker.distribution.manifest.v2+json');
    const list = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', manifests: [{ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: sha256(manifest), size: manifest.length, platform: { architecture: 'amd64', os: 'linux' } }] }));
    await src.putManifest('docker/app', 'latest', list, 'application/vnd.docker.distribution.manifest.list.v2+json');
    const r = await copyArtifact({ client: src, repository: 'docker/app' }, { client: dst, repository: 'mirror/docker' }, 'latest');
    assert.equal(r.digest, sha256(list));
    const got = await dst.getManifest('mirror/docker', 'latest');
    assert.equal(got?.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.ok(got?.body.equals(list));
    assert.ok((await dst.getManifest('mirror/docker', sha256(manifest)))?.body.equals(manifest));
    const catalog = await src.catalog();
    assert.ok(catalog.includes('docker/app'), catalog.join(' '));
  });

  test('docker-hub type: a single-name image lives under library/', async () => {
    const hub = client(open.url, { type: 'docker-hub' });
    assert.equal(hub.repository('alpine'), 'library/alpine');
    assert.equal(hub.repository('bitnami/redis'), 'bitnami/redis');
    assert.equal(UpstreamClient.baseUrl('https://hub.docker.com', 'docker-hub').toString(), 'https://registry-1.docker.io/');
    const data = Buffer.from('hub layer');
    await hub.pushBlob('alpine', sha256(data), data.length, () => Readable.from([data]));
    assert.equal(await client(open.url).headBlob('library/alpine', sha256(data)), data.length);
  });
});

describe('a lying or unusual upstream', { skip }, () => {
  const good = Buffer.from('the real bytes');
  const bad = Buffer.from('other bytes!!!');
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(good), size: good.length }, layers: [] }));
  const lie = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(good), size: good.length }, layers: [], x: 1 }));
  let liar: { server: http.Server; url: string };

  before(async () => {
    liar = await listen((req, res) => {
      const url = req.url ?? '';
      if (url === '/v2/') return void res.writeHead(200).end('{}');
      if (url === `/v2/evil/app/manifests/${sha256(manifest)}`) return void res.writeHead(200, { 'content-type': OCI_MANIFEST }).end(lie);
      if (url === '/v2/evil/app/manifests/v1') return void res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha256(manifest) }).end(lie);
      if (url === '/v2/evil/app/manifests/honest') return void res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha256(manifest) }).end(manifest);
      if (url === `/v2/evil/app/blobs/${sha256(good)}`) return void res.writeHead(200, { 'content-length': String(bad.length) }).end(bad);
      res.writeHead(404).end();
    });
  });
  after(async () => close(liar.server));

  test('a manifest whose bytes do not hash to the digest asked for, or announced, is refused', async () => {
    const c = client(liar.url);
    await rejectsUpstream(c.getManifest('evil/app', sha256(manifest)), 'digest-mismatch', /hash to sha256:[0-9a-f]{64}: refused/);
    await rejectsUpstream(c.getManifest('evil/app', 'v1'), 'digest-mismatch', /does not hash to its Docker-Content-Digest/);
    assert.equal((await c.getManifest('evil/app', 'honest'))?.digest, sha256(manifest));
  });

  test('a blob with the wrong bytes: the stream errors at its end; a copy fails and the destination holds nothing', async () => {
    const c = client(liar.url);
    const b = await c.getBlob('evil/app', sha256(good), good.length);
    await rejectsUpstream(text(b.stream), 'digest-mismatch', /hash to sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}: refused/);
    const dst = client(open.url);
    await assert.rejects(copyArtifact({ client: c, repository: 'evil/app' }, { client: dst, repository: 'victim/app' }, 'honest'), (e: unknown) => e instanceof UpstreamError && e.kind === 'digest-mismatch');
    assert.equal(await dst.headBlob('victim/app', sha256(good)), null);
    assert.equal(await dst.headManifest('victim/app', 'honest'), null);
  });

  test('a blob GET redirected to another host (object storage) is followed without the credentials', async () => {
    const seen: (string | undefined)[] = [];
    const store = await listen((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-length': String(good.length) }).end(good);
    });
    const reg = await listen((req, res) => {
      if (req.headers.authorization !== 'Basic ' + Buffer.from('u:p').toString('base64')) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end();
      if (req.url === '/v2/') return void res.writeHead(200).end();
      res.writeHead(307, { location: `${store.url}/bucket/blob?X-Amz-Signature=abc` }).end();
    });
    try {
      const c = client(reg.url, { credential: { username: 'u', password: 'p' } });
      const b = await c.getBlob('app', sha256(good), good.length);
      assert.equal(await text(b.stream), good.toString());
      assert.deepEqual(seen, [undefined]);
    } finally {
      await close(store.server);
      await close(reg.server);
    }
  });

  test('token service: one token per scope while it is valid, sent as a bearer; the password never in an error', async () => {
    let issued = 0;
    const reg = await listen((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname === '/token') {
        if (req.headers.authorization !== 'Basic ' + Buffer.from('robot:S3cret-tok').toString('base64')) return void res.writeHead(401).end();
        issued++;
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `tok-${issued}-${u.searchParams.getAll('scope').join('+')}`, expires_in: 300 }));
      }
      const challenge = `Bearer realm="http://${req.headers.host}/token",service="fake",scope="repository:app:pull"`;
      if (!req.headers.authorization?.startsWith('Bearer tok-')) return void res.writeHead(401, { 'www-authenticate': challenge }).end();
      if (u.pathname === '/v2/') return void res.writeHead(200).end();
      if (u.pathname === '/v2/app/manifests/v1') return void res.writeHead(200, { 'content-type': OCI_MANIFEST }).end(manifest);
      res.writeHead(404).end();
    });
    try {
      const c = client(reg.url, { credential: { username: 'robot', password: 'S3cret-tok' } });
      assert.equal((await c.getManifest('app', 'v1'))?.digest, sha256(manifest));
      assert.equal((await c.getManifest('app', 'v1'))?.digest, sha256(manifest));
      assert.equal(issued, 1, 'the token was fetched once for the scope');
      assert.equal(await c.getManifest('app', 'v2'), null);
      assert.equal(issued, 1);
      const e = await rejectsUpstream(client(reg.url, { credential: { username: 'robot', password: 'nope-Pass' } }).getManifest('app', 'v1'), 'unauthorized', /refused the credentials of user "robot"/);
      assert.ok(!e.message.includes('nope-Pass'));
    } finally {
      await close(reg.server);
    }
  });

  test('a blob body that stalls halfway errors with a timeout (the bytes so far are never taken for the blob)', async () => {
    const reg = await listen((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end();
      res.writeHead(200, { 'content-length': String(good.length) });
      res.write(good.subarray(0, 4));
    });
    try {
      const c = client(reg.url, { idleTimeoutMs: 300 });
      const b = await c.getBlob('app', sha256(good), good.length);
      await rejectsUpstream(buffer(b.stream), 'timeout', /stalled for/);
    } finally {
      await close(reg.server);
    }
  });

  test('an upload whose body takes longer than the answer timeout is not cut (the timeout counts from the end of the body)', async () => {
    const data = Buffer.alloc(7 * 1024, 1);
    const reg = await listen((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end();
      if (req.method === 'POST') return void res.writeHead(202, { location: '/v2/app/blobs/uploads/u1' }).end();
      const got: Buffer[] = [];
      req.on('data', (c: Buffer) => got.push(c));
      req.on('end', () => res.writeHead(Buffer.concat(got).equals(data) ? 201 : 400).end());
    });
    try {
      const c = client(reg.url, { timeoutMs: 200, idleTimeoutMs: 5_000 });
      const slowly = async function* () {
        for (let i = 0; i < 7; i++) {
          await new Promise((r) => setTimeout(r, 80));
          yield data.subarray(i * 1024, (i + 1) * 1024);
        }
      };
      assert.equal(await c.pushBlob('app', sha256(data), data.length, () => Readable.from(slowly())), 'uploaded');
    } finally {
      await close(reg.server);
    }
  });

  test('anonymous access to a token-auth Berth: the ping passes (public repositories can be pulled)', async () => {
    await client(berthUrl).ping();
  });

  test('names and references outside the grammar are refused before any request', async () => {
    const c = client(liar.url);
    await rejectsUpstream(c.getManifest('../../etc', 'v1'), 'protocol', /invalid repository name/);
    await rejectsUpstream(c.getManifest('app', 'a/../b'), 'protocol', /invalid tag or digest/);
    await rejectsUpstream(c.getBlob('app', 'sha256:zz'), 'protocol', /invalid digest/);
    assert.throws(() => UpstreamClient.baseUrl('ftp://x'), /must start with http/);
    assert.throws(() => UpstreamClient.baseUrl('https://u:p@x'), /must not contain credentials/);
  });

  test('WWW-Authenticate parsing: quoted values with commas', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), {
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
    });
    assert.deepEqual(parseChallenge('Basic realm="x"'), { scheme: 'basic', params: { realm: 'x' } });
  });
});
