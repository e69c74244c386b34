// Issue 13: nobody hands on rights it does not hold. Robots (and users) create robots and add members
// only within their own rights; a robot never resets another robot's secret; project admins cannot be
// removed or demoted by anyone below them, and a project keeps at least one. Driven over HTTP like real
// clients: Basic auth with `robot$…` names and secrets.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import type { Principal } from '../../src/access/principal.ts';
import { RobotsService } from '../../src/services/robots.ts';
import { RobotStore } from '../../src/db/robot-store.ts';

let t: TestApp;
const PW = 'Passw0rd!x';
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

type Access = { resource: string; action: string }[];

async function api(method: 'get' | 'post' | 'put' | 'delete' | 'patch', path: string, auth: string | null, body?: unknown) {
  let r = t.request[method](`/api/v2.0${path}`);
  if (auth) r = r.set('Authorization', auth);
  return body !== undefined ? r.send(body as object) : r;
}

/** Pushes a one-layer image; returns the status of the manifest PUT (or the first failure). */
async function pushImage(repo: string, tag: string, auth: string): Promise<number> {
  const layer = Buffer.from(`layer of ${repo}:${tag}`);
  const cfg = Buffer.from(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":"${repo}"}`);
  for (const b of [layer, cfg]) {
    const res = await t.request.post(`/v2/${repo}/blobs/uploads/?digest=${sha(b)}`).set('Content-Type', 'application/octet-stream').set('Authorization', auth).send(b);
    if (res.status !== 201) return res.status;
  }
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(cfg), size: cfg.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }] });
  return (await t.request.put(`/v2/${repo}/manifests/${tag}`).set('Content-Type', 'application/vnd.oci.image.manifest.v1+json').set('Authorization', auth).send(manifest)).status;
}

const pull = async (auth: string) => (await t.request.get('/v2/team/seed/manifests/v1').set('Authorization', auth)).status;
const a = (...pairs: string[]): Access => pairs.map((p) => ({ resource: p.split(':')[0], action: p.split(':')[1] }));
const robotBody = (name: string, access: Access, extra: Record<string, unknown> = {}) => ({ name, level: 'project', duration: 30, permissions: [{ kind: 'project', namespace: 'team', access }], ...extra });

/** Creates a project robot as `by` and returns its id, name and Basic credentials. */
async function robot(by: string, name: string, access: Access, extra: Record<string, unknown> = {}) {
  const res = await api('post', '/robots', by, robotBody(name, access, extra));
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { id: res.body.id as number, name: res.body.name as string, secret: res.body.secret as string, auth: basic(res.body.name, res.body.secret) };
}

async function memberId(project: string, username: string): Promise<number> {
  const list = await api('get', `/projects/${project}/members`, t.adminAuth);
  const m = list.body.find((x: { entity_name: string }) => x.entity_name === username);
  assert.ok(m, `${username} is a member of ${project}`);
  return m.id;
}

const admin = () => t.adminAuth;
const padmin = () => basic('padmin', PW);

before(async () => {
  t = await makeApp({}, REAL_ACCESS);
  for (const u of ['padmin', 'padmin2', 'maint', 'dev', 'stranger']) assert.equal((await api('post', '/users', admin(), { username: u, password: PW, email: `${u}@example.com`, realname: u })).status, 201);
  for (const p of ['team', 'other']) assert.equal((await api('post', '/projects', admin(), { project_name: p, metadata: { public: 'false' } })).status, 201);
  for (const [u, role] of [['padmin', 1], ['maint', 4], ['dev', 2]] as const) assert.equal((await api('post', '/projects/team/members', admin(), { role_id: role, member_user: { username: u } })).status, 201);
  assert.equal(await pushImage('team/seed', 'v1', admin()), 201);
});
after(async () => {
  await t.close();
});

describe('robots are not users', () => {
  // Runs first, so the robot gets id 1, the id of the built-in admin.
  test('a robot cannot delete the personal token of the user who shares its id', async () => {
    const tok = await api('post', '/users/current/tokens', admin(), { name: 'admin-ci', duration_days: 30 });
    assert.equal(tok.status, 201);
    const r = await robot(admin(), 'first', a('repository:pull'));
    const admins = await api('get', '/users/search?username=admin', admin());
    assert.equal(r.id, admins.body.find((u: { username: string }) => u.username === 'admin').user_id, 'the robot shares the admin\'s id');
    assert.equal((await api('delete', `/users/current/tokens/${tok.body.id}`, r.auth)).status, 403);
    assert.equal((await api('get', '/users/current/tokens', admin())).body.length, 1, 'the admin keeps its token');
  });
});

