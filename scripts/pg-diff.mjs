// The PostgreSQL half of npm run db:diff (imported by scripts/db-diff.mjs). The PostgreSQL migration
// is the diff between two datamodels: the committed prisma/postgresql/schema.prisma (the state the
// existing PostgreSQL migrations produce) and the one derived from prisma/schema.prisma now. No shadow
// database is involved, but the wasm schema engine connects at start, so a PostgreSQL must be
// reachable: BERTH_DIFF_PG_URL, else a throwaway one from /usr/lib/postgresql/<v>/bin.
import { SchemaEngine } from '@prisma/schema-engine-wasm';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaPg } from '@prisma/adapter-pg';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A PostgreSQL for the schema engine to connect to, and how to stop it. */
async function scratchPostgres() {
  if (process.env.BERTH_DIFF_PG_URL) return { url: process.env.BERTH_DIFF_PG_URL, stop() {} };
  const versions = fs.existsSync('/usr/lib/postgresql') ? fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions.length) throw new Error('db:diff needs PostgreSQL for the PostgreSQL migration: set BERTH_DIFF_PG_URL or install postgresql');
  const bin = `/usr/lib/postgresql/${versions[0]}/bin`;
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-diff-pg-'));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd, args) => execFileSync(asRoot ? 'runuser' : cmd, asRoot ? ['-u', 'postgres', '--', cmd, ...args] : args, { stdio: 'ignore' });
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  run(`${bin}/initdb`, ['-D', `${dir}/data`, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  run(`${bin}/pg_ctl`, ['-D', `${dir}/data`, '-l', `${dir}/pg.log`, '-w', '-o', `-k ${dir} -c listen_addresses=127.0.0.1 -p ${port} -c fsync=off`, 'start']);
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      try {
        run(`${bin}/pg_ctl`, ['-D', `${dir}/data`, '-m', 'immediate', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * The SQL that takes a PostgreSQL database from schema `oldText` (null: empty) to `newText`, or ''
 * when nothing changed.
 */
export async function pgMigrationSql(oldText, newText, schemaPath) {
  const pg = await scratchPostgres();
  try {
    const engine = await SchemaEngine.new({ datamodels: [[schemaPath, newText]] }, () => {}, bindMigrationAwareSqlAdapterFactory(new PrismaPg({ connectionString: pg.url })));
    const from = oldText === null ? { tag: 'empty' } : { tag: 'schemaDatamodel', files: [{ path: 'old.prisma', content: oldText }] };
    const diff = await engine.diff({ from, to: { tag: 'schemaDatamodel', files: [{ path: schemaPath, content: newText }] }, script: true, exitCode: null, filters: { externalTables: [], externalEnums: [] } });
    const sql = diff.stdout ?? '';
    return !sql.trim() || sql.includes('empty migration') ? '' : sql;
  } finally {
    pg.stop();
  }
}
