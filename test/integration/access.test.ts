// Projects, roles, the token service and the management API, end to end over HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';

let t: TestApp;
const PW = 'Passw0rd!x';
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

async function api(method: 'get' | 'post' | 'put' | 'delete' | 'patch', path: string, auth: string | null, body?: object) {
  let r = t.request[method](`/api/v2.0${path}`);
  if (auth) r = r.set('Authorization', auth);
  return body ? r.send(body) : r;
}

async function token(auth: string | null, scope: string) {
  let r = t.request.get(`/service/token?service=berth-registry&scope=${encodeURIComponent(scope)}`);
  if (auth) r = r.set('Authorization', auth);
  const res = await r;
  return res;
}

/** Pushes a one-layer image with the given Authorization; returns the status of the manifest PUT (or the first failure). */
async function pushImage(repo: string, tag: string, auth: string | null): Promise<number> {
  const layer = Buffer.from(`layer of ${repo}:${tag}`);
  const cfg = Buffer.from(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":"${repo}"}`);
  for (const b of [layer, cfg]) {
    let r = t.request.post(`/v2/${repo}/blobs/uploads/?digest=${sha(b)}`).set('Content-Type', 'application/octet-stream');
    if (auth) r = r.set('Authorization', auth);
    const res = await r.send(b);
    if (res.status !== 201) return res.status;
  }
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(cfg), size: cfg.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }] });
  let r = t.request.put(`/v2/${repo}/manifests/${tag}`).set('Content-Type', 'application/vnd.oci.image.manifest.v1+json');
  if (auth) r = r.set('Authorization', auth);
  return (await r.send(manifest)).status;
}

async function status(method: 'get' | 'delete' | 'head', path: string, auth: string | null) {
  let r = t.request[method](path);
  if (auth) r = r.set('Authorization', auth);
  return (await r).status;
}

const admin = () => t.adminAuth;
const users = ['padmin', 'dev', 'guest', 'maint', 'lguest', 'nobody'] as const;
const roleOf: Record<string, number | null> = { padmin: 1, dev: 2, guest: 3, maint: 4, lguest: 5, nobody: null };

before(async () => {
  t = await makeApp({}, REAL_ACCESS);
  for (const u of users) assert.equal((await api('post', '/users', admin(), { username: u, password: PW, email: `${u}@example.com`, realname: u })).status, 201);
  for (const [name, pub] of [['priv', false], ['pub', true]] as const) {
    assert.equal((await api('post', '/projects', admin(), { project_name: name, metadata: { public: String(pub) } })).status, 201);
    for (const u of users) {
      const role = roleOf[u];
      if (role) assert.equal((await api('post', `/projects/${name}/members`, admin(), { role_id: role, member_user: { username: u } })).status, 201);
    }
    assert.equal(await pushImage(`${name}/seed`, 'v1', admin()), 201);
  }
});
after(async () => {
  await t.close();
});

