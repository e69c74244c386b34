import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/index.ts';

test('defaults just work locally', () => {
  const c = loadConfig({});
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.port, 5000);
  assert.equal(c.dataDir, path.resolve('./data'));
  assert.equal(c.databaseUrl, `file:${path.resolve('./data/berth.db')}`);
  assert.equal(c.ldap, undefined);
  assert.equal(c.tls, undefined);
});

test('bad values name the variable', () => {
  const cases: [Record<string, string>, string][] = [
    [{ BERTH_PORT: 'eighty' }, 'BERTH_PORT'],
    [{ BERTH_PORT: '70000' }, 'BERTH_PORT'],
    [{ BERTH_EXTERNAL_URL: 'registry.example.com' }, 'BERTH_EXTERNAL_URL'],
    [{ BERTH_EXTERNAL_URL: 'ftp://x' }, 'BERTH_EXTERNAL_URL'],
    [{ BERTH_TLS_CERT: '/nonexistent.pem' }, 'BERTH_TLS_CERT'],
    [{ BERTH_ADMIN_PASSWORD: 'short' }, 'BERTH_ADMIN_PASSWORD'],
    [{ BERTH_DATABASE_URL: 'mysql://x' }, 'BERTH_DATABASE_URL'],
    [{ BERTH_LDAP_URL: 'http://x' }, 'BERTH_LDAP_URL'],
    [{ BERTH_LDAP_URL: 'ldap://x' }, 'BERTH_LDAP_BASE_DN'],
    [{ BERTH_LDAP_URL: 'ldap://x', BERTH_LDAP_BASE_DN: 'dc=x', BERTH_LDAP_SCOPE: 'deep' }, 'BERTH_LDAP_SCOPE'],
    [{ BERTH_LDAP_URL: 'ldap://x', BERTH_LDAP_BASE_DN: 'dc=x', BERTH_LDAP_VERIFY_CERT: 'maybe' }, 'BERTH_LDAP_VERIFY_CERT'],
    [{ BERTH_LOG_LEVEL: 'loud' }, 'BERTH_LOG_LEVEL'],
  ];
  for (const [env, variable] of cases) {
    assert.throws(() => loadConfig(env), (e: unknown) => e instanceof ConfigError && e.variable === variable && e.message.startsWith(variable), JSON.stringify(env));
  }
});

test('LDAP settings mirror Harbor, with AD-friendly values', () => {
  const c = loadConfig({ BERTH_LDAP_URL: 'ldaps://dc1:636', BERTH_LDAP_BASE_DN: 'dc=corp', BERTH_LDAP_UID: 'sAMAccountName', BERTH_LDAP_SCOPE: '1', BERTH_LDAP_NESTED_GROUPS: 'yes' });
  assert.equal(c.ldap?.uid, 'sAMAccountName');
  assert.equal(c.ldap?.scope, 'one');
  assert.equal(c.ldap?.nestedGroups, true);
  assert.equal(c.ldap?.groupMembershipAttribute, 'memberOf');
  assert.equal(c.ldap?.verifyCert, true);
});

test('log format: json or pretty, anything else names the variable', () => {
  assert.equal(loadConfig({ BERTH_LOG_FORMAT: 'pretty' }).logFormat, 'pretty');
  assert.equal(loadConfig({ BERTH_LOG_FORMAT: 'json' }).logFormat, 'json');
  assert.throws(() => loadConfig({ BERTH_LOG_FORMAT: 'xml' }), /BERTH_LOG_FORMAT/);
});
