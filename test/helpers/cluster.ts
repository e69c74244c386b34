// A Berth cluster for the multi-node end-to-end test: one throwaway PostgreSQL (test/helpers/pg.ts),
// a bucket on the radosgw the caller already runs (only one Ceph per machine: see rgw.ts), N Berth
// processes on loopback ports sharing the database, the bucket and BERTH_SECRET_KEY (each with its
// own data directory), and haproxy round robin in front, configured from docs/examples/haproxy.cfg
// (only its bind and server lines replaced). Every process is started in its own process group, so
// kill() (SIGKILL) hits the whole group and stop() leaves nothing behind, also when a test failed
// or the test process exits early.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_PASSWORD } from './app.ts';
import { startPostgres, type TestPostgres } from './pg.ts';
import type { Rgw } from './rgw.ts';
import { freePort } from './server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const HAPROXY_EXAMPLE = path.join(ROOT, 'docs/examples/haproxy.cfg');

export interface ClusterNode {
  /** haproxy's server name for it (n1, n2, …): what the balancer's X-Berth-Node header says. */
  name: string;
  url: string;
  host: string;
  port: number;
  dataDir: string;
  output(): string;
  running(): boolean;
  /** kill -9 of the node's whole process group; resolves when it is gone. */
  kill(): Promise<void>;
}

export interface Cluster {
  nodes: ClusterNode[];
  /** The balancer: what clients use. */
  lb: { url: string; host: string; port: number; output(): string };
  bucket: string;
  databaseUrl: string;
  /** The environment every node got (minus port, host and data directory). */
  env: Record<string, string>;
  /** Everything stopped, temp directories removed; safe to call twice. */
  stop(): Promise<void>;
}

/** Process groups still running, killed when the test process exits however it exits. */
const groups = new Set<number>();
process.once('exit', () => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

interface Proc {
  proc: ChildProcess;
  output(): string;
  running(): boolean;
  exited: Promise<void>;
  signal(sig: NodeJS.Signals): void;
}

function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  let out = '';
  const proc = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pgid = proc.pid!;
  groups.add(pgid);
  const keep = (d: Buffer) => {
    out += d;
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => {
    running = false;
    // Children of the group (none expected) go with it.
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // the group is gone
    }
    groups.delete(pgid);
  });
  return {
    proc,
    output: () => out,
    running: () => running,
    exited,
    signal(sig) {
      try {
        process.kill(-pgid, sig);
      } catch {
        // already gone
      }
    },
  };
}

async function stopProcess(p: Proc, graceMs = 5_000): Promise<void> {
  if (!p.running()) return;
  p.signal('SIGTERM');
  const timer = setTimeout(() => p.signal('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

async function get(url: string): Promise<{ status: number; node: string | null; body: string } | null> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    return { status: r.status, node: r.headers.get('x-berth-node'), body: await r.text() };
  } catch {
    return null;
  }
}

async function until(what: string, seconds: number, ok: () => Promise<boolean>, detail: () => string): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`cluster harness: ${what} not ready after ${seconds} s\n${detail()}`);
}

/** docs/examples/haproxy.cfg with the listener and the servers on loopback. */
export function haproxyConfig(lbPort: number, servers: { name: string; port: number }[]): string {
  const example = fs.readFileSync(HAPROXY_EXAMPLE, 'utf8');
  const lines = example.split('\n');
  const bind = lines.findIndex((l) => /^\s+bind :80$/.test(l));
  const first = lines.findIndex((l) => /^\s+server /.test(l));
  if (bind < 0 || first < 0) throw new Error(`${HAPROXY_EXAMPLE}: no "bind :80" or "server" line to replace`);
  lines[bind] = `    bind 127.0.0.1:${lbPort}`;
  const rest = lines.slice(first).filter((l) => !/^\s+server /.test(l));
  return [...lines.slice(0, first), ...servers.map((s) => `    server ${s.name} 127.0.0.1:${s.port}`), ...rest].join('\n');
}

/**
 * Starts the cluster; throws (after stopping what it started) when any part is not healthy in time.
 * `env` is added to every node's environment (e.g. BERTH_LOG_LEVEL).
 */
