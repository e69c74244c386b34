// /v2 and token service under hostile or broken input (issue 13): the catalog with tokens, the
// challenge of a cross-repository mount, validate-then-write for manifests, deeply nested JSON,
// caps on open upload sessions, uploads cut off mid-body, and malformed requests that must get a 4xx.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { ADMIN_PASSWORD, basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { Oci, OCI_CODES, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, assertOciError, bytes, sha256 } from '../helpers/oci.ts';

const PW = 'Passw0rd!x';

/** The scope="..." value of a WWW-Authenticate challenge. */
function challengedScope(header: string | undefined): string | undefined {
  return header ? /scope="([^"]*)"/.exec(header)?.[1] : undefined;
}

describe('token auth: catalog and cross-repository mounts', () => {
  let t: TestApp;
  const admin = () => t.adminAuth;

  async function token(auth: string | null, scope: string): Promise<string> {
    let r = t.request.get(`/service/token?service=berth-registry&scope=${encodeURIComponent(scope)}`);
    if (auth) r = r.set('Authorization', auth);
    const res = await r;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.token as string;
  }

  before(async () => {
    t = await makeApp({}, REAL_ACCESS);
    assert.equal((await t.request.post('/api/v2.0/users').set('Authorization', admin()).send({ username: 'dev', password: PW, email: 'dev@example.com', realname: 'dev' })).status, 201);
    for (const p of ['secret', 'mine']) {
      assert.equal((await t.request.post('/api/v2.0/projects').set('Authorization', admin()).send({ project_name: p, metadata: { public: 'false' } })).status, 201);
    }
    assert.equal((await t.request.post('/api/v2.0/projects/mine/members').set('Authorization', admin()).send({ role_id: 2, member_user: { username: 'dev' } })).status, 201);
    for (const repo of ['secret/app', 'mine/app']) {
      const tok = await token(admin(), `repository:${repo}:pull,push`);
      await new Oci(t.request, `Bearer ${tok}`).pushImage(repo, 'v1');
    }
  });
  after(async () => {
    await t.close();
  });

  test('the token service grants registry:catalog:* to system admins only', async () => {
    const dev = jwt.decode(await token(basic('dev', PW), 'registry:catalog:*')) as jwt.JwtPayload;
    assert.deepEqual(dev.access, [{ type: 'registry', name: 'catalog', actions: [] }]);
    const adm = jwt.decode(await token(admin(), 'registry:catalog:*')) as jwt.JwtPayload;
    assert.deepEqual(adm.access, [{ type: 'registry', name: 'catalog', actions: ['*'] }]);
  });

  test('a Bearer token without the catalog grant gets a 401 challenge, never the private repositories', async () => {
    const tok = await token(basic('dev', PW), 'registry:catalog:*');
    const res = await t.request.get('/v2/_catalog').set('Authorization', `Bearer ${tok}`);
    assertOciError(res, 401, 'UNAUTHORIZED');
    assert.doesNotMatch(res.text, /secret\/app/);
    assert.equal(challengedScope(res.headers['www-authenticate']), 'registry:catalog:*');
    assert.match(res.headers['www-authenticate'], /error="insufficient_scope"/);
    // Anonymous: the challenge names the catalog scope too.
    const anon = await t.request.get('/v2/_catalog');
    assertOciError(anon, 401, 'UNAUTHORIZED');
    assert.equal(challengedScope(anon.headers['www-authenticate']), 'registry:catalog:*');
  });

  test('the system admin lists everything with a catalog token; Basic auth still lists what the caller may see', async () => {
    const tok = await token(admin(), 'registry:catalog:*');
    const res = await t.request.get('/v2/_catalog').set('Authorization', `Bearer ${tok}`);
    assert.equal(res.status, 200);
    assert.ok(res.body.repositories.includes('secret/app'));
    assert.ok(res.body.repositories.includes('mine/app'));
    const dev = await t.request.get('/v2/_catalog').set('Authorization', basic('dev', PW));
    assert.equal(dev.status, 200);
    assert.ok(dev.body.repositories.includes('mine/app'));
    assert.ok(!dev.body.repositories.includes('secret/app'));
  });

  test('a mount without credentials is challenged for both repositories; a token for both mounts with 201', async () => {
    const layer = bytes(777, 91);
    const digest = sha256(layer);
    const tokA = await token(admin(), 'repository:secret/src:pull,push');
    const push = await t.request.post(`/v2/secret/src/blobs/uploads/?digest=${digest}`).set('Authorization', `Bearer ${tokA}`).set('Content-Type', 'application/octet-stream').send(layer);
    assert.equal(push.status, 201);

    const url = `/v2/secret/dst/blobs/uploads/?mount=${digest}&from=secret/src`;
    const anon = await t.request.post(url);
    assertOciError(anon, 401, 'UNAUTHORIZED');
    const scope = challengedScope(anon.headers['www-authenticate']);
    assert.equal(scope, 'repository:secret/dst:pull,push repository:secret/src:pull');

    const tok = await token(admin(), scope!);
    const mount = await t.request.post(url).set('Authorization', `Bearer ${tok}`);
    assert.equal(mount.status, 201, JSON.stringify(mount.body));
    assert.equal(mount.headers.location, `/v2/secret/dst/blobs/${digest}`);
    const got = await t.request.head(`/v2/secret/dst/blobs/${digest}`).set('Authorization', `Bearer ${tok}`);
    assert.equal(got.status, 200);
  });

  test('an invalid from= is not put into the challenge', async () => {
    const digest = sha256('x');
    for (const from of ['../etc', 'UPPER/case', 'a'.repeat(300), 'secret/dst']) {
      const res = await t.request.post(`/v2/secret/dst/blobs/uploads/?mount=${digest}&from=${encodeURIComponent(from)}`);
      assert.equal(res.status, 401);
      assert.equal(challengedScope(res.headers['www-authenticate']), 'repository:secret/dst:pull,push', from);
    }
  });
});

