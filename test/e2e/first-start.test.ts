// The first start as an operator lives it, with real processes: the generated admin password is in
// a 0600 file (stdout stays a pure JSON log without it), a first start that cannot listen keeps the
// password for the next one, the reset command works against a running server, and `npm start`
// passes SIGTERM and SIGINT on to Berth.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startServer } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FILE = 'initial-admin-password';

const auth = (user: string, password: string) => ({ Authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64') });

async function loginStatus(url: string, password: string): Promise<number> {
  return (await fetch(`${url}/api/v2.0/users/current`, { headers: auth('admin', password) })).status;
}

function passwordFromFile(dataDir: string): string {
  const file = path.join(dataDir, FILE);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'the password file is 0600');
  return fs.readFileSync(file, 'utf8').trim();
}

/** Every line of a JSON log stream, parsed; fails on any line that is not JSON. */
function jsonLines(out: string): Record<string, unknown>[] {
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`not a JSON log line: ${JSON.stringify(l)}`);
      }
    });
}

test('first start: the generated password is in a 0600 file, the JSON log says where but holds no password; the next start keeps the file', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-first-'));
  try {
    const s1 = await startServer({ dataDir, env: { BERTH_ADMIN_PASSWORD: '' } });
    let password: string;
    try {
      password = passwordFromFile(dataDir);
      assert.equal(await loginStatus(s1.url, password), 200);
    } finally {
      await s1.stop();
    }
    const lines = jsonLines(s1.output());
    assert.ok(lines.some((l) => l.file === path.join(dataDir, FILE) && l.level === 'info'), `the log names the file:\n${s1.output()}`);
    assert.ok(!s1.output().includes(password), 'the password is in no output');

    const s2 = await startServer({ dataDir, env: { BERTH_ADMIN_PASSWORD: '' } });
    try {
      assert.equal(passwordFromFile(dataDir), password, 'the same password, not a new one');
      assert.equal(await loginStatus(s2.url, password), 200);
    } finally {
      await s2.stop();
    }
    assert.ok(!s2.output().includes(password));
    assert.ok(jsonLines(s2.output()).some((l) => l.file === path.join(dataDir, FILE)), 'while the file exists, each start says where it is');
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a first start that cannot listen (port in use) exits non-zero and keeps the password for the next start', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-busy-'));
  const blocker = net.createServer();
  await new Promise<void>((resolve, reject) => {
    blocker.once('error', reject);
    blocker.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const env = { ...process.env, BERTH_HOST: '127.0.0.1', BERTH_PORT: String(port), BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: '', BERTH_LOG_LEVEL: 'info' };
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(r.status, 0, 'the start failed');
    assert.equal(r.signal, null, 'it exited by itself');
    const lines = jsonLines(r.stdout);
    assert.ok(lines.some((l) => l.level === 'fatal' && l.msg === 'cannot listen' && l.port === port), `the failure is in the log:\n${r.stdout}${r.stderr}`);
    assert.ok(lines.some((l) => l.file === path.join(dataDir, FILE)), 'the log said where the password is');
    const password = passwordFromFile(dataDir);
    assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password));
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
  try {
    // the port is free now: the second start accepts the password from the first
    const s = await startServer({ dataDir, port, env: { BERTH_ADMIN_PASSWORD: '' } });
    try {
      assert.equal(await loginStatus(s.url, passwordFromFile(dataDir)), 200);
    } finally {
      await s.stop();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('reset with Berth running: the reset command sets a new password the server accepts; an admin change removes the file', async () => {
  const s = await startServer({ env: { BERTH_ADMIN_PASSWORD: 'Lost0nePw' } });
  try {
    const clean = { ...process.env };
    delete clean.BERTH_ADMIN_PASSWORD;
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/reset-admin-password.ts')], { cwd: ROOT, env: { ...clean, BERTH_DATA_DIR: s.dataDir }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const password = passwordFromFile(s.dataDir);
    assert.equal(await loginStatus(s.url, password), 200);
    const me = (await (await fetch(`${s.url}/api/v2.0/users/current`, { headers: auth('admin', password) })).json()) as { user_id: number };
    const put = await fetch(`${s.url}/api/v2.0/users/${me.user_id}/password`, { method: 'PUT', headers: { ...auth('admin', password), 'Content-Type': 'application/json' }, body: JSON.stringify({ old_password: password, new_password: 'Own3dByAdmin' }) });
    assert.equal(put.status, 200);
    assert.ok(!fs.existsSync(path.join(s.dataDir, FILE)), 'the file is gone once the admin chose a password');
    assert.equal(await loginStatus(s.url, 'Own3dByAdmin'), 200);
  } finally {
    await s.stop();
    fs.rmSync(s.dataDir, { recursive: true, force: true });
  }
});

// ---- npm start and signals ----------------------------------------------------------------------

/** The pids of all descendants of `pid` (Linux /proc). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) if (pp === p) (out.push(child), walk(child));
  };
  walk(pid);
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Outside CI, without /proc or a build, these two skip and say so; under CI=true they always run (and fail if they cannot). */
function npmStartSkip(): string | false {
  if (process.env.CI === 'true') return false;
  if (!fs.existsSync('/proc/self/stat')) return 'skipped: needs /proc (Linux)';
  if (!fs.existsSync(path.join(ROOT, 'dist/src/main.js'))) return 'skipped: no build (npm run build makes dist/)';
  return false;
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`npm start passes ${signal} to Berth: killing npm's process stops Berth`, { skip: npmStartSkip() }, async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-npm-'));
    const port = await freePort();
    let out = '';
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      env: { ...process.env, BERTH_HOST: '127.0.0.1', BERTH_PORT: String(port), BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: 'Harbor12345', BERTH_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    npm.stdout!.on('data', (d) => (out += d));
    npm.stderr!.on('data', (d) => (out += d));
    const npmExited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
    let berthPids: number[] = [];
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        assert.equal(npm.exitCode, null, `npm start ended early:\n${out}`);
        const ok = await fetch(`http://127.0.0.1:${port}/api/v2.0/health`).then((r) => r.ok, () => false);
        if (ok) break;
        assert.ok(Date.now() < deadline, `Berth did not start under npm start:\n${out}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      berthPids = descendants(npm.pid!);
      assert.ok(berthPids.length > 0, 'npm runs Berth as a child');
      npm.kill(signal);
      // Berth shuts down gracefully within seconds; a process left behind would run forever.
      const stopBy = Date.now() + 20_000;
      while (berthPids.some(alive) && Date.now() < stopBy) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(berthPids.filter(alive), [], `processes left running after ${signal} to npm:\n${out}`);
      assert.ok(/"msg":"shutting down"/.test(out), `Berth shut down by itself:\n${out}`);
    } finally {
      for (const pid of berthPids.filter(alive)) process.kill(pid, 'SIGKILL');
      if (npm.exitCode === null) npm.kill('SIGKILL');
      await npmExited;
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
}
