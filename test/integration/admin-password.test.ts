// The built-in admin's password on first start and in recovery: a generated password goes to a 0600
// file in the data directory (never to the log), the file goes away once the admin's password is
// changed, BERTH_ADMIN_PASSWORD given for an existing admin is reported as ignored, and
// `admin:reset-password` (the CLI, run as its own process) sets a new password with Berth stopped
// or running.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import supertest from 'supertest';
import { createApp, type BerthApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/http/logger.ts';
import { basic } from '../helpers/app.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'src/cli/reset-admin-password.ts');
const FILE = 'initial-admin-password';

interface Started {
  berth: BerthApp;
  request: ReturnType<typeof supertest>;
  /** The JSON log lines written so far. */
  logs: Record<string, unknown>[];
  rawLog(): string;
  close(): Promise<void>;
}

/** One start of Berth (in this process) on `dataDir`, with its log captured. */
async function start(dataDir: string, env: Record<string, string> = {}): Promise<Started> {
  let raw = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      raw += chunk;
      cb();
    },
  });
  const config = loadConfig({ BERTH_DATA_DIR: dataDir, BERTH_LOG_LEVEL: 'info', ...env });
  const berth = await createApp(config, { log: createLogger('info', sink) });
  return {
    berth,
    request: supertest(berth.app),
    get logs() {
      return raw.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    rawLog: () => raw,
    close: () => berth.close(),
  };
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'berth-adminpw-'));
}

async function status(s: Started, user: string, password: string): Promise<number> {
  return (await s.request.get('/api/v2.0/users/current').set('Authorization', basic(user, password))).status;
}

function readPasswordFile(dataDir: string): string {
  const file = path.join(dataDir, FILE);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'the password file is 0600');
  return fs.readFileSync(file, 'utf8').trim();
}

function resetCli(env: Record<string, string>) {
  const clean = { ...process.env };
  delete clean.BERTH_ADMIN_PASSWORD;
  return spawnSync(process.execPath, ['--import', 'tsx', CLI], { cwd: ROOT, env: { ...clean, BERTH_LOG_LEVEL: 'info', ...env }, encoding: 'utf8', timeout: 60_000 });
}