describe('manifests: validate before writing, nesting and annotation types', () => {
  let t: TestApp;
  let oci: Oci;
  before(async () => {
    t = await makeApp();
    oci = new Oci(t.request, t.adminAuth);
  });
  after(async () => {
    await t.close();
  });

  async function catalog(): Promise<string[]> {
    const res = await oci.get('/v2/_catalog');
    assert.equal(res.status, 200);
    return res.body.repositories as string[];
  }

  test('a manifest refused with MANIFEST_BLOB_UNKNOWN does not create its repository', async () => {
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha256('no such config'), size: 14 },
      layers: [{ mediaType: OCI_LAYER, digest: sha256('no such layer'), size: 13 }],
    };
    assertOciError(await oci.putManifest('fresh/never', 'v1', manifest), 400, 'MANIFEST_BLOB_UNKNOWN');
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256('no such manifest'), size: 10 }] };
    assertOciError(await oci.putManifest('fresh/never-index', 'v1', index), 400, 'MANIFEST_BLOB_UNKNOWN');
    assertOciError(await oci.putManifest('fresh/never-invalid', 'v1', '{"schemaVersion":2,'), 400, 'MANIFEST_INVALID');
    const repos = await catalog();
    for (const r of ['fresh/never', 'fresh/never-index', 'fresh/never-invalid']) assert.ok(!repos.includes(r), `${r} listed in ${repos}`);
    assertOciError(await oci.get('/v2/fresh/never/tags/list'), 404, 'NAME_UNKNOWN');
    // A valid push into the same name still works afterwards.
    await oci.pushImage('fresh/never', 'v1');
    assert.ok((await catalog()).includes('fresh/never'));
  });

  async function imageParts(repo: string) {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const configDigest = await oci.pushBlob(repo, config);
    return { mediaType: OCI_CONFIG, digest: configDigest, size: config.length };
  }

  test('deeply nested annotations are a 400 MANIFEST_INVALID, never a 500', async () => {
    const config = await imageParts('deep/app');
    const depth = 100_000;
    const nested = `{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","config":${JSON.stringify(config)},"layers":[],"annotations":{"a":${'{"a":'.repeat(depth)}"x"${'}'.repeat(depth)}}}`;
    assertOciError(await oci.putManifest('deep/app', 'nested', nested), 400, 'MANIFEST_INVALID');
    const arrays = `{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","config":${JSON.stringify(config)},"layers":[],"x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    assertOciError(await oci.putManifest('deep/app', 'arrays', arrays), 400, 'MANIFEST_INVALID');
    const index = `{"schemaVersion":2,"mediaType":"${OCI_INDEX}","manifests":[],"annotations":{"a":${'{"a":'.repeat(depth)}"x"${'}'.repeat(depth)}}}`;
    assertOciError(await oci.putManifest('deep/app', 'index', index), 400, 'MANIFEST_INVALID');
    // Brackets inside strings do not count, and ordinary nesting (platform, annotations) is fine.
    const fine = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [], annotations: { 'org.example.brackets': '{{{{[[[['.repeat(100) } };
    assert.equal((await oci.putManifest('deep/app', 'fine', fine)).status, 201);
  });

  test('annotation values must be strings, in image manifests, indexes and descriptors', async () => {
    const config = await imageParts('ann/app');
    const bad: object[] = [
      { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [], annotations: { a: 1 } },
      { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [], annotations: { a: { b: 'c' } } },
      { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...config, annotations: { a: ['x'] } }, layers: [] },
      { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [], annotations: { a: null } },
      { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256('m'), size: 1, annotations: { a: true } }] },
    ];
    for (const m of bad) assertOciError(await oci.putManifest('ann/app', 'bad', m), 400, 'MANIFEST_INVALID');
    const good = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [], annotations: { a: '1', 'org.opencontainers.image.title': 'x' } };
    assert.equal((await oci.putManifest('ann/app', 'good', good)).status, 201);
  });
});

describe('caps on open upload sessions', () => {
  let t: TestApp;
  let oci: Oci;
  before(async () => {
    t = await makeApp({ BERTH_MAX_UPLOADS_PER_REPOSITORY: '3', BERTH_MAX_UPLOADS_PER_PRINCIPAL: '5' });
    oci = new Oci(t.request, t.adminAuth);
  });
  after(async () => {
    await t.close();
  });

  async function refused(repo: string, what: RegExp) {
    const res = await oci.post(`/v2/${repo}/blobs/uploads/`);
    assertOciError(res, 429, 'TOOMANYREQUESTS');
    assert.match(res.body.errors[0].message, what);
    assert.match(res.body.errors[0].message, /finish or cancel some, or wait for them to expire/);
  }

  test('a repository holds at most maxUploadsPerRepository sessions; cancel, completion and expiry free them', async () => {
    const locs = [await oci.startUpload('cap/a'), await oci.startUpload('cap/a'), await oci.startUpload('cap/a')];
    await refused('cap/a', /too many open uploads for this repository/);
    // The mount fallback and the single-POST push open sessions too.
    assertOciError(await oci.post(`/v2/cap/a/blobs/uploads/?digest=${sha256('z')}`).set('Content-Type', 'application/octet-stream').send('z'), 429, 'TOOMANYREQUESTS');
    // Cancel one: room for one.
    assert.equal((await oci.delete(locs[0])).status, 204);
    locs[0] = await oci.startUpload('cap/a');
    await refused('cap/a', /repository/);
    // A failed completion keeps its session (still resumable): still full.
    const data = bytes(100, 5);
    assertOciError(await oci.put(`${locs[1]}?digest=${sha256('other')}`).set('Content-Type', 'application/octet-stream').send(data), 400, 'DIGEST_INVALID');
    await refused('cap/a', /repository/);
    // Completing it frees it.
    assert.equal((await oci.put(`${locs[1]}?digest=${sha256(data)}`).set('Content-Type', 'application/octet-stream').send('')).status, 201);
    locs[1] = await oci.startUpload('cap/a');
    await refused('cap/a', /repository/);
    // Expiry frees them all (and only them: three fit again, not four).
    assert.ok((await t.berth.uploads.purgeExpired(3600, Date.now() + 10 * 3600 * 1000)) >= 3);
    for (let i = 0; i < 3; i++) await oci.startUpload('cap/a');
    await refused('cap/a', /repository/);
    await t.berth.uploads.purgeExpired(3600, Date.now() + 10 * 3600 * 1000);
  });

  test('single-request pushes that fail do not leak sessions', async () => {
    for (let i = 0; i < 5; i++) {
      assertOciError(await oci.post(`/v2/cap/b/blobs/uploads/?digest=${sha256('other')}`).set('Content-Type', 'application/octet-stream').send('data'), 400, 'DIGEST_INVALID');
    }
    for (let i = 0; i < 3; i++) await oci.pushBlob('cap/b', `blob ${i}`);
    for (let i = 0; i < 3; i++) await oci.startUpload('cap/b');
    await refused('cap/b', /repository/);
    await t.berth.uploads.purgeExpired(3600, Date.now() + 10 * 3600 * 1000);
  });

  test('a principal holds at most maxUploadsPerPrincipal sessions across repositories', async () => {
    for (let i = 0; i < 3; i++) await oci.startUpload('cap/c');
    const d1 = await oci.startUpload('cap/d');
    await oci.startUpload('cap/d');
    await refused('cap/e', /too many open uploads for this user/);
    assert.equal((await oci.delete(d1)).status, 204);
    await oci.startUpload('cap/e');
    await refused('cap/e', /user/);
    await t.berth.uploads.purgeExpired(3600, Date.now() + 10 * 3600 * 1000);
  });
});

describe('uploads cut off mid-body stay resumable', () => {
  let t: TestApp;
  let oci: Oci;
  let server: http.Server;
  let port: number;
  before(async () => {
    t = await makeApp();
    oci = new Oci(t.request, t.adminAuth);
    // The requests as the server sees them, to cut a connection once its body is being read.
    server = http.createServer((req, res) => {
      serverRequests.push(req);
      t.berth.app(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await t.close();
  });
  const serverRequests: http.IncomingMessage[] = [];

  async function until(what: string, cond: () => boolean): Promise<void> {
    for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(cond(), what);
  }

  /**
   * Sends the headers of `method path` with Content-Length 1000, then (once the server reads the
   * body) `sent`, then destroys the socket: a client that went away or stalled mid-body.
   */
  async function cutOff(method: string, path: string, sent: Buffer): Promise<void> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    const head = Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${basic('admin', ADMIN_PASSWORD)}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n`);
    sock.write(head);
    let req: http.IncomingMessage | undefined;
    await until('the server reads the body', () => (req ??= serverRequests.find((r) => r.socket.remotePort === sock.localPort))?.readableFlowing === true);
    sock.write(sent);
    await until('the server read every byte sent', () => req!.socket.bytesRead >= head.length + sent.length && req!.readableLength === 0);
    sock.destroy();
  }

  async function resumeAt(loc: string, offset: number): Promise<void> {
    // GET status answers 204 with the Range of what arrived (polled: the server sees the close a little later).
    let res;
    for (let i = 0; i < 500; i++) {
      res = await oci.get(loc);
      if (res.status === 204 && res.headers.range === `0-${offset - 1}`) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(res!.status, 204);
    assert.equal(res!.headers.range, `0-${offset - 1}`);
  }

  test('a PATCH whose socket is destroyed keeps what arrived; the client resumes from there', async () => {
    const data = bytes(30, 77);
    const loc = await oci.startUpload('idle/patch');
    await cutOff('PATCH', loc, data.subarray(0, 10));
    await resumeAt(loc, 10);
    const more = await oci.patch(loc).set('Content-Type', 'application/octet-stream').set('Content-Range', '10-19').send(data.subarray(10, 20));
    assert.equal(more.status, 202, JSON.stringify(more.body));
    assert.equal(more.headers.range, '0-19');
    const done = await oci.put(`${loc}?digest=${sha256(data)}`).set('Content-Type', 'application/octet-stream').send(data.subarray(20));
    assert.equal(done.status, 201, JSON.stringify(done.body));
    const got = await oci.getBytes(`/v2/idle/patch/blobs/${sha256(data)}`);
    assert.equal(Buffer.compare(got.body, data), 0);
  });

  test('a final PUT whose socket is destroyed leaves the session resumable too', async () => {
    const data = bytes(25, 78);
    const loc = await oci.startUpload('idle/put');
    const first = await oci.patch(loc).set('Content-Type', 'application/octet-stream').send(data.subarray(0, 5));
    assert.equal(first.status, 202);
    await cutOff('PUT', `${loc}?digest=${sha256(data)}`, data.subarray(5, 15));
    await resumeAt(loc, 15);
    const done = await oci.put(`${loc}?digest=${sha256(data)}`).set('Content-Type', 'application/octet-stream').send(data.subarray(15));
    assert.equal(done.status, 201, JSON.stringify(done.body));
    const got = await oci.getBytes(`/v2/idle/put/blobs/${sha256(data)}`);
    assert.equal(Buffer.compare(got.body, data), 0);
  });
});

