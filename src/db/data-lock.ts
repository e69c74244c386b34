// One Berth process per SQLite data directory. A second process on the same directory would keep
// its own caches and serve stale tags and deleted images; it refuses to start instead.
//
// The lock is an exclusive SQLite lock on <data dir>/berth.lock held for the process's life
// (locking_mode = EXCLUSIVE keeps it after the first write). It is a POSIX lock: the kernel drops it
// when the process dies, kill -9 included, so there is no stale lock file to clean up. On NFS it
// depends on the NFS lock daemon. More than one node: PostgreSQL (BERTH_DATABASE_URL).
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateFile } from '../lib/private-files.ts';

export class DataDirectoryInUse extends Error {
  constructor(readonly dataDir: string) {
    super(`another Berth process is using the data directory ${dataDir} (it holds ${path.join(dataDir, 'berth.lock')}); stop it first, or run more than one node on PostgreSQL (BERTH_DATABASE_URL)`);
    this.name = 'DataDirectoryInUse';
  }
}

export interface DataDirectoryLock {
  release(): void;
}

/** Takes the data directory's lock; throws DataDirectoryInUse when another process holds it. */
export function lockDataDirectory(dataDir: string): DataDirectoryLock {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, 'berth.lock');
  ensurePrivateFile(file);
  const db = new Database(file, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = DELETE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, since TEXT NOT NULL)');
    db.exec('DELETE FROM holder');
    db.prepare('INSERT INTO holder (pid, since) VALUES (?, ?)').run(process.pid, new Date().toISOString());
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY' || (e as { code?: string }).code === 'SQLITE_LOCKED') throw new DataDirectoryInUse(dataDir);
    throw e;
  }
  return {
    release() {
      if (db.open) db.close();
    },
  };
}
