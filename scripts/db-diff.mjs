// Writes a new migration to prisma/migrations (SQLite) and one of the same name to
// prisma/postgresql/migrations (PostgreSQL) when prisma/schema.prisma changed since the last one.
// Uses Prisma's WebAssembly schema engine (the native one cannot be downloaded here); the PostgreSQL
// half needs a PostgreSQL to connect to (scripts/pg-diff.mjs: BERTH_DIFF_PG_URL or a throwaway one).
// Usage: npm run db:diff [-- name]        Check only (exit 1 on drift): npm run db:diff -- --check
import { SchemaEngine } from '@prisma/schema-engine-wasm';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pgSchema } from './pg-schema.mjs';
import { pgMigrationSql } from './pg-diff.mjs';

const check = process.argv.includes('--check');
const label = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'auto';
const schemaPath = path.resolve('prisma/schema.prisma');
const text = fs.readFileSync(schemaPath, 'utf8');
const migDir = path.resolve('prisma/migrations');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-diff-'));
const adapter = new PrismaBetterSqlite3({ url: `file:${path.join(tmp, 'diff.db')}` }, { shadowDatabaseUrl: `file:${path.join(tmp, 'shadow.db')}` });
const engine = await SchemaEngine.new({ datamodels: [[schemaPath, text]] }, () => {}, bindMigrationAwareSqlAdapterFactory(adapter));
const dirs = fs.existsSync(migDir) ? fs.readdirSync(migDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort() : [];
const migrations = {
  baseDir: migDir,
  lockfile: { path: 'migration_lock.toml', content: fs.existsSync(path.join(migDir, 'migration_lock.toml')) ? fs.readFileSync(path.join(migDir, 'migration_lock.toml'), 'utf8') : 'provider = "sqlite"\n' },
  shadowDbInitScript: '',
  migrationDirectories: dirs.map((d) => ({ path: d, migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: fs.readFileSync(path.join(migDir, d, 'migration.sql'), 'utf8') } } })),
};
// Apply the existing migrations to a scratch database the way the server does, then diff that
// database against the schema (the engine's shadow-database path fails over this adapter).
import Database from 'better-sqlite3';
{
  const db = new Database(path.join(tmp, 'diff.db'));
  for (const d of dirs) db.exec(fs.readFileSync(path.join(migDir, d, 'migration.sql'), 'utf8'));
  db.close();
}
const from = dirs.length ? { tag: 'schemaDatasource', files: [{ path: schemaPath, content: text }], configDir: path.dirname(schemaPath) } : { tag: 'empty' };
const diff = await engine.diff({ from, to: { tag: 'schemaDatamodel', files: [{ path: schemaPath, content: text }] }, script: true, exitCode: null, filters: { externalTables: [], externalEnums: [] } });
const sql = diff.stdout ?? '';
const empty = !sql.trim() || sql.includes('empty migration');
fs.rmSync(tmp, { recursive: true, force: true });
const pgPath = path.resolve('prisma/postgresql/schema.prisma');
const pgOld = fs.existsSync(pgPath) ? fs.readFileSync(pgPath, 'utf8') : null;
const pgNew = pgSchema(text);
if (empty && pgOld === pgNew) { console.log('migrations are up to date with prisma/schema.prisma'); process.exit(0); }
if (check) { console.error('prisma/schema.prisma has changes without a migration; run npm run db:diff\n' + sql); process.exit(1); }
const name = new Date().toISOString().replace(/\D/g, '').slice(0, 14) + '_' + label;
if (!empty) {
  fs.mkdirSync(path.join(migDir, name), { recursive: true });
  fs.writeFileSync(path.join(migDir, name, 'migration.sql'), sql);
  console.log(`wrote prisma/migrations/${name}/migration.sql`);
}
// PostgreSQL: from the committed derived schema (what its migrations built) to the derived schema now.
const pgSql = await pgMigrationSql(pgOld, pgNew, pgPath);
if (pgSql) {
  const pgMigDir = path.resolve('prisma/postgresql/migrations');
  fs.mkdirSync(path.join(pgMigDir, name), { recursive: true });
  fs.writeFileSync(path.join(pgMigDir, name, 'migration.sql'), pgSql);
  fs.writeFileSync(path.join(pgMigDir, 'migration_lock.toml'), 'provider = "postgresql"\n');
  console.log(`wrote prisma/postgresql/migrations/${name}/migration.sql`);
}
fs.writeFileSync(pgPath, pgNew);
process.exit(0);
