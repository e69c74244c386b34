// Hostile input on every /api/v2.0 route: wrong JSON types, nulls, arrays, huge numbers, bad
// encodings and missing fields answer a 4xx in Harbor's error shape, never a 5xx, and the server
// keeps answering. Also the existence probes that must not tell a stranger about a private project.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { Oci } from '../helpers/oci.ts';

let t: TestApp;
const PW = 'Passw0rd!x';
type Who = 'admin' | 'dev' | 'nobody' | 'anon';
const auth = (who: Who) => (who === 'admin' ? t.adminAuth : who === 'anon' ? null : basic(who, PW));
type Method = 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head';

function call(method: Method, path: string, who: Who = 'admin', body?: unknown) {
  let r = t.request[method](`/api/v2.0${path}`);
  const a = auth(who);
  if (a) r = r.set('Authorization', a);
  if (body === undefined) return r;
  return typeof body === 'string' ? r.set('Content-Type', 'application/json').send(body) : r.send(body as object);
}

const ids = { dev: 0, group: 0, robot: 0, gc: 0, member: 0, token: 0, team: 0 };

before(async () => {
  t = await makeApp({}, REAL_ACCESS);
  for (const u of ['dev', 'nobody']) assert.equal((await call('post', '/users', 'admin', { username: u, password: PW, email: `${u}@example.com` })).status, 201);
  ids.dev = Number((await call('get', '/users/search?username=dev')).body[0].user_id);
  const team = await call('post', '/projects', 'admin', { project_name: 'team', metadata: { public: 'false' } });
  assert.equal(team.status, 201);
  ids.team = Number(/\/(\d+)$/.exec(team.headers.location)![1]);
  assert.equal((await call('post', '/projects', 'admin', { project_name: 'open', public: true })).status, 201);
  const m = await call('post', '/projects/team/members', 'admin', { role_id: 2, member_user: { username: 'dev' } });
  assert.equal(m.status, 201);
  ids.member = Number(/\/(\d+)$/.exec(m.headers.location)![1]);
  const oci = new Oci(t.request, t.adminAuth);
  await oci.pushImage('team/app', 'v1', 7);
  const g = await call('post', '/usergroups', 'admin', { group_type: 1, ldap_group_dn: 'cn=devs,ou=groups,dc=example,dc=org' });
  ids.group = Number(/\/(\d+)$/.exec(g.headers.location)![1]);
  const robot = await call('post', '/robots', 'admin', { name: 'ci', level: 'project', duration: -1, permissions: [{ kind: 'project', namespace: 'team', access: [{ resource: 'repository', action: 'pull' }] }] });
  assert.equal(robot.status, 201);
  ids.robot = robot.body.id;
  const tok = await call('post', '/users/current/tokens', 'dev', { name: 'laptop' });
  assert.equal(tok.status, 201);
  ids.token = tok.body.id;
  const gc = await call('post', '/system/gc/schedule', 'admin', { schedule: { type: 'Manual' }, parameters: { dry_run: true } });
  assert.equal(gc.status, 201);
  ids.gc = Number(/\/(\d+)$/.exec(gc.headers.location)![1]);
});
after(async () => {
  await t?.close();
});

interface Case {
  method: Method;
  path: string | (() => string);
  who?: Who;
  body?: unknown;
  /** Expected status (default 400). */
  status?: number | number[];
}

const HARBOR = { 400: 'BAD_REQUEST', 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 409: 'CONFLICT', 412: 'PRECONDITION', 413: 'PAYLOAD_TOO_LARGE' } as Record<number, string>;

async function check(c: Case) {
  const path = typeof c.path === 'function' ? c.path() : c.path;
  const res = await call(c.method, path, c.who ?? 'admin', c.body);
  const label = `${c.method.toUpperCase()} ${path} ${JSON.stringify(c.body) ?? ''}`.slice(0, 300);
  assert.ok(res.status < 500, `${label} answered ${res.status}: ${res.text}`);
  const want = c.status ?? 400;
  assert.ok(Array.isArray(want) ? want.includes(res.status) : res.status === want, `${label}: ${res.status} (wanted ${want}) ${res.text}`);
  if (res.status >= 400 && c.method !== 'head') {
    assert.ok(Array.isArray(res.body?.errors) && res.body.errors.length === 1, `${label}: not Harbor's error shape: ${res.text}`);
    assert.equal(res.body.errors[0].code, HARBOR[res.status], label);
    assert.equal(typeof res.body.errors[0].message, 'string', label);
  }
  return res;
}

