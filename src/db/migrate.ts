// Applies prisma/migrations/*/migration.sql (SQLite) or prisma/postgresql/migrations/*/migration.sql
// (PostgreSQL) in name order, each once, inside a transaction. The server runs this at start so a
// fresh install needs no Prisma CLI (whose native schema engine cannot be downloaded on many closed
// networks). Bookkeeping lives in _berth_migrations.
import Database from 'better-sqlite3';
import type pg from 'pg';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// src/db (run from source) or dist/src/db (compiled): the migrations stay at the package root.
export const MIGRATIONS_DIR = [path.resolve(here, '../../prisma/migrations'), path.resolve(here, '../../../prisma/migrations')].find((d) => fs.existsSync(d)) ?? path.resolve(here, '../../prisma/migrations');

export const PG_MIGRATIONS_DIR = path.join(path.dirname(MIGRATIONS_DIR), 'postgresql', 'migrations');

/** Any constant shared by all nodes ('bert'): the session advisory lock held while migrating. */
const MIGRATION_LOCK = 0x62657274;

export function sqliteFile(databaseUrl: string): string {
  return databaseUrl.replace(/^file:/, '');
}

/** Returns the names of the migrations applied by this call. */
export function migrateSqlite(databaseUrl: string, dir = MIGRATIONS_DIR): string[] {
  const file = sqliteFile(databaseUrl);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    // As Prisma's migrate does: foreign keys off while tables are rebuilt (a DROP TABLE with them on
    // would cascade deletes into the rows that point at it), then checked once at the end.
    db.pragma('foreign_keys = OFF');
    db.exec('CREATE TABLE IF NOT EXISTS _berth_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
    const done = new Set(db.prepare('SELECT name FROM _berth_migrations').pluck().all() as string[]);
    const names = migrationNames(dir);
    const applied: string[] = [];
    for (const name of names) {
      if (done.has(name)) continue;
      const sql = fs.readFileSync(path.join(dir, name, 'migration.sql'), 'utf8');
      db.transaction(() => {
        db.exec(sql);
        db.prepare('INSERT INTO _berth_migrations (name, applied_at) VALUES (?, ?)').run(name, new Date().toISOString());
      })();
      applied.push(name);
    }
    const broken = db.pragma('foreign_key_check') as unknown[];
    if (broken.length) throw new Error(`database has ${broken.length} rows violating foreign keys after migration`);
    return applied;
  } finally {
    db.close();
  }
}

function migrationNames(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
}

/**
 * The PostgreSQL twin of migrateSqlite, on a connected client (the caller ends it). Nodes starting
 * together apply each migration once: all take a session advisory lock first, so the others wait,
 * then find nothing left to do. The lock dies with the connection, so a node killed mid-migration
 * does not wedge the rest; PostgreSQL's DDL is transactional, so it leaves nothing half-applied.
 * Returns the names of the migrations applied by this call.
 */
export async function migratePostgres(client: pg.ClientBase, dir = PG_MIGRATIONS_DIR): Promise<string[]> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS _berth_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
    const done = new Set((await client.query<{ name: string }>('SELECT name FROM _berth_migrations')).rows.map((r) => r.name));
    const applied: string[] = [];
    for (const name of migrationNames(dir)) {
      if (done.has(name)) continue;
      const sql = fs.readFileSync(path.join(dir, name, 'migration.sql'), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql); // no parameters: the simple protocol runs every statement in it
        await client.query('INSERT INTO _berth_migrations (name) VALUES ($1)', [name]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw new Error(`migration ${name} failed: ${(e as Error).message}`);
      }
      applied.push(name);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
  }
}
