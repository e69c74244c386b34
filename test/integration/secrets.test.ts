// Secrets at rest: file modes of the data directory, and the LDAP bind password encrypted with a key
// kept outside the database (BERTH_SECRET_KEY or <data dir>/secret.key).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import supertest from 'supertest';
import { createApp, type BerthApp } from '../../src/app.ts';
import { adminOnlyPolicy } from '../../src/access/principal.ts';
import { loadConfig } from '../../src/config/index.ts';
import { ADMIN_PASSWORD, basic } from '../helpers/app.ts';

const BIND_PASSWORD = 'Bind-S3cret-9f2c7a';
const ADMIN = basic('admin', ADMIN_PASSWORD);
const dirs: string[] = [];

after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-secrets-'));
  dirs.push(d);
  return d;
}

/** An app over the given data directory; `lines` collects its log. */
async function start(dataDir: string, env: Record<string, string> = {}): Promise<{ berth: BerthApp; lines: string[] }> {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  const config = loadConfig({ BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD, BERTH_LOG_LEVEL: 'silent', ...env });
  return { berth: await createApp(config, { auth: 'basic', policy: adminOnlyPolicy, log }), lines };
}

const mode = (p: string) => fs.statSync(p).mode & 0o777;

/** Everything SQLite has on disk for berth.db, as one buffer. */
function databaseBytes(dataDir: string): Buffer {
  return Buffer.concat(['berth.db', 'berth.db-wal', 'berth.db-shm'].map((f) => path.join(dataDir, f)).filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)));
}