const LISTS = [
  '/users',
  '/users/search?username=d',
  '/usergroups',
  '/usergroups/search?groupname=dev',
  '/robots',
  '/projects',
  '/projects/team/members',
  '/repositories',
  '/projects/team/repositories',
  '/projects/team/repositories/app/artifacts',
  '/projects/team/repositories/app/artifacts/v1/tags',
  '/projects/team/logs',
  '/audit-logs',
  '/quotas',
  '/system/gc',
];
const BAD_PAGES = ['page=1e300', 'page=-1', 'page=0', 'page=abc', 'page=1.5', 'page=1&page=2', 'page=99999999999999999999', 'page_size=0', 'page_size=101', 'page_size=1e3', 'page_size=x', 'page_size=5&page_size=6', 'page= 1', 'page=0x10'];
const Q_LISTS = ['/users', '/robots', '/projects', '/repositories', '/projects/team/repositories', '/projects/team/repositories/app/artifacts', '/projects/team/repositories/app/artifacts/v1/tags', '/projects/team/logs', '/audit-logs'];
const BAD_IDS = ['abc', '0', '-1', '1e3', '1.5', '99999999999999999999', '2147483648', '%20'];
const ID_ROUTES: [Method, string, unknown?][] = [
  ['get', '/users/:id'],
  ['put', '/users/:id', { email: 'x@example.com' }],
  ['put', '/users/:id/password', { new_password: 'Another1!pw' }],
  ['put', '/users/:id/sysadmin', { sysadmin_flag: false }],
  ['delete', '/users/:id'],
  ['delete', '/users/current/tokens/:id'],
  ['get', '/usergroups/:id'],
  ['put', '/usergroups/:id', { group_name: 'x' }],
  ['delete', '/usergroups/:id'],
  ['get', '/robots/:id'],
  ['put', '/robots/:id', { description: 'x' }],
  ['patch', '/robots/:id', {}],
  ['delete', '/robots/:id'],
  ['get', '/quotas/:id'],
  ['put', '/quotas/:id', { hard: { storage: -1 } }],
  ['get', '/system/gc/:id'],
  ['put', '/system/gc/:id'],
  ['get', '/system/gc/:id/log'],
  ['get', '/projects/team/members/:id'],
  ['put', '/projects/team/members/:id', { role_id: 2 }],
  ['delete', '/projects/team/members/:id'],
];

const robotBody = (over: Record<string, unknown> = {}, access: unknown = [{ resource: 'repository', action: 'pull' }]) => ({ name: 'r2', level: 'project', duration: -1, permissions: [{ kind: 'project', namespace: 'team', access }], ...over });

