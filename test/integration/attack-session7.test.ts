// Attacks on what session 6 added: proxy-cache projects (anonymous pulls through a public proxy
// project against a malicious upstream: plain node:http servers on loopback that lie, stall,
// redirect, send endless bodies and broken challenges), registry endpoints (URL checks, secrets),
// replication policies (pathological filters, namespaces, cron, speed), token-key rotation and
// browser sessions. Each case states what an attacker tries and what Berth must answer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { ReplicationStore, type ReplicationPolicyRow } from '../../src/db/replication-store.ts';
import { globMatcher } from '../../src/lib/glob.ts';
import { ReplicationService, type ReplicationEnd } from '../../src/services/replication.ts';
import { UpstreamClient } from '../../src/upstream/client.ts';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { missingPostgres, startPostgres } from '../helpers/pg.ts';
import { binary, bytes, Oci, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, sha256 } from '../helpers/oci.ts';

const SECRET = 'Evil-Upstream-S3cret-7f3';
const PW = 'Dev-Passw0rd-77';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A registry on loopback whose every answer the test decides (default: an open /v2/, 404 for the rest). */
class EvilRegistry {
  handler: Handler | null = null;
  readonly seen: { method: string; url: string; auth?: string }[] = [];
  private server = http.createServer((req, res) => {
    this.seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization });
    req.resume();
    res.on('error', () => undefined);
    if (this.handler) return this.handler(req, res);
    if (req.url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}');
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Requests other than the discovery GET /v2/. */
  calls(): { method: string; url: string; auth?: string }[] {
    return this.seen.filter((s) => s.url !== '/v2/');
  }

  reset(h: Handler | null = null): void {
    this.handler = h;
    this.seen.length = 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** An image the evil registry may serve: config, one layer, the manifest. */
function image(seed: number, layerSize = 1000) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }));
  const layer = bytes(layerSize, seed);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length }, layers: [{ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length }] }));
  return { config, layer, manifest, digest: sha256(manifest) };
}

let t: TestApp;
let evil: EvilRegistry;
let other: EvilRegistry;
const logLines: string[] = [];

async function api(method: 'get' | 'post' | 'put' | 'delete', path: string, body?: object, auth = t.adminAuth) {
  const r = t.request[method](`/api/v2.0${path}`).set('Authorization', auth);
  return body ? r.send(body) : r;
}

/** An anonymous caller's bearer token for pulls of `repo` (as docker gets one). */
async function anonToken(repo: string): Promise<string> {
  const res = await t.request.get(`/service/token?service=berth-registry&scope=${encodeURIComponent(`repository:${repo}:pull`)}`);
  assert.equal(res.status, 200, res.text);
  return `Bearer ${res.body.token as string}`;
}

/** An anonymous pull through Berth's /v2. */
async function anonPull(path: string, method: 'get' | 'head' = 'get') {
  const repo = path.replace(/\/(manifests|blobs)\/.*$/, '');
  return t.request[method](`/v2/${path}`).set('Authorization', await anonToken(repo)).set('Accept', OCI_MANIFEST).buffer(true).parse(binary);
}

function errorOf(res: { body: unknown }): { code: string; message: string } {
  const b = res.body as Buffer | { errors?: { code: string; message: string }[] };
  const parsed = Buffer.isBuffer(b) ? (JSON.parse(b.toString() || '{}') as { errors?: { code: string; message: string }[] }) : b;
  return parsed.errors?.[0] ?? { code: '', message: '' };
}

before(async () => {
  evil = new EvilRegistry();
  other = new EvilRegistry();
  await evil.start();
  await other.start();
  const log = pino({ level: 'info' }, { write: (s: string) => void logLines.push(s) });
  t = await makeApp({}, { ...REAL_ACCESS, log });
  const reg = await api('post', '/registries', { name: 'evil', type: 'docker-registry', url: evil.url });
  assert.equal(reg.status, 201, reg.text);
  const registryId = Number(String(reg.headers.location).split('/').pop());
  const proj = await api('post', '/projects', { project_name: 'evil', registry_id: registryId, metadata: { public: 'true' } });
  assert.equal(proj.status, 201, proj.text);
  const withCred = await api('post', '/registries', { name: 'evil-auth', type: 'docker-registry', url: other.url, credential: { type: 'basic', access_key: 'robot', access_secret: SECRET } });
  assert.equal(withCred.status, 201, withCred.text);
  const credId = Number(String(withCred.headers.location).split('/').pop());
  assert.equal((await api('post', '/projects', { project_name: 'evilauth', registry_id: credId, metadata: { public: 'true' } })).status, 201);
  assert.equal((await api('post', '/users', { username: 'dev', password: PW, email: 'dev@example.com', realname: 'Dev' })).status, 201);
});

after(async () => {
  await t?.close();
  await evil?.stop();
  await other?.stop();
});

