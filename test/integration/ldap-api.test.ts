// The LDAP part of the management API against a real slapd: settings changed at run time,
// "test connection", user search and import, group search, and logins through the directory.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { startSlapd, type Slapd } from '../helpers/slapd.ts';
import { missingTool } from '../helpers/tools.ts';
import { groupDn, PASSWORDS } from '../fixtures/ldap/directory.ts';

const skip = missingTool('slapd', 'ldapadd');
let t: TestApp;
let ldap: Slapd;

before(async () => {
  if (skip) return;
  ldap = await startSlapd();
  t = await makeApp({}, REAL_ACCESS);
});
after(async () => {
  await t?.close();
  await ldap?.stop();
});

const api = (method: 'get' | 'post' | 'put', p: string, auth = t.adminAuth) => t.request[method](`/api/v2.0${p}`).set('Authorization', auth);

test('LDAP settings through /configurations, ping, search, import and login', { skip }, async () => {
  const cfg = ldap.config();
  // LDAP is off at first: directory users cannot log in
  assert.equal((await api('get', '/users/current', basic('alice', PASSWORDS.alice))).status, 401);
  const ping = await api('post', '/ldap/ping').send({ ldap_url: cfg.url, ldap_search_dn: cfg.searchDn, ldap_search_password: cfg.searchPassword, ldap_base_dn: cfg.baseDn, ldap_uid: 'uid', ldap_scope: 2 });
  assert.equal(ping.status, 200);
  assert.equal(ping.body.success, true, ping.body.message);
  const badPing = await api('post', '/ldap/ping').send({ ldap_url: cfg.url, ldap_search_dn: cfg.searchDn, ldap_search_password: 'wrong', ldap_base_dn: cfg.baseDn });
  assert.equal(badPing.body.success, false);
  assert.ok(!JSON.stringify(badPing.body).includes('wrong'), 'the password is not echoed');
  const dead = await api('post', '/ldap/ping').send({ ldap_url: 'ldap://127.0.0.1:1', ldap_connection_timeout: 2 });
  assert.equal(dead.body.success, false, 'a server that does not answer is not a success');

  const put = await api('put', '/configurations').send({
    ldap_url: cfg.url,
    ldap_search_dn: cfg.searchDn,
    ldap_search_password: cfg.searchPassword,
    ldap_base_dn: cfg.baseDn,
    ldap_uid: 'uid',
    ldap_group_base_dn: cfg.groupBaseDn,
    ldap_group_admin_dn: groupDn('admins'),
    ldap_nested_groups: true,
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const conf = await api('get', '/configurations');
  assert.equal(conf.body.auth_mode.value, 'ldap_auth');
  assert.equal(conf.body.ldap_url.value, cfg.url);
  assert.equal(conf.body.ldap_search_password, undefined);

  const users = await api('get', '/ldap/users/search?username=ali');
  assert.equal(users.status, 200);
  assert.ok(users.body.some((u: { username: string }) => u.username === 'alice'));
  const inj = await api('get', `/ldap/users/search?username=${encodeURIComponent('*)(uid=*')}`);
  assert.equal(inj.body.length, 0);
  const groups = await api('get', '/ldap/groups/search?groupname=develop');
  assert.ok(groups.body.some((g: { ldap_group_dn: string; group_type: number }) => g.ldap_group_dn === groupDn('developers') && g.group_type === 1));

  const imp = await api('post', '/ldap/users/import').send({ ldap_uid_list: ['bob', 'nobody-here'] });
  assert.equal(imp.status, 404);
  assert.deepEqual(imp.body.map((f: { uid: string }) => f.uid), ['nobody-here']);
  const bob = await api('get', '/users?username=bob');
  assert.equal(bob.body.length, 1);

  const me = await api('get', '/users/current', basic('alice', PASSWORDS.alice));
  assert.equal(me.status, 200);
  assert.equal(me.body.sysadmin_flag, true, 'admin group → system admin');
  assert.equal((await api('get', '/users/current', basic('alice', 'wrong'))).status, 401);

  // groups added by DN become members; a nested member (carol via platform) gets the role
  assert.equal((await api('post', '/projects').send({ project_name: 'dir', metadata: { public: 'false' } })).status, 201);
  assert.equal((await api('post', '/projects/dir/members').send({ role_id: 2, member_group: { ldap_group_dn: groupDn('developers'), group_type: 1 } })).status, 201);
  const members = await api('get', '/projects/dir/members');
  assert.ok(members.body.some((m: { entity_name: string; entity_type: string }) => m.entity_name === 'developers' && m.entity_type === 'g'));
  const tok = await t.request.get('/service/token?service=berth-registry&scope=repository:dir/app:pull,push').set('Authorization', basic('carol', PASSWORDS.carol));
  assert.equal(tok.status, 200);
  const access = JSON.parse(Buffer.from(tok.body.token.split('.')[1], 'base64url').toString()).access;
  assert.deepEqual(access[0].actions, ['pull', 'push']);
  // a directory user added by name is imported on the fly
  assert.equal((await api('post', '/projects/dir/members').send({ role_id: 3, member_user: { username: 'hank' } })).status, 201);

  // leaving the directory's admin group takes the admin right away at the next login
  ldap.modify(`dn: ${groupDn('admins')}\nchangetype: modify\nadd: member\nmember: uid=bob,ou=people,dc=example,dc=com\n-\ndelete: member\nmember: uid=alice,ou=people,dc=example,dc=com\n`);
  t.berth.identity.forget(); // as if the 60 s credential cache had expired
  const again = await api('get', '/users/current', basic('alice', PASSWORDS.alice));
  assert.equal(again.status, 200);
  assert.equal(again.body.sysadmin_flag, false);
  assert.equal((await api('get', '/configurations', basic('alice', PASSWORDS.alice))).status, 403);
});
