// The appliance's first-boot property handling (ova/appliance): OVF environment and config-file
// parsing, validation with messages naming the property, and the files rendered from them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { isIPv6, normalizePem, PROPERTIES, validateProperties } from '../../ova/appliance/properties.ts';
import { parseConfFile, parseOvfEnvironment, redactConfFile } from '../../ova/appliance/sources.ts';
import {
  berthEnv, certNames, envLine, hostnameFiles, PATHS, renderBerthEnv, renderFirstrunEnv, renderHttp80, renderNetwork, renderSavedProperties, renderTimesyncd,
} from '../../ova/appliance/render.ts';
import { redactEnvText, scrub, secretValues } from '../../ova/appliance/redact.ts';
import { checkTlsPair, ensureCa, issueServerCert } from '../../ova/appliance/tls.ts';
import { handler } from '../../ova/appliance/http80.ts';
import { loadConfig } from '../../src/config/index.ts';
import { missingTool } from '../helpers/tools.ts';

const ENV_XML = `<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:ve="http://www.vmware.com/schema/ovfenv" oe:id="" ve:vCenterId="vm-42">
  <PlatformSection><Kind>VMware ESXi</Kind><Version>8.0.2</Version></PlatformSection>
  <PropertySection>
    <Property oe:key="hostname" oe:value="reg01.example.com"/>
    <Property oe:value="S3cr&amp;t&quot;pw'&lt;x&gt;" oe:key="admin_password"/>
    <Property oe:key="ip" oe:value=""/>
    <Property oe:key="ldap_url" oe:value="ldaps://dc1.example.com:636"/>
    <Property oe:key="ldap_base_dn" oe:value="ou=people,dc=example,dc=com"/>
    <Property oe:key="tls_cert" oe:value="line1&#10;line2"/>
  </PropertySection>
  <ve:EthernetAdapterSection><ve:Adapter ve:mac="00:50:56:aa:bb:cc" ve:network="VM Network" ve:unitNumber="7"/></ve:EthernetAdapterSection>
  <Entity oe:id="other-vm"><PropertySection><Property oe:key="hostname" oe:value="not-me"/></PropertySection></Entity>
</Environment>`;

test('OVF environment: properties of this VM, XML entities decoded, other entities ignored', () => {
  const p = parseOvfEnvironment(ENV_XML);
  assert.equal(p.hostname, 'reg01.example.com');
  assert.equal(p.admin_password, `S3cr&t"pw'<x>`);
  assert.equal(p.ip, '');
  assert.equal(p.tls_cert, 'line1\nline2');
  assert.equal(p.ldap_url, 'ldaps://dc1.example.com:636');
  assert.throws(() => parseOvfEnvironment('<html/>'), /not an OVF environment/);
});