async function saveBindPassword(berth: BerthApp, password = BIND_PASSWORD): Promise<void> {
  const res = await supertest(berth.app)
    .put('/api/v2.0/configurations')
    .set('Authorization', ADMIN)
    .send({ ldap_url: 'ldap://127.0.0.1:1', ldap_base_dn: 'dc=example,dc=com', ldap_search_dn: 'cn=berth,dc=example,dc=com', ldap_search_password: password });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

describe('file modes', () => {
  test('a fresh install: the data directory is 0700, the database, its WAL and the keys 0600', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const { berth } = await start(dataDir);
    try {
      assert.equal(mode(dataDir), 0o700);
      for (const f of ['berth.db', 'berth.db-wal', 'berth.db-shm', 'secret.key']) {
        const p = path.join(dataDir, f);
        if (f === 'berth.db' || f.includes('key')) assert.ok(fs.existsSync(p), `${f} exists`);
        if (fs.existsSync(p)) assert.equal(mode(p), 0o600, f);
      }
      // The token-signing key is in the database, sealed (test/integration/token-keys.test.ts).
      assert.ok(!fs.existsSync(path.join(dataDir, 'keys')), 'no key file');
    } finally {
      await berth.close();
    }
  });

  test('an existing install with looser modes is tightened at start', async () => {
    const dataDir = tempDir();
    fs.chmodSync(dataDir, 0o755);
    // An install from before shared keys still has its token-signing key file (imported, kept).
    fs.mkdirSync(path.join(dataDir, 'keys'));
    fs.writeFileSync(path.join(dataDir, 'keys/token-signing.key'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await (await start(dataDir)).berth.close();
    const loose = ['berth.db', 'secret.key', 'keys/token-signing.key'].map((f) => path.join(dataDir, f));
    for (const p of loose) fs.chmodSync(p, 0o644);
    fs.chmodSync(path.join(dataDir, 'keys'), 0o755);
    fs.chmodSync(dataDir, 0o755);
    const { berth } = await start(dataDir);
    try {
      assert.equal(mode(dataDir), 0o700);
      assert.equal(mode(path.join(dataDir, 'keys')), 0o700);
      for (const p of loose) assert.equal(mode(p), 0o600, p);
      for (const f of ['berth.db-wal', 'berth.db-shm']) {
        const p = path.join(dataDir, f);
        if (fs.existsSync(p)) assert.equal(mode(p), 0o600, f);
      }
    } finally {
      await berth.close();
    }
  });
});

describe('the LDAP bind password', () => {
  test('is stored encrypted, never returned, and read back after a restart', async () => {
    const dataDir = tempDir();
    const first = await start(dataDir);
    await saveBindPassword(first.berth);
    try {
      assert.ok(!databaseBytes(dataDir).includes(BIND_PASSWORD), 'the database files do not hold the password');
      const row = await first.berth.db.setting.findUnique({ where: { key: 'ldap_search_password' } });
      assert.match(JSON.parse(row!.value), /^enc:v1:/);
      const got = await supertest(first.berth.app).get('/api/v2.0/configurations').set('Authorization', ADMIN);
      assert.equal(got.status, 200);
      assert.ok(!JSON.stringify(got.body).includes(BIND_PASSWORD));
      assert.equal(got.body.ldap_search_password, undefined);
      assert.equal(first.berth.settings.ldap()?.searchPassword, BIND_PASSWORD);
    } finally {
      await first.berth.close();
    }
    assert.ok(!databaseBytes(dataDir).includes(BIND_PASSWORD));
    assert.ok(fs.existsSync(path.join(dataDir, 'secret.key')));
    const second = await start(dataDir);
    try {
      assert.equal(second.berth.settings.ldap()?.searchPassword, BIND_PASSWORD, 'the key file opens it after a restart');
    } finally {
      await second.berth.close();
    }
  });

  test('a plain-text value of an older install is encrypted in place at start', async () => {
    const dataDir = tempDir();
    await (await start(dataDir)).berth.close();
    const sqlite = new Database(path.join(dataDir, 'berth.db'));
    sqlite.prepare('INSERT INTO Setting (key, value) VALUES (?, ?), (?, ?), (?, ?)').run('ldap_url', '"ldap://127.0.0.1:1"', 'ldap_base_dn', '"dc=example,dc=com"', 'ldap_search_password', JSON.stringify(BIND_PASSWORD));
    sqlite.close();
    assert.ok(databaseBytes(dataDir).includes(BIND_PASSWORD), 'the old install holds it in plain text');
    const { berth } = await start(dataDir);
    try {
      assert.equal(berth.settings.ldap()?.searchPassword, BIND_PASSWORD);
      const row = await berth.db.setting.findUnique({ where: { key: 'ldap_search_password' } });
      assert.match(JSON.parse(row!.value), /^enc:v1:/);
      assert.ok(!databaseBytes(dataDir).includes(BIND_PASSWORD), 'no copy is left in the database or its WAL');
    } finally {
      await berth.close();
    }
  });

  test('with BERTH_SECRET_KEY no key file is made; a wrong key is one clear error at start, and LDAP is off', async () => {
    const dataDir = tempDir();
    const keyA = 'A'.repeat(40);
    const first = await start(dataDir, { BERTH_SECRET_KEY: keyA });
    try {
      await saveBindPassword(first.berth);
      assert.ok(!fs.existsSync(path.join(dataDir, 'secret.key')));
      assert.ok(!databaseBytes(dataDir).includes(BIND_PASSWORD));
    } finally {
      await first.berth.close();
    }

    const wrong = await start(dataDir, { BERTH_SECRET_KEY: 'B'.repeat(40) });
    try {
      const errors = wrong.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50);
      assert.equal(errors.length, 1, wrong.lines.join(''));
      assert.match(JSON.stringify(errors[0]), /BERTH_SECRET_KEY/);
      assert.ok(!wrong.lines.join('').includes(BIND_PASSWORD));
      assert.equal(wrong.berth.settings.ldap(), undefined, 'LDAP counts as not configured while its bind password cannot be read');
      // Local users still sign in; the admin can save the password again with the new key.
      assert.equal((await supertest(wrong.berth.app).get('/api/v2.0/users/current').set('Authorization', ADMIN)).status, 200);
      const cfg = await supertest(wrong.berth.app).get('/api/v2.0/configurations').set('Authorization', ADMIN);
      assert.equal(cfg.body.ldap_url.value, 'ldap://127.0.0.1:1', 'the other LDAP settings stay visible, so a form save does not wipe them');
      await saveBindPassword(wrong.berth, 'N3w-Bind-Password');
      assert.equal(wrong.berth.settings.ldap()?.searchPassword, 'N3w-Bind-Password');
    } finally {
      await wrong.berth.close();
    }

    const right = await start(dataDir, { BERTH_SECRET_KEY: 'B'.repeat(40) });
    try {
      assert.equal(right.berth.settings.ldap()?.searchPassword, 'N3w-Bind-Password');
      assert.equal(right.lines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50).length, 0);
    } finally {
      await right.berth.close();
    }
  });
});