describe('malformed /v2 requests get a 4xx', () => {
  let t: TestApp;
  let oci: Oci;
  let server: http.Server;
  let port: number;
  before(async () => {
    t = await makeApp();
    oci = new Oci(t.request, t.adminAuth);
    await oci.pushImage('fuzz/app', 'v1');
    server = http.createServer(t.berth.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await t.close();
  });

  /** One raw request (no client-side normalisation of the path or headers); resolves with the status and body. */
  function raw(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers: { Authorization: t.adminAuth, ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  test('bad digests, names, pagination, ranges and manifests', async () => {
    const loc = await oci.startUpload('fuzz/app');
    const cases: [string, string, Record<string, string>?, string?][] = [
      ['GET', '/v2/fuzz/app/blobs/sha256:zz'],
      ['GET', '/v2/fuzz/app/blobs/sha256:' + 'A'.repeat(64)],
      ['GET', '/v2/fuzz/app/blobs/md5:abc'],
      ['DELETE', '/v2/fuzz/app/blobs/nonsense'],
      ['GET', '/v2/fuzz/app/blobs/%ZZ'],
      ['GET', '/v2/fuzz/app/manifests/sha256:%ZZ'],
      ['PUT', '/v2/fuzz/app/manifests/sha256:zz', { 'Content-Type': OCI_MANIFEST }, '{}'],
      ['PUT', '/v2/fuzz/app/manifests/' + 'x'.repeat(200), { 'Content-Type': OCI_MANIFEST }, '{}'],
      ['GET', '/v2/fuzz/app/tags/list?n=1e300'],
      ['GET', '/v2/fuzz/app/tags/list?n=-1'],
      ['GET', '/v2/fuzz/app/tags/list?n=99999999999999999999999999'],
      ['GET', '/v2/fuzz/app/tags/list?last=%ZZ&n=%ZZ'],
      ['GET', '/v2/_catalog?n=abc&last=' + '%00'.repeat(100)],
      ['GET', '/v2/_catalog?n=1&last=' + 'z'.repeat(10_000)],
      ['GET', '/v2/fuzz/../app/tags/list'],
      ['GET', '/v2/fuzz/%2e%2e/app/tags/list'],
      ['GET', '/v2/Fuzz/App/tags/list'],
      ['POST', '/v2/FUZZ/blobs/uploads/'],
      ['GET', '/v2/' + 'a/'.repeat(200) + 'tags/list'],
      ['PATCH', loc, { 'Content-Range': '0-99999999999999999999999999', 'Content-Type': 'application/octet-stream' }, 'abc'],
      ['PATCH', loc, { 'Content-Range': '99999999999999999999-99999999999999999999' }, 'abc'],
      ['PATCH', loc, { 'Content-Range': 'bytes=5-1' }, 'abc'],
      ['PATCH', loc, { 'Content-Range': 'garbage' }, 'abc'],
      ['PUT', `${loc}?digest=sha256:zz`, {}, 'abc'],
      ['PUT', `${loc}?digest=`, {}, 'abc'],
      ['PUT', '/v2/fuzz/app/blobs/uploads/not-a-uuid?digest=' + sha256('a'), {}, 'a'],
      ['GET', '/v2/fuzz/app/blobs/uploads/' + '0'.repeat(300)],
      ['POST', `/v2/fuzz/app/blobs/uploads/?digest=sha256:${'0'.repeat(63)}`, {}, 'x'],
      ['POST', `/v2/fuzz/app/blobs/uploads/?mount=sha256:zz&from=%ZZ`],
      ['POST', `/v2/fuzz/app/blobs/uploads/?mount=${sha256('nope')}&from=../../etc`],
      ['GET', '/v2/fuzz/app/blobs/' + sha256('nope'), { Range: 'bytes=99999999999999999999999-' }],
      ['GET', '/v2/fuzz/app/referrers/sha256:zz'],
      ['GET', '/v2/fuzz/app/referrers/' + sha256('x') + '?artifactType=%ZZ'],
      ['GET', '/v2/fuzz/app/manifests/v1', { Accept: ',,,;;;' }],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_MANIFEST }, 'not json'],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_MANIFEST }, '\u0000\u00ff\ufffe'],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': 'text/plain' }, '{"schemaVersion":2}'],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': 'application/vnd.docker.distribution.manifest.v1+json' }, '{"schemaVersion":1}'],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_MANIFEST }, '[]'],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_MANIFEST }, 'null'],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_MANIFEST }, '{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":-1},"layers":{}}'],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_MANIFEST }, `{"schemaVersion":2,"config":{"mediaType":"x","digest":"${sha256('a')}","size":1e400},"layers":[]}`],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_INDEX }, '{"schemaVersion":2,"manifests":[null,1,"x"]}'],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_INDEX }, `{"schemaVersion":2,"manifests":[],"subject":{"mediaType":"x","digest":"${sha256('s')}","size":1,"annotations":{"a":{"b":1}}}}`],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_MANIFEST }, `{"schemaVersion":2,"__proto__":{"x":1},"config":{"mediaType":"x","digest":"${sha256('a')}","size":1,"urls":{}},"layers":[]}`],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_MANIFEST, 'Content-Length': String(5 * 1024 * 1024) }, undefined],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_MANIFEST }, `{"schemaVersion":2,"annotations":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`],
      ['PUT', '/v2/fuzz/app/manifests/t1', { 'Content-Type': OCI_INDEX }, `{"schemaVersion":2,"manifests":[],"annotations":{"a":${'['.repeat(50_000)}${']'.repeat(50_000)}}}`],
      ['PATCH', '/v2/_catalog'],
      ['GET', '/v2/fuzz/app/tags/list', { Authorization: 'Basic !!!' }],
      ['GET', '/v2/fuzz/app/tags/list', { Authorization: 'Bearer ' + 'x'.repeat(5000) }],
      ['GET', '/v2/fuzz/app/tags/list', { Authorization: 'Basic ' + Buffer.from('admin').toString('base64') }],
      ['GET', '/service/token?scope=%ZZ&service=berth-registry'],
      ['GET', '/service/token?scope=repository:' + 'a'.repeat(5000) + ':pull&service=berth-registry'],
      ['GET', '/service/token?scope=repository::&scope=registry:catalog:&scope=:::&service=berth-registry'],
      ['GET', '/service/token?service=%ZZ'],
    ];
    for (const [method, path, headers, body] of cases) {
      let res: { status: number; text: string };
      try {
        res = await raw(method, path, headers, body === undefined ? undefined : Buffer.from(body, 'utf8'));
      } catch (e) {
        // the server may end a request it refused before reading its body (the 5 MiB manifest)
        if (headers?.['Content-Length']) continue;
        throw new Error(`${method} ${path}: ${(e as Error).message}`);
      }
      const what = `${method} ${path.slice(0, 100)} ${JSON.stringify(headers ?? {})} answered ${res.status} ${res.text.slice(0, 200)}`;
      assert.ok(res.status >= 200 && res.status < 500, what);
      // /v2 errors carry the spec's codes.
      if (res.status >= 400 && path.startsWith('/v2') && method !== 'HEAD') {
        const code = (JSON.parse(res.text) as { errors: { code: string }[] }).errors[0].code;
        assert.ok(OCI_CODES.includes(code), what);
      }
    }
    // And the registry still answers.
    assert.equal((await oci.get('/v2/fuzz/app/manifests/v1')).status, 200);
  });
});
