// The metrics listener in the real process: BERTH_METRICS_ADDR starts it beside the main port (and
// the log says where), a scrape counts the main port's requests, a bad or busy address stops the
// start with the variable named, and SIGTERM closes it with the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startServer } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('BERTH_METRICS_ADDR: a listener of its own that counts the main port, closed on SIGTERM', async () => {
  const mport = await freePort();
  const srv = await startServer({ env: { BERTH_METRICS_ADDR: `127.0.0.1:${mport}` } });
  try {
    const lines = srv.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const said = lines.find((l) => l.msg === 'metrics listening (GET /metrics)');
    assert.ok(said, srv.output());
    assert.equal(said.address, `127.0.0.1:${mport}`);

    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${srv.url}/v2/`)).status, 401);
    assert.equal((await fetch(`${srv.url}/metrics`)).status, 404, 'not on the main port');
    const res = await fetch(`http://127.0.0.1:${mport}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const m = /^berth_http_requests_total\{group="v2_other",method="GET",status="401"\} (\d+)$/m.exec(text);
    assert.ok(m, text.slice(0, 2000));
    assert.ok(Number(m[1]) >= 3);
    assert.match(text, /^process_resident_memory_bytes \d+/m);
  } finally {
    await srv.stop();
    fs.rmSync(srv.dataDir, { recursive: true, force: true });
  }
  assert.equal(srv.proc.exitCode, 0);
  await assert.rejects(fetch(`http://127.0.0.1:${mport}/metrics`), 'the metrics listener is gone with the process');
});

test('a malformed BERTH_METRICS_ADDR stops the start with the variable named', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], { cwd: ROOT, env: { ...process.env, BERTH_METRICS_ADDR: '9090' }, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /BERTH_METRICS_ADDR: must be host:port/);
});

test('a metrics address in use stops the start, naming BERTH_METRICS_ADDR, and leaves the main port free', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
  const busy = (blocker.address() as net.AddressInfo).port;
  const main = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-metrics-e2e-'));
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], {
      cwd: ROOT,
      env: { ...process.env, BERTH_HOST: '127.0.0.1', BERTH_PORT: String(main), BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: 'Harbor12345', BERTH_LOG_LEVEL: 'info', BERTH_METRICS_ADDR: `127.0.0.1:${busy}` },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`BERTH_METRICS_ADDR 127\\.0\\.0\\.1:${busy}: EADDRINUSE`));
    // The log stream says so too, as JSON like every other line on stdout.
    const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const fatal = lines.find((l) => l.msg === 'cannot listen for metrics (BERTH_METRICS_ADDR)');
    assert.ok(fatal, r.stdout);
    assert.equal(fatal.level, 'fatal');
    assert.equal(fatal.port, busy);
    await assert.rejects(fetch(`http://127.0.0.1:${main}/v2/`), 'the main port never opened');
  } finally {
    blocker.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
