// A bounded fuzz run over every route: malformed JSON, wrong types, huge and deeply nested values,
// bad encodings, lying headers and archives, as an administrator, a plain user and anonymously.
// Whatever the input, the answer is never a 5xx and the process keeps serving. The generator is
// seeded, so a failure names a request that can be replayed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';

let t: TestApp;
const PW = 'Fuzz-passw0rd';
let dev: string;

function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
// BERTH_FUZZ_SEED replays another run; the default seed is what CI runs.
const rand = rng(Number(process.env.BERTH_FUZZ_SEED ?? 13));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

const deep = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
const deepArr = (n: number) => '['.repeat(n) + ']'.repeat(n);
const BAD_SCALARS: unknown[] = [null, true, 0, -1, 1e300, -1e300, 2 ** 53 + 1, 1.5, '', ' ', 'x'.repeat(70_000), '\u0000', '%ZZ', '../../etc/passwd', 'UPPER/Case', [], [1, 'a'], {}, { $gt: '' }, { toString: 'x' }, ['admin'], '1e300', 'true', 'null'];
const FIELDS = ['project_name', 'public', 'metadata', 'storage_limit', 'username', 'password', 'new_password', 'old_password', 'email', 'realname', 'comment', 'sysadmin_flag', 'role_id', 'member_user', 'member_group', 'ldap_group_dn', 'group_name', 'group_type', 'name', 'description', 'level', 'duration', 'disable', 'secret', 'permissions', 'access', 'kind', 'namespace', 'expires_in', 'expires_at', 'schedule', 'parameters', 'delete_untagged', 'dry_run', 'time_window', 'auth_mode', 'ldap_url', 'ldap_search_dn', 'ldap_search_password', 'ldap_base_dn', 'ldap_scope', 'ldap_timeout', 'self_registration', 'project_creation_restriction', 'principal', 'tag', 'hard', 'storage', 'id', 'user_id', 'entity_name', 'audit_log_retention_hours', 'url', 'type', 'credential', 'credential_type', 'access_key', 'access_secret', 'insecure', 'ca_certificate', 'src_registry', 'dest_registry', 'dest_namespace', 'dest_namespace_replace_count', 'trigger', 'filters', 'replicate_deletion', 'override', 'enabled', 'speed', 'copy_by_chunk', 'policy_id'];

function badBody(): { type: string; data: string } {
  const r = rand();
  if (r < 0.12) return { type: 'application/json', data: pick(['{', 'not json', '{"a":1,}', '\u0000', '"', '[', 'nul', '{"a":"\\ud800"}', '\xff\xfe']) };
  if (r < 0.2) return { type: 'application/json', data: pick([deep(5_000), deepArr(20_000), deep(100_000), deepArr(200_000)]) };
  if (r < 0.27) return { type: 'application/json', data: pick(['null', '1', '"s"', '[]', 'true', '[{}]', '{}']) };
  if (r < 0.32) return { type: pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'multipart/form-data; boundary=x', 'application/json; charset=utf-7', 'application/xml']), data: pick(['a=1&b[c]=2', '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1', '<a/>', '{"project_name":"x"}']) };
  const obj: Record<string, unknown> = {};
  const n = 1 + Math.floor(rand() * 5);
  for (let i = 0; i < n; i++) {
    const v = rand() < 0.2 ? { [pick(FIELDS)]: pick(BAD_SCALARS), access: [{ resource: pick(BAD_SCALARS), action: pick(BAD_SCALARS) }] } : pick(BAD_SCALARS);
    obj[pick(FIELDS)] = v;
  }
  return { type: 'application/json', data: JSON.stringify(obj) };
}

const PATH_VALUES = ['999999', '0', '-1', '1e300', '99999999999999999999', 'abc', '%ZZ', '%00', '..', '%2e%2e', 'x'.repeat(300), '%E0%A4%A', 'null', '[]', ' ', 'nosuch', 'library%2F..%2F..%2Fx', 'UPPER'];
const QUERIES = ['', '?page=1e300', '?page=-1&page_size=0', '?q=name%3D%25ZZ', '?q=%ZZ', '?q=name%3D~%ff', '?q=' + encodeURIComponent('name=[a~b],x={1 2}'), '?page=1&page=2', '?page_size=abc', '?page_size=100000', '?with_tag=maybe&with_label=1', '?name[a]=b', '?username=%00', '?sort=-%ZZ', '?project_name=' + 'x'.repeat(5000), '?ldap_group_dn=%ZZ', '?groupname=', '?entityname=%ff'];

