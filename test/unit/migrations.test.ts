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
