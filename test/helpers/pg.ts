// A throwaway PostgreSQL for tests: Debian's binaries (/usr/lib/postgresql/<v>/bin, installed by
// .ci/run), a cluster in a temp directory on a free loopback port, durability off (it is thrown
// away). initdb refuses to run as root, so as root it runs as the `postgres` system user. About 2 s;
// one per test file, with a fresh database per test through createDatabase().
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './server.ts';

export interface TestPostgres {
  /** postgresql:// URL of the instance's `postgres` database (superuser, no password). */
  url: string;
  /** A new, empty database; its URL. */
  createDatabase(name?: string): Promise<string>;
  stop(): Promise<void>;
}

function findBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  return versions.length ? path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0], 'bin') : null;
}

function binDir(): string {
  const dir = findBinDir();
  if (!dir) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)');
  return dir;
}

/** A skip reason when PostgreSQL is not installed outside CI; throws when it is missing under CI (as missingTool). */
export function missingPostgres(): string | false {
  if (findBinDir()) return false;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error('required tool missing under CI: postgresql (/usr/lib/postgresql/<version>/bin)');
  const msg = 'skipped: postgresql not installed (apt-get install postgresql; CI installs it)';
  console.warn(msg);
  return msg;
}


let counter = 0;

export async function startPostgres(): Promise<TestPostgres> {
  const bin = binDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-pg-'));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) => execFileSync(asRoot ? 'runuser' : cmd, asRoot ? ['-u', 'postgres', '--', cmd, ...args] : args, { stdio: 'pipe' });
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  run(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8']);
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      const opts = `-k ${dir} -c listen_addresses=127.0.0.1 -p ${port} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
      run(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'pg.log'), '-w', '-o', opts, 'start']);
      break;
    } catch (e) {
      if (attempt >= 2) throw new Error(`PostgreSQL did not start: ${fs.existsSync(path.join(dir, 'pg.log')) ? fs.readFileSync(path.join(dir, 'pg.log'), 'utf8') : (e as Error).message}`);
    }
  }
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    async createDatabase(name = `berth_test_${process.pid}_${++counter}`) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name}"`);
      } finally {
        await c.end();
      }
      return `postgresql://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      try {
        run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
