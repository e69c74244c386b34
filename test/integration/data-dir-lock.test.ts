// One Berth process per SQLite data directory: a second one refuses to start with a clear message
// (it would otherwise serve from its own stale caches), and a killed holder leaves no stale lock.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/index.ts';
import { ADMIN_PASSWORD } from '../helpers/app.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';

const dirs: string[] = [];
const servers: ServerProcess[] = [];
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-lock-'));
  dirs.push(d);
  return d;
};
after(async () => {
  for (const s of servers) await s.stop().catch(() => undefined);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('the SQLite data directory lock', () => {
  test('a second process on the same data directory exits with a message naming the directory; after kill -9 of the first, a new one starts', async () => {
    const dataDir = tempDir();
    const first = await startServer({ dataDir });
    servers.push(first);
    await assert.rejects(startServer({ dataDir }), (e: Error) => {
      assert.match(e.message, /berth exited during start/);
      assert.match(e.message, /another Berth process is using the data directory/);
      assert.ok(e.message.includes(dataDir), e.message);
      assert.match(e.message, /PostgreSQL/);
      return true;
    });
    // The first one is unaffected.
    assert.equal((await fetch(`${first.url}/api/v2.0/health`)).status, 200);
    await first.kill();
    const next = await startServer({ dataDir });
    servers.push(next);
    assert.equal((await fetch(`${next.url}/api/v2.0/health`)).status, 200);
  });

  test('in one process: a second app on the directory is refused until the first is closed', async () => {
    const dataDir = tempDir();
    const config = loadConfig({ BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD, BERTH_LOG_LEVEL: 'silent' });
    const a = await createApp(config);
    try {
      await assert.rejects(createApp(config), /another Berth process is using the data directory/);
    } finally {
      await a.close();
    }
    const b = await createApp(config);
    await b.close();
  });
});