describe('first start without BERTH_ADMIN_PASSWORD', () => {
  test('the generated password is in a 0600 file named in the log, works, and is nowhere in the log', async () => {
    const dataDir = tempDir();
    try {
      const s = await start(dataDir);
      try {
        const password = readPasswordFile(dataDir);
        assert.ok(password.length >= 16, 'a long random password');
        assert.equal(await status(s, 'admin', password), 200);
        const line = s.logs.find((l) => l.file === path.join(dataDir, FILE));
        assert.ok(line, `a log line names the file: ${s.rawLog()}`);
        assert.equal(line.level, 'info');
        assert.ok(!s.rawLog().includes(password), 'the password is not logged');
        assert.equal(s.berth.config.adminPassword, undefined);
        assert.ok(!('generatedAdminPassword' in s.berth) || !(s.berth as unknown as Record<string, unknown>).generatedAdminPassword, 'the app hands out no password to print');
        // a leftover temporary file would hold the password too
        assert.deepEqual(fs.readdirSync(dataDir).filter((f) => f.includes(FILE)), [FILE]);
      } finally {
        await s.close();
      }
      // The next start keeps the file (the admin has not changed the password yet) and says where it is.
      const s2 = await start(dataDir);
      try {
        assert.equal(await status(s2, 'admin', readPasswordFile(dataDir)), 200);
        assert.ok(s2.logs.some((l) => l.file === path.join(dataDir, FILE)), s2.rawLog());
      } finally {
        await s2.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('the file is removed once the admin changes its own password', async () => {
    const dataDir = tempDir();
    try {
      const s = await start(dataDir);
      try {
        const password = readPasswordFile(dataDir);
        const me = await s.request.get('/api/v2.0/users/current').set('Authorization', basic('admin', password));
        // a wrong old password changes nothing
        const bad = await s.request.put(`/api/v2.0/users/${me.body.user_id}/password`).set('Authorization', basic('admin', password)).send({ old_password: 'Wrong0000', new_password: 'N3wAdminPass' });
        assert.equal(bad.status, 400);
        assert.ok(fs.existsSync(path.join(dataDir, FILE)));
        const ok = await s.request.put(`/api/v2.0/users/${me.body.user_id}/password`).set('Authorization', basic('admin', password)).send({ old_password: password, new_password: 'N3wAdminPass' });
        assert.equal(ok.status, 200, JSON.stringify(ok.body));
        assert.ok(!fs.existsSync(path.join(dataDir, FILE)), 'the initial password file is gone');
        assert.equal(await status(s, 'admin', 'N3wAdminPass'), 200);
      } finally {
        await s.close();
      }
      const s2 = await start(dataDir);
      try {
        assert.ok(!fs.existsSync(path.join(dataDir, FILE)), 'a later start does not bring it back');
        assert.ok(!s2.logs.some((l) => typeof l.file === 'string' && l.file.endsWith(FILE)), s2.rawLog());
      } finally {
        await s2.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("another user's password change keeps the file; another admin resetting the admin's password removes it", async () => {
    const dataDir = tempDir();
    try {
      const s = await start(dataDir);
      try {
        const adminAuth = basic('admin', readPasswordFile(dataDir));
        assert.equal((await s.request.post('/api/v2.0/users').set('Authorization', adminAuth).send({ username: 'ops', password: 'Ops0pass1', email: 'ops@example.test', realname: 'Ops' })).status, 201);
        const ops = (await s.request.get('/api/v2.0/users/current').set('Authorization', basic('ops', 'Ops0pass1'))).body.user_id as number;
        assert.equal((await s.request.put(`/api/v2.0/users/${ops}/password`).set('Authorization', adminAuth).send({ new_password: 'Ops0pass2' })).status, 200);
        assert.ok(fs.existsSync(path.join(dataDir, FILE)), "another user's password change leaves the admin's file");
        assert.equal((await s.request.put(`/api/v2.0/users/${ops}/sysadmin`).set('Authorization', adminAuth).send({ sysadmin_flag: true })).status, 200);
        const admin = (await s.request.get('/api/v2.0/users/current').set('Authorization', adminAuth)).body.user_id as number;
        assert.equal((await s.request.put(`/api/v2.0/users/${admin}/password`).set('Authorization', basic('ops', 'Ops0pass2')).send({ new_password: 'Res3tByOps' })).status, 200);
        assert.ok(!fs.existsSync(path.join(dataDir, FILE)), 'the file would hold a password that no longer works');
        assert.equal(await status(s, 'admin', 'Res3tByOps'), 200);
      } finally {
        await s.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('BERTH_ADMIN_PASSWORD', () => {
  test('sets the first password (no file); for an existing admin it is ignored, with one warning saying how to reset; the same password again is no warning', async () => {
    const dataDir = tempDir();
    try {
      const s1 = await start(dataDir, { BERTH_ADMIN_PASSWORD: 'Chosen0ne' });
      try {
        assert.equal(await status(s1, 'admin', 'Chosen0ne'), 200);
        assert.ok(!fs.existsSync(path.join(dataDir, FILE)), 'a chosen password is not written to a file');
        assert.ok(!s1.logs.some((l) => l.level === 'warn' && /BERTH_ADMIN_PASSWORD/.test(String(l.msg))), s1.rawLog());
      } finally {
        await s1.close();
      }
      const s = await start(dataDir, { BERTH_ADMIN_PASSWORD: 'An0therOne' });
      try {
        assert.equal(await status(s, 'admin', 'An0therOne'), 401);
        assert.equal(await status(s, 'admin', 'Chosen0ne'), 200);
        const warnings = s.logs.filter((l) => l.level === 'warn' && /BERTH_ADMIN_PASSWORD/.test(String(l.msg)));
        assert.equal(warnings.length, 1, s.rawLog());
        assert.match(String(warnings[0].msg), /ignored/);
        assert.match(String(warnings[0].msg), /admin:reset-password/);
        assert.ok(!s.rawLog().includes('An0therOne') && !s.rawLog().includes('Chosen0ne'));
      } finally {
        await s.close();
      }
      // A restart with the password the admin already has (a supervisor restarting a first start
      // that failed later) is not worth a warning.
      const s3 = await start(dataDir, { BERTH_ADMIN_PASSWORD: 'Chosen0ne' });
      try {
        assert.ok(!s3.logs.some((l) => l.level === 'warn' && /BERTH_ADMIN_PASSWORD/.test(String(l.msg))), s3.rawLog());
      } finally {
        await s3.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('npm run admin:reset-password', () => {
  test('with Berth stopped: a generated password goes to the 0600 file, not to a redirected output; the old one stops working', async () => {
    const dataDir = tempDir();
    try {
      await (await start(dataDir, { BERTH_ADMIN_PASSWORD: 'Forg0ttenPw' })).close();
      const r = resetCli({ BERTH_DATA_DIR: dataDir });
      assert.equal(r.status, 0, r.stderr + r.stdout);
      const password = readPasswordFile(dataDir);
      assert.ok(r.stdout.includes(path.join(dataDir, FILE)), `says where the password is: ${r.stdout}`);
      assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password), 'output that is not a terminal gets no password');
      const s = await start(dataDir);
      try {
        assert.equal(await status(s, 'admin', password), 200);
        assert.equal(await status(s, 'admin', 'Forg0ttenPw'), 401);
      } finally {
        await s.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('BERTH_ADMIN_PASSWORD chooses the new password (checked like any new password) and removes a stale file; nothing else changes', async () => {
    const dataDir = tempDir();
    try {
      const s0 = await start(dataDir);
      const generated = readPasswordFile(dataDir);
      const adminAuth = basic('admin', generated);
      assert.equal((await s0.request.post('/api/v2.0/users').set('Authorization', adminAuth).send({ username: 'dev', password: 'Dev0pass1', email: 'dev@example.test', realname: 'Dev' })).status, 201);
      const tok = await s0.request.post('/api/v2.0/users/current/tokens').set('Authorization', adminAuth).send({ name: 'ci' });
      assert.equal(tok.status, 201, JSON.stringify(tok.body));
      const browser = async (username: string, password: string) => {
        const res = await s0.request.post('/c/login').send({ principal: username, password });
        assert.equal(res.status, 200);
        return (res.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ');
      };
      const [adminBrowser, devBrowser] = [await browser('admin', generated), await browser('dev', 'Dev0pass1')];
      await s0.close();

      const weak = resetCli({ BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: 'weakweakweak' });
      assert.notEqual(weak.status, 0);
      assert.match(weak.stderr, /password must be 8-128 characters/);
      assert.equal(readPasswordFile(dataDir), generated, 'a refused password changes nothing');

      const r = resetCli({ BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: 'Recover3dPw' });
      assert.equal(r.status, 0, r.stderr + r.stdout);
      assert.ok(!r.stdout.includes('Recover3dPw') && !r.stderr.includes('Recover3dPw'));
      assert.ok(!fs.existsSync(path.join(dataDir, FILE)), 'the generated password no longer works: its file is gone');
      const s = await start(dataDir);
      try {
        assert.equal(await status(s, 'admin', 'Recover3dPw'), 200);
        assert.equal(await status(s, 'admin', generated), 401);
        assert.equal(await status(s, 'dev', 'Dev0pass1'), 200, 'other users keep their passwords');
        assert.equal(await status(s, 'admin', tok.body.token), 200, "the admin's personal tokens stay");
        const me = await s.request.get('/api/v2.0/users/current').set('Authorization', basic('admin', 'Recover3dPw'));
        assert.equal(me.body.sysadmin_flag, true);
        // Browser sessions are kept in the database: the reset ends the admin's, not the others'.
        assert.equal((await s.request.get('/api/v2.0/users/current').set('Cookie', adminBrowser)).status, 401);
        assert.equal((await s.request.get('/api/v2.0/users/current').set('Cookie', devBrowser)).status, 200);
      } finally {
        await s.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('with Berth running on the same data directory: the new password works at once', async () => {
    const dataDir = tempDir();
    try {
      const s = await start(dataDir, { BERTH_ADMIN_PASSWORD: 'Running0ne' });
      try {
        assert.equal(await status(s, 'admin', 'Running0ne'), 200);
        const r = resetCli({ BERTH_DATA_DIR: dataDir });
        assert.equal(r.status, 0, r.stderr + r.stdout);
        assert.equal(await status(s, 'admin', readPasswordFile(dataDir)), 200);
      } finally {
        await s.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a data directory Berth never started in is refused, and no database is created there', () => {
    const dataDir = tempDir();
    try {
      const r = resetCli({ BERTH_DATA_DIR: dataDir });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /no database/);
      assert.match(r.stderr, /BERTH_DATA_DIR/);
      assert.deepEqual(fs.readdirSync(dataDir), []);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('bad configuration is refused naming the variable', () => {
    const r = resetCli({ BERTH_PORT: 'http' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /BERTH_PORT: must be a whole number/);
  });
});
