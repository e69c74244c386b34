// A throwaway OpenLDAP server for tests: slapd from a temp dir on free loopback ports, ldap:// and
// ldaps:// (a test CA signs the server certificate), memberOf + refint overlays, seeded with
// ldapadd. Starts in well under a second; stop() kills it and removes the directory.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { LdapConfig } from '../../src/config/index.ts';
import { freePort } from './server.ts';
import { ADMIN_DN, ADMIN_PASSWORD, BASE_DN, GROUPS_DN, READER_DN, READER_PASSWORD, seedLdif } from '../fixtures/ldap/directory.ts';

export interface Slapd {
  /** ldap://127.0.0.1:<port> */
  url: string;
  /** ldaps://127.0.0.1:<port> (the certificate names localhost and 127.0.0.1; slapd listens on IPv4 only) */
  ldapsUrl: string;
  /** PEM of the test CA that signed the server certificate. */
  caFile: string;
  dir: string;
  /** A config for Berth pointing at this server, with the service account; override what you need. */
  config(overrides?: Partial<LdapConfig>): LdapConfig;
  /** Runs ldapmodify as the directory admin (for tests that change the directory). */
  modify(ldif: string): void;
  stop(): Promise<void>;
}

/** The server refuses more than this many entries per search (or page) to the service account, so
 * anything that works in the tests for larger result sets must be paging. */
export const SIZE_LIMIT = 50;
/** The largest page the server grants the service account (OpenLDAP refuses larger pages; AD caps them at 1000). */
export const PAGE_LIMIT = 100;

function makeCerts(dir: string): void {
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  // EC keys: generating RSA keys costs more than starting slapd.
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl(['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=Berth Test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', 'ca.key', '-out', 'ca.pem']);
  ossl(['req', '-new', ...ec, '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr']);
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  ossl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'server.ext', '-out', 'server.pem']);
  fs.chmodSync(path.join(dir, 'server.key'), 0o600);
}

function slapdConf(dir: string): string {
  return `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
pidfile  ${dir}/slapd.pid
argsfile ${dir}/slapd.args
TLSCACertificateFile  ${dir}/ca.pem
TLSCertificateFile    ${dir}/server.pem
TLSCertificateKeyFile ${dir}/server.key
database mdb
maxsize 67108864
dbnosync
suffix "${BASE_DN}"
rootdn "${ADMIN_DN}"
rootpw ${ADMIN_PASSWORD}
directory ${dir}/db
index objectClass eq
index uid,cn,mail eq,sub
index member,memberOf eq
limits dn.exact="${READER_DN}" size.soft=${SIZE_LIMIT} size.hard=${SIZE_LIMIT} size.pr=${PAGE_LIMIT} size.prtotal=unlimited
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
overlay refint
refint_attributes member
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
`;
}

async function waitForPort(port: number, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`slapd exited during start (code ${proc.exitCode}, signal ${proc.signalCode}):\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`slapd did not listen in 10 s:\n${log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function ldapmodify(url: string, ldif: string, add: boolean): void {
  const args = ['-x', '-H', url, '-D', ADMIN_DN, '-w', ADMIN_PASSWORD];
  if (add) args.unshift('-a');
  try {
    execFileSync('ldapmodify', args, { input: ldif, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer };
    throw new Error(`ldapmodify failed: ${err.stderr?.toString() ?? String(e)}`);
  }
}

/**
 * Starts and seeds a throwaway slapd. The ports come from freePort(), which only says a port was
 * free a moment ago: a neighbour test's Samba AD DC, starting at the same time, takes dynamic RPC
 * ports from the same range, and slapd then exits (code 1, silently at -d 0) or loses its
 * listener. So the whole start is tried again, with new ports and a fresh directory, for a while.
 */
export async function startSlapd(opts: { seed?: string } = {}): Promise<Slapd> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startSlapdOnce(opts);
    } catch (e) {
      if (attempt >= 8) throw e;
      process.stderr.write(`slapd start failed (attempt ${attempt} of 8), retrying: ${(e as Error).message.split('\n')[0]}\n`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

async function startSlapdOnce(opts: { seed?: string }): Promise<Slapd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-slapd-'));
  fs.mkdirSync(path.join(dir, 'db'));
  makeCerts(dir);
  fs.writeFileSync(path.join(dir, 'slapd.conf'), slapdConf(dir));

  let proc: ChildProcess | undefined;
  let port = 0;
  let sport = 0;
  let out = '';
  // freePort() can race with another process grabbing the port; try a few times.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    sport = await freePort();
    out = '';
    const p = spawn('slapd', ['-f', path.join(dir, 'slapd.conf'), '-h', `ldap://127.0.0.1:${port}/ ldaps://127.0.0.1:${sport}/`, '-d', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    try {
      await waitForPort(port, p, () => out);
      await waitForPort(sport, p, () => out);
      proc = p;
      break;
    } catch (e) {
      p.kill('SIGKILL');
      if (attempt >= 2 || !/in use|bind/i.test(out)) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
  const child = proc;
  const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
  // A test runner killed mid-file must not leave slapd behind.
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);

  const url = `ldap://127.0.0.1:${port}`;
  const stop = async () => {
    process.removeListener('exit', onExit);
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    ldapmodify(url, opts.seed ?? seedLdif(), true);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url,
    ldapsUrl: `ldaps://127.0.0.1:${sport}`,
    caFile: path.join(dir, 'ca.pem'),
    dir,
    config: (overrides = {}) => ({
      url,
      searchDn: READER_DN,
      searchPassword: READER_PASSWORD,
      baseDn: BASE_DN,
      filter: '(objectClass=inetOrgPerson)',
      uid: 'uid',
      scope: 'sub',
      timeoutSeconds: 5,
      verifyCert: true,
      groupBaseDn: GROUPS_DN,
      groupFilter: '(objectClass=groupOfNames)',
      groupAttributeName: 'cn',
      groupAdminDn: `cn=admins,${GROUPS_DN}`,
      groupMembershipAttribute: 'memberOf',
      nestedGroups: false,
      ...overrides,
    }),
    modify: (ldif) => ldapmodify(url, ldif, false),
    stop,
  };
}
