// CNCF Distribution (Debian's docker-registry, 2.8) on a loopback port, as the "other registry"
// of proxy-cache and replication tests: anonymous, or with htpasswd (bcrypt) Basic auth.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './server.ts';
import { hasTool } from './tools.ts';

const BINARY = '/usr/bin/docker-registry';

export interface Distribution {
  /** http://127.0.0.1:<port> */
  url: string;
  host: string;
  port: number;
  dir: string;
  /** With tls: the PEM of its self-signed certificate (for 127.0.0.1), to give as the CA. */
  certificate?: string;
  output(): string;
  stop(): Promise<void>;
  /** Starts it again on the same port and storage (after stop()). */
  restart(): Promise<void>;
}

function htpasswdPath(): string | null {
  for (const p of ['/usr/bin/htpasswd', '/usr/sbin/htpasswd']) if (fs.existsSync(p)) return p;
  return null;
}

/**
 * Why Distribution tests cannot run here (a message, after warning), or false when they can.
 * Under CI a missing tool is an error, never a skip.
 */
export function missingDistribution(opts: { htpasswd?: boolean; openssl?: boolean } = {}): string | false {
  const missing = [!fs.existsSync(BINARY) && 'docker-registry', opts.htpasswd && !htpasswdPath() && 'apache2-utils (htpasswd)', opts.openssl && !hasTool('openssl') && 'openssl'].filter(Boolean);
  if (!missing.length) return false;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`required tool missing under CI: ${missing.join(', ')}`);
  const msg = `skipped: ${missing.join(', ')} not installed (apt-get install docker-registry apache2-utils; CI installs them)`;
  console.warn(msg);
  return msg;
}

/** Starts Distribution with filesystem storage; `users` turns on htpasswd Basic auth, `tls` HTTPS with a self-signed certificate. */
export async function startDistribution(opts: { users?: Record<string, string>; tls?: boolean } = {}): Promise<Distribution> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-distribution-'));
  const port = await freePort();
  const auth: string[] = [];
  const tls: string[] = [];
  let certificate: string | undefined;
  if (opts.tls) {
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    certificate = fs.readFileSync(cert, 'utf8');
    tls.push('  tls:', `    certificate: ${cert}`, `    key: ${key}`);
  }
  if (opts.users) {
    const file = path.join(dir, 'htpasswd');
    const tool = htpasswdPath();
    if (!tool) throw new Error('htpasswd (apache2-utils) is not installed');
    fs.writeFileSync(file, '');
    for (const [user, password] of Object.entries(opts.users)) execFileSync(tool, ['-B', '-b', file, user, password], { stdio: 'pipe' });
    auth.push('auth:', '  htpasswd:', '    realm: distribution', `    path: ${file}`);
  }
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '  secret: berth-test-secret',
      ...tls,
      ...auth,
      '',
    ].join('\n'),
  );
  let proc: ChildProcess;
  let out = '';
  let exited: Promise<void>;
  const launch = async () => {
    // The machine's AWS_CA_BUNDLE makes Distribution's AWS SDK panic at start (docs/scale-out.md §9).
    const env = { ...process.env };
    delete env.AWS_CA_BUNDLE;
    proc = spawn(BINARY, ['serve', config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`docker-registry exited during start:\n${out}`);
      if (await listening(port)) return;
      if (Date.now() > deadline) throw new Error(`docker-registry did not start in 15 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await launch();
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    dir,
    certificate,
    output: () => out,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
    async restart() {
      await launch();
    },
  };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Stops it and removes its storage. */
export async function removeDistribution(d: Distribution): Promise<void> {
  await d.stop();
  fs.rmSync(d.dir, { recursive: true, force: true });
}