interface Failure { method: string; url: string; who: string; status: number; body: string }

async function send(method: string, url: string, auth: string | null, body?: { type: string; data: string }, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  let r = (t.request as unknown as Record<string, (u: string) => import('supertest').Test>)[method](url);
  if (auth) r = r.set('Authorization', auth);
  for (const [k, v] of Object.entries(headers)) r = r.set(k, v);
  if (body) r = r.set('Content-Type', body.type).send(body.data);
  const res = await r.ok(() => true);
  return { status: res.status, text: res.text ?? '' };
}

before(async () => {
  t = await makeApp({}, REAL_ACCESS);
  dev = basic('fuzzdev', PW);
  assert.equal((await t.request.post('/api/v2.0/users').set('Authorization', t.adminAuth).send({ username: 'fuzzdev', password: PW, email: 'f@example.com', realname: 'F' })).status, 201);
  assert.equal((await t.request.post('/api/v2.0/projects').set('Authorization', t.adminAuth).send({ project_name: 'team', metadata: { public: 'false' } })).status, 201);
  assert.equal((await t.request.post('/api/v2.0/projects/team/members').set('Authorization', t.adminAuth).send({ role_id: 2, member_user: { username: 'fuzzdev' } })).status, 201);
});
after(async () => {
  await t.close();
});

