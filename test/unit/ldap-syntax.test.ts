// LDAP filter escaping and DN handling (pure functions; no server). Kept beside the LDAP
// integration tests because they pin what those tests rely on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnSyntaxError, escapeDnValue, escapeFilterValue, isDnUnder, normalizeDn, parseDn, rdnFilter, wrapFilter } from '../../src/lib/ldap-syntax.ts';

test('filter values are escaped per RFC 4515', () => {
  assert.equal(escapeFilterValue('*)(uid=*'), '\\2a\\29\\28uid=\\2a');
  assert.equal(escapeFilterValue('a\\b'), 'a\\5cb');
  assert.equal(escapeFilterValue('nul\0'), 'nul\\00');
  assert.equal(escapeFilterValue('ops, europe / é'), 'ops, europe / é');
});

test('configured filters may omit the outer parentheses', () => {
  assert.equal(wrapFilter('objectclass=user'), '(objectclass=user)');
  assert.equal(wrapFilter(' (objectClass=group) '), '(objectClass=group)');
  assert.equal(wrapFilter(''), '');
});

test('DNs are parsed with escapes, quotes, UTF-8 and multi-valued RDNs', () => {
  assert.deepEqual(parseDn('CN=Ops\\2C Europe, OU=Groups,DC=example'), [[{ type: 'CN', value: 'Ops, Europe' }], [{ type: 'OU', value: 'Groups' }], [{ type: 'DC', value: 'example' }]]);
  assert.deepEqual(parseDn('cn=Ren\\C3\\A9,dc=x'), [[{ type: 'cn', value: 'René' }], [{ type: 'dc', value: 'x' }]]);
  assert.deepEqual(parseDn('cn="a, b";dc=x'), [[{ type: 'cn', value: 'a, b' }], [{ type: 'dc', value: 'x' }]]);
  assert.deepEqual(parseDn('cn=a+uid=b,dc=x')[0], [{ type: 'cn', value: 'a' }, { type: 'uid', value: 'b' }]);
  assert.deepEqual(parseDn('cn=trailing\\ ,dc=x')[0], [{ type: 'cn', value: 'trailing ' }]);
  assert.deepEqual(parseDn(''), []);
  for (const bad of ['cn', 'cn=a,', '=a', 'c n=a', 'cn=a\\']) assert.throws(() => parseDn(bad), DnSyntaxError, bad);
});

test('normalised DNs compare equal however the server spells them', () => {
  const canonical = 'cn=ops\\, europe,ou=groups,dc=example,dc=com';
  for (const spelling of ['CN=Ops\\2C Europe,OU=Groups,DC=example,DC=com', 'cn=ops\\, europe, ou=groups, dc=example, dc=com', ' cn = Ops\\, Europe ,ou=Groups,dc=Example,dc=COM ', 'cn="Ops, Europe",ou=groups,dc=example,dc=com']) {
    assert.equal(normalizeDn(spelling), canonical, spelling);
  }
  assert.equal(normalizeDn(canonical), canonical, 'idempotent');
  assert.equal(normalizeDn('uid=b+cn=a,dc=x'), 'cn=a+uid=b,dc=x');
  assert.equal(escapeDnValue('#lead'), '\\#lead');
  assert.equal(escapeDnValue(' lead #x'), '\\ lead #x');
  assert.equal(escapeDnValue('trail '), 'trail\\ ');
});

test('a DN below a base is recognised by RDNs, not by string suffix', () => {
  const base = parseDn('ou=groups,dc=example,dc=com');
  assert.ok(isDnUnder(parseDn('cn=qa,OU=Groups,dc=example,dc=com'), base));
  assert.ok(isDnUnder(parseDn('ou=groups,dc=example,dc=com'), base));
  assert.ok(!isDnUnder(parseDn('cn=qa,ou=elsewhere,dc=example,dc=com'), base));
  // The escaped comma makes "ou=groups" part of the cn value: the parent is dc=example,dc=com.
  assert.ok(!isDnUnder(parseDn('cn=x\\,ou=groups,dc=example,dc=com'), base));
});

test('an RDN becomes an escaped equality filter', () => {
  assert.equal(rdnFilter(parseDn('cn=a\\2a(b),dc=x')[0]!), '(cn=a\\2a\\28b\\29)');
  assert.equal(rdnFilter(parseDn('cn=a+uid=b,dc=x')[0]!), '(&(cn=a)(uid=b))');
});