describe('anonymous pulls through a public proxy-cache project', () => {
  test('a tag outside the grammar is refused as unknown (404) before any upstream request, not a 503', async () => {
    evil.reset();
    for (const ref of ['bad!tag', '-leading', 'a'.repeat(129), '%2e%2e']) {
      const res = await anonPull(`evil/x/manifests/${ref}`);
      assert.equal(res.status, 404, `${ref}: ${res.status} ${String(res.body)}`);
      assert.equal(errorOf(res).code, 'MANIFEST_UNKNOWN');
    }
    assert.deepEqual(evil.calls(), []);
  });

  test('an upstream 5xx is a clean 503 naming the upstream; nothing is cached', async () => {
    evil.reset((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN","message":"boom"}]}');
    });
    const res = await anonPull('evil/lib/app/manifests/latest');
    assert.equal(res.status, 503);
    assert.equal(errorOf(res).code, 'UNAVAILABLE');
    assert.match(errorOf(res).message, /proxy cache project evil/);
    for (const method of ['get', 'head'] as const) assert.equal((await anonPull(`evil/lib/app/blobs/${sha256('b')}`, method)).status, 503, `blob ${method}`);
    assert.equal((await t.request.get(`/v2/evil/lib/app/referrers/${sha256('b')}`).set('Authorization', await anonToken('evil/lib/app'))).status, 200, 'referrers: best effort');
    evil.reset();
    assert.equal((await anonPull('evil/lib/app/manifests/latest')).status, 404);
  });

  test('a manifest whose bytes are not the digest the tag named is refused and not stored', async () => {
    const real = image(1);
    const fake = image(2);
    evil.reset((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.url?.includes('/manifests/')) {
        // HEAD names the real digest; every GET sends other bytes.
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': real.digest, 'content-length': req.method === 'HEAD' ? real.manifest.length : fake.manifest.length });
        return void res.end(req.method === 'HEAD' ? undefined : fake.manifest);
      }
      res.writeHead(404).end();
    });
    const res = await anonPull('evil/swap/manifests/v1');
    assert.equal(res.status, 503, String(res.body));
    assert.match(errorOf(res).message, /hash|digest/);
    for (const d of [real.digest, fake.digest]) {
      evil.reset();
      assert.equal((await anonPull(`evil/swap/manifests/${d}`)).status, 404, 'nothing was stored under either digest');
    }
    assert.ok(logLines.some((l) => l.includes('does not match its digest')));
  });

  test('an endless manifest body is cut at the manifest limit: a clean 503, the server keeps serving', async () => {
    const before = process.memoryUsage().rss;
    evil.reset((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.method === 'HEAD') return void res.writeHead(200, { 'content-type': OCI_MANIFEST }).end();
      res.writeHead(200, { 'content-type': OCI_MANIFEST });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const res = await anonPull('evil/endless/manifests/latest');
    assert.equal(res.status, 503);
    assert.match(errorOf(res).message, /more than the \d+ bytes accepted/);
    assert.ok(process.memoryUsage().rss - before < 256 * 1024 * 1024, 'memory stays bounded');
    evil.reset();
    assert.equal((await t.request.get('/api/v2.0/ping')).status, 200);
  });

  test('broken WWW-Authenticate challenges are clean 503s (unsupported scheme, no realm, file: realm, garbage, huge)', async () => {
    const challenges = ['Negotiate', 'Bearer', 'Bearer realm="file:///etc/passwd"', 'Bearer realm="ht!tp://x y"', '\u00ff\u00fe==,,,', `Bearer realm="http://127.0.0.1:1/t",${'x=y,'.repeat(2000)}`];
    for (const c of challenges) {
      evil.reset((_req, res) => void res.writeHead(401, { 'www-authenticate': c }).end());
      // The registry endpoint's client learns the challenge anew after an edit (a fresh client).
      const res = await anonPull(`evil/chal/manifests/t${challenges.indexOf(c)}`);
      assert.ok(res.status === 503 || res.status === 404, `${c.slice(0, 40)}: ${res.status}`);
      assert.notEqual(res.status, 500);
    }
    evil.reset();
  });

  test('a blob redirected to another host goes there without the registry credential; a redirect to file: is refused', async () => {
    const img = image(3);
    other.reset((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' }).end();
      if (req.url === `/v2/app/manifests/v1`) {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': img.digest, 'content-length': img.manifest.length });
        return void res.end(req.method === 'HEAD' ? undefined : img.manifest);
      }
      if (req.url === `/v2/app/manifests/${img.digest}`) return void res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': img.manifest.length }).end(img.manifest);
      if (req.url === `/v2/app/blobs/${sha256(img.config)}`) return void res.writeHead(307, { location: `${evil.url}/cdn/config?sig=abc` }).end();
      if (req.url === `/v2/app/blobs/${sha256(img.layer)}`) return void res.writeHead(307, { location: `${evil.url}/cdn/layer` }).end();
      res.writeHead(404).end();
    });
    evil.reset((req, res) => {
      if (req.url?.startsWith('/cdn/config')) return void res.writeHead(200, { 'content-length': img.config.length }).end(img.config);
      if (req.url === '/cdn/layer') return void res.writeHead(200, { 'content-length': img.layer.length }).end(img.layer);
      res.writeHead(404).end();
    });
    const res = await anonPull('evilauth/app/manifests/v1');
    assert.equal(res.status, 200, String(res.body));
    assert.ok(other.seen.some((s) => s.auth === basic('robot', SECRET)), 'the registry itself got the credential');
    assert.ok(evil.seen.length >= 2 && evil.seen.every((s) => s.auth === undefined), 'the CDN host got no Authorization');
    // A redirect to another scheme is not followed.
    const img2 = image(4);
    other.reset((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' }).end();
      if (req.url?.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': img2.digest, 'content-length': img2.manifest.length });
        return void res.end(req.method === 'HEAD' ? undefined : img2.manifest);
      }
      res.writeHead(302, { location: 'file:///etc/passwd' }).end();
    });
    const res2 = await anonPull('evilauth/app2/manifests/v1');
    assert.equal(res2.status, 503);
    assert.match(errorOf(res2).message, /unsupported scheme/);
    other.reset();
    evil.reset();
  });
});

describe('proxy-cache bounds: blob sizes against the quota, blobs of unknown size', () => {
  let small: number;
  before(async () => {
    const reg = await api('get', '/registries?q=name%3Devil');
    const created = await api('post', '/projects', { project_name: 'evilsmall', registry_id: reg.body[0].id, metadata: { public: 'true' }, storage_limit: 1_000_000 });
    assert.equal(created.status, 201, created.text);
    small = Number(String(created.headers.location).split('/').pop());
  });

  test('a layer the manifest says is larger than the room left in the quota is refused before it is downloaded', async () => {
    const img = image(5, 1_500_000);
    evil.reset((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.url?.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': img.digest, 'content-length': img.manifest.length });
        return void res.end(req.method === 'HEAD' ? undefined : img.manifest);
      }
      if (req.url?.endsWith(sha256(img.config))) return void res.writeHead(200, { 'content-length': img.config.length }).end(img.config);
      if (req.url?.endsWith(sha256(img.layer))) return void res.writeHead(200, { 'content-length': img.layer.length }).end(img.layer);
      res.writeHead(404).end();
    });
    const res = await anonPull('evilsmall/big/manifests/v1');
    assert.equal(res.status, 403, String(res.body));
    assert.equal(errorOf(res).code, 'DENIED');
    assert.match(errorOf(res).message, /[Qq]uota/);
    assert.ok(!evil.calls().some((c) => c.method === 'GET' && c.url.endsWith(sha256(img.layer))), 'the layer was never requested');
    // A blob asked for directly, announced larger than the room: refused on the announcement.
    const direct = await anonPull(`evilsmall/big/blobs/${sha256(img.layer)}`);
    assert.equal(direct.status, 403);
    const quota = await api('get', `/quotas/${small}`);
    assert.ok(quota.body.used.storage < img.layer.length, `only the small config may be stored (${quota.body.used.storage})`);
  });

  test('a blob with no announced size (no Content-Length, not listed by a cached manifest) is refused, not stored without bound', async () => {
    const digest = sha256('never');
    let finished = false;
    evil.reset((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.url?.endsWith(digest)) {
        // Chunked: 32 MiB, then the end (an endless body in all but name).
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let left = 512;
        const chunk = Buffer.alloc(64 * 1024, 7);
        const pump = () => {
          while (left > 0 && !res.destroyed) {
            left--;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          if (!res.destroyed) {
            finished = true;
            res.end();
          }
        };
        pump();
        return;
      }
      res.writeHead(404).end();
    });
    for (const method of ['get', 'head'] as const) {
      finished = false;
      const res = await anonPull(`evil/sizeless/blobs/${digest}`, method);
      assert.ok(res.status === 503 || res.status === 404, `${method}: ${res.status}`);
      if (method === 'get') assert.match(errorOf(res).message, /size/);
      assert.equal(finished, false, `${method}: Berth stopped reading the sizeless body`);
    }
    evil.reset();
  });
});

describe('writes into a proxy-cache project', () => {
  test('a project robot with push on the proxy project still cannot push there; nobody makes a project a proxy cache with PUT', async () => {
    const robot = await api('post', '/robots', { name: 'pusher', level: 'project', duration: -1, permissions: [{ kind: 'project', namespace: 'evil', access: [{ resource: 'repository', action: 'push' }, { resource: 'repository', action: 'pull' }] }] });
    assert.equal(robot.status, 201, robot.text);
    const auth = basic(robot.body.name, robot.body.secret);
    const tok = await t.request.get(`/service/token?service=berth-registry&scope=${encodeURIComponent('repository:evil/x:pull,push')}`).set('Authorization', auth);
    assert.equal(tok.status, 200);
    const up = await t.request.post('/v2/evil/x/blobs/uploads/').set('Authorization', `Bearer ${tok.body.token as string}`);
    assert.equal(up.status, 403);
    assert.equal(up.body.errors[0].code, 'DENIED');
    const put = await api('put', '/projects/library', { registry_id: 1, metadata: { registry_id: '1' } });
    assert.equal(put.status, 200);
    assert.equal((await api('get', '/projects/library')).body.registry_id, 0, 'PUT does not make a project a proxy cache');
    // Harbor's artifact copy and labels: Berth has neither route, so neither writes into a proxy cache.
    assert.equal((await api('post', `/projects/evil/repositories/x/artifacts?from=${encodeURIComponent('library/a:b')}`, {})).status, 404);
    assert.equal((await api('post', '/projects/evil/repositories/x/artifacts/latest/labels', { id: 1 })).status, 404);
    const unset = await api('put', '/projects/evil', { registry_id: 0 });
    assert.equal(unset.status, 200);
    assert.notEqual((await api('get', '/projects/evil')).body.registry_id, 0, 'PUT does not turn a proxy cache into a normal project');
  });

  test('a registry_id no database can hold is a 400, not a 500', async () => {
    for (const id of [2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER, -5]) {
      const res = await api('post', '/projects', { project_name: `huge-${String(id).replace('-', 'm')}`, registry_id: id });
      assert.equal(res.status, 400, `${id}: ${res.status} ${res.text}`);
    }
  });
});