const BODIES: Case[] = [
  // users
  { method: 'post', path: '/users', body: [] },
  { method: 'post', path: '/users', body: 'null' },
  { method: 'post', path: '/users', body: '"text"' },
  { method: 'post', path: '/users', body: { username: { a: 1 }, password: PW } },
  { method: 'post', path: '/users', body: { username: ['u1'], password: PW } },
  { method: 'post', path: '/users', body: { username: 'u1', password: 12345678 } },
  { method: 'post', path: '/users', body: { username: 'u1', password: PW, email: { x: 1 } } },
  { method: 'post', path: '/users', body: { username: 'u1', password: PW, email: 42 } },
  { method: 'post', path: '/users', body: { username: 'u1', password: PW, realname: ['x'] } },
  { method: 'post', path: '/users', body: { username: 'u1', password: PW, comment: {} } },
  { method: 'post', path: '/users', body: { password: PW } },
  { method: 'post', path: '/users', body: { username: 'u1', password: PW, email: 'x'.repeat(100_000) } },
  { method: 'put', path: () => `/users/${ids.dev}`, body: { email: {} } },
  { method: 'put', path: () => `/users/${ids.dev}`, body: { email: 5 } },
  { method: 'put', path: () => `/users/${ids.dev}`, body: { realname: null } },
  { method: 'put', path: () => `/users/${ids.dev}`, body: [] },
  { method: 'put', path: () => `/users/${ids.dev}/password`, body: { new_password: 123 } },
  { method: 'put', path: () => `/users/${ids.dev}/password`, body: { new_password: ['x'] } },
  { method: 'put', path: () => `/users/${ids.dev}/password`, body: { old_password: {}, new_password: 'Another1!pw' } },
  { method: 'put', path: () => `/users/${ids.dev}/password`, body: {} },
  { method: 'put', path: () => `/users/${ids.dev}/sysadmin`, body: { sysadmin_flag: 'yes' } },
  { method: 'put', path: () => `/users/${ids.dev}/sysadmin`, body: { sysadmin_flag: 1 } },
  { method: 'put', path: () => `/users/${ids.dev}/sysadmin`, body: {} },
  // personal tokens
  { method: 'post', path: '/users/current/tokens', who: 'dev', body: { name: 5 } },
  { method: 'post', path: '/users/current/tokens', who: 'dev', body: { name: {} } },
  { method: 'post', path: '/users/current/tokens', who: 'dev', body: { name: null } },
  { method: 'post', path: '/users/current/tokens', who: 'dev', body: { name: 't', duration_days: '5' } },
  { method: 'post', path: '/users/current/tokens', who: 'dev', body: { name: 't', duration_days: 1.5 } },
  { method: 'post', path: '/users/current/tokens', who: 'dev', body: { name: 't', duration_days: 1e300 } },
  { method: 'post', path: '/users/current/tokens', who: 'dev', body: { name: 't', duration_days: 1e15 } },
  { method: 'post', path: '/users/current/tokens', who: 'dev', body: [] },
  // user groups
  { method: 'post', path: '/usergroups', body: { ldap_group_dn: 5 } },
  { method: 'post', path: '/usergroups', body: { ldap_group_dn: ['cn=a,dc=x'] } },
  { method: 'post', path: '/usergroups', body: { ldap_group_dn: 'cn=a,dc=x', group_name: {} } },
  { method: 'post', path: '/usergroups', body: { ldap_group_dn: 'cn=a,dc=x', group_type: '1' } },
  { method: 'put', path: () => `/usergroups/${ids.group}`, body: { group_name: 5 } },
  { method: 'put', path: () => `/usergroups/${ids.group}`, body: { group_name: null } },
  { method: 'get', path: '/usergroups?ldap_group_dn=a&ldap_group_dn=b' },
  { method: 'get', path: '/usergroups/search?groupname=a&groupname=b' },
  // robots
  { method: 'post', path: '/robots', body: robotBody({ name: 5 }) },
  { method: 'post', path: '/robots', body: robotBody({ name: {} }) },
  { method: 'post', path: '/robots', body: robotBody({ level: 7 }) },
  { method: 'post', path: '/robots', body: robotBody({ permissions: {} }) },
  { method: 'post', path: '/robots', body: robotBody({ permissions: [null] }) },
  { method: 'post', path: '/robots', body: robotBody({ permissions: ['x'] }) },
  { method: 'post', path: '/robots', body: robotBody({ permissions: [{ kind: 'project', namespace: 5, access: [] }] }) },
  { method: 'post', path: '/robots', body: robotBody({ permissions: [{ kind: 'project', namespace: { a: 1 }, access: [{ resource: 'repository', action: 'pull' }] }] }) },
  { method: 'post', path: '/robots', body: robotBody({}, 'x') },
  { method: 'post', path: '/robots', body: robotBody({}, [null]) },
  { method: 'post', path: '/robots', body: robotBody({}, [{ resource: {}, action: 'pull' }]) },
  { method: 'post', path: '/robots', body: robotBody({}, [{ resource: 'repository', action: 5 }]) },
  { method: 'post', path: '/robots', body: robotBody({ duration: '5' }) },
  { method: 'post', path: '/robots', body: robotBody({ duration: 1e300 }) },
  { method: 'post', path: '/robots', body: robotBody({ duration: 1e15 }) },
  { method: 'post', path: '/robots', body: robotBody({ description: {} }) },
  { method: 'post', path: '/robots', body: robotBody({ description: 5 }) },
  { method: 'post', path: '/robots', body: robotBody({ disable: 'yes' }) },
  { method: 'post', path: '/robots', body: robotBody({ secret: 12345678 }) },
  { method: 'put', path: () => `/robots/${ids.robot}`, body: { description: {} } },
  { method: 'put', path: () => `/robots/${ids.robot}`, body: { permissions: 'x' } },
  { method: 'put', path: () => `/robots/${ids.robot}`, body: { duration: 'x' } },
  { method: 'put', path: () => `/robots/${ids.robot}`, body: { disable: 'no' } },
  { method: 'patch', path: () => `/robots/${ids.robot}`, body: { secret: 5 } },
  { method: 'patch', path: () => `/robots/${ids.robot}`, body: { secret: {} } },
  { method: 'get', path: '/robots?q=Level%3Dproject,ProjectID%3Dabc' },
  { method: 'get', path: '/robots?q=Level%3Dproject,ProjectID%3D99999999999999999999' },
  // projects
  { method: 'post', path: '/projects', body: { project_name: 5 } },
  { method: 'post', path: '/projects', body: { project_name: { a: 1 } } },
  { method: 'post', path: '/projects', body: { project_name: ['x1'] } },
  { method: 'post', path: '/projects', body: {} },
  { method: 'post', path: '/projects', body: { project_name: 'x1', metadata: 'x' } },
  { method: 'post', path: '/projects', body: { project_name: 'x1', metadata: [] } },
  { method: 'post', path: '/projects', body: { project_name: 'x1', metadata: { public: true } } },
  { method: 'post', path: '/projects', body: { project_name: 'x1', metadata: { public: { a: 1 } } } },
  { method: 'post', path: '/projects', body: { project_name: 'x1', storage_limit: '10' } },
  { method: 'post', path: '/projects', body: { project_name: 'x1', storage_limit: 1e300 } },
  { method: 'post', path: '/projects', body: { project_name: 'x1', storage_limit: -2 } },
  { method: 'post', path: '/projects', body: { project_name: 'x1', public: 'yes' } },
  { method: 'put', path: '/projects/team', body: { public: 'x' } },
  { method: 'put', path: '/projects/team', body: { metadata: [] } },
  { method: 'put', path: '/projects/team', body: { metadata: { auto_scan: 5 } } },
  { method: 'put', path: '/projects/team', body: [] },
  { method: 'head', path: '/projects?project_name=a&project_name=b' },
  { method: 'get', path: '/projects?name=a&name=b' },
  { method: 'get', path: '/projects?public=a&public=b' },
  { method: 'get', path: '/projects/99999999999999999999', status: 404 },
  { method: 'get', path: '/projects/2147483648', status: 404 },
  { method: 'get', path: '/projects/%ZZ', status: [400, 404] },
  { method: 'get', path: `/projects/${'a'.repeat(5000)}`, status: [400, 404] },
  // members
  { method: 'post', path: '/projects/team/members', body: { role_id: '2', member_user: { username: 'nobody' } } },
  { method: 'post', path: '/projects/team/members', body: { role_id: 2, member_user: 'nobody' } },
  { method: 'post', path: '/projects/team/members', body: { role_id: 2, member_user: { user_id: 'x' } } },
  { method: 'post', path: '/projects/team/members', body: { role_id: 2, member_user: { user_id: 1e300 } } },
  { method: 'post', path: '/projects/team/members', body: { role_id: 2, member_user: { user_id: 99999999999 } } },
  { method: 'post', path: '/projects/team/members', body: { role_id: 2, member_user: { username: {} } } },
  { method: 'post', path: '/projects/team/members', body: { role_id: 2, member_user: { username: ['nobody'] } } },
  { method: 'post', path: '/projects/team/members', body: { role_id: 2, member_group: { ldap_group_dn: 5 } } },
  { method: 'post', path: '/projects/team/members', body: { role_id: 2, member_group: { id: 'x' } } },
  { method: 'post', path: '/projects/team/members', body: { role_id: 2, member_group: 'cn=x' } },
  { method: 'post', path: '/projects/team/members', body: { role_id: 2 } },
  { method: 'post', path: '/projects/team/members', body: { role_id: 9, member_user: { username: 'nobody' } } },
  { method: 'put', path: () => `/projects/team/members/${ids.member}`, body: { role_id: 'x' } },
  { method: 'put', path: () => `/projects/team/members/${ids.member}`, body: { role_id: null } },
  { method: 'put', path: () => `/projects/team/members/${ids.member}`, body: { role_id: 1e300 } },
  { method: 'get', path: '/projects/team/members?entityname=a&entityname=b' },
  // repositories, artifacts, tags, import, quotas, search
  { method: 'put', path: '/projects/team/repositories/app', body: { description: {} } },
  { method: 'put', path: '/projects/team/repositories/app', body: { description: 5 } },
  { method: 'get', path: '/projects/team/repositories/app%25ZZ', status: [400, 404] },
  { method: 'get', path: '/repositories?sort=a&sort=b' },
  { method: 'get', path: '/projects/team/repositories/app/artifacts?with_accessory=a&with_accessory=b' },
  { method: 'post', path: '/projects/team/repositories/app/artifacts/v1/tags', body: { name: {} } },
  { method: 'post', path: '/projects/team/repositories/app/artifacts/v1/tags', body: { name: 5 } },
  { method: 'post', path: '/projects/team/repositories/app/artifacts/v1/tags', body: { name: ['v2'] } },
  { method: 'post', path: '/projects/team/repositories/app/artifacts/v1/tags', body: {} },
  { method: 'post', path: '/projects/team/repositories/app/import?tag=a&tag=b' },
  { method: 'put', path: () => `/quotas/${ids.team}`, body: { hard: { storage: '1' } } },
  { method: 'put', path: () => `/quotas/${ids.team}`, body: { hard: 'x' } },
  { method: 'put', path: () => `/quotas/${ids.team}`, body: {} },
  { method: 'put', path: () => `/quotas/${ids.team}`, body: { hard: { storage: 1e300 } } },
  { method: 'get', path: '/search?q=a&q=b' },
  // system
  { method: 'post', path: '/ldap/ping', body: { ldap_url: 5 } },
  { method: 'post', path: '/ldap/ping', body: { ldap_url: {} } },
  { method: 'post', path: '/ldap/ping', body: { ldap_url: 'ldap://127.0.0.1:1', ldap_scope: 'x' } },
  { method: 'post', path: '/ldap/ping', body: { ldap_url: 'ldap://127.0.0.1:1', ldap_connection_timeout: 'x' } },
  { method: 'post', path: '/ldap/ping', body: { ldap_url: 'ldap://127.0.0.1:1', ldap_connection_timeout: 1e300 } },
  { method: 'post', path: '/ldap/ping', body: { ldap_url: 'ldap://127.0.0.1:1', ldap_verify_cert: 'x' } },
  { method: 'post', path: '/ldap/ping', body: { ldap_url: 'ldap://127.0.0.1:1', ldap_search_password: {} } },
  { method: 'post', path: '/ldap/ping', body: [] },
  { method: 'post', path: '/ldap/users/import', body: { ldap_uid_list: 'x' } },
  { method: 'post', path: '/ldap/users/import', body: { ldap_uid_list: [{}] } },
  { method: 'post', path: '/ldap/users/import', body: { ldap_uid_list: [] } },
  { method: 'get', path: '/ldap/users/search?username=a&username=b' },
  { method: 'get', path: '/ldap/groups/search?groupname=a&groupname=b' },
  { method: 'put', path: '/configurations', body: { ldap_url: 5 } },
  { method: 'put', path: '/configurations', body: { ldap_verify_cert: 'true' } },
  { method: 'put', path: '/configurations', body: { project_creation_restriction: {} } },
  { method: 'put', path: '/configurations', body: { ldap_scope: 'x' } },
  { method: 'put', path: '/configurations', body: { ldap_timeout: 1e300 } },
  { method: 'put', path: '/configurations', body: [] },
  { method: 'get', path: '/users/current/permissions?scope=a&scope=b' },
  { method: 'get', path: '/users/current/permissions?scope=/project/99999999999999999999', status: 404 },
  // gc
  { method: 'post', path: '/system/gc/schedule', body: { schedule: 'x' } },
  { method: 'post', path: '/system/gc/schedule', body: { schedule: { type: 5 } } },
  { method: 'post', path: '/system/gc/schedule', body: { schedule: { type: 'Custom', cron: 5 } } },
  { method: 'post', path: '/system/gc/schedule', body: { schedule: { type: 'Manual' }, parameters: { dry_run: 'yes' } } },
  { method: 'post', path: '/system/gc/schedule', body: { schedule: { type: 'Manual' }, parameters: [] } },
  { method: 'put', path: '/system/gc/schedule', body: { schedule: null } },
  { method: 'put', path: '/system/gc/schedule', body: [] },
  // malformed and deeply nested JSON
  { method: 'post', path: '/projects', body: '{"project_name":' },
  { method: 'post', path: '/projects', body: `{"project_name":"deep","metadata":${'['.repeat(5000)}${']'.repeat(5000)}}` },
  { method: 'post', path: '/users', body: `{"username":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)},"password":"${PW}"}` },
];

