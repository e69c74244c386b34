// Real clients as directory users: a real slapd, a real Berth process with LDAP on, groups added as
// project members, then skopeo and podman logging in as LDAP users, a robot and a personal token,
// each doing what its role allows and failing at what it does not.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { missingTool } from '../helpers/tools.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { startSlapd, type Slapd } from '../helpers/slapd.ts';
import { ADMIN_PASSWORD, basic } from '../helpers/app.ts';
import { multiArchLayout, tempDir, type Layout } from '../helpers/oci-layout.ts';
import { groupDn, PASSWORDS } from '../fixtures/ldap/directory.ts';
import { run } from './exec.ts';

const skip = missingTool('skopeo', 'podman', 'slapd', 'ldapadd');

describe('directory users with real clients', { skip }, () => {
  let ldap: Slapd;
  let srv: ServerProcess;
  let image: Layout;
  let work: string;
  let env: Record<string, string>;
  const admin = basic('admin', ADMIN_PASSWORD);

  const api = async (method: string, p: string, auth: string, body?: unknown) => {
    const r = await fetch(`${srv.url}/api/v2.0${p}`, { method, headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  const copy = (user: string, password: string, repo: string) =>
    run('skopeo', ['copy', '--all', '--dest-tls-verify=false', '--dest-creds', `${user}:${password}`, `oci:${image.dir}:${image.tag}`, `docker://${srv.host}/${repo}`], { env });
  const inspect = (user: string, password: string, repo: string) => run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', `${user}:${password}`, `docker://${srv.host}/${repo}`], { env });

  before(async () => {
    work = tempDir('berth-ldap-e2e-');
    ldap = await startSlapd();
    const cfg = ldap.config({ nestedGroups: true });
    env = { REGISTRY_AUTH_FILE: path.join(work, 'auth.json') };
    fs.writeFileSync(env.REGISTRY_AUTH_FILE, '{"auths":{}}');
    [srv, image] = await Promise.all([
      startServer({
        env: {
          BERTH_LOG_LEVEL: 'warn',
          BERTH_LDAP_URL: cfg.url,
          BERTH_LDAP_SEARCH_DN: cfg.searchDn,
          BERTH_LDAP_SEARCH_PASSWORD: cfg.searchPassword,
          BERTH_LDAP_BASE_DN: cfg.baseDn,
          BERTH_LDAP_UID: cfg.uid,
          BERTH_LDAP_GROUP_BASE_DN: cfg.groupBaseDn,
          BERTH_LDAP_GROUP_ADMIN_DN: groupDn('admins'),
          BERTH_LDAP_NESTED_GROUPS: 'true',
        },
      }),
      multiArchLayout({ dir: path.join(work, 'img'), seed: `ldap-${process.pid}` }),
    ]);
    assert.equal((await api('POST', '/projects', admin, { project_name: 'team', metadata: { public: 'false' } })).status, 201);
    assert.equal((await api('POST', '/projects/team/members', admin, { role_id: 2, member_group: { ldap_group_dn: groupDn('developers'), group_type: 1 } })).status, 201);
    assert.equal((await api('POST', '/projects/team/members', admin, { role_id: 3, member_group: { ldap_group_dn: groupDn('qa'), group_type: 1 } })).status, 201);
  });

  after(async () => {
    await srv?.stop();
    await ldap?.stop();
    if (srv) fs.rmSync(srv.dataDir, { recursive: true, force: true });
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('a developer (group member) pushes; a guest pulls but cannot push; an outsider sees nothing', async () => {
    const pushed = await copy('alice', PASSWORDS.alice, 'team/app:1');
    assert.equal(pushed.code, 0, pushed.stderr);
    const guestPull = await inspect('bob', PASSWORDS.bob, 'team/app:1');
    assert.equal(guestPull.code, 0, guestPull.stderr);
    const guestPush = await copy('bob', PASSWORDS.bob, 'team/app:bob');
    assert.notEqual(guestPush.code, 0);
    const outsider = await inspect('dave', PASSWORDS.dave, 'team/app:1');
    assert.notEqual(outsider.code, 0);
    const wrong = await inspect('alice', 'not-her-password', 'team/app:1');
    assert.notEqual(wrong.code, 0);
  });

  test('a member of a nested group (platform inside developers) may push', async () => {
    const r = await copy('carol', PASSWORDS.carol, 'team/nested:1');
    assert.equal(r.code, 0, r.stderr);
  });

  test('members of the admin group are system admins', async () => {
    const me = await api('GET', '/users/current', basic('alice', PASSWORDS.alice));
    assert.equal(me.status, 200);
    assert.equal(me.body.sysadmin_flag, true);
    const bob = await api('GET', '/users/current', basic('bob', PASSWORDS.bob));
    assert.equal(bob.body.sysadmin_flag, false);
  });

  test('a personal access token replaces the directory password for skopeo', async () => {
    const created = await api('POST', '/users/current/tokens', basic('carol', PASSWORDS.carol), { name: 'ci' });
    assert.equal(created.status, 201);
    const r = await copy('carol', created.body.token, 'team/pat:1');
    assert.equal(r.code, 0, r.stderr);
  });

  test('podman logs in as a directory user and as a robot', async () => {
    const penv = {
      ...env,
      CONTAINERS_STORAGE_CONF: path.join(work, 'storage.conf'),
      CONTAINERS_CONF: path.join(work, 'containers.conf'),
    };
    fs.writeFileSync(penv.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "vfs"\nrunroot = "${work}/run"\ngraphroot = "${work}/root"\n`);
    fs.writeFileSync(penv.CONTAINERS_CONF, `[engine]\ntmp_dir = "${work}/tmp"\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n`);
    const login = await run('podman', ['login', '--tls-verify=false', '-u', 'bob', '-p', PASSWORDS.bob, srv.host], { env: penv });
    assert.equal(login.code, 0, login.stderr);
    const badLogin = await run('podman', ['login', '--tls-verify=false', '-u', 'bob', '-p', 'wrong', srv.host], { env: penv });
    assert.notEqual(badLogin.code, 0);
    const robot = await api('POST', '/robots', admin, { name: 'deployer', level: 'project', duration: -1, permissions: [{ kind: 'project', namespace: 'team', access: [{ resource: 'repository', action: 'pull' }] }] });
    assert.equal(robot.status, 201);
    const rlogin = await run('podman', ['login', '--tls-verify=false', '-u', robot.body.name, '-p', robot.body.secret, srv.host], { env: penv });
    assert.equal(rlogin.code, 0, rlogin.stderr);
    const pull = await run('podman', ['pull', '--tls-verify=false', '--arch', 'amd64', `${srv.host}/team/app:1`], { env: penv, timeoutMs: 180_000 });
    assert.equal(pull.code, 0, pull.stderr);
    const robotPush = await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `${robot.body.name}:${robot.body.secret}`, `oci:${image.dir}:${image.tag}`, `docker://${srv.host}/team/robot:1`], { env });
    assert.notEqual(robotPush.code, 0, 'a pull-only robot cannot push');
  });

  test('the audit log shows the directory users’ logins and pushes', async () => {
    // audit events are written in batches about every second: poll instead of sleeping a fixed time
    let logs = await api('GET', '/audit-logs?page_size=100', admin);
    for (let i = 0; i < 50 && !logs.body.some((l: { username: string; operation: string }) => l.username === 'alice' && l.operation === 'push'); i++) {
      await new Promise((r) => setTimeout(r, 200));
      logs = await api('GET', '/audit-logs?page_size=100', admin);
    }
    assert.equal(logs.status, 200);
    assert.ok(logs.body.some((l: { username: string; operation: string }) => l.username === 'alice' && l.operation === 'push'));
    assert.ok(logs.body.some((l: { username: string; operation: string }) => l.username === 'bob' && l.operation === 'login'));
  });
});