describe('registry endpoints', () => {
  test('only http(s) URLs without credentials, and no oversized field, are accepted', async () => {
    const urls = ['ftp://127.0.0.1/', 'file:///etc/passwd', 'javascript:alert(1)', 'http://user:pw@127.0.0.1:5000', 'http://[::1', ' ', 'gopher://127.0.0.1:70/_x', `http://${'a'.repeat(3000)}.example`];
    for (const url of urls) {
      const res = await api('post', '/registries', { name: `u${urls.indexOf(url)}`, type: 'docker-registry', url });
      assert.equal(res.status, 400, `${url.slice(0, 40)}: ${res.status} ${res.text}`);
    }
    for (const body of [{ name: 'x'.repeat(300), type: 'docker-registry', url: evil.url }, { name: 'ok', type: 'docker-registry', url: evil.url, description: 'd'.repeat(5000) }, { name: 'ok', type: 'other', url: evil.url }, { name: 'ok', type: 'docker-registry', url: evil.url, credential: { type: 'basic', access_key: 'k', access_secret: 's'.repeat(5000) } }]) {
      assert.equal((await api('post', '/registries', body)).status, 400);
    }
    const dup = await api('post', '/registries', { name: 'evil', type: 'docker-registry', url: evil.url });
    assert.equal(dup.status, 409, dup.text);
  });

  test('a developer, a robot and an anonymous caller cannot read, change or ping endpoints', async () => {
    const dev = basic('dev', PW);
    for (const [m, p] of [['get', '/registries'], ['get', '/registries/1'], ['post', '/registries/ping'], ['put', '/registries/1'], ['delete', '/registries/1'], ['get', '/replication/policies'], ['post', '/replication/policies']] as const) {
      assert.equal((await api(m, p, m === 'get' || m === 'delete' ? undefined : { id: 1, name: 'x' }, dev)).status, 403, `${m} ${p}`);
      const anon = m === 'get' || m === 'delete' ? await t.request[m](`/api/v2.0${p}`) : await t.request[m](`/api/v2.0${p}`).send({ id: 1, name: 'x', dest_registry: { id: 1 } });
      assert.equal(anon.status, 401, `anonymous ${m} ${p}`);
    }
  });

  test('the saved secret is never sent to another URL: ping of a saved endpoint with another URL, or a URL change without the secret, is refused', async () => {
    const list = await api('get', '/registries?q=name%3Devil-auth');
    const id = list.body[0].id as number;
    evil.reset();
    const ping = await api('post', '/registries/ping', { id, url: evil.url });
    assert.equal(ping.status, 400, ping.text);
    assert.match(ping.body.errors[0].message, /access_secret/);
    const put = await api('put', `/registries/${id}`, { url: evil.url });
    assert.equal(put.status, 400, put.text);
    assert.ok(evil.seen.every((s) => !String(s.auth ?? '').startsWith('Basic')), 'no credential went to the other URL');
    // With the secret given again, both are fine (the caller knows it).
    evil.reset();
    const again = await api('post', '/registries/ping', { id, url: evil.url, access_key: 'robot', access_secret: SECRET });
    assert.equal(again.status, 200, again.text);
    evil.reset();
  });

  test('the secret appears in no answer, no log line and no audit entry', async () => {
    const all = [JSON.stringify((await api('get', '/registries')).body), JSON.stringify((await api('get', '/audit-logs?page_size=100')).body), logLines.join('\n')];
    const list = await api('get', '/registries?q=name%3Devil-auth');
    all.push(JSON.stringify((await api('get', `/registries/${list.body[0].id as number}`)).body));
    const pol = await api('post', '/replication/policies', { name: 'to-evil-auth', dest_registry: { id: list.body[0].id }, filters: [{ type: 'name', value: 'library/none' }] });
    assert.equal(pol.status, 201, pol.text);
    all.push(JSON.stringify((await api('get', '/replication/policies')).body));
    for (const text of all) {
      assert.ok(!text.includes(SECRET), 'the secret leaked');
      assert.ok(!text.includes(Buffer.from(`robot:${SECRET}`).toString('base64')), 'the Basic header leaked');
    }
    assert.match(all[0], /\*\*\*\*\*/);
  });
});

describe('replication policies', () => {
  let destId: number;
  before(async () => {
    destId = (await api('get', '/registries?q=name%3Devil')).body[0].id as number;
  });

  test('pathological filter patterns match in linear time (no catastrophic backtracking)', { timeout: 60_000 }, () => {
    const cases: [string, string, boolean][] = [
      ['*a'.repeat(40) + 'b', 'a'.repeat(250), false],
      ['**/'.repeat(40) + 'x', 'a/'.repeat(120) + 'y', false],
      ['{a,a}*'.repeat(30) + 'z', 'a'.repeat(250), false],
      ['**a**a**a**a**a**a**a**a**a**a**a**a**b', 'a'.repeat(250), false],
      ['library/**', 'library/a/b/c', true],
      ['library/*', 'library/a/b', false],
      ['{team,ops}/app-?', 'ops/app-1', true],
      ['[!a-c]x', 'dx', true],
      ['[!a-c]x', 'bx', false],
      ['a/**/b', 'a/b', true],
      ['a/**/b', 'a/x/y/b', true],
      ['v1.*', 'v1x2', false],
      ['v1.*', 'v1.2', true],
      ['\\*', '*', true],
      ['\\d', 'd', true],
    ];
    for (const [pattern, s, want] of cases) assert.equal(globMatcher(pattern)(s), want, `${pattern} ~ ${s.slice(0, 30)}`);
  });

  test('a push into a repository an event-based policy with a pathological pattern watches completes', { timeout: 60_000 }, async () => {
    const pol = await api('post', '/replication/policies', { name: 'redos', dest_registry: { id: destId }, enabled: true, trigger: { type: 'event_based' }, filters: [{ type: 'name', value: '**a'.repeat(30) + '**b' }] });
    assert.equal(pol.status, 201, pol.text);
    const oci = new Oci(t.request, t.adminAuth);
    const pushed = await oci.pushImage(`library/${'a'.repeat(200)}`, 'v1', 9);
    assert.match(pushed.digest, /^sha256:/);
    assert.equal((await api('delete', `/replication/policies/${Number(String(pol.headers.location).split('/').pop())}`)).status, 200);
  });

  test('namespaces outside the grammar, a cron firing more often than once a minute, speeds out of range and odd filters are 400s', async () => {
    const base = { dest_registry: { id: destId }, filters: [{ type: 'name', value: 'library/x' }] };
    const bad: object[] = [
      { dest_namespace: '..' },
      { dest_namespace: 'a/../b' },
      { dest_namespace: 'Upper' },
      { dest_namespace: '/abs' },
      { dest_namespace: 'x'.repeat(300) },
      { trigger: { type: 'scheduled', trigger_settings: { cron: '* * * * * *' } } },
      { trigger: { type: 'scheduled', trigger_settings: { cron: '*/5 * * * * *' } } },
      { trigger: { type: 'scheduled', trigger_settings: { cron: '0-59 * * * * *' } } },
      { trigger: { type: 'scheduled', trigger_settings: { cron: '0,30 * * * * *' } } },
      { trigger: { type: 'scheduled', trigger_settings: { cron: '0 * * * *' } } },
      { speed: 2 ** 31 },
      { speed: -2 },
      { speed: 1.5 },
      { filters: [{ type: 'name', value: { $ne: 1 } }] },
      { filters: [{ type: 'name', value: 'a{b' }] },
      { filters: [{ type: 'name', value: '[z-a]' }] },
      { filters: [{ type: 'label', value: ['x'] }] },
      { filters: Array.from({ length: 51 }, () => ({ type: 'name', value: 'a' })) },
      { dest_namespace_replace_count: 1000 },
    ];
    for (const [i, extra] of bad.entries()) {
      const res = await api('post', '/replication/policies', { name: `bad-${i}`, ...base, ...extra });
      assert.equal(res.status, 400, `${JSON.stringify(extra).slice(0, 80)}: ${res.status} ${res.text}`);
    }
    for (const cron of ['0 * * * * *', '30 0 3 * * *']) {
      const ok = await api('post', '/replication/policies', { name: `at-${cron}`, ...base, trigger: { type: 'scheduled', trigger_settings: { cron } } });
      assert.equal(ok.status, 201, ok.text);
      assert.equal((await api('delete', `/replication/policies/${Number(String(ok.headers.location).split('/').pop())}`)).status, 200);
    }
  });
});