describe('malformed requests answer 4xx in Harbor shape, never 5xx', () => {
  test('paging: page and page_size must be positive whole numbers in range, given once', async () => {
    for (const list of LISTS) {
      for (const bad of BAD_PAGES) await check({ method: 'get', path: `${list}${list.includes('?') ? '&' : '?'}${bad}` });
      const ok = await check({ method: 'get', path: `${list}${list.includes('?') ? '&' : '?'}page=1&page_size=100`, status: 200 });
      assert.ok(Array.isArray(ok.body), list);
      await check({ method: 'get', path: `${list}${list.includes('?') ? '&' : '?'}page=9007199254740991&page_size=100`, status: [200, 400] });
    }
  });

  test("Harbor's q: bad percent-encoding and repeated q are a 400", async () => {
    for (const list of Q_LISTS) {
      await check({ method: 'get', path: `${list}?q=name%3D%25ZZ` });
      await check({ method: 'get', path: `${list}?q=name%3Da&q=name%3Db` });
      await check({ method: 'get', path: `${list}?q=name%3D~a`, status: 200 });
    }
  });

  test('ids in paths: positive whole numbers; a missing one is a 404', async () => {
    for (const [method, route, body] of ID_ROUTES) {
      for (const bad of BAD_IDS) await check({ method, path: route.replace(':id', bad), body, status: 400 });
      await check({ method, path: route.replace(':id', '9999'), body, status: 404 });
    }
  });

  test('bodies and queries of the wrong type', async () => {
    for (const c of BODIES) await check(c);
  });

  test('the server still answers', async () => {
    const ping = await t.request.get('/api/v2.0/ping');
    assert.equal(ping.status, 200);
    assert.equal(ping.text, 'Pong');
    const projects = await call('get', '/projects');
    assert.equal(projects.status, 200);
    assert.deepEqual(projects.body.map((p: { name: string }) => p.name).sort(), ['library', 'open', 'team']);
    // nothing above slipped through: no user, project, tag or robot was made by a refused request
    assert.deepEqual((await call('get', '/users?page_size=100')).body.map((u: { username: string }) => u.username).sort(), ['admin', 'dev', 'nobody']);
    assert.equal((await call('get', '/robots')).body.length, 1);
    const dev = await call('get', `/users/${ids.dev}`);
    assert.equal(dev.body.email, 'dev@example.com');
    assert.equal(dev.body.sysadmin_flag, false);
  });
});

