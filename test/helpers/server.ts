// Berth as a real process on a loopback port (for real clients and crash tests).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_PASSWORD } from './app.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * A port that is free now, for a server a test starts in another process. Chosen at random below
 * the kernel's ephemeral range (32768 and up): a port the kernel handed out for listen(0) is given
 * out again to the next caller at once, so another test's server or Samba's dynamic RPC ports
 * could take it before our process binds it (and a health check would then reach theirs).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const candidate = 20_000 + Math.floor(Math.random() * 12_000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(candidate, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return candidate;
    if (attempt > 50) throw new Error('no free port found between 20000 and 32000');
  }
}

export interface ServerProcess {
  url: string;
  host: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  output(): string;
  /** SIGKILL, no chance to clean up. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startServer(opts: { dataDir?: string; port?: number; env?: Record<string, string> } = {}): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'berth-srv-'));
  const port = opts.port ?? (await freePort());
  let out = '';
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, BERTH_HOST: '127.0.0.1', BERTH_PORT: String(port), BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD, BERTH_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`berth exited during start:\n${out}`);
    try {
      if (opts.env?.BERTH_TLS_CERT) {
        const code = await new Promise<number>((resolve, reject) => {
          https.get(`https://127.0.0.1:${port}/api/v2.0/health`, { rejectUnauthorized: false }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }).on('error', reject);
        });
        if (code === 200) break;
      } else {
        const r = await fetch(`http://127.0.0.1:${port}/api/v2.0/health`);
        if (r.ok) break;
      }
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`berth did not start in 30 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    dataDir,
    proc,
    output: () => out,
    async kill() {
      proc.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
