// A fresh Berth app per test file: its own temp data directory and SQLite file, driven by supertest.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { createApp, type AppOverrides, type BerthApp } from '../../src/app.ts';
import { adminOnlyPolicy } from '../../src/access/principal.ts';
import { loadConfig } from '../../src/config/index.ts';

export const ADMIN_PASSWORD = 'Harbor12345';

export interface TestApp {
  berth: BerthApp;
  request: ReturnType<typeof supertest>;
  /** Authorization header value for the built-in admin. */
  adminAuth: string;
  dataDir: string;
  close(): Promise<void>;
}

export function basic(user: string, password: string): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
}

/**
 * By default the app runs the /v2 API with Basic auth and the admin-only policy, so registry tests
 * can use any repository name without creating projects. Identity tests ask for the real thing with
 * makeApp(env, REAL_ACCESS).
 */
export const REAL_ACCESS: AppOverrides = { auth: 'token', policy: undefined };

export async function makeApp(env: Record<string, string> = {}, given: AppOverrides = {}): Promise<TestApp> {
  const overrides: AppOverrides = { auth: 'basic', policy: adminOnlyPolicy, ...given };
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-test-'));
  const config = loadConfig({ BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD, BERTH_LOG_LEVEL: 'silent', ...env });
  const berth = await createApp(config, overrides);
  return {
    berth,
    request: supertest(berth.app),
    adminAuth: basic('admin', ADMIN_PASSWORD),
    dataDir,
    async close() {
      await berth.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