describe('what Harbor clients and the UI send keeps working', () => {
  test('the shapes the UI posts are accepted', async () => {
    await check({ method: 'put', path: () => `/users/${ids.dev}`, body: { email: 'dev2@example.com', realname: 'Dev', comment: '' }, status: 200 });
    await check({ method: 'put', path: () => `/users/${ids.dev}`, body: { email: 'dev@example.com' }, status: 200 });
    await check({ method: 'post', path: '/projects', body: { project_name: 'ui1', public: false, metadata: { public: 'false' }, storage_limit: 1024 }, status: 201 });
    await check({ method: 'post', path: '/projects', body: { project_name: 'ui2', metadata: { public: 'true', auto_scan: 'false' }, storage_limit: null, registry_id: null }, status: 201 });
    await check({ method: 'put', path: '/projects/ui1', body: { metadata: { public: 'true' } }, status: 200 });
    await check({ method: 'post', path: '/projects/ui1/members', body: { role_id: 3, member_user: { username: 'nobody' } }, status: 201 });
    await check({ method: 'put', path: () => `/robots/${ids.robot}`, body: { id: ids.robot, name: 'robot$team+ci', description: 'd', level: 'project', duration: -1, disable: false, editable: true, permissions: [{ kind: 'project', namespace: 'team', access: [{ resource: 'repository', action: 'pull', effect: 'allow' }] }] }, status: 200 });
    await check({ method: 'patch', path: () => `/robots/${ids.robot}`, body: {}, status: 200 });
    await check({ method: 'post', path: '/projects/team/repositories/app/artifacts/v1/tags', body: { id: 0, name: 'v1b', immutable: false }, status: 201 });
    await check({ method: 'put', path: '/projects/team/repositories/app', body: { description: 'the app' }, status: 200 });
    await check({ method: 'put', path: () => `/quotas/${ids.team}`, body: { hard: { storage: -1 } }, status: 200 });
    await check({ method: 'put', path: '/configurations', body: { project_creation_restriction: 'adminonly', audit_log_retention_days: 30 }, status: 200 });
    await check({ method: 'put', path: '/system/gc/schedule', body: { schedule: { type: 'Custom', cron: '0 0 3 * * *' }, parameters: { delete_untagged: true, workers: 1 } }, status: 200 });
    await check({ method: 'get', path: '/users/current/permissions?scope=/project/1&relative=true', status: [200, 404] });
  });
});