describe('what a robot sees', () => {
  test('a robot lists a project\'s repositories only where it may read the project or its repositories', async () => {
    const names = async (auth: string) => ((await api('get', '/repositories', auth)).body as { name: string }[]).map((r) => r.name);
    const blind = await robot(admin(), 'blind', a('member:read', 'robot:create'));
    assert.deepEqual(await names(blind.auth), []);
    const reader = await robot(admin(), 'reader', a('repository:pull'));
    assert.ok((await names(reader.auth)).includes('team/seed'));
    assert.equal(await pull(reader.auth), 200);
  });
});

describe('creating robots: a creator grants only what it holds', () => {
  test('a robot with only robot:create cannot make a robot with repository delete and member create (the attack in issue 13)', async () => {
    const maker = await robot(admin(), 'maker', a('project:read', 'robot:create'));
    const res = await api('post', '/robots', maker.auth, robotBody('escalated', a('project:read', 'repository:delete', 'member:create')));
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.match(JSON.stringify(res.body.errors), /repository:delete/);
    // nothing was made: the stranger-admin second step has no robot to run as
    assert.equal((await api('get', '/robots?q=Level%3Dproject', admin())).body.some((r: { name: string }) => r.name === 'robot$team+escalated'), false);
    // within its own rights it may (Harbor lets robots with robot:create make robots), and not outlive itself
    assert.equal((await api('post', '/robots', maker.auth, robotBody('child', a('project:read'), { duration: 10 }))).status, 201);
    assert.equal((await api('post', '/robots', maker.auth, robotBody('forever', a('project:read'), { duration: -1 }))).status, 403);
    assert.equal((await api('post', '/robots', maker.auth, robotBody('longer', a('project:read'), { duration: 60 }))).status, 403);
    assert.equal((await api('post', '/robots', maker.auth, robotBody('shorter', a('project:read'), { duration: 10 }))).status, 201);
    // and never a system robot, nor one that covers every project
    assert.equal((await api('post', '/robots', maker.auth, { name: 'sys', level: 'system', duration: 10, permissions: [{ kind: 'project', namespace: '*', access: a('project:read') }] })).status, 403);
  });

  test('a robot creating robots cannot reach into a project it holds nothing in, nor learn whether it exists', async () => {
    const maker = await robot(admin(), 'maker2', a('project:read', 'robot:create'));
    const other = await api('post', '/robots', maker.auth, { name: 'x', level: 'project', duration: 10, permissions: [{ kind: 'project', namespace: 'other', access: a('project:read') }] });
    const missing = await api('post', '/robots', maker.auth, { name: 'x', level: 'project', duration: 10, permissions: [{ kind: 'project', namespace: 'nosuchproject', access: a('project:read') }] });
    assert.equal(other.status, 404);
    assert.equal(missing.status, 404);
    assert.equal(other.body.errors[0].message.replace('other', 'P'), missing.body.errors[0].message.replace('nosuchproject', 'P'));
  });

  test('unknown resources and actions, and rights robots are never given, are a 400', async () => {
    const bad: unknown[] = [
      a('everything:create'),
      a('repository:own'),
      a('robot:update'), // Harbor gives robots no robot:update: they can neither edit robots nor reset secrets
      a('project:delete'),
      a('project:update'),
      [{ resource: 'repository', action: 'pull', effect: 7 }],
      [{ resource: ['repository'], action: 'pull' }],
      [],
    ];
    for (const access of bad) {
      const res = await api('post', '/robots', admin(), { name: 'bad', level: 'project', duration: 10, permissions: [{ kind: 'project', namespace: 'team', access }] });
      assert.equal(res.status, 400, `${JSON.stringify(access)}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    for (const body of [{ name: ['ci'], level: 'project', permissions: [{ kind: 'project', namespace: 'team', access: a('repository:pull') }] }, { name: 'ci2', description: { x: 1 }, level: 'project', permissions: [{ kind: 'project', namespace: 'team', access: a('repository:pull') }] }, { name: 'ci3', level: 'project', duration: 1e300, permissions: [{ kind: 'project', namespace: 'team', access: a('repository:pull') }] }, { name: 'ci4', level: 'project', secret: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], permissions: [{ kind: 'project', namespace: 'team', access: a('repository:pull') }] }]) {
      const res = await api('post', '/robots', admin(), body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.status} ${JSON.stringify(res.body)}`);
    }
  });

  test('positive: a project admin makes a pull/push robot that pushes and pulls; the system admin makes anything', async () => {
    const ci = await robot(padmin(), 'ci', a('repository:pull', 'repository:push'));
    assert.equal(await pushImage('team/ci-app', 'v1', ci.auth), 201);
    assert.equal(await pull(ci.auth), 200);
    assert.equal((await t.request.delete('/v2/team/ci-app/manifests/v1').set('Authorization', ci.auth)).status, 403);
    const refreshed = await api('patch', `/robots/${ci.id}`, padmin(), {});
    assert.equal(refreshed.status, 200);
    assert.equal(await pull(basic(ci.name, refreshed.body.secret)), 200);
    assert.equal((await api('put', `/robots/${ci.id}`, padmin(), { description: 'ci', permissions: [{ kind: 'project', namespace: 'team', access: a('repository:pull') }] })).status, 200);
    const sys = await api('post', '/robots', admin(), { name: 'everywhere', level: 'system', duration: -1, permissions: [{ kind: 'project', namespace: '*', access: a('repository:pull', 'repository:push', 'member:create', 'robot:create') }] });
    assert.equal(sys.status, 201, JSON.stringify(sys.body));
    assert.equal(await pull(basic(sys.body.name, sys.body.secret)), 200);
    assert.equal((await api('patch', `/robots/${sys.body.id}`, admin(), { secret: 'N3wSecretValue' })).status, 200);
    assert.equal(await pull(basic(sys.body.name, 'N3wSecretValue')), 200);
  });

  test('a project robot stays in its project: its permissions cannot be moved to another namespace', async () => {
    const r = await robot(admin(), 'stay', a('repository:pull'));
    const res = await api('put', `/robots/${r.id}`, admin(), { permissions: [{ kind: 'project', namespace: 'other', access: a('repository:pull') }] });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal((await api('get', `/robots/${r.id}`, admin())).body.permissions[0].namespace, 'team');
  });
});

