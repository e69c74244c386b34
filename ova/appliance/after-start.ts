// ExecStartPost of berth.service: waits until Berth answers /api/v2.0/health, then deletes
// firstrun.env (the admin password is only needed for Berth's very first start).
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { PATHS } from './render.ts';

function healthy(port: number, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (tls ? https : http).get({ host: '127.0.0.1', port, path: '/api/v2.0/health', rejectUnauthorized: false, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

const port = Number(process.env.BERTH_PORT ?? 5000);
const tls = !!process.env.BERTH_TLS_CERT;
const deadline = Date.now() + Number(process.env.BERTH_START_TIMEOUT_S ?? 600) * 1000;
for (;;) {
  if (await healthy(port, tls)) break;
  if (Date.now() > deadline) {
    console.log('berth-after-start: Berth did not become healthy in time; keeping firstrun.env for the next start');
    process.exit(0);
  }
  await new Promise((r) => setTimeout(r, 1000));
}
if (fs.existsSync(PATHS.firstrunEnv)) {
  fs.rmSync(PATHS.firstrunEnv);
  console.log('berth-after-start: Berth is up; removed the first-start admin password from disk');
} else {
  console.log('berth-after-start: Berth is up');
}
