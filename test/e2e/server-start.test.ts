// Starting the real process: bad configuration stops the start with a message naming the variable,
// and HTTPS is served when a certificate is given (the first start's admin password: first-start.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import https from 'node:https';
import { startServer } from '../helpers/server.ts';
import { missingTool } from '../helpers/tools.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('bad configuration stops the start with the variable named', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], { cwd: ROOT, env: { ...process.env, BERTH_PORT: 'http' }, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /BERTH_PORT: must be a whole number/);
});

test('serves HTTPS with BERTH_TLS_CERT and BERTH_TLS_KEY', { skip: missingTool('openssl') }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const srv = await startServer({ env: { BERTH_TLS_CERT: path.join(dir, 'cert.pem'), BERTH_TLS_KEY: path.join(dir, 'key.pem') } });
    try {
      const ca = fs.readFileSync(path.join(dir, 'cert.pem'));
      const status = await new Promise<number>((resolve, reject) => {
        https.get(`https://127.0.0.1:${srv.port}/v2/`, { ca }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      assert.equal(status, 401);
    } finally {
      await srv.stop();
      fs.rmSync(srv.dataDir, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