describe('token-key rotation and browser sessions', () => {
  test('only a system admin rotates the token key: a developer, a robot, an anonymous caller and a session without the CSRF token cannot', async () => {
    const before = (await api('get', '/system/token-key')).body.kid as string;
    assert.equal((await api('post', '/system/token-key/rotate', {}, basic('dev', PW))).status, 403);
    assert.equal((await api('get', '/system/token-key', undefined, basic('dev', PW))).status, 403);
    assert.equal((await t.request.post('/api/v2.0/system/token-key/rotate')).status, 401);
    const robot = await api('post', '/robots', { name: 'sysbot', level: 'system', duration: -1, permissions: [{ kind: 'project', namespace: '*', access: [{ resource: 'repository', action: 'pull' }] }] });
    assert.equal(robot.status, 201, robot.text);
    assert.equal((await api('post', '/system/token-key/rotate', {}, basic(robot.body.name, robot.body.secret))).status, 403);
    const login = await t.request.post('/c/login').type('form').send({ principal: 'admin', password: 'Harbor12345' });
    assert.equal(login.status, 200);
    const cookies = (login.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]);
    const csrf = cookies.find((c) => c.startsWith('__csrf='))!.slice('__csrf='.length);
    const cookie = cookies.join('; ');
    assert.equal((await t.request.post('/api/v2.0/system/token-key/rotate').set('Cookie', cookie)).status, 403);
    assert.equal((await t.request.post('/api/v2.0/system/token-key/rotate').set('Cookie', cookie).set('X-Harbor-CSRF-Token', csrf + 'x')).status, 403);
    assert.equal((await api('get', '/system/token-key')).body.kid, before, 'no refused request rotated the key');
    const ok = await t.request.post('/api/v2.0/system/token-key/rotate').set('Cookie', cookie).set('X-Harbor-CSRF-Token', csrf);
    assert.equal(ok.status, 200);
    assert.notEqual(ok.body.kid, before);
  });

  test('a session id chosen by an attacker is never adopted: login issues a fresh one and the chosen one authenticates nothing', async () => {
    const chosen = 'attacker-chosen-session-id-0123456789';
    const login = await t.request.post('/c/login').set('Cookie', `berth_session=${chosen}; __csrf=known`).type('form').send({ principal: 'dev', password: PW });
    assert.equal(login.status, 200);
    const cookies = (login.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]);
    const session = cookies.find((c) => c.startsWith('berth_session='))!;
    assert.notEqual(session, `berth_session=${chosen}`);
    assert.ok(!cookies.includes('__csrf=known'));
    const mine = await t.request.get('/api/v2.0/users/current').set('Cookie', `berth_session=${chosen}`);
    assert.equal(mine.status, 401);
    // The CSRF token of one session does not work for another.
    const other = await t.request.post('/c/login').type('form').send({ principal: 'dev', password: PW });
    const otherCsrf = (other.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).find((c) => c.startsWith('__csrf='))!.slice(7);
    const cross = await t.request.post('/api/v2.0/users/current/tokens').set('Cookie', session).set('X-Harbor-CSRF-Token', otherCsrf).send({ name: 'x' });
    assert.equal(cross.status, 403);
  });
});

describe('more: pull replication from a lying remote, URLs with a query, odd logins, concurrent rotations, redirect loops', () => {
  test('a remote catalog or tag list with names outside the grammar: those are skipped, the valid ones replicate', { timeout: 60_000 }, async () => {
    const img = image(11);
    evil.reset((req, res) => {
      const u = req.url ?? '';
      if (u === '/v2/') return void res.writeHead(200).end('{}');
      if (u.startsWith('/v2/_catalog')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ repositories: ['good/app', '../../etc', 'Bad/Name', '', 'x'.repeat(300), 7] }));
      if (u.startsWith('/v2/good/app/tags/list')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'good/app', tags: ['v1', '../x', 'has space', '-dash'] }));
      if (u === '/v2/good/app/manifests/v1' || u === `/v2/good/app/manifests/${img.digest}`) {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': img.digest, 'content-length': img.manifest.length });
        return void res.end(req.method === 'HEAD' ? undefined : img.manifest);
      }
      if (u.endsWith(sha256(img.config))) return void res.writeHead(200, { 'content-length': img.config.length }).end(img.config);
      if (u.endsWith(sha256(img.layer))) return void res.writeHead(200, { 'content-length': img.layer.length }).end(img.layer);
      res.writeHead(404).end();
    });
    const srcId = (await api('get', '/registries?q=name%3Devil')).body[0].id as number;
    const pol = await api('post', '/replication/policies', { name: 'pull-lies', src_registry: { id: srcId }, dest_namespace: 'mirror', dest_namespace_replace_count: 0, filters: [{ type: 'name', value: '**' }] });
    assert.equal(pol.status, 201, pol.text);
    const run = await api('post', '/replication/executions', { policy_id: Number(String(pol.headers.location).split('/').pop()) });
    assert.equal(run.status, 201, run.text);
    const execId = Number(String(run.headers.location).split('/').pop());
    let exec: { status: string; status_text: string; total: number; succeed: number };
    for (;;) {
      exec = (await api('get', `/replication/executions/${execId}`)).body;
      if (exec.status !== 'InProgress') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(exec.status, 'Succeed', exec.status_text);
    assert.equal(exec.total, 1);
    const [task] = (await api('get', `/replication/executions/${execId}/tasks`)).body as { id: number }[];
    const log = await api('get', `/replication/executions/${execId}/tasks/${task.id}/log`);
    assert.equal(log.status, 200);
    assert.match(String(log.headers['content-type']), /^text\/plain/);
    assert.equal(log.headers['x-content-type-options'], 'nosniff', 'a log quoting the remote is never sniffed as HTML');
    const pulled = await t.request.get(`/v2/mirror/good/app/manifests/v1`).set('Authorization', t.adminAuth).set('Accept', OCI_MANIFEST).buffer(true).parse(binary);
    assert.equal(pulled.status, 200, String(pulled.body));
    assert.equal(sha256(pulled.body as Buffer), img.digest);
    evil.reset();
  });

  test('a registry URL with a query or a fragment (where tokens hide) is refused', async () => {
    for (const url of [`${evil.url}/?token=abc`, `${evil.url}/#frag`]) {
      const res = await api('post', '/registries', { name: `q${url.length}`, type: 'docker-registry', url });
      assert.equal(res.status, 400, `${url}: ${res.text}`);
    }
  });

  test('a private proxy-cache project pulls nothing for an anonymous caller, and never asks its upstream', async () => {
    const reg = await api('get', '/registries?q=name%3Devil');
    assert.equal((await api('post', '/projects', { project_name: 'evilprivate', registry_id: reg.body[0].id, metadata: { public: 'false' } })).status, 201);
    evil.reset();
    const res = await anonPull('evilprivate/app/manifests/v1');
    assert.equal(res.status, 401);
    assert.deepEqual(evil.calls(), []);
  });

  test('odd login bodies are 4xx: oversized, malformed JSON, non-string fields', async () => {
    assert.equal((await t.request.post('/c/login').set('Content-Type', 'application/json').send(`{"principal":"${'a'.repeat(20_000)}"}`)).status, 413);
    assert.equal((await t.request.post('/c/login').set('Content-Type', 'application/json').send('{"principal":')).status, 400);
    assert.equal((await t.request.post('/c/login').send({ principal: ['admin'], password: { a: 1 } })).status, 400);
    assert.equal((await t.request.post('/c/login').send({ principal: 'admin', password: 'wrong' })).status, 401);
  });

  test('concurrent key rotations: each one succeeds or is a clean 409, and tokens signed now verify', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => api('post', '/system/token-key/rotate', {})));
    for (const r of results) assert.ok(r.status === 200 || r.status === 409, `${r.status} ${r.text}`);
    const now = (await api('get', '/system/token-key')).body as { kid: string; previous_kid: string };
    assert.ok(results.some((r) => r.status === 200 && r.body.kid === now.kid));
    const tok = await t.request.get(`/service/token?service=berth-registry&scope=${encodeURIComponent('repository:library/x:pull')}`).set('Authorization', t.adminAuth);
    assert.equal((await t.request.get('/v2/').set('Authorization', `Bearer ${tok.body.token as string}`)).status, 200);
  });

  test('a blob redirect loop ends after a few hops with a clean 503', async () => {
    const digest = sha256('loop');
    evil.reset((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.url?.endsWith(digest)) return void res.writeHead(302, { location: req.url }).end();
      res.writeHead(404).end();
    });
    const res = await anonPull(`evil/loop/blobs/${digest}`);
    assert.equal(res.status, 503);
    assert.match(errorOf(res).message, /too many redirects/);
    assert.ok(evil.calls().length <= 12, `${evil.calls().length} requests`);
    evil.reset();
  });
});