test('config file: comments, quotes, bad lines reported; secrets blanked after use', () => {
  const text = '# c\nhostname = reg02\nadmin_password="pa ss\\"word"\nntp=\'a.example b.example\'\nnot a line\n\ntls_key=abc\n';
  const { props, errors } = parseConfFile(text);
  assert.deepEqual(props, { hostname: 'reg02', admin_password: 'pa ss"word', ntp: 'a.example b.example', tls_key: 'abc' });
  assert.deepEqual(errors, ['line 5: expected key=value']);
  const red = redactConfFile(text);
  assert.match(red, /^hostname = reg02$/m);
  assert.match(red, /^admin_password=# removed after first boot$/m);
  assert.match(red, /^tls_key=# removed after first boot$/m);
  assert.doesNotMatch(red, /pa ss|abc/);
});

test('defaults: an empty environment is a valid DHCP/HTTPS appliance with a generated certificate', () => {
  const { values, errors } = validateProperties({});
  assert.deepEqual(errors, []);
  assert.equal(values.hostname, 'berth');
  assert.equal(values.protocol, 'https');
  assert.equal(values.ldap_scope, 'sub');
  assert.match(renderNetwork(values), /DHCP=yes/);
  assert.equal(renderFirstrunEnv(values), undefined);
  assert.equal(renderTimesyncd(values), undefined);
});

test('every bad value is reported, naming the property; secrets are never echoed', () => {
  const { errors } = validateProperties({
    hostname: 'bad_host!', ip: '10.0.0.300/24', gateway: 'gw', dns: '1.1.1.1, nope', ntp: 'ntp..x',
    admin_password: 'short', external_url: 'ftp://x', protocol: 'gopher', http_port: '70000',
    tls_cert: 'not a cert', ldap_url: 'http://dc', ldap_scope: 'deep', ldap_verify_cert: 'maybe', ldap_filter: 'uid=x',
    ldap_search_dn: 'cn=svc,dc=x', console_password: 'x',
  });
  const keys = errors.map((e) => e.split(':')[0]);
  for (const k of ['hostname', 'ip', 'gateway', 'dns', 'ntp', 'admin_password', 'external_url', 'protocol', 'http_port', 'tls_cert', 'ldap_url',
    'ldap_scope', 'ldap_verify_cert', 'ldap_filter', 'ldap_base_dn', 'ldap_search_password', 'console_password']) {
    assert.ok(keys.some((x) => x.includes(k)), `an error names ${k}: ${errors.join(' | ')}`);
  }
  assert.ok(!errors.some((e) => e.includes('"short"') || e.includes('"x"')), 'password values not echoed');
  assert.match(errors.find((e) => e.startsWith('dns'))!, /nope/);
  assert.match(errors.find((e) => e.startsWith('tls_cert, tls_key'))!, /both/);
});

test('single-line properties reject line breaks and control characters', () => {
  const { errors } = validateProperties({ hostname: 'a\nb', admin_password: 'abcdefgh\nrm', ldap_base_dn: 'dc=x\u0000' });
  assert.equal(errors.filter((e) => /single line/.test(e)).length, 3, errors.join(' | '));
});

test('static network: address, gateway, DNS, search domains, NTP render for systemd', () => {
  const { values, errors, warnings } = validateProperties({
    hostname: 'Reg01.Example.com', ip: '192.0.2.10/24', gateway: '192.0.2.1', dns: '192.0.2.53,2001:db8::53', dns_search: 'example.com corp.example.com', ntp: 'ntp1.example.com, 192.0.2.123',
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, []);
  const net = renderNetwork(values);
  assert.match(net, /^Address=192\.0\.2\.10\/24$/m);
  assert.match(net, /^Gateway=192\.0\.2\.1$/m);
  assert.match(net, /^DNS=192\.0\.2\.53$/m);
  assert.match(net, /^DNS=2001:db8::53$/m);
  assert.match(net, /^Domains=example\.com corp\.example\.com$/m);
  assert.doesNotMatch(net, /DHCP/);
  assert.equal(renderTimesyncd(values), '# Written by berth-setup from the appliance properties.\n[Time]\nNTP=ntp1.example.com 192.0.2.123\n');
  const h = hostnameFiles(values);
  assert.equal(h.hostname, 'reg01\n');
  assert.match(h.hosts, /^127\.0\.1\.1\treg01\.example\.com reg01$/m);
  assert.deepEqual(certNames(values), { cn: 'reg01.example.com', dns: ['reg01.example.com', 'reg01'], ips: ['192.0.2.10'] });
  // a mismatched gateway family is an error; a gateway without a static address only a warning
  assert.match(validateProperties({ ip: '192.0.2.10/24', gateway: '2001:db8::1' }).errors.join(), /gateway: must be the same IP version/);
  assert.match(validateProperties({ gateway: '192.0.2.1' }).warnings.join(), /gateway: ignored/);
  assert.deepEqual(validateProperties({ ip: '2001:db8::10/64', gateway: '2001:db8::1' }).errors, []);
});

test('IPv6 syntax', () => {
  for (const ok of ['::1', '2001:db8::1', 'fe80::1:2:3:4', '1:2:3:4:5:6:7:8', '::ffff:192.0.2.1']) assert.ok(isIPv6(ok), ok);
  for (const bad of ['1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', 'g::1', '192.0.2.1']) assert.ok(!isIPv6(bad), bad);
});

test('Berth environment: HTTPS on 443 with the appliance cert, LDAP mapped to BERTH_LDAP_*, accepted by Berth', () => {
  const { values, errors } = validateProperties({
    ...parseOvfEnvironment(ENV_XML), tls_cert: '', external_url: 'https://registry.example.com/',
    ldap_search_dn: 'cn=svc,ou=system,dc=example,dc=com', ldap_search_password: `it's $ecret "x"`, ldap_uid: 'sAMAccountName',
    ldap_group_base_dn: 'ou=groups,dc=example,dc=com', ldap_group_admin_dn: 'cn=registry-admins,ou=groups,dc=example,dc=com', ldap_nested_groups: 'yes',
  });
  assert.deepEqual(errors, []);
  const env = berthEnv(values);
  assert.equal(env.BERTH_PORT, '443');
  assert.equal(env.BERTH_TLS_CERT, PATHS.serverCert);
  assert.equal(env.BERTH_EXTERNAL_URL, 'https://registry.example.com');
  assert.equal(env.BERTH_LDAP_URL, 'ldaps://dc1.example.com:636');
  assert.equal(env.BERTH_LDAP_UID, 'sAMAccountName');
  assert.equal(env.BERTH_LDAP_NESTED_GROUPS, 'true');
  assert.equal(env.BERTH_LDAP_SEARCH_PASSWORD, `it's $ecret "x"`);
  assert.equal(env.BERTH_ADMIN_PASSWORD, undefined, 'the admin password is not in berth.env');
  assert.match(renderFirstrunEnv(values)!, /^BERTH_ADMIN_PASSWORD=/m);
  // Berth's own configuration loader accepts the result (TLS files stubbed)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ova-env-'));
  try {
    for (const f of ['c', 'k']) fs.writeFileSync(path.join(dir, f), 'x');
    const cfg = loadConfig({ ...env, BERTH_TLS_CERT: path.join(dir, 'c'), BERTH_TLS_KEY: path.join(dir, 'k'), BERTH_DATA_DIR: dir, BERTH_ADMIN_PASSWORD: values.admin_password });
    assert.equal(cfg.port, 443);
    assert.equal(cfg.ldap?.uid, 'sAMAccountName');
    assert.equal(cfg.ldap?.nestedGroups, true);
    assert.equal(cfg.ldap?.searchPassword, `it's $ecret "x"`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // plain HTTP on a chosen port: no TLS variables
  const plain = berthEnv(validateProperties({ protocol: 'HTTP', http_port: '8080' }).values);
  assert.equal(plain.BERTH_PORT, '8080');
  assert.equal(plain.BERTH_TLS_CERT, undefined);
  assert.equal(renderHttp80(validateProperties({ protocol: 'http' }).values, true), undefined);
});

test('env file quoting follows systemd rules (single quotes literal; double quotes escape \\ " ` $)', () => {
  assert.equal(envLine('A', 'plain $x "q"'), `A='plain $x "q"'`);
  assert.equal(envLine('A', `it's $x \\ "q" \``), 'A="it\'s \\$x \\\\ \\"q\\" \\`"');
  assert.throws(() => envLine('A', 'a\nb'));
  // what a POSIX shell makes of it matches systemd for these cases
  for (const v of [`it's $HOME \\ "q" \``, 'p@ss w0rd!', `S3cr&t"pw'<x>`]) {
    const out = execFileSync('sh', ['-c', `${envLine('V', v)}; printf %s "$V"`], { encoding: 'utf8' });
    assert.equal(out, v);
  }
  const file = renderBerthEnv(validateProperties({ external_url: 'https://r.example.com' }).values);
  assert.match(file, /^BERTH_EXTERNAL_URL='https:\/\/r\.example\.com'$/m);
});

test('PEM from a one-line form field: spaces for line breaks, or base64 of the PEM', () => {
  const pem = '-----BEGIN CERTIFICATE-----\n' + 'QUJD'.repeat(30).match(/.{1,64}/g)!.join('\n') + '\n-----END CERTIFICATE-----\n';
  assert.equal(normalizePem(pem), pem);
  assert.equal(normalizePem(pem.replace(/\n/g, ' ')), pem);
  assert.equal(normalizePem(Buffer.from(pem).toString('base64')), pem);
  assert.equal(normalizePem('hello'), undefined);
  assert.equal(normalizePem('-----BEGIN CERTIFICATE----- @@@ -----END CERTIFICATE-----'), undefined);
});

test('saved properties keep no secrets and parse back to the same values', () => {
  const input = { hostname: 'reg03', ip: '192.0.2.3/24', admin_password: 'secret-pass', ldap_url: 'ldap://dc', ldap_base_dn: 'dc=x', ldap_search_dn: 'cn=a,dc=x', ldap_search_password: 'topsecret' };
  const { values } = validateProperties(input);
  const saved = renderSavedProperties(values);
  assert.doesNotMatch(saved, /secret-pass|topsecret/);
  const back = validateProperties(parseConfFile(saved).props);
  for (const k of ['hostname', 'ip', 'ldap_url', 'ldap_base_dn', 'ldap_search_dn']) assert.equal(back.values[k], values[k], k);
  assert.match(back.errors.join(), /ldap_search_password: required/, 'a missing secret is reported, not silently dropped');
});

test('support bundle redaction: secret variables and values, private keys', () => {
  const env = `BERTH_PORT='443'\nBERTH_LDAP_SEARCH_PASSWORD='hunter22'\nBERTH_ADMIN_PASSWORD="p\\"w-long"\n`;
  assert.equal(redactEnvText(env), `BERTH_PORT='443'\nBERTH_LDAP_SEARCH_PASSWORD=<redacted>\nBERTH_ADMIN_PASSWORD=<redacted>\n`);
  const secrets = secretValues(env);
  assert.deepEqual(secrets.sort(), ['hunter22', 'p"w-long']);
  const log = 'bind failed for hunter22\n-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\nok';
  assert.equal(scrub(log, secrets), 'bind failed for <redacted>\n<private key redacted>\nok');
});

test('the OVF property table is consistent', () => {
  const keys = PROPERTIES.map((p) => p.key);
  assert.equal(new Set(keys).size, keys.length);
  for (const p of PROPERTIES) {
    assert.match(p.key, /^[a-z][a-z0-9_]*$/);
    assert.ok(p.label && p.description, p.key);
    if (p.type === 'enum') assert.ok(p.values!.includes(p.default), p.key);
    if (p.default) assert.deepEqual(validateProperties({ [p.key]: p.default }).errors.filter((e) => e.startsWith(p.key)), [], p.key);
  }
});

test('generated CA and server certificate; supplied pairs are checked', { skip: missingTool('openssl') }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ova-tls-'));
  try {
    assert.equal(ensureCa(dir, 'reg01'), true);
    assert.equal(ensureCa(dir, 'reg01'), false, 'an existing CA is kept');
    const names = certNames(validateProperties({ hostname: 'reg01.example.com', ip: '192.0.2.10/24' }).values);
    issueServerCert(dir, names);
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', path.join(dir, 'server.crt')], { encoding: 'utf8' });
    assert.match(text, /DNS:reg01\.example\.com, DNS:reg01, IP Address:192\.0\.2\.10/);
    execFileSync('openssl', ['verify', '-CAfile', path.join(dir, 'ca.crt'), path.join(dir, 'server.crt')]);
    assert.equal(fs.statSync(path.join(dir, 'ca.key')).mode & 0o077, 0, 'CA key private');
    const cert = fs.readFileSync(path.join(dir, 'server.crt'), 'utf8');
    const key = fs.readFileSync(path.join(dir, 'server.key'), 'utf8');
    assert.deepEqual(checkTlsPair(cert, key), []);
    assert.match(checkTlsPair(cert, fs.readFileSync(path.join(dir, 'ca.key'), 'utf8')).join(), /does not belong/);
    assert.match(checkTlsPair('junk', key).join(), /tls_cert: cannot be parsed/);
    assert.match(checkTlsPair(cert, key, new Date('2100-01-01')).join(), /expired/);
    // the validator accepts the PEM in form-field shapes
    const v = validateProperties({ tls_cert: Buffer.from(cert).toString('base64'), tls_key: key.replace(/\n/g, ' ') });
    assert.deepEqual(v.errors, []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('port 80 listener: /ca.crt download, 308 redirect to HTTPS keeping path and method', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ova-http80-'));
  const ca = path.join(dir, 'ca.crt');
  fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n');
  const cfg = JSON.parse(renderHttp80(validateProperties({}).values, true)!);
  cfg.caFile = ca;
  const server = http.createServer(handler(cfg));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const got = await fetch(`http://127.0.0.1:${port}/ca.crt`);
    assert.equal(got.status, 200);
    assert.match(await got.text(), /BEGIN CERTIFICATE/);
    const red = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v2/library/x/blobs/uploads/?a=1', headers: { host: 'reg01.example.com:80' } }, resolve);
      req.on('error', reject);
      req.end();
    });
    red.resume();
    assert.equal(red.statusCode, 308);
    assert.equal(red.headers.location, 'https://reg01.example.com/v2/library/x/blobs/uploads/?a=1');
    const fixed = http.createServer(handler({ redirectBase: 'https://registry.example.com', caFile: null }));
    await new Promise<void>((r) => fixed.listen(0, '127.0.0.1', r));
    const p2 = (fixed.address() as { port: number }).port;
    const r2 = await fetch(`http://127.0.0.1:${p2}/api/v2.0/health`, { redirect: 'manual' });
    assert.equal(r2.headers.get('location'), 'https://registry.example.com/api/v2.0/health');
    assert.equal((await fetch(`http://127.0.0.1:${p2}/ca.crt`)).status, 404);
    fixed.close();
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
