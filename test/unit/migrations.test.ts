import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('prisma/migrations match prisma/schema.prisma (no schema change without a migration)', () => {
  const r = spawnSync(process.execPath, ['--experimental-wasm-modules', '--no-warnings', 'scripts/db-diff.mjs', '--check'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /up to date/);
});

test('upgrading an existing database keeps its rows (migrations run with foreign keys off, then checked)', async () => {
  const { migrateSqlite, MIGRATIONS_DIR } = await import('../../src/db/migrate.ts');
  const Database = (await import('better-sqlite3')).default;
  const fs = await import('node:fs');
  const os = await import('node:os');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-mig-'));
  try {
    const first = path.join(tmp, 'first');
    const names = fs.readdirSync(MIGRATIONS_DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    fs.mkdirSync(path.join(first, names[0]), { recursive: true });
    fs.copyFileSync(path.join(MIGRATIONS_DIR, names[0], 'migration.sql'), path.join(first, names[0], 'migration.sql'));
    const url = `file:${path.join(tmp, 'berth.db')}`;
    assert.deepEqual(migrateSqlite(url, first), [names[0]]);
    const db = new Database(path.join(tmp, 'berth.db'));
    db.prepare(`INSERT INTO "User" ("username", "updatedAt") VALUES ('old', '2026-01-01T00:00:00.000Z')`).run();
    db.prepare(`INSERT INTO "Project" ("name", "updatedAt") VALUES ('p', '2026-01-01T00:00:00.000Z')`).run();
    db.prepare(`INSERT INTO "Member" ("projectId", "userId", "roleId", "updatedAt") VALUES (1, 1, 2, '2026-01-01T00:00:00.000Z')`).run();
    db.prepare(`INSERT INTO "Repository" ("name", "projectId", "updatedAt") VALUES ('p/app', 1, '2026-01-01T00:00:00.000Z')`).run();
    db.close();
    assert.deepEqual(migrateSqlite(url), names.slice(1));
    const after = new Database(path.join(tmp, 'berth.db'));
    assert.equal((after.prepare('SELECT COUNT(*) AS n FROM "Member"').get() as { n: number }).n, 1);
    // Project was rebuilt (storageLimit added): the rows pointing at it are still there
    assert.deepEqual(after.prepare('SELECT "name", "projectId" FROM "Repository"').get(), { name: 'p/app', projectId: 1 });
    assert.equal((after.prepare('SELECT "storageLimit" FROM "Project"').get() as { storageLimit: number }).storageLimit, -1);
    assert.equal((after.prepare('SELECT username FROM "User"').get() as { username: string }).username, 'old');
    after.close();
    assert.deepEqual(migrateSqlite(url), [], 'applying again does nothing');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('a database of the previous release (every migration before 2026-12-06) upgrades with its rows', async () => {
  const { migrateSqlite, MIGRATIONS_DIR } = await import('../../src/db/migrate.ts');
  const Database = (await import('better-sqlite3')).default;
  const fs = await import('node:fs');
  const os = await import('node:os');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-mig-'));
  try {
    const names = fs.readdirSync(MIGRATIONS_DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    const previous = names.filter((n) => n < '20261206');
    const release = path.join(tmp, 'release');
    for (const n of previous) {
      fs.mkdirSync(path.join(release, n), { recursive: true });
      fs.copyFileSync(path.join(MIGRATIONS_DIR, n, 'migration.sql'), path.join(release, n, 'migration.sql'));
    }
    const url = `file:${path.join(tmp, 'berth.db')}`;
    assert.deepEqual(migrateSqlite(url, release), previous);
    const db = new Database(path.join(tmp, 'berth.db'));
    const now = "'2026-12-01T00:00:00.000Z'";
    db.exec(`INSERT INTO "Project" ("name", "updatedAt") VALUES ('p', ${now});
      INSERT INTO "Repository" ("name", "projectId", "updatedAt") VALUES ('p/app', 1, ${now});
      INSERT INTO "Manifest" ("repositoryId", "digest", "mediaType", "size") VALUES (1, 'sha256:${'a'.repeat(64)}', 'application/vnd.oci.image.manifest.v1+json', 10);
      INSERT INTO "Tag" ("repositoryId", "name", "digest", "updatedAt") VALUES (1, 'v1', 'sha256:${'a'.repeat(64)}', ${now});
      INSERT INTO "AuditLog" ("username", "operation", "resource", "resourceType") VALUES ('admin', 'login', 'admin', 'user');`);
    db.close();
    assert.deepEqual(migrateSqlite(url), names.filter((n) => n >= '20261206'));
    const after = new Database(path.join(tmp, 'berth.db'));
    assert.deepEqual(after.prepare('SELECT "username", "operation", "clientAddress" FROM "AuditLog"').get(), { username: 'admin', operation: 'login', clientAddress: null });
    assert.equal((after.prepare('SELECT "digest" FROM "Manifest"').get() as { digest: string }).digest, `sha256:${'a'.repeat(64)}`);
    assert.equal((after.prepare('SELECT "name" FROM "Tag"').get() as { name: string }).name, 'v1');
    after.close();
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