test('no malformed request to /api/v2.0, /c, /service/token or /v2 gets a 5xx, and the process keeps serving', async () => {
  const doc = (await t.request.get('/api/v2.0/openapi.json').set('Authorization', t.adminAuth)).body as { paths: Record<string, Record<string, unknown>> };
  const routes = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => ({ method: m, path: p })));
  assert.ok(routes.length > 40, `expected the whole API in the OpenAPI document, got ${routes.length} routes`);
  const failures: Failure[] = [];
  let sent = 0;
  const check = async (method: string, url: string, who: string, auth: string | null, body?: { type: string; data: string }, headers?: Record<string, string>) => {
    const r = await send(method, url, auth, body, headers);
    sent++;
    if (r.status >= 500) failures.push({ method, url: url.slice(0, 200), who, status: r.status, body: (body?.data ?? '').slice(0, 120) });
  };
  const people: [string, string | null][] = [['admin', t.adminAuth], ['developer', dev], ['anonymous', null]];

  // The management API: each route, with odd path values, odd queries and odd bodies.
  for (const { method, path } of routes) {
    if (path.includes('/import')) continue; // archives below
    for (let i = 0; i < 24; i++) {
      const [who, auth] = pick(people);
      const url = '/api/v2.0' + path.replace(/\{[^}]+\}/g, () => pick(PATH_VALUES)) + pick(QUERIES);
      const withBody = method === 'post' || method === 'put' || method === 'patch' || (method === 'delete' && rand() < 0.3);
      await check(method, url, who, auth, withBody ? badBody() : undefined);
    }
    // And with the real names of things that exist, so the handlers get past their lookups.
    const real = path.replace('{project_name_or_id}', 'team').replace('{project_name}', 'team').replace('{p}', 'team').replace(/\{[^}]+\}/g, '2');
    for (const [who, auth] of people) {
      const m = method === 'delete' ? 'get' : method; // deleting the fixtures would only narrow the run
      await check(m, '/api/v2.0' + real, who, auth, m === 'get' || m === 'head' ? undefined : badBody());
    }
  }

  // Browser sign-in and the token service.
  for (let i = 0; i < 40; i++) {
    await check('post', '/c/login', 'anonymous', null, rand() < 0.5 ? badBody() : { type: 'application/json', data: JSON.stringify({ principal: pick(BAD_SCALARS), password: pick(BAD_SCALARS) }) });
    const scope = pick(['registry:catalog:*', 'repository:team/app:pull,push', 'repository:%ZZ:pull', 'repository::', ':::', 'repository:' + 'a/'.repeat(200) + ':*', 'x'.repeat(10_000), '%00']);
    const [who, auth] = pick(people);
    await check('get', `/service/token?service=${pick(['berth-registry', '', '%ZZ'])}&scope=${encodeURIComponent(scope)}&scope=${pick(['', '%ZZ', 'a b c'])}`, who, auth);
    await check('get', '/service/token', 'garbage-auth', pick(['Basic %%%', 'Basic ' + Buffer.from('nocolon').toString('base64'), 'Bearer x.y.z', 'Basic ' + Buffer.from(':').toString('base64'), 'Basic ' + 'A'.repeat(20_000)]));
  }

  // The registry API: odd names, references, digests, queries and headers.
  const digest = 'sha256:' + createHash('sha256').update('x').digest('hex');
  const names = ['team/app', 'Team/App', 'team/../x', 'team//x', '%ZZ', 'a'.repeat(300), 'team/app%00', 'library/x'];
  const refs = ['latest', digest, 'sha256:zz', 'sha256:' + 'a'.repeat(63), 'md5:abc', '%ZZ', '.bad', 'x'.repeat(200), 'sha512:' + 'b'.repeat(128)];
  const vquery = ['', '?n=1e300', '?n=-1', '?n=abc&last=%ZZ', '?digest=sha256:zz', '?mount=%ZZ&from=Bad/Name', '?mount=' + digest + '&from=team/other', '?digest=' + digest, '?artifactType=%ZZ'];
  for (let i = 0; i < 300; i++) {
    const [who, auth] = pick(people);
    const name = pick(names);
    const kind = pick(['manifests', 'blobs', 'tags', 'uploads', 'upload', 'referrers', 'catalog']);
    const url =
      kind === 'catalog' ? `/v2/_catalog${pick(vquery)}`
      : kind === 'tags' ? `/v2/${name}/tags/list${pick(vquery)}`
      : kind === 'uploads' ? `/v2/${name}/blobs/uploads/${pick(vquery)}`
      : kind === 'upload' ? `/v2/${name}/blobs/uploads/${pick(['00000000-0000-4000-8000-000000000000', '%ZZ', '..', 'x'.repeat(500)])}${pick(vquery)}`
      : `/v2/${name}/${kind}/${pick(refs)}${pick(vquery)}`;
    const method = pick(['get', 'head', 'put', 'post', 'patch', 'delete']);
    const headers: Record<string, string> = pick<Record<string, string>>([{}, { 'Content-Range': pick(['0-', 'bytes=1-0', '5-2', '0-99999999999999999999', 'x']) }, { Range: pick(['bytes=5-1', 'bytes=-', 'bytes=0-99999999999999999999', 'items=1-2']) }, { Accept: 'x'.repeat(5000) }]);
    const body = method === 'put' || method === 'patch' || method === 'post' ? (rand() < 0.6 ? { type: pick(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/octet-stream', 'application/vnd.docker.distribution.manifest.v2+json']), data: rand() < 0.5 ? badBody().data : JSON.stringify({ schemaVersion: pick(BAD_SCALARS), mediaType: pick(BAD_SCALARS), config: pick(BAD_SCALARS), layers: pick(BAD_SCALARS), manifests: pick(BAD_SCALARS), annotations: pick(BAD_SCALARS), subject: pick(BAD_SCALARS) }) } : badBody()) : undefined;
    await check(method, url, who, auth, body, headers);
  }

  // Archives that lie: a header claiming more bytes than follow, garbage, an empty file, a lone gzip header.
  const lying = Buffer.concat([tarHeader('x', 1_000_000), Buffer.alloc(1000, 120)]);
  for (const archive of [lying, Buffer.from('not a tar at all'), Buffer.alloc(0), Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]), Buffer.alloc(1024), Buffer.concat([tarHeader('manifest.json', 5), Buffer.from('[{"C'), Buffer.alloc(507), Buffer.alloc(1024)])]) {
    for (const [who, auth] of people) {
      const r = await t.request.post('/api/v2.0/projects/team/repositories/app/import?tag=x').set(auth ? { Authorization: auth } : {}).attach('archive', archive, 'a.tar').ok(() => true);
      sent++;
      if (r.status >= 500) failures.push({ method: 'post', url: 'import', who, status: r.status, body: archive.subarray(0, 40).toString('hex') });
    }
  }

  // Still alive and still correct.
  assert.equal((await t.request.get('/api/v2.0/ping')).status, 200);
  assert.equal((await t.request.get('/v2/').set('Authorization', t.adminAuth)).status, 200);
  assert.equal((await t.request.get('/api/v2.0/users/current').set('Authorization', dev)).status, 200);
  assert.ok(sent > 1000, `only ${sent} requests were sent`);
  assert.deepEqual(failures.slice(0, 30), [], `${failures.length} of ${sent} malformed requests got a 5xx`);
});

/** A ustar header for one regular file whose size field says `size` (whatever follows). */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}