export async function startCluster(opts: { rgw: Rgw; nodes?: number; env?: Record<string, string> }): Promise<Cluster> {
  const count = opts.nodes ?? 2;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cluster-'));
  const procs: Proc[] = [];
  let pg: TestPostgres | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // haproxy first (no new requests), then the nodes, then the database they use.
    for (const p of [...procs].reverse()) await stopProcess(p);
    await pg?.stop().catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  };
  try {
    pg = await startPostgres();
    const databaseUrl = await pg.createDatabase(`berth_cluster_${process.pid}`);
    const bucket = `berth-cluster-${randomUUID().slice(0, 8)}`;
    const env: Record<string, string> = {
      BERTH_DATABASE_URL: databaseUrl,
      BERTH_STORAGE: 's3',
      BERTH_S3_ENDPOINT: opts.rgw.endpoint,
      BERTH_S3_BUCKET: bucket,
      BERTH_S3_REGION: 'us-east-1',
      BERTH_S3_ACCESS_KEY_ID: opts.rgw.accessKeyId,
      BERTH_S3_SECRET_ACCESS_KEY: opts.rgw.secretAccessKey,
      BERTH_SECRET_KEY: randomBytes(32).toString('base64'),
      BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD,
      BERTH_TRUSTED_PROXIES: '127.0.0.1',
      BERTH_LOG_LEVEL: 'warn',
      ...opts.env,
    };
    const ports = new Set<number>();
    const port = async () => {
      for (;;) {
        const p = await freePort();
        if (!ports.has(p)) {
          ports.add(p);
          return p;
        }
      }
    };
    // All nodes start at once: migrations and the bucket are created by whichever comes first.
    const nodes: ClusterNode[] = [];
    for (let i = 1; i <= count; i++) {
      const nodePort = await port();
      const dataDir = path.join(work, `n${i}`);
      fs.mkdirSync(dataDir, { mode: 0o700 });
      const p = startProcess(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], {
        ...process.env,
        ...env,
        BERTH_HOST: '127.0.0.1',
        BERTH_PORT: String(nodePort),
        BERTH_DATA_DIR: dataDir,
      });
      procs.push(p);
      nodes.push({
        name: `n${i}`,
        url: `http://127.0.0.1:${nodePort}`,
        host: `127.0.0.1:${nodePort}`,
        port: nodePort,
        dataDir,
        output: p.output,
        running: p.running,
        async kill() {
          p.signal('SIGKILL');
          await p.exited;
        },
      });
    }
    await Promise.all(
      nodes.map((n, i) =>
        until(
          `${n.name} (/api/v2.0/health)`,
          60,
          async () => {
            if (!procs[i].running()) throw new Error(`cluster harness: ${n.name} exited during start:\n${n.output()}`);
            const r = await get(`${n.url}/api/v2.0/health`);
            return r?.status === 200 && JSON.parse(r.body).status === 'healthy';
          },
          n.output,
        ),
      ),
    );

    const lbPort = await port();
    const cfg = path.join(work, 'haproxy.cfg');
    fs.writeFileSync(cfg, haproxyConfig(lbPort, nodes));
    const lb = startProcess('haproxy', ['-f', cfg, '-db'], process.env);
    procs.push(lb);
    // Healthy through the balancer, and every node seen answering (its health check passed).
    const seen = new Set<string>();
    await until(
      'haproxy (every node answering through it)',
      30,
      async () => {
        if (!lb.running()) throw new Error(`cluster harness: haproxy exited:\n${lb.output()}`);
        const r = await get(`http://127.0.0.1:${lbPort}/api/v2.0/health`);
        if (r?.status === 200 && r.node) seen.add(r.node);
        return seen.size === count;
      },
      () => `seen: ${[...seen].join(', ')}\n${lb.output()}`,
    );
    return {
      nodes,
      lb: { url: `http://127.0.0.1:${lbPort}`, host: `127.0.0.1:${lbPort}`, port: lbPort, output: lb.output },
      bucket,
      databaseUrl,
      env,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
