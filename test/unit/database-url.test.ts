// BERTH_DATABASE_URL: SQLite file: URLs and PostgreSQL URLs; a password in the URL is never echoed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { isPostgresUrl, redactDatabaseUrl } from '../../src/db/client.ts';
import { postgresql, sqlite } from '../../src/db/dialect.ts';

test('postgresql:// and postgres:// URLs are taken as they are', () => {
  for (const url of ['postgresql://berth:s3cret@db.example.com:5432/berth', 'postgres://berth@db/berth?sslmode=require']) {
    assert.equal(loadConfig({ BERTH_DATABASE_URL: url }).databaseUrl, url);
    assert.equal(isPostgresUrl(url), true);
  }
  assert.equal(isPostgresUrl('file:/data/berth.db'), false);
});

test('a file: URL stays SQLite, relative to the data directory', () => {
  const c = loadConfig({ BERTH_DATA_DIR: '/srv/berth', BERTH_DATABASE_URL: 'file:meta.db' });
  assert.equal(c.databaseUrl, `file:${path.resolve('/srv/berth/meta.db')}`);
});

test('other URLs are refused without echoing a password', () => {
  for (const url of ['mysql://root:hunter2@db/berth', 'postgresql://', 'berth.db']) {
    assert.throws(() => loadConfig({ BERTH_DATABASE_URL: url }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /BERTH_DATABASE_URL/);
      assert.ok(!e.message.includes('hunter2'), e.message);
      return true;
    });
  }
});

test('redactDatabaseUrl hides the password in the authority and in the query', () => {
  assert.equal(redactDatabaseUrl('postgresql://berth:s3cr@t@db:5432/berth'), 'postgresql://berth:***@db:5432/berth');
  assert.equal(redactDatabaseUrl('postgresql://db/berth?user=berth&password=s3cret&sslmode=require'), 'postgresql://db/berth?user=berth&password=***&sslmode=require');
  assert.equal(redactDatabaseUrl('postgresql://berth@db/berth'), 'postgresql://berth@db/berth');
});

test('dialects: placeholders, lists and case-insensitive matching per engine', () => {
  assert.equal(postgresql.text('SELECT 1 WHERE a = ? AND ' + postgresql.inList('"b"', 'int') + ' LIMIT ?'), 'SELECT 1 WHERE a = $1 AND "b" = ANY($2::int[]) LIMIT $3');
  assert.equal(sqlite.text('SELECT 1 WHERE a = ? AND ' + sqlite.inList('"b"', 'int')), 'SELECT 1 WHERE a = ? AND "b" IN (SELECT value FROM json_each(?))');
  assert.equal(sqlite.listArg([1, 2]), '[1,2]');
  assert.deepEqual(postgresql.listArg([1, 2]), [1, 2]);
  assert.deepEqual(postgresql.contains('x'), { contains: 'x', mode: 'insensitive' });
  assert.deepEqual(sqlite.contains('x'), { contains: 'x' });
  assert.equal(sqlite.date(new Date(0)), '1970-01-01T00:00:00.000+00:00');
  assert.equal(postgresql.date(new Date(0)), '1970-01-01T00:00:00.000Z');
});

test('a PostgreSQL that cannot be reached fails the open with the URL, its password hidden', async () => {
  const { openDatabase } = await import('../../src/db/client.ts');
  await assert.rejects(openDatabase('postgresql://berth:TopSecret42@127.0.0.1:1/berth'), (e: Error) => {
    assert.match(e.message, /cannot open the PostgreSQL database postgresql:\/\/berth:\*\*\*@127\.0\.0\.1:1\/berth/);
    assert.ok(!e.message.includes('TopSecret42'), e.message);
    return true;
  });
});