describe('login CSRF', () => {
  test('a sign-in or sign-out started by another site (Sec-Fetch-Site: cross-site) is refused and sets no cookie; same-origin works', async () => {
    const cross = await t.request.post('/c/login').set('Sec-Fetch-Site', 'cross-site').set('Origin', 'https://evil.example').type('form').send({ principal: 'dev', password: PW });
    assert.equal(cross.status, 403);
    assert.equal(cross.headers['set-cookie'], undefined);
    const same = await t.request.post('/c/login').set('Sec-Fetch-Site', 'same-origin').type('form').send({ principal: 'dev', password: PW });
    assert.equal(same.status, 200);
    const cookie = (same.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ');
    assert.equal((await t.request.get('/c/log_out').set('Cookie', cookie).set('Sec-Fetch-Site', 'cross-site')).status, 403);
    assert.equal((await t.request.get('/api/v2.0/users/current').set('Cookie', cookie)).status, 200, 'the session survived the cross-site sign-out');
  });
});

describe('a proxy-cache project whose registry endpoint is gone (the outcome of a create/delete race)', () => {
  test('pulls are a clean 503 naming the missing endpoint, not a 500 or a bare 404', async () => {
    assert.equal((await api('post', '/projects', { project_name: 'orphan', metadata: { public: 'true' } })).status, 201);
    await t.berth.db.project.update({ where: { name: 'orphan' }, data: { registryId: 999_999 } });
    await t.berth.access.invalidate();
    for (const path of ['orphan/app/manifests/v1', `orphan/app/blobs/${sha256('x')}`]) {
      const res = await anonPull(path);
      assert.equal(res.status, 503, `${path}: ${res.status} ${String(res.body)}`);
      assert.match(errorOf(res).message, /registry endpoint/);
    }
  });
});

describe('names that collide, ids that do not exist, filters on listings', () => {
  test('a duplicate policy or endpoint name (create or rename) is a 409; unknown ids are 404s; odd listing filters are 4xx or empty, never 500', async () => {
    const destId = (await api('get', '/registries?q=name%3Devil')).body[0].id as number;
    const a = await api('post', '/replication/policies', { name: 'dup-a', dest_registry: { id: destId }, filters: [{ type: 'name', value: 'library/x' }] });
    assert.equal(a.status, 201);
    assert.equal((await api('post', '/replication/policies', { name: 'dup-a', dest_registry: { id: destId } })).status, 409);
    const b = await api('post', '/replication/policies', { name: 'dup-b', dest_registry: { id: destId } });
    assert.equal(b.status, 201);
    assert.equal((await api('put', `/replication/policies/${Number(String(b.headers.location).split('/').pop())}`, { name: 'dup-a' })).status, 409);
    assert.equal((await api('put', `/registries/${destId}`, { name: 'evil-auth' })).status, 409);
    for (const path of ['/replication/policies/2147483647', '/replication/executions/2147483647', '/replication/executions/2147483647/tasks', '/replication/executions/2147483647/tasks/1/log', '/registries/2147483647', '/registries/2147483647/info']) {
      assert.equal((await api('get', path)).status, 404, path);
    }
    assert.equal((await api('post', '/registries/ping', { id: 2147483647 })).status, 404);
    assert.equal((await api('post', '/replication/executions', { policy_id: 2147483647 })).status, 400);
    for (const q of ['status=%27%3B--', 'trigger=x', 'policy_id=abc', 'sort=-%27', 'page_size=1000', 'policy_id=99999999999999']) {
      const res = await api('get', `/replication/executions?${q}`);
      assert.ok(res.status === 200 || res.status === 400, `${q}: ${res.status}`);
    }
    for (const q of ['q=name%3D~%25', 'q=url%3D~_', 'sort=bogus', 'q=type%3D%27']) {
      const res = await api('get', `/registries?${q}`);
      assert.ok(res.status === 200 || res.status === 400, `${q}: ${res.status}`);
    }
  });
});

describe('what anonymous pulls through a bearer-token upstream can make Berth hold', () => {
  test('the upstream client keeps a bounded number of tokens, whatever the number of repositories pulled', { timeout: 120_000 }, async () => {
    let tokenRequests = 0;
    const srv = http.createServer((req, res) => {
      req.resume();
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname === '/token') tokenRequests++;
      if (u.pathname === '/token') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 't'.repeat(2000) + u.searchParams.get('scope'), expires_in: 300 }));
      if (!String(req.headers.authorization ?? '').startsWith('Bearer ')) return void res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="evil"` }).end();
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const client = new UpstreamClient({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` });
    try {
      for (let i = 0; i < 1500; i++) assert.equal(await client.headManifest(`r${i}/app`, 'latest'), null);
      const held = (client as unknown as { tokens: Map<string, unknown> }).tokens.size;
      assert.ok(held <= 1000, `${held} tokens held`);
      // Still works, and a token in use is reused (one token request for two pulls of the same repository).
      const before = tokenRequests;
      assert.equal(await client.headManifest('again/app', 'v1'), null);
      assert.equal(await client.headManifest('again/app', 'v2'), null);
      assert.equal(tokenRequests - before, 1);
    } finally {
      client.close();
      srv.closeAllConnections();
      srv.close();
    }
  });

  test('blob streams a slow reader holds do not starve the upstream connections of everyone else', { timeout: 60_000 }, async () => {
    // 8 MiB each: more than the socket buffers between the two take, so an unread stream holds its connection.
    const chunk = Buffer.alloc(64 * 1024, 1);
    const size = 128 * chunk.length;
    const digest = sha256(Buffer.concat(Array.from({ length: 128 }, () => chunk)));
    const srv = http.createServer((req, res) => {
      req.resume();
      res.on('error', () => undefined);
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.url?.includes('/blobs/')) {
        res.writeHead(200, { 'content-length': size });
        let left = 128;
        const pump = () => {
          while (left > 0 && !res.destroyed) {
            left--;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end();
        };
        return pump();
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const client = new UpstreamClient({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` });
    try {
      // 20 downloads whose readers never read (a slow anonymous client each), then one more.
      const stalled = await Promise.all(Array.from({ length: 20 }, (_, i) => client.getBlob(`slow/r${i}`, digest)));
      const next = await client.getBlob('other/app', digest);
      assert.equal(next.size, size);
      for (const d of [...stalled, next]) d.stream.destroy();
    } finally {
      client.close();
      srv.closeAllConnections();
      srv.close();
    }
  });
});

describe('referrers through a public proxy-cache project', () => {
  test('an upstream listing hundreds of referrers: one anonymous listing fetches a bounded number of them', { timeout: 60_000 }, async () => {
    const subject = image(21);
    const empty = Buffer.from('{}');
    const refs = Array.from({ length: 200 }, (_, i) =>
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sig', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 }, layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 }], subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length }, annotations: { n: String(i) } })),
    );
    const byDigest = new Map(refs.map((r) => [sha256(r), r]));
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: refs.map((r) => ({ mediaType: OCI_MANIFEST, digest: sha256(r), size: r.length, artifactType: 'application/vnd.example.sig' })) }));
    evil.reset((req, res) => {
      const u = req.url ?? '';
      if (u === '/v2/') return void res.writeHead(200).end('{}');
      if (u.startsWith(`/v2/sigs/referrers/`)) return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end(index);
      const m = /\/manifests\/(sha256:[0-9a-f]{64})$/.exec(u);
      if (m && byDigest.has(m[1])) return void res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': byDigest.get(m[1])!.length }).end(byDigest.get(m[1]));
      if (u.endsWith(sha256(empty))) return void res.writeHead(200, { 'content-length': 2 }).end(empty);
      res.writeHead(404).end();
    });
    const res = await t.request.get(`/v2/evil/sigs/referrers/${subject.digest}`).set('Authorization', await anonToken('evil/sigs'));
    assert.equal(res.status, 200);
    const fetched = evil.calls().filter((c) => c.method === 'GET' && /\/manifests\/sha256:/.test(c.url)).length;
    assert.ok(fetched > 0 && fetched <= 100, `${fetched} referrers fetched by one listing`);
    evil.reset();
  });
});

describe('an index of thousands', () => {
  test('an upstream index referring to more manifests than one pull fetches is refused before any child is fetched', async () => {
    const children = Array.from({ length: 1100 }, (_, i) => ({ mediaType: OCI_MANIFEST, digest: sha256(`child-${i}`), size: 100 }));
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: children }));
    const digest = sha256(index);
    evil.reset((req, res) => {
      const u = req.url ?? '';
      if (u === '/v2/') return void res.writeHead(200).end('{}');
      if (u === '/v2/wide/manifests/v1' || u === `/v2/wide/manifests/${digest}`) {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', 'docker-content-digest': digest, 'content-length': index.length });
        return void res.end(req.method === 'HEAD' ? undefined : index);
      }
      res.writeHead(404).end();
    });
    const res = await anonPull('evil/wide/manifests/v1');
    assert.equal(res.status, 503, String(res.body));
    assert.match(errorOf(res).message, /more than \d+ manifests/);
    assert.ok(!evil.calls().some((c) => children.some((ch) => c.url.endsWith(ch.digest))), 'no child was requested');
    evil.reset();
  });
});

describe('a source with tens of thousands of tags', () => {
  test('PostgreSQL: 20,000 tasks of one execution are recorded (one transaction for all of them outlived the 5 s limit)', { timeout: 180_000, skip: missingPostgres() }, async () => {
    const pg = await startPostgres();
    const app = await makeApp({ BERTH_DATABASE_URL: await pg.createDatabase() });
    try {
      const reg = await app.request.post('/api/v2.0/registries').set('Authorization', app.adminAuth).send({ name: 'r', type: 'docker-registry', url: 'http://127.0.0.1:1' });
      const pol = await app.request.post('/api/v2.0/replication/policies').set('Authorization', app.adminAuth).send({ name: 'p', dest_registry: { id: Number(String(reg.headers.location).split('/').pop()) } });
      assert.equal(pol.status, 201, pol.text);
      const store = new ReplicationStore(app.berth.db);
      const exec = await store.createExecution(Number(String(pol.headers.location).split('/').pop()), 'manual', 'test');
      const tasks = Array.from({ length: 20_000 }, (_, i) => ({ resourceType: 'image', operation: 'copy', srcResource: `a/b:t${i}`, dstResource: `a/b:t${i}` }));
      const ids = await store.createTasks(exec, tasks);
      assert.equal(ids.length, 20_000);
      assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), 'ids in the order of the tasks');
      assert.equal((await store.listTasks(exec, {}, 1, 1)).total, 20_000);
    } finally {
      await app.close();
      await pg.stop();
    }
  });

  test('an execution whose bookkeeping fails ends Failed and stops its heartbeat (it stayed InProgress for ever)', async () => {
    const now = new Date();
    const row: ReplicationPolicyRow = { id: 1, name: 'p', description: '', srcRegistryId: null, destRegistryId: 7, destNamespace: '', destNamespaceReplaceCount: -1, trigger: '{"type":"manual"}', filters: '[{"type":"name","value":"team/app","decoration":"matches"}]', replicateDeletion: false, override: true, enabled: true, speed: -1, copyByChunk: false, createdAt: now, updatedAt: now };
    const finished: string[] = [];
    const statusTexts: string[] = [];
    let beats = 0;
    // A fake store: everything a run records, with createTasks failing as the database did.
    const store = {
      allPolicies: async () => [row],
      failStale: async () => [],
      getPolicy: async () => row,
      untaggedArtifacts: async () => [],
      createExecution: async () => 41,
      beat: async () => (beats++, 'InProgress'),
      createTasks: async () => {
        throw new Error('Transaction API error: the transaction expired');
      },
      finishExecution: async (_id: number, status: string, text: string) => (finished.push(status), statusTexts.push(text), true),
      setCounts: async () => undefined,
      updateTask: async () => true,
    } as unknown as ReplicationStore;
    const end = { tags: async () => ['v1'], catalog: async () => ['team/app'] } as unknown as ReplicationEnd;
    const service = new ReplicationService({ store, client: async () => end, registryExists: async () => true, local: end, log: { info: () => undefined, warn: () => undefined }, node: 'n', once: async () => false, heartbeatMs: 5 });
    try {
      const id = await service.startManual(1);
      await service.settled(id);
      assert.deepEqual(finished, ['Failed']);
      assert.ok(statusTexts[0]?.includes('transaction expired'), statusTexts[0]);
      const seen = beats;
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(beats, seen, 'the heartbeat stopped');
    } finally {
      await service.close();
    }
  });
});

describe('a schedule saved before the once-a-minute rule', () => {
  test('is not armed to fire every second (an older row with "* * * * * *" starts no execution)', { timeout: 30_000 }, async () => {
    const destId = (await api('get', '/registries?q=name%3Devil')).body[0].id as number;
    const pol = await api('post', '/replication/policies', { name: 'old-every-second', dest_registry: { id: destId }, filters: [{ type: 'name', value: 'library/none' }], trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 3 * * *' } } });
    assert.equal(pol.status, 201, pol.text);
    const id = Number(String(pol.headers.location).split('/').pop());
    await t.berth.db.replicationPolicy.update({ where: { id }, data: { trigger: JSON.stringify({ type: 'scheduled', trigger_settings: { cron: '* * * * * *' } }) } });
    await t.berth.replication.reload();
    await new Promise((r) => setTimeout(r, 2500));
    const runs = await api('get', `/replication/executions?policy_id=${id}`);
    assert.deepEqual(runs.body, []);
    assert.ok(logLines.some((l) => l.includes('fires more than once a minute')));
    await t.berth.db.replicationPolicy.delete({ where: { id } });
    await t.berth.replication.reload();
  });
});

describe('a destination name longer than a repository name may be', () => {
  test('its task fails naming why; no repository of that name appears', { timeout: 60_000 }, async () => {
    const img = image(41);
    const remote = `${'r'.repeat(120)}/app`;
    evil.reset((req, res) => {
      const u = req.url ?? '';
      if (u === '/v2/') return void res.writeHead(200).end('{}');
      if (u.startsWith(`/v2/${remote}/tags/list`)) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: remote, tags: ['v1'] }));
      if (u === `/v2/${remote}/manifests/v1` || u === `/v2/${remote}/manifests/${img.digest}`) {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': img.digest, 'content-length': img.manifest.length });
        return void res.end(req.method === 'HEAD' ? undefined : img.manifest);
      }
      if (u.endsWith(sha256(img.config))) return void res.writeHead(200, { 'content-length': img.config.length }).end(img.config);
      if (u.endsWith(sha256(img.layer))) return void res.writeHead(200, { 'content-length': img.layer.length }).end(img.layer);
      res.writeHead(404).end();
    });
    const srcId = (await api('get', '/registries?q=name%3Devil')).body[0].id as number;
    const namespace = `long/${'n'.repeat(140)}`;
    const pol = await api('post', '/replication/policies', { name: 'too-long', src_registry: { id: srcId }, dest_namespace: namespace, dest_namespace_replace_count: 0, filters: [{ type: 'name', value: remote }] });
    assert.equal(pol.status, 201, pol.text);
    const run = await api('post', '/replication/executions', { policy_id: Number(String(pol.headers.location).split('/').pop()) });
    const execId = Number(String(run.headers.location).split('/').pop());
    let exec: { status: string; failed: number };
    for (;;) {
      exec = (await api('get', `/replication/executions/${execId}`)).body;
      if (exec.status !== 'InProgress') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(exec.status, 'Failed');
    const [task] = (await api('get', `/replication/executions/${execId}/tasks`)).body as { id: number }[];
    const log = await api('get', `/replication/executions/${execId}/tasks/${task.id}/log`);
    assert.match(log.text, /longer than 255|not a valid repository name/);
    assert.equal(await t.berth.db.repository.count({ where: { name: { startsWith: 'long/' } } }), 0);
    evil.reset();
  });
});

describe('pulls of made-up digests through a public proxy-cache project', () => {
  test('cost the upstream a HEAD each (free of Docker Hub pull limits), never a manifest GET', async () => {
    const img = image(51);
    evil.reset((req, res) => {
      const u = req.url ?? '';
      if (u === '/v2/') return void res.writeHead(200).end('{}');
      if (u === `/v2/real/manifests/${img.digest}`) {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': img.digest, 'content-length': img.manifest.length });
        return void res.end(req.method === 'HEAD' ? undefined : img.manifest);
      }
      if (u.endsWith(sha256(img.config))) return void res.writeHead(200, { 'content-length': img.config.length }).end(img.config);
      if (u.endsWith(sha256(img.layer))) return void res.writeHead(200, { 'content-length': img.layer.length }).end(img.layer);
      res.writeHead(404).end();
    });
    for (let i = 0; i < 5; i++) assert.equal((await anonPull(`evil/real/manifests/${sha256(`made-up-${i}`)}`)).status, 404);
    assert.equal(evil.calls().filter((c) => c.method === 'GET').length, 0, 'no manifest GET for a digest the upstream does not have');
    const real = await anonPull(`evil/real/manifests/${img.digest}`);
    assert.equal(real.status, 200);
    assert.equal(sha256(real.body as Buffer), img.digest);
    evil.reset();
  });
});

describe('referrers listings through an upstream without the referrers API', () => {
  test('look for the fallback tag with a HEAD, never a manifest GET, when there is none', async () => {
    evil.reset();
    for (let i = 0; i < 3; i++) {
      const res = await t.request.get(`/v2/evil/norefs/referrers/${sha256(`subject-${i}`)}`).set('Authorization', await anonToken('evil/norefs'));
      assert.equal(res.status, 200);
    }
    assert.ok(evil.calls().some((c) => c.method === 'HEAD' && c.url.includes('/manifests/sha256-')));
    assert.equal(evil.calls().filter((c) => c.method === 'GET' && c.url.includes('/manifests/')).length, 0);
  });
});

describe('replication into a proxy-cache project', () => {
  test('a pull-based policy whose destination lies in a proxy-cache project stores nothing there; its task says why', { timeout: 60_000 }, async () => {
    const img = image(61);
    evil.reset((req, res) => {
      const u = req.url ?? '';
      if (u === '/v2/') return void res.writeHead(200).end('{}');
      if (u.startsWith('/v2/library/alpine/tags/list')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'library/alpine', tags: ['latest'] }));
      if (u === '/v2/library/alpine/manifests/latest' || u === `/v2/library/alpine/manifests/${img.digest}`) {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': img.digest, 'content-length': img.manifest.length });
        return void res.end(req.method === 'HEAD' ? undefined : img.manifest);
      }
      if (u.endsWith(sha256(img.config))) return void res.writeHead(200, { 'content-length': img.config.length }).end(img.config);
      if (u.endsWith(sha256(img.layer))) return void res.writeHead(200, { 'content-length': img.layer.length }).end(img.layer);
      res.writeHead(404).end();
    });
    const srcId = (await api('get', '/registries?q=name%3Devil')).body[0].id as number;
    // "evilauth" is a proxy cache of another endpoint: a copy from "evil" would pass for its upstream's.
    const pol = await api('post', '/replication/policies', { name: 'into-proxy', src_registry: { id: srcId }, dest_namespace: 'evilauth', dest_namespace_replace_count: 0, filters: [{ type: 'name', value: 'library/alpine' }] });
    assert.equal(pol.status, 201, pol.text);
    const run = await api('post', '/replication/executions', { policy_id: Number(String(pol.headers.location).split('/').pop()) });
    const execId = Number(String(run.headers.location).split('/').pop());
    let exec: { status: string };
    for (;;) {
      exec = (await api('get', `/replication/executions/${execId}`)).body;
      if (exec.status !== 'InProgress') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(exec.status, 'Failed');
    const [task] = (await api('get', `/replication/executions/${execId}/tasks`)).body as { id: number }[];
    assert.match((await api('get', `/replication/executions/${execId}/tasks/${task.id}/log`)).text, /proxy cache/);
    assert.equal(await t.berth.db.repository.count({ where: { name: 'evilauth/library/alpine' } }), 0);
    evil.reset();
  });
});

describe('malformed bodies on the routes of this session', () => {
  test('wrong JSON types, nulls, arrays and junk in every field are 4xx, never 500', { timeout: 120_000 }, async () => {
    const junk: unknown[] = [null, 0, -1, 1e308, true, 'x', '', [], [1], {}, { a: 1 }, '\u0000', 'ü'.repeat(300)];
    const routes: [('post' | 'put'), string, string[]][] = [
      ['post', '/registries', ['name', 'type', 'url', 'description', 'credential', 'insecure', 'ca_certificate']],
      ['put', `/registries/1`, ['name', 'url', 'description', 'credential_type', 'access_key', 'access_secret', 'insecure', 'ca_certificate']],
      ['post', '/registries/ping', ['id', 'type', 'url', 'credential_type', 'access_key', 'access_secret', 'credential', 'insecure', 'ca_certificate']],
      ['post', '/replication/policies', ['name', 'description', 'src_registry', 'dest_registry', 'dest_namespace', 'dest_namespace_replace_count', 'trigger', 'filters', 'replicate_deletion', 'override', 'enabled', 'speed', 'copy_by_chunk']],
      ['post', '/replication/executions', ['policy_id']],
      ['post', '/system/token-key/rotate', []],
    ];
    const destId = (await api('get', '/registries?q=name%3Devil')).body[0].id as number;
    const valid: Record<string, Record<string, unknown>> = {
      '/registries': { name: 'fz', type: 'docker-registry', url: evil.url },
      '/registries/1': {},
      '/registries/ping': { url: 'http://127.0.0.1:1' },
      '/replication/policies': { name: 'fz', dest_registry: { id: destId } },
      '/replication/executions': { policy_id: 1 },
      '/system/token-key/rotate': {},
    };
    for (const [method, path, fields] of routes) {
      for (const field of fields) {
        for (const value of junk) {
          const res = await api(method, path, { ...valid[path], [field]: value });
          assert.ok(res.status < 500, `${method} ${path} ${field}=${JSON.stringify(value)?.slice(0, 40)}: ${res.status} ${res.text}`);
          if (res.status === 201 && path === '/registries') await api('delete', String(res.headers.location).replace('/api/v2.0', ''));
          if (res.status === 201 && path === '/replication/policies') await api('delete', String(res.headers.location).replace('/api/v2.0', ''));
        }
      }
      const raw = await t.request[method](`/api/v2.0${path}`).set('Authorization', t.adminAuth).set('Content-Type', 'application/json').send('{"name": [');
      assert.equal(raw.status, 400, `${path}: malformed JSON`);
      const arr = await t.request[method](`/api/v2.0${path}`).set('Authorization', t.adminAuth).send([1, 2]);
      assert.ok(arr.status < 500, `${path}: array body ${arr.status}`);
    }
    // The PUTs above may have renamed endpoint 1 ("evil"): later cases find it by name.
    assert.equal((await api('put', '/registries/1', { name: 'evil', insecure: false })).status, 200);
  });
});

describe('a slow reader of a blob others wait for', () => {
  test('does not hold back the others: a second pull of the same missing blob completes while the first client reads nothing', { timeout: 45_000 }, async () => {
    // 24 MiB: more than the socket buffers between Berth and a client that reads nothing take.
    const chunk = bytes(64 * 1024, 71);
    const count = 384;
    const digest = sha256(Buffer.concat(Array.from({ length: count }, () => chunk)));
    evil.reset((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.url?.endsWith(digest)) {
        res.writeHead(200, { 'content-length': count * chunk.length });
        let left = count;
        const pump = () => {
          while (left > 0 && !res.destroyed) {
            left--;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end();
        };
        return pump();
      }
      res.writeHead(404).end();
    });
    const server = http.createServer(t.berth.app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const auth = await anonToken('evil/popular');
    let slow: http.IncomingMessage | null = null;
    try {
      // The slow client: takes the answer's headers, then reads nothing.
      slow = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: `/v2/evil/popular/blobs/${digest}`, headers: { authorization: auth } }, (res) => {
          res.pause();
          resolve(res);
        });
        req.on('error', reject);
      });
      assert.equal(slow.statusCode, 200);
      const other = await t.request.head(`/v2/evil/popular/blobs/${digest}`).set('Authorization', auth);
      assert.equal(other.status, 200);
      assert.equal(Number(other.headers['content-length']), count * chunk.length);
    } finally {
      slow?.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      evil.reset();
    }
  });
});

describe('an immutable tag rule in a proxy-cache project', () => {
  test('a tag the upstream moved is served as cached (the rule keeps it), not refused', async () => {
    const one = image(81);
    const two = image(82);
    let current = one;
    evil.reset((req, res) => {
      const u = req.url ?? '';
      if (u === '/v2/') return void res.writeHead(200).end('{}');
      const img = [one, two].find((i) => u === `/v2/frozen/manifests/${i.digest}`) ?? (u === '/v2/frozen/manifests/v1' ? current : null);
      if (img) {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': img.digest, 'content-length': img.manifest.length });
        return void res.end(req.method === 'HEAD' ? undefined : img.manifest);
      }
      for (const i of [one, two]) {
        if (u.endsWith(sha256(i.config))) return void res.writeHead(200, { 'content-length': i.config.length }).end(i.config);
        if (u.endsWith(sha256(i.layer))) return void res.writeHead(200, { 'content-length': i.layer.length }).end(i.layer);
      }
      res.writeHead(404).end();
    });
    const rule = await api('post', '/projects/evil/immutabletagrules', { disabled: false, action: 'immutable', template: 'immutable_template', params: {}, tag_selectors: [{ kind: 'doublestar', decoration: 'matches', pattern: 'v1' }], scope_selectors: { repository: [{ kind: 'doublestar', decoration: 'repoMatches', pattern: 'frozen' }] }, priority: 0 });
    assert.equal(rule.status, 201, rule.text);
    try {
      const first = await anonPull('evil/frozen/manifests/v1');
      assert.equal(first.status, 200);
      assert.equal(sha256(first.body as Buffer), one.digest);
      current = two;
      const again = await anonPull('evil/frozen/manifests/v1');
      assert.equal(again.status, 200, String(again.body));
      assert.equal(sha256(again.body as Buffer), one.digest, 'the immutable tag still names what it named');
    } finally {
      await api('delete', String(rule.headers.location).replace('/api/v2.0', ''));
      evil.reset();
    }
  });
});
describe('writes into a proxy-cache project through /api', () => {
  test('its project admin can neither add a tag to a cached artifact nor import an archive there (405, as Harbor); deletes stay allowed', async () => {
    const img = image(31);
    evil.reset((req, res) => {
      const u = req.url ?? '';
      if (u === '/v2/') return void res.writeHead(200).end('{}');
      if (u.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': img.digest, 'content-length': img.manifest.length });
        return void res.end(req.method === 'HEAD' ? undefined : img.manifest);
      }
      if (u.endsWith(sha256(img.config))) return void res.writeHead(200, { 'content-length': img.config.length }).end(img.config);
      if (u.endsWith(sha256(img.layer))) return void res.writeHead(200, { 'content-length': img.layer.length }).end(img.layer);
      res.writeHead(404).end();
    });
    assert.equal((await api('post', '/projects/evil/members', { role_id: 1, member_user: { username: 'dev' } })).status, 201);
    const dev = basic('dev', PW);
    assert.equal((await anonPull('evil/cached/manifests/v1')).status, 200);
    const tag = await api('post', `/projects/evil/repositories/cached/artifacts/${img.digest}/tags`, { name: 'poisoned' }, dev);
    assert.equal(tag.status, 405, tag.text);
    const imp = await t.request.post('/api/v2.0/projects/evil/repositories/cached/import?tag=evil').set('Authorization', dev).attach('archive', Buffer.from('not a tar'), 'x.tar');
    assert.equal(imp.status, 405, imp.text);
    evil.reset();
    const tags = await api('get', `/projects/evil/repositories/cached/artifacts/${img.digest}/tags`);
    assert.deepEqual((tags.body as { name: string }[]).map((x) => x.name), ['v1']);
    assert.equal((await api('delete', `/projects/evil/repositories/cached/artifacts/${img.digest}/tags/v1`, undefined, dev)).status, 200);
  });
});
