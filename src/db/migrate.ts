// Applies prisma/migrations/*/migration.sql in name order, each once, inside a transaction.
// The server runs this at start so a fresh install needs no Prisma CLI (whose native schema
// engine cannot be downloaded on many closed networks). Bookkeeping lives in _berth_migrations.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// src/db (run from source) or dist/src/db (compiled): the migrations stay at the package root.
export const MIGRATIONS_DIR = [path.resolve(here, '../../prisma/migrations'), path.resolve(here, '../../../prisma/migrations')].find((d) => fs.existsSync(d)) ?? path.resolve(here, '../../prisma/migrations');

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
    const names = fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
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