describe('changing robots: never above your own rights, never another robot\'s secret', () => {
  /** A robot made before this check existed, holding robot:update (which can no longer be granted). */
  async function legacyRobot(name: string, access: Access) {
    const r = await robot(admin(), name, a('project:read'));
    await t.berth.db.robot.update({ where: { id: r.id }, data: { permissions: JSON.stringify([{ kind: 'project', namespace: 'team', access }]) } });
    t.berth.access.invalidate();
    t.berth.identity.forget();
    return r;
  }

  test('a robot with robot:update cannot reset another robot\'s secret and take it over (the attack in issue 13)', async () => {
    const victim = await robot(admin(), 'victim', a('repository:pull', 'repository:push', 'repository:delete'));
    const weaker = await robot(admin(), 'weaker', a('project:read'));
    const attacker = await legacyRobot('attacker', a('project:read', 'robot:read', 'robot:list', 'robot:update'));
    for (const target of [victim, weaker, attacker]) {
      const res = await api('patch', `/robots/${target.id}`, attacker.auth, { secret: 'Tak3nOverSecret' });
      assert.ok(res.status === 403 || res.status === 404, `${target.name}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    assert.equal(await pull(victim.auth), 200, 'the victim keeps its secret');
    assert.equal(await pull(basic(victim.name, 'Tak3nOverSecret')), 401);
    // nor edit a robot, its own included
    for (const [target, body] of [[victim, { disable: true }], [attacker, { permissions: [{ kind: 'project', namespace: 'team', access: a('project:read', 'repository:delete') }] }]] as const) {
      const res = await api('put', `/robots/${target.id}`, attacker.auth, body);
      assert.ok(res.status === 403 || res.status === 404, `${target.name}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    assert.equal(await pull(victim.auth), 200, 'the victim is still enabled');
    // the service refuses too, whatever a route lets through: robots never reset secrets, and never
    // change a robot holding more than they do
    const robots = new RobotsService({ robots: new RobotStore(t.berth.db), access: t.berth.access, forgetCredentials: () => t.berth.identity.forget() });
    const actor: Principal = { kind: 'robot', id: attacker.id, name: attacker.name, sysadmin: false };
    for (const target of [victim, attacker]) await assert.rejects(robots.refreshSecret(actor, (await robots.get(target.id))!, 'Tak3nOverSecret'), { status: 403 });
    await assert.rejects(robots.update(actor, (await robots.get(victim.id))!, { disable: true }), { status: 403 });
    assert.equal(await pull(victim.auth), 200);
  });

  test('a robot with robot:delete cannot delete a robot with more rights than its own', async () => {
    const strong = await robot(admin(), 'strong', a('repository:pull', 'repository:push'));
    const weak = await robot(admin(), 'weak', a('project:read'));
    const deleter = await robot(admin(), 'deleter', a('project:read', 'robot:read', 'robot:delete'));
    assert.equal((await api('delete', `/robots/${strong.id}`, deleter.auth)).status, 403);
    assert.equal(await pull(strong.auth), 200);
    assert.equal((await api('delete', `/robots/${weak.id}`, deleter.auth)).status, 200);
  });
});

describe('members: a role is granted only by someone who holds all of it', () => {
  test('a robot with member:create cannot make a stranger project admin (the attack in issue 13)', async () => {
    const m = await robot(admin(), 'members', a('project:read', 'member:create', 'member:list'));
    for (const role of [1, 4, 2, 3, 5]) {
      const res = await api('post', '/projects/team/members', m.auth, { role_id: role, member_user: { username: 'stranger' } });
      assert.equal(res.status, 403, `role ${role}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    assert.equal((await api('get', '/projects/team', basic('stranger', PW))).status, 404);
    assert.equal(await pull(basic('stranger', PW)), 403);
  });

  test('a robot holding every right of a role may grant that role, and no higher', async () => {
    const lg = 'project:read configuration:read quota:read repository:read repository:list repository:pull artifact:read artifact:list artifact-addition:read tag:list accessory:list scan:read sbom:read scanner:read'.split(' ');
    const m = await robot(admin(), 'onboarder', a(...lg, 'member:create'));
    assert.equal((await api('post', '/projects/team/members', m.auth, { role_id: 3, member_user: { username: 'stranger' } })).status, 403, 'a guest also reads members, labels and robots');
    const res = await api('post', '/projects/team/members', m.auth, { role_id: 5, member_user: { username: 'stranger' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(await pull(basic('stranger', PW)), 200);
    assert.equal((await api('delete', `/projects/team/members/${res.headers.location.split('/').pop()}`, admin())).status, 200);
  });

  test('a robot with member:update or member:delete cannot demote or remove a project admin', async () => {
    const m = await robot(admin(), 'demoter', a('project:read', 'member:read', 'member:list', 'member:update', 'member:delete'));
    const id = await memberId('team', 'padmin');
    assert.equal((await api('put', `/projects/team/members/${id}`, m.auth, { role_id: 3 })).status, 403);
    assert.equal((await api('delete', `/projects/team/members/${id}`, m.auth)).status, 403);
    assert.equal((await api('get', `/projects/team/members/${id}`, admin())).body.role_id, 1);
  });

  test('a maintainer cannot add a project admin; nobody but the system admin changes their own role', async () => {
    assert.equal((await api('post', '/projects/team/members', basic('maint', PW), { role_id: 1, member_user: { username: 'stranger' } })).status, 403);
    const own = await memberId('team', 'padmin');
    assert.equal((await api('put', `/projects/team/members/${own}`, padmin(), { role_id: 2 })).status, 403);
    assert.equal((await api('get', `/projects/team/members/${own}`, admin())).body.role_id, 1);
  });

  test('a member of the wrong type is a 400, not a server error', async () => {
    for (const body of [{ role_id: 3, member_user: { user_id: '1' } }, { role_id: 3, member_user: { username: { a: 1 } } }, { role_id: 3, member_group: { id: 'x' } }, { role_id: 3, member_group: { ldap_group_dn: ['cn=x'] } }, { role_id: 3, member_user: 'stranger' }]) {
      const res = await api('post', '/projects/team/members', padmin(), body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.status} ${JSON.stringify(res.body)}`);
    }
  });

  test('a project keeps at least one project admin', async () => {
    // a project whose only project admin is padmin (the system admin who made it steps out)
    assert.equal((await api('post', '/projects', admin(), { project_name: 'solo', metadata: { public: 'false' } })).status, 201);
    assert.equal((await api('post', '/projects/solo/members', admin(), { role_id: 1, member_user: { username: 'padmin' } })).status, 201);
    assert.equal((await api('delete', `/projects/solo/members/${await memberId('solo', 'admin')}`, admin())).status, 200);
    const own = await memberId('solo', 'padmin');
    const res = await api('delete', `/projects/solo/members/${own}`, padmin());
    assert.equal(res.status, 409, JSON.stringify(res.body));
    const add = await api('post', '/projects/solo/members', padmin(), { role_id: 1, member_user: { username: 'padmin2' } });
    assert.equal(add.status, 201);
    const second = Number(add.headers.location.split('/').pop());
    // with a second admin, one may step down or leave
    assert.equal((await api('put', `/projects/solo/members/${own}`, basic('padmin2', PW), { role_id: 2 })).status, 200);
    assert.equal((await api('put', `/projects/solo/members/${second}`, basic('padmin2', PW), { role_id: 2 })).status, 403);
    assert.equal((await api('delete', `/projects/solo/members/${second}`, basic('padmin2', PW))).status, 409);
    // the system admin can do everything
    assert.equal((await api('put', `/projects/solo/members/${own}`, admin(), { role_id: 1 })).status, 200);
    assert.equal((await api('delete', `/projects/solo/members/${second}`, basic('padmin2', PW))).status, 200);
  });
});