describe('token service', () => {
  test('/v2/ challenges with a Bearer realm and service', async () => {
    const res = await t.request.get('/v2/');
    assert.equal(res.status, 401);
    assert.match(res.headers['www-authenticate'], /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/service\/token",service="berth-registry"$/);
    const m = await t.request.get('/v2/priv/seed/manifests/v1');
    assert.match(m.headers['www-authenticate'], /scope="repository:priv\/seed:pull"/);
  });

  test('tokens are ES256 with a kid, the right issuer/audience, short expiry, and narrowed access', async () => {
    const res = await token(basic('dev', PW), 'repository:priv/app:pull,push,delete');
    assert.equal(res.status, 200);
    assert.equal(res.body.token, res.body.access_token);
    assert.ok(res.body.expires_in >= 60 && res.body.expires_in <= 3600);
    const decoded = jwt.decode(res.body.token, { complete: true })!;
    assert.equal(decoded.header.alg, 'ES256');
    assert.match(String(decoded.header.kid), /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    const p = decoded.payload as jwt.JwtPayload;
    assert.equal(p.iss, 'berth-token-issuer');
    assert.equal(p.aud, 'berth-registry');
    assert.equal(p.sub, 'dev');
    assert.deepEqual(p.access, [{ type: 'repository', name: 'priv/app', actions: ['pull', 'push'] }]);
  });

  test('the token service answers GET only, with Harbor-shaped errors', async () => {
    const res = await t.request.post('/service/token?service=berth-registry').set('Authorization', basic('dev', PW));
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'GET, HEAD');
    assert.equal(res.body.errors[0].code, 'METHOD_NOT_ALLOWED');
    const other = await t.request.get('/service/token?service=someone-else');
    assert.equal(other.status, 400);
    assert.equal(other.body.errors[0].code, 'BAD_REQUEST');
    const bad = await t.request.get('/service/token?service=berth-registry').set('Authorization', basic('dev', 'wrong-password'));
    assert.equal(bad.status, 401);
    assert.equal(bad.body.errors[0].code, 'UNAUTHORIZED');
  });

  test('the same principal asking again for the same access within a minute gets the same token', async () => {
    const a = await token(basic('dev', PW), 'repository:priv/app:pull');
    const b = await token(basic('dev', PW), 'repository:priv/app:pull');
    assert.equal(b.body.token, a.body.token);
    assert.ok(b.body.expires_in <= a.body.expires_in);
    assert.equal(b.body.issued_at, a.body.issued_at);
    // other access, or another principal: another token
    assert.notEqual((await token(basic('dev', PW), 'repository:priv/app:pull,push')).body.token, a.body.token);
    assert.notEqual((await token(null, 'repository:priv/app:pull')).body.token, a.body.token);
  });

  test('anonymous tokens: public pull only, nothing on private projects (no error)', async () => {
    const pub = await token(null, 'repository:pub/seed:pull,push');
    assert.deepEqual((jwt.decode(pub.body.token) as jwt.JwtPayload).access, [{ type: 'repository', name: 'pub/seed', actions: ['pull'] }]);
    const priv = await token(null, 'repository:priv/seed:pull');
    assert.equal(priv.status, 200);
    assert.deepEqual((jwt.decode(priv.body.token) as jwt.JwtPayload).access, [{ type: 'repository', name: 'priv/seed', actions: [] }]);
  });

  test('wrong password and unknown user get the same 401', async () => {
    const a = await token(basic('dev', 'wrong-password'), 'repository:priv/seed:pull');
    const b = await token(basic('ghost-user', 'wrong-password'), 'repository:priv/seed:pull');
    assert.equal(a.status, 401);
    assert.equal(b.status, 401);
    assert.deepEqual(a.body, b.body);
  });

  test('a token is accepted only with its scope; forged, other-algorithm and expired tokens are refused', async () => {
    const tok = (await token(basic('guest', PW), 'repository:priv/seed:pull')).body.token;
    assert.equal(await status('get', '/v2/priv/seed/manifests/v1', `Bearer ${tok}`), 200);
    const other = await t.request.get('/v2/pub/seed/manifests/v1').set('Authorization', `Bearer ${tok}`);
    assert.equal(other.status, 401);
    assert.match(other.headers['www-authenticate'], /error="insufficient_scope"/);
    const claims = jwt.decode(tok) as jwt.JwtPayload;
    const hs = jwt.sign({ ...claims }, 'secret', { algorithm: 'HS256' });
    assert.equal(await status('get', '/v2/priv/seed/manifests/v1', `Bearer ${hs}`), 401);
    const none = jwt.sign({ ...claims }, '', { algorithm: 'none' });
    assert.equal(await status('get', '/v2/priv/seed/manifests/v1', `Bearer ${none}`), 401);
    const tampered = tok.split('.');
    tampered[1] = Buffer.from(JSON.stringify({ ...claims, access: [{ type: 'repository', name: 'priv/seed', actions: ['pull', 'push', 'delete'] }] })).toString('base64url');
    assert.equal(await status('delete', '/v2/priv/seed/manifests/v1', `Bearer ${tampered.join('.')}`), 401);
  });

  test('offline_token=true (docker login) works', async () => {
    const res = await t.request.get('/service/token?account=dev&client_id=docker&offline_token=true&service=berth-registry').set('Authorization', basic('dev', PW));
    assert.equal(res.status, 200);
    assert.ok(res.body.token);
  });
});

describe('role matrix: role × action × public/private × anonymous, through real tokens', () => {
  const principals = [...users, 'anonymous', 'admin'] as const;
  for (const proj of ['priv', 'pub'] as const) {
    for (const who of principals) {
      test(`${who} on ${proj}`, async () => {
        const creds = who === 'anonymous' ? null : who === 'admin' ? admin() : basic(who, PW);
        const role = who === 'admin' ? 1 : who === 'anonymous' ? null : roleOf[who];
        const canPull = who === 'admin' || role !== null || proj === 'pub';
        const canPush = who === 'admin' || role === 1 || role === 2 || role === 4;
        const canDelete = who === 'admin' || role === 1 || role === 4;
        const repo = `${proj}/m-${who}`;
        const tk = await token(creds, `repository:${repo}:pull,push,delete repository:${proj}/seed:pull`);
        assert.equal(tk.status, 200);
        const access = (jwt.decode(tk.body.token) as jwt.JwtPayload).access as { name: string; actions: string[] }[];
        const mine = access.find((a) => a.name === repo)!;
        assert.deepEqual(new Set(mine.actions), new Set([canPull && 'pull', canPush && 'push', canDelete && 'delete'].filter(Boolean)));
        const bearer = `Bearer ${tk.body.token}`;
        // pull an existing image
        assert.equal(await status('get', `/v2/${proj}/seed/manifests/v1`, bearer), canPull ? 200 : 401);
        // push
        const pushed = await pushImage(repo, 'v1', bearer);
        assert.equal(pushed, canPush ? 201 : 401);
        if (canPush) {
          assert.equal(await status('delete', `/v2/${repo}/manifests/v1`, bearer), canDelete ? 202 : 401);
        }
        // the same with Basic straight on /v2 (robots and simple clients)
        if (creds) {
          assert.equal(await status('get', `/v2/${proj}/seed/manifests/v1`, creds), canPull ? 200 : 403);
        } else {
          assert.equal(await status('get', `/v2/${proj}/seed/manifests/v1`, null), canPull ? 200 : 401);
        }
      });
    }
  }

  test('a private repository that does not exist looks exactly like one that exists without rights', async () => {
    const a = await t.request.get('/v2/priv/seed/manifests/v1').set('Authorization', basic('nobody', PW));
    const b = await t.request.get('/v2/priv/nothing-here/manifests/v1').set('Authorization', basic('nobody', PW));
    assert.equal(a.status, b.status);
    assert.equal(a.body.errors[0].code, b.body.errors[0].code);
    const c = await t.request.get('/v2/nosuchproject/x/manifests/v1').set('Authorization', basic('nobody', PW));
    assert.equal(c.status, a.status);
  });

  test('pushing into a project that does not exist is refused, even for admins (who are told it is missing)', async () => {
    assert.equal(await pushImage('nosuchproject/app', 'v1', admin()), 404);
    assert.equal(await pushImage('nosuchproject/app', 'v1', basic('dev', PW)), 403);
  });

  test('the catalog shows only what the caller may see', async () => {
    const nobody = await t.request.get('/v2/_catalog').set('Authorization', basic('nobody', PW));
    assert.equal(nobody.status, 200);
    assert.ok(nobody.body.repositories.includes('pub/seed'));
    assert.ok(!nobody.body.repositories.includes('priv/seed'));
    const dev = await t.request.get('/v2/_catalog').set('Authorization', basic('dev', PW));
    assert.ok(dev.body.repositories.includes('priv/seed'));
  });
});

describe('groups, robots and personal tokens', () => {
  test('a robot pulls and pushes with exactly its permissions; its secret is shown once and can be refreshed', async () => {
    const created = await api('post', '/robots', basic('padmin', PW), {
      name: 'ci',
      level: 'project',
      duration: 30,
      permissions: [{ kind: 'project', namespace: 'priv', access: [{ resource: 'repository', action: 'pull' }, { resource: 'repository', action: 'push' }] }],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.name, 'robot$priv+ci');
    const secret = created.body.secret as string;
    const robot = basic('robot$priv+ci', secret);
    assert.equal(await pushImage('priv/robot-app', 'v1', robot), 201);
    assert.equal(await status('delete', '/v2/priv/robot-app/manifests/v1', robot), 403);
    assert.equal(await status('get', '/v2/pub/seed/manifests/v1', robot), 200); // public
    const got = await api('get', `/robots/${created.body.id}`, basic('padmin', PW));
    assert.equal(got.status, 200);
    assert.equal(got.body.secret, undefined);
    assert.equal((await api('get', `/robots/${created.body.id}`, basic('dev', PW))).status, 200); // Harbor: developers read robots
    assert.equal((await api('get', `/robots/${created.body.id}`, basic('lguest', PW))).status, 404);
    const refreshed = await api('patch', `/robots/${created.body.id}`, basic('padmin', PW), {});
    assert.equal(refreshed.status, 200);
    assert.equal(await status('get', '/v2/priv/seed/manifests/v1', robot), 401);
    assert.equal(await status('get', '/v2/priv/seed/manifests/v1', basic('robot$priv+ci', refreshed.body.secret)), 200);
    // developers may not create robots
    const denied = await api('post', '/robots', basic('dev', PW), { name: 'x', level: 'project', duration: -1, permissions: [{ kind: 'project', namespace: 'priv', access: [{ resource: 'repository', action: 'pull' }] }] });
    assert.equal(denied.status, 403);
  });

  test('an expired or disabled robot cannot log in', async () => {
    const created = await api('post', '/robots', admin(), { name: 'old', level: 'project', duration: 1, permissions: [{ kind: 'project', namespace: 'priv', access: [{ resource: 'repository', action: 'pull' }] }] });
    const robot = basic(created.body.name, created.body.secret);
    assert.equal(await status('get', '/v2/priv/seed/manifests/v1', robot), 200);
    await t.berth.db.robot.update({ where: { id: created.body.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    t.berth.identity.forget();
    t.berth.access.invalidate();
    assert.equal(await status('get', '/v2/priv/seed/manifests/v1', robot), 401);
  });

  test('personal access tokens work for docker login and the token service, and can be revoked', async () => {
    const created = await api('post', '/users/current/tokens', basic('dev', PW), { name: 'ci', duration_days: 30 });
    assert.equal(created.status, 201);
    const pat = created.body.token as string;
    assert.match(pat, /^berth_pat_/);
    const tk = await token(basic('dev', pat), 'repository:priv/seed:pull');
    assert.deepEqual((jwt.decode(tk.body.token) as jwt.JwtPayload).access[0].actions, ['pull']);
    assert.equal((await token(basic('guest', pat), 'repository:priv/seed:pull')).status, 401, 'a token works only for its owner');
    const list = await api('get', '/users/current/tokens', basic('dev', PW));
    assert.equal(list.body.length, 1);
    assert.equal(list.body[0].token, undefined);
    assert.equal((await api('delete', `/users/current/tokens/${created.body.id}`, basic('dev', PW))).status, 200);
    assert.equal((await token(basic('dev', pat), 'repository:priv/seed:pull')).status, 401);
  });

  test('LDAP groups as members: a user reached through a group gets the group role (union with direct)', async () => {
    const g = await api('post', '/projects/priv/members', admin(), { role_id: 4, member_group: { ldap_group_dn: 'cn=Ops, ou=groups,dc=example,dc=com', group_type: 1 } });
    assert.equal(g.status, 201, JSON.stringify(g.body));
    // simulate a directory user who logged in with that group
    const u = await t.berth.identity.upsertDirectoryUser({ dn: 'uid=olga,ou=people,dc=example,dc=com', username: 'olga', email: 'o@example.com', realname: 'Olga', groups: ['cn=ops,ou=groups,dc=example,dc=com'], admin: false });
    t.berth.access.invalidate();
    const project = (await t.berth.access.project('priv'))!;
    assert.deepEqual((await t.berth.access.grant(u, project)).roles, [4]);
    assert.deepEqual(await t.berth.access.allowedActions(u, 'priv/x', ['pull', 'push', 'delete']), ['pull', 'push', 'delete']);
    assert.deepEqual(await t.berth.access.allowedActions(u, 'pub/x', ['pull', 'push']), ['pull']);
  });
});

describe('management API', () => {
  test('projects: list with paging headers, get by name and id, private ones hidden', async () => {
    const list = await api('get', '/projects?page=1&page_size=2', admin());
    assert.equal(list.status, 200);
    assert.equal(Number(list.headers['x-total-count']), 3); // library, priv, pub
    assert.equal(list.body.length, 2);
    assert.match(list.headers.link, /rel="next"/);
    const byName = await api('get', '/projects/priv', basic('dev', PW));
    assert.equal(byName.status, 200);
    assert.equal(byName.body.current_user_role_id, 2);
    assert.equal(byName.body.metadata.public, 'false');
    assert.equal((await api('get', `/projects/${byName.body.project_id}`, basic('dev', PW))).body.name, 'priv');
    assert.equal((await api('get', '/projects/priv', basic('nobody', PW))).status, 404);
    assert.equal((await api('get', '/projects/priv', null)).status, 404);
    const anon = await api('get', '/projects', null);
    assert.deepEqual(anon.body.map((p: { name: string }) => p.name).sort(), ['library', 'pub']);
  });

  test('projects: Harbor\'s sort (name, creation_time, update_time, descending with -) and owner filter', async () => {
    const names = async (q: string, auth: string | null = admin()) => {
      const res = await api('get', `/projects?${q}`, auth);
      assert.equal(res.status, 200, q);
      return res.body.map((p: { name: string }) => p.name);
    };
    assert.deepEqual(await names('page_size=10'), ['library', 'priv', 'pub']);
    assert.deepEqual(await names('sort=-name'), ['pub', 'priv', 'library']);
    assert.deepEqual(await names('sort=-creation_time'), ['pub', 'priv', 'library']);
    assert.deepEqual(await names('sort=creation_time&page=2&page_size=1'), ['priv']);
    assert.equal((await api('put', '/projects/library', admin(), { metadata: { auto_scan: 'false' } })).status, 200);
    assert.deepEqual((await names('sort=-update_time'))[0], 'library');
    assert.deepEqual(await names('sort=-creation_time', basic('dev', PW)), ['pub', 'priv', 'library']);
    assert.deepEqual(await names('sort=bogus'), ['library', 'priv', 'pub'], 'an unknown key sorts by name');
    assert.deepEqual(await names('owner=admin'), ['priv', 'pub']); // library was made at first start, by nobody
    assert.deepEqual(await names('owner=dev'), []);
    assert.deepEqual(await names('owner=nobody-at-all'), []);
    assert.deepEqual(await names(`q=${encodeURIComponent('owner=admin')}&sort=-name`), ['pub', 'priv']);
  });

  test('projects: creation is admin-only by default; duplicates conflict; bad names are 400', async () => {
    assert.equal((await api('post', '/projects', basic('dev', PW), { project_name: 'devproj' })).status, 403);
    assert.equal((await api('post', '/projects', admin(), { project_name: 'priv' })).status, 409);
    const bad = await api('post', '/projects', admin(), { project_name: 'Bad Name' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].code, 'BAD_REQUEST');
    assert.equal((await api('put', '/configurations', admin(), { project_creation_restriction: 'everyone' })).status, 200);
    assert.equal((await api('post', '/projects', basic('dev', PW), { project_name: 'devproj' })).status, 201);
    const mine = await api('get', '/projects/devproj', basic('dev', PW));
    assert.equal(mine.body.current_user_role_id, 1);
    assert.equal((await api('delete', '/projects/devproj', basic('dev', PW))).status, 200);
    assert.equal((await api('put', '/configurations', admin(), { project_creation_restriction: 'adminonly' })).status, 200);
  });

  test('a project with repositories cannot be deleted (412)', async () => {
    assert.equal((await api('delete', '/projects/pub', admin())).status, 412);
  });

  test('members: project admins manage, guests read, limited guests see nothing', async () => {
    const list = await api('get', '/projects/priv/members', basic('guest', PW));
    assert.equal(list.status, 200);
    assert.ok(list.body.some((m: { entity_name: string; role_id: number; entity_type: string }) => m.entity_name === 'dev' && m.role_id === 2 && m.entity_type === 'u'));
    assert.equal((await api('get', '/projects/priv/members', basic('lguest', PW))).status, 403);
    assert.equal((await api('post', '/projects/priv/members', basic('maint', PW), { role_id: 3, member_user: { username: 'nobody' } })).status, 403);
    const add = await api('post', '/projects/priv/members', basic('padmin', PW), { role_id: 3, member_user: { username: 'nobody' } });
    assert.equal(add.status, 201);
    const id = add.headers.location.split('/').pop();
    assert.equal((await api('post', '/projects/priv/members', basic('padmin', PW), { role_id: 3, member_user: { username: 'nobody' } })).status, 409);
    assert.equal((await api('put', `/projects/priv/members/${id}`, basic('padmin', PW), { role_id: 2 })).status, 200);
    assert.equal(await pushImage('priv/nobody-app', 'v1', basic('nobody', PW)), 201);
    assert.equal((await api('put', `/projects/priv/members/${id}`, basic('padmin', PW), { role_id: 9 })).status, 400);
    assert.equal((await api('delete', `/projects/priv/members/${id}`, basic('padmin', PW))).status, 200);
    assert.equal(await pushImage('priv/nobody-app', 'v2', basic('nobody', PW)), 403);
  });

  test('users: admin creates and lists; weak passwords refused; users see only themselves', async () => {
    assert.equal((await api('post', '/users', admin(), { username: 'weak', password: 'short' })).status, 400);
    assert.equal((await api('post', '/users', basic('dev', PW), { username: 'x1', password: PW })).status, 403);
    const cur = await api('get', '/users/current', basic('dev', PW));
    assert.equal(cur.body.username, 'dev');
    assert.equal(cur.body.sysadmin_flag, false);
    assert.equal((await api('get', '/users', basic('dev', PW))).status, 403);
    const all = await api('get', '/users?page_size=100', admin());
    assert.ok(all.body.some((u: { username: string }) => u.username === 'admin'));
    assert.ok(all.body.every((u: Record<string, unknown>) => !('password' in u) && !('passwordHash' in u)));
  });

  test('permissions of the current user in a project', async () => {
    const p = (await api('get', '/projects/priv', admin())).body.project_id;
    const res = await api('get', `/users/current/permissions?scope=/project/${p}`, basic('dev', PW));
    assert.ok(res.body.some((x: { resource: string; action: string }) => x.resource === 'repository' && x.action === 'push'));
    assert.ok(!res.body.some((x: { resource: string; action: string }) => x.resource === 'repository' && x.action === 'delete'));
  });

  test('audit log records logins, pushes, pulls, deletes and member changes; admin only', async () => {
    await t.berth.audit.flush();
    assert.equal((await api('get', '/audit-logs', basic('dev', PW))).status, 403);
    const res = await api('get', '/audit-logs?page_size=100', admin());
    assert.equal(res.status, 200);
    const ops = new Set(res.body.map((a: { operation: string }) => a.operation));
    for (const op of ['login', 'push', 'pull', 'create']) assert.ok(ops.has(op), `has ${op}: ${[...ops].join(',')}`);
    assert.ok(res.body.some((a: { resource_type: string }) => a.resource_type === 'member'));
    const pushes = await api('get', '/audit-logs?q=operation%3Dpush', admin());
    assert.ok(pushes.body.length > 0 && pushes.body.every((a: { operation: string }) => a.operation === 'push'));
  });

  test('audit retention purges old entries', async () => {
    await t.berth.db.auditLog.create({ data: { username: 'x', operation: 'pull', resource: 'old', resourceType: 'artifact', createdAt: new Date(Date.now() - 400 * 86_400_000) } });
    const n = await t.berth.audit.purge();
    assert.ok(n >= 1);
    assert.equal(await t.berth.db.auditLog.count({ where: { resource: 'old' } }), 0);
  });

  test('configurations: admin reads and writes Harbor keys; secrets never returned; bad keys refused', async () => {
    const cfg = await api('get', '/configurations', admin());
    assert.equal(cfg.status, 200);
    assert.equal(cfg.body.auth_mode.value, 'db_auth');
    assert.equal(cfg.body.ldap_search_password, undefined);
    assert.equal((await api('put', '/configurations', admin(), { nonsense: 1 })).status, 400);
    assert.equal((await api('put', '/configurations', admin(), { ldap_scope: 7 })).status, 400);
    assert.equal((await api('get', '/configurations', basic('dev', PW))).status, 403);
  });

  test('errors are Harbor-shaped', async () => {
    const res = await api('get', '/projects/does-not-exist', admin());
    assert.equal(res.status, 404);
    assert.equal(res.body.errors[0].code, 'NOT_FOUND');
    const bad = await t.request.post('/api/v2.0/projects').set('Authorization', admin()).set('Content-Type', 'application/json').send('{bad json');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].code, 'BAD_REQUEST');
    const unauth = await api('get', '/users/current', basic('dev', 'nope'));
    assert.equal(unauth.status, 401);
    assert.equal(unauth.body.errors[0].code, 'UNAUTHORIZED');
  });

  test('repeated failed logins lock the name from that address: 429 with Retry-After, even for the right password', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await token(basic('guest', 'bad' + i), 'repository:priv/seed:pull')).status, 401);
    const locked = await token(basic('guest', PW), 'repository:priv/seed:pull');
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers['retry-after']) > 0);
    t.berth.identity.throttle.reset(); // for the rest of the suite
    assert.equal((await token(basic('guest', PW), 'repository:priv/seed:pull')).status, 200);
  });
});