describe('existence probes and small holes', () => {
  test('HEAD /projects?project_name= shows a private project only to those who can see it', async () => {
    const head = async (name: string, who: Who) => (await call('head', `/projects?project_name=${name}`, who)).status;
    for (const who of ['anon', 'nobody'] as const) assert.equal(await head('team', who), await head('no-such-project', who), who);
    assert.equal(await head('team', 'anon'), 404);
    assert.equal(await head('team', 'dev'), 200);
    assert.equal(await head('team', 'admin'), 200);
    assert.equal(await head('open', 'anon'), 200);
    assert.equal(await head('no-such-project', 'admin'), 404);
  });

  test('permissions of a private project look the same as those of a missing one to a stranger', async () => {
    const perms = async (id: number, who: Who) => {
      const r = await call('get', `/users/current/permissions?scope=/project/${id}`, who);
      return { status: r.status, body: r.body };
    };
    assert.deepEqual(await perms(ids.team, 'nobody'), await perms(99999, 'nobody'));
    const mine = await perms(ids.team, 'dev');
    assert.equal(mine.status, 200);
    assert.ok(mine.body.length > 0);
  });

  test('PUT /users/{id} of a missing user is a 404', async () => {
    await check({ method: 'put', path: '/users/9999', body: { email: 'x@example.com' }, status: 404 });
    await check({ method: 'put', path: '/users/9999/sysadmin', body: { sysadmin_flag: true }, status: 404 });
  });

  test('the LDAP ping sends the stored bind password only to the stored server', async () => {
    const secret = 'Stored-Bind-Secret-42';
    // The stored settings point at a server that is not there; only their password matters here.
    assert.equal((await call('put', '/configurations', 'admin', { ldap_url: 'ldap://127.0.0.1:9', ldap_search_dn: 'cn=reader,dc=example,dc=org', ldap_search_password: secret, ldap_base_dn: 'dc=example,dc=org' })).status, 200);
    const received: Buffer[] = [];
    const trap = net.createServer((sock) => {
      sock.on('data', (d) => {
        received.push(d);
        sock.destroy();
      });
      sock.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
    const port = (trap.address() as net.AddressInfo).port;
    try {
      const other = `ldap://127.0.0.1:${port}`;
      for (const body of [{ ldap_url: other }, { ldap_url: other, ldap_search_dn: 'cn=reader,dc=example,dc=org' }, { ldap_url: other, ldap_search_dn: 'cn=reader,dc=example,dc=org', ldap_search_password: '' }, { ldap_url: other, ldap_connection_timeout: 2 }]) {
        const res = await call('post', '/ldap/ping', 'admin', body);
        assert.ok(res.status < 500, res.text);
        assert.ok(res.status === 400 || res.body.success === false, res.text);
        assert.ok(!res.text.includes(secret));
      }
      const all = Buffer.concat(received).toString('latin1');
      assert.ok(!all.includes(secret), 'the stored bind password was sent to another server');
      // With its own password the other server is tried (and the bytes arrive there).
      const own = await call('post', '/ldap/ping', 'admin', { ldap_url: other, ldap_search_dn: 'cn=reader,dc=example,dc=org', ldap_search_password: 'typed-now', ldap_connection_timeout: 2 });
      assert.equal(own.status, 200, own.text);
      assert.equal(own.body.success, false);
      assert.ok(Buffer.concat(received).toString('latin1').includes('typed-now'));
      // Stored at the trap: another bind DN gets no stored password; the stored DN does.
      assert.equal((await call('put', '/configurations', 'admin', { ldap_url: other })).status, 200);
      received.length = 0;
      const dn = await call('post', '/ldap/ping', 'admin', { ldap_search_dn: 'cn=other,dc=example,dc=org', ldap_connection_timeout: 2 });
      assert.ok(dn.status === 400 || dn.body.success === false, dn.text);
      assert.ok(!Buffer.concat(received).toString('latin1').includes(secret), 'the stored bind password was sent with another bind DN');
      const stored = await call('post', '/ldap/ping', 'admin', { ldap_url: other, ldap_search_dn: 'cn=reader,dc=example,dc=org', ldap_connection_timeout: 2 });
      assert.equal(stored.status, 200, stored.text);
      assert.ok(Buffer.concat(received).toString('latin1').includes(secret), 'the stored settings are used as they are');
    } finally {
      await new Promise((resolve) => trap.close(resolve));
      // LDAP off again for the tests after this one.
      assert.equal((await call('put', '/configurations', 'admin', { ldap_url: '' })).status, 200);
    }
  });
});

describe('a bounded, seeded fuzz over every route of the schema table', () => {
  test('random JSON types, odd ids and odd query values never get a 5xx', async () => {
    const { ROUTES } = await import('../../src/api/schemas.ts');
    let seed = 20261206;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)];
    const VALUES: unknown[] = [null, true, false, 0, -1, 1, 2, 1.5, 1e300, -1e300, 2147483648, 9007199254740993, '', 'x', 'true', '1', '%ZZ', '../..', 'a'.repeat(300), 'cn=x,dc=y', 'team', 'dev', [], ['x'], [1, 2], {}, { a: 1 }, { public: 'true' }, [{ kind: 'project', namespace: 'team', access: [{ resource: 'repository', action: 'pull' }] }], { type: 'Manual' }, { storage: 5 }, { username: 'dev' }, { user_id: 2 }, '__proto__'];
    const QUERY = ['', 'x', '1', '0', '-1', '1e300', 'true', '%ZZ', 'name%3D%25ZZ', 'name=~a', 'Level=project,ProjectID=1', 'Level=project,ProjectID=99999999999', '/project/1', '/project/99999999999999', '__proto__=1', 'a'.repeat(3000)];
    const PATH = ['1', '2', '9999', '0', 'abc', 'team', 'library', 'open', 'app', 'v1', 'sha256:' + '0'.repeat(64), '%2E%2E', 'a%252Fb', '99999999999999', '%00', '__proto__'];
    const shape = (s: unknown) => Object.keys((s as { shape?: object } | undefined)?.shape ?? {});
    // Not the LDAP ping: its table cases above cover it, and random URLs would wait for timeouts.
    const keys = Object.keys(ROUTES).filter((k) => k !== 'post /ldap/ping') as (keyof typeof ROUTES)[];
    const fives: string[] = [];
    for (let round = 0; round < 30; round++) {
      for (const key of keys) {
        const def = ROUTES[key] as { query?: unknown; body?: unknown };
        const [method, path] = key.split(' ') as [Method, string];
        const url = path.replace(/:([a-z]+)/g, () => pick(PATH));
        const qs = shape(def.query).filter(() => rnd() < 0.4).map((k) => `${k}=${encodeURIComponent(pick(QUERY))}`).join('&');
        const body: Record<string, unknown> = {};
        for (const k of shape(def.body)) if (rnd() < 0.6) body[k] = pick(VALUES);
        let r = t.request[method](`/api/v2.0${url}${qs ? `?${qs}` : ''}`);
        const who = pick(['admin', 'dev', 'anon'] as const);
        if (auth(who)) r = r.set('Authorization', auth(who)!);
        const res = method === 'get' || method === 'head' || method === 'delete' ? await r : await r.set('Content-Type', 'application/json').send(JSON.stringify(rnd() < 0.1 ? pick(VALUES) : body));
        if (res.status >= 500) fives.push(`${res.status} ${method} ${url}?${qs} ${JSON.stringify(body)}`.slice(0, 300));
      }
    }
    assert.deepEqual(fives, []);
    assert.equal((await t.request.get('/api/v2.0/ping')).status, 200);
  });
});

