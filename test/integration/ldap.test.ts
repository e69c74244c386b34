// The directory module against a real OpenLDAP (slapd started by test/helpers/slapd.ts; the
// directory it holds is drawn in test/fixtures/ldap/directory.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { pino } from 'pino';
import { LdapDirectory, LdapUnavailableError, MAX_NESTING } from '../../src/auth/ldap.ts';
import type { LdapConfig } from '../../src/config/index.ts';
import { missingTool } from '../helpers/tools.ts';
import { SIZE_LIMIT, startSlapd, type Slapd } from '../helpers/slapd.ts';
import { BULK_GROUPS, BULK_PARENT_MEMBERS, ELSEWHERE_DN, GROUPS_DN, PASSWORDS, READER_PASSWORD, bulkName, chainName, groupDn, userDn } from '../fixtures/ldap/directory.ts';

const skip = missingTool('slapd', 'ldapadd', 'openssl');

/** Every log line of every directory built here, checked at the end for secrets. */
const logLines: string[] = [];
const log = pino({ level: 'trace', base: undefined }, { write: (line: string) => void logLines.push(line) });

const g = (cn: string) => groupDn(cn).toLowerCase();

describe('LDAP directory against OpenLDAP', { skip }, () => {
  let s: Slapd;
  const made: LdapDirectory[] = [];
  const dir = (overrides: Partial<LdapConfig> = {}) => {
    const d = new LdapDirectory(s.config(overrides), log);
    made.push(d);
    return d;
  };

  before(async () => {
    s = await startSlapd();
  });
  after(async () => {
    await Promise.all(made.map((d) => d.close()));
    await s?.stop();
  });

  test('a login returns the entry, its profile, its groups and the admin flag', async () => {
    const u = await dir().authenticate('alice', PASSWORDS.alice!);
    assert.deepEqual(u, {
      dn: userDn('alice'),
      username: 'alice',
      email: 'alice@example.com',
      realname: 'Alice Liddell',
      // alice is also in cn=outsiders,ou=elsewhere: outside the group base DN, so not listed.
      groups: [g('admins'), g('developers')],
      admin: true,
    });
    const bob = await dir().authenticate('bob', PASSWORDS.bob!);
    assert.deepEqual(bob && { groups: bob.groups, admin: bob.admin }, { groups: [g('qa')], admin: false });
  });

  test('the login name is matched as the directory matches it, and answered in its spelling', async () => {
    const u = await dir().authenticate('ALICE', PASSWORDS.alice!);
    assert.equal(u?.username, 'alice');
  });

  test('unknown user, wrong password and empty password all give the same null', async () => {
    const d = dir();
    assert.equal(await d.authenticate('alice', 'wrong-password'), null);
    assert.equal(await d.authenticate('nobody', 'wrong-password'), null);
    assert.equal(await d.authenticate('nobody', PASSWORDS.alice!), null);
    assert.equal(await d.authenticate('alice', ''), null);
    assert.equal(await d.authenticate('', PASSWORDS.alice!), null);
    // Another user's password does not open alice.
    assert.equal(await d.authenticate('alice', PASSWORDS.bob!), null);
  });

  test('filter injection in the login name matches nobody', async () => {
    const d = dir();
    for (const name of ['*', '*)(uid=*', 'alice)(uid=*', '*)(|(uid=*', 'al*', 'alice\\', 'alice\0']) {
      assert.equal(await d.authenticate(name, PASSWORDS.alice!), null, name);
      assert.equal(await d.findUser(name), null, name);
    }
  });

  test('the user filter restricts who may log in', async () => {
    const d = dir({ filter: '(!(uid=bob))' });
    assert.equal(await d.authenticate('bob', PASSWORDS.bob!), null);
    assert.equal((await d.authenticate('alice', PASSWORDS.alice!))?.username, 'alice');
    // Harbor's unparenthesised form is accepted too.
    assert.equal(await dir({ filter: 'objectClass=groupOfNames' }).authenticate('alice', PASSWORDS.alice!), null);
  });

  test('the search scope is honoured', async () => {
    // Users sit one level below ou=people; base scope on the suffix finds nobody.
    assert.equal(await dir({ scope: 'base' }).authenticate('alice', PASSWORDS.alice!), null);
    assert.equal(await dir({ scope: 'one' }).authenticate('alice', PASSWORDS.alice!), null);
    assert.equal((await dir({ scope: 'one', baseDn: `ou=people,dc=example,dc=com` }).authenticate('alice', PASSWORDS.alice!))?.username, 'alice');
  });

  test('groups are limited to the group base DN and the group filter', async () => {
    const onlyDev = await dir({ groupFilter: '(&(objectClass=groupOfNames)(cn=dev*))' }).authenticate('alice', PASSWORDS.alice!);
    // admin comes from the membership itself, whatever the filter.
    assert.deepEqual(onlyDev && { groups: onlyDev.groups, admin: onlyDev.admin }, { groups: [g('developers')], admin: true });
    const elsewhere = await dir({ groupBaseDn: ELSEWHERE_DN }).authenticate('alice', PASSWORDS.alice!);
    assert.deepEqual(elsewhere?.groups, [`cn=outsiders,${ELSEWHERE_DN}`]);
    const none = await dir({ groupBaseDn: '' }).authenticate('alice', PASSWORDS.alice!);
    assert.deepEqual(none && { groups: none.groups, admin: none.admin }, { groups: [], admin: true });
    const noMatch = await dir({ groupFilter: '(objectClass=posixGroup)' }).findUser('alice');
    assert.deepEqual(noMatch?.groups, []);
  });

  test('nested groups are expanded only when asked', async () => {
    assert.deepEqual((await dir().authenticate('carol', PASSWORDS.carol!))?.groups, [g('platform')]);
    assert.deepEqual((await dir({ nestedGroups: true }).authenticate('carol', PASSWORDS.carol!))?.groups, [g('developers'), g('platform')]);
    // Membership through nesting makes an admin too.
    const adminByNesting = dir({ nestedGroups: true, groupAdminDn: groupDn('developers') });
    assert.equal((await adminByNesting.findUser('carol'))?.admin, true);
    assert.equal((await dir({ groupAdminDn: groupDn('developers') }).findUser('carol'))?.admin, false);
  });

  test('a membership cycle terminates', async () => {
    assert.deepEqual((await dir({ nestedGroups: true }).authenticate('erin', PASSWORDS.erin!))?.groups, [g('cycle-a'), g('cycle-b')]);
  });

  test('nesting is followed to a fixed depth', async () => {
    const u = await dir({ nestedGroups: true }).findUser('gina');
    const expected = Array.from({ length: MAX_NESTING + 1 }, (_, i) => g(chainName(i)));
    assert.deepEqual(u?.groups, expected);
  });

  test('a user in hundreds of groups logs in with all of them', async () => {
    const bulk = Array.from({ length: BULK_GROUPS }, (_, i) => g(bulkName(i)));
    assert.ok(BULK_GROUPS > SIZE_LIMIT, 'more groups than the server returns in one answer');
    const flat = await dir().authenticate('dave', PASSWORDS.dave!);
    assert.deepEqual(flat?.groups, bulk);
    const nested = await dir({ nestedGroups: true }).authenticate('dave', PASSWORDS.dave!);
    assert.ok(BULK_PARENT_MEMBERS > 0);
    assert.deepEqual(nested?.groups, [g('bulk-parent'), ...bulk]);
  });

  test('DNs with escaped characters are normalised', async () => {
    const u = await dir().authenticate('hank', PASSWORDS.hank!);
    assert.deepEqual(u?.groups, [`cn=ops\\, europe,${GROUPS_DN}`]);
    assert.equal(u?.realname, 'Hank (Ops) *Star*');
    assert.equal((await dir({ groupAdminDn: `CN=Ops\\2C Europe, OU=Groups, DC=Example, DC=Com` }).findUser('hank'))?.admin, true);
  });

  test('findUser looks up without a password', async () => {
    const d = dir();
    const u = await d.findUser('alice');
    assert.deepEqual(u, await d.authenticate('alice', PASSWORDS.alice!));
    assert.equal(await d.findUser('nobody'), null);
    assert.equal(await d.findUser(''), null);
  });

  test('searchUsers matches uid, cn and mail substrings, escaped', async () => {
    const d = dir();
    assert.deepEqual((await d.searchUsers('ali')).map((u) => u.username), ['alice', 'alicia']);
    assert.deepEqual(await d.searchUsers('Builder'), [{ dn: userDn('bob'), username: 'bob', email: 'bob@example.com', realname: 'Bob Builder' }]);
    assert.deepEqual((await d.searchUsers('dave@example')).map((u) => u.username), ['dave']);
    // Filter characters are literal: only hank's cn contains them.
    assert.deepEqual((await d.searchUsers('*')).map((u) => u.username), ['hank']);
    assert.deepEqual((await d.searchUsers('(Ops)')).map((u) => u.username), ['hank']);
    assert.deepEqual(await d.searchUsers('*)(uid=*'), []);
    assert.deepEqual(await d.searchUsers('\\'), []);
    assert.equal((await d.searchUsers('')).length, Object.keys(PASSWORDS).length);
    assert.equal((await d.searchUsers('', 3)).length, 3);
  });

  test('searchGroups finds by name substring or by DN, and pages through large answers', async () => {
    const d = dir();
    assert.deepEqual(await d.searchGroups('qa'), [{ dn: groupDn('qa'), name: 'qa' }]);
    assert.deepEqual(await d.searchGroups('CN=QA, OU=Groups, DC=example, DC=com'), [{ dn: groupDn('qa'), name: 'qa' }]);
    assert.deepEqual(await d.searchGroups('ops, eu'), [{ dn: 'cn=ops\\2C europe,ou=groups,dc=example,dc=com', name: 'ops, europe' }]);
    assert.deepEqual(await d.searchGroups(`cn=outsiders,${ELSEWHERE_DN}`), [], 'outside the group base DN');
    assert.deepEqual(await d.searchGroups(`cn=missing,${GROUPS_DN}`), []);
    assert.deepEqual(await d.searchGroups('*'), []);
    assert.deepEqual(await d.searchGroups('*)(cn=*'), []);
    // The service account gets at most SIZE_LIMIT entries per answer: 300 needs paging.
    const all = await d.searchGroups('g-', 1000);
    assert.equal(all.length, BULK_GROUPS);
    assert.equal((await d.searchGroups('g-', 7)).length, 7);
    assert.deepEqual(await dir({ groupBaseDn: '' }).searchGroups('qa'), []);
  });

  test('ping reports a working and a broken configuration without leaking the password', async () => {
    const d = dir();
    const ok = await d.ping();
    assert.equal(ok.ok, true, ok.message);
    const badPw = await d.ping({ searchPassword: 'not-the-password' });
    assert.equal(badPw.ok, false);
    assert.match(badPw.message, /invalid credentials/);
    assert.ok(!badPw.message.includes('not-the-password'));
    const badBase = await d.ping({ baseDn: 'dc=nowhere,dc=com' });
    assert.equal(badBase.ok, false);
    assert.match(badBase.message, /not found/);
    const noPw = await d.ping({ searchPassword: '' });
    assert.equal(noPw.ok, false);
    const closed = await freeClosedPort();
    const down = await d.ping({ url: `ldap://127.0.0.1:${closed}` });
    assert.equal(down.ok, false);
    assert.match(down.message, /ECONNREFUSED/);
    assert.equal((await d.ping({ url: 'http://example.com' })).ok, false);
    // A field sent as undefined keeps the configured value (a form that does not resend the password).
    assert.equal((await d.ping({ searchPassword: undefined, url: s.url })).ok, true);
    // Overrides are for the ping only.
    assert.equal((await d.findUser('alice'))?.username, 'alice');
  });

  test('a refused service account is an outage, not a failed login', async () => {
    const d = dir({ searchPassword: 'not-the-password' });
    await assert.rejects(d.authenticate('alice', PASSWORDS.alice!), LdapUnavailableError);
    await assert.rejects(d.authenticate('alice', 'wrong-password'), LdapUnavailableError);
    await assert.rejects(d.findUser('alice'), LdapUnavailableError);
    await assert.rejects(dir({ baseDn: 'dc=nowhere,dc=com' }).authenticate('alice', PASSWORDS.alice!), LdapUnavailableError);
  });

  test('ldaps:// verifies the server against the CA file', async () => {
    const withCa = dir({ url: s.ldapsUrl, caFile: s.caFile, verifyCert: true, nestedGroups: true });
    assert.deepEqual((await withCa.authenticate('carol', PASSWORDS.carol!))?.groups, [g('developers'), g('platform')]);
    assert.equal((await withCa.ping()).ok, true);
    const withoutCa = dir({ url: s.ldapsUrl, verifyCert: true });
    await assert.rejects(withoutCa.authenticate('alice', PASSWORDS.alice!), LdapUnavailableError);
    await assert.rejects(withoutCa.findUser('alice'), LdapUnavailableError);
    const ping = await withoutCa.ping();
    assert.equal(ping.ok, false);
    assert.match(ping.message, /certificate/);
    const unverified = dir({ url: s.ldapsUrl, verifyCert: false });
    assert.equal((await unverified.authenticate('alice', PASSWORDS.alice!))?.username, 'alice');
    assert.throws(() => dir({ caFile: '/nonexistent/ca.pem' }), LdapUnavailableError);
  });

  test('a server that never answers times out as unavailable', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((c) => {
      sockets.add(c);
      c.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const d = dir({ url: `ldap://127.0.0.1:${port}`, timeoutSeconds: 1 });
      await assert.rejects(d.authenticate('alice', PASSWORDS.alice!), LdapUnavailableError);
      await assert.rejects(d.searchUsers('a'), LdapUnavailableError);
    } finally {
      for (const c of sockets) c.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  test('a stopped server makes every call fail as unavailable', async () => {
    const d = dir();
    assert.equal((await d.findUser('bob'))?.username, 'bob');
    await s.stop();
    await assert.rejects(d.authenticate('alice', PASSWORDS.alice!), LdapUnavailableError);
    await assert.rejects(d.findUser('alice'), LdapUnavailableError);
    await assert.rejects(d.searchGroups('qa'), LdapUnavailableError);
    assert.equal((await d.ping()).ok, false);
  });

  test('no password ever reaches the log', () => {
    assert.ok(logLines.length > 0, 'the directory logged something');
    const secrets = [...Object.values(PASSWORDS), READER_PASSWORD, 'not-the-password', 'wrong-password'];
    for (const line of logLines) for (const secret of secrets) assert.ok(!line.includes(secret), `log line contains a secret: ${line}`);
  });
});

async function freeClosedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}
