// The embedded default stays as light as before: with a file: database, Berth loads neither pg nor
// the PostgreSQL Prisma client (they load only for a postgresql:// URL).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { makeApp } from '../helpers/app.ts';

const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter((f) => /[\\/]node_modules[\\/](pg|pg-pool|pg-protocol)[\\/]/.test(f));

test('Berth on SQLite does not load the PostgreSQL driver', async () => {
  const t = await makeApp();
  try {
    assert.equal((await t.request.get('/v2/').set('Authorization', t.adminAuth)).status, 200);
    assert.deepEqual(loaded(), []);
  } finally {
    await t.close();
  }
  // The check itself sees pg once something loads it.
  await import('pg');
  assert.ok(loaded().length > 0, 'pg shows up in the module cache when loaded');
});