describe('the OpenAPI document comes from the same schemas', () => {
  test('every route of the schema table is mounted and documented with its parameters and body', async () => {
    const { ROUTES } = await import('../../src/api/schemas.ts');
    const res = await t.request.get('/api/v2.0/openapi.json');
    assert.equal(res.status, 200);
    const doc = res.body as { paths: Record<string, Record<string, { parameters: { name: string; in: string; required: boolean; schema: Record<string, unknown> }[]; requestBody?: { content: Record<string, { schema: { properties: Record<string, { type?: string }>; required?: string[] } }> } }>> };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p.replace(/\{([A-Za-z_]+)\}/g, ':$1')}`));
    assert.deepEqual(documented.sort(), Object.keys(ROUTES).sort());
    const list = doc.paths['/projects'].get;
    const page = list.parameters.find((x) => x.name === 'page' && x.in === 'query');
    assert.ok(page && !page.required && page.schema.type === 'integer' && page.schema.minimum === 1 && page.schema.default === 1);
    assert.ok(list.parameters.some((x) => x.name === 'q'));
    const user = doc.paths['/users/{id}'].put;
    assert.ok(user.parameters.some((x) => x.name === 'id' && x.in === 'path' && x.required));
    const body = user.requestBody!.content['application/json'].schema;
    assert.equal(body.properties.email.type, 'string');
    const create = doc.paths['/projects'].post.requestBody!.content['application/json'].schema;
    assert.deepEqual(create.required, ['project_name']);
    const members = doc.paths['/projects/{p}/members'].post.requestBody!.content['application/json'].schema;
    assert.equal(members.properties.role_id.type, 'integer');
  });
});
