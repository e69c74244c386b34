// `npm run admin:reset-password`: sets a new password for the built-in user "admin", for when it is
// lost. Works with Berth stopped or running (SQLite serializes the write). Reads the same
// configuration as Berth (BERTH_DATA_DIR, BERTH_DATABASE_URL), so it finds the same database.
//   BERTH_ADMIN_PASSWORD set: that password (same rules as any new password).
//   Otherwise: a generated one, written to <data dir>/initial-admin-password (0600) and shown on
//   the terminal (only on a terminal: output redirected to a file or a log gets the file's path).
// Changes nothing else: other users, the admin's personal tokens and its admin flag stay.
//
// An entry point like main.ts: it builds only what a password change needs (the database and the
// users service), not the whole app, so it starts no jobs, opens no port and writes no log.
import fs from 'node:fs';
import { ConfigError, loadConfig } from '../config/index.ts';
import { SessionStore } from '../auth/session.ts';
import { LocalChanges } from '../db/changes.ts';
import { isPostgresUrl, openDatabase, pgSql } from '../db/client.ts';
import { BrowserSessionStore } from '../db/session-store.ts';
import { UserStore } from '../db/user-store.ts';
import { AppError } from '../lib/errors.ts';
import { UsersService } from '../services/users.ts';

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`berth: configuration error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  // A wrong BERTH_DATA_DIR (another working directory, a variable not exported) would otherwise
  // create a fresh database and "reset" a password nobody uses.
  const file = config.databaseUrl.replace(/^file:/, '');
  if (!isPostgresUrl(config.databaseUrl) && !fs.existsSync(file)) {
    process.stderr.write(
      `berth: no database at ${file}: Berth has not been started with this data directory.\n` +
        `Run this command with the same BERTH_DATA_DIR (and BERTH_DATABASE_URL) as Berth; on its first start Berth creates the admin user.\n`,
    );
    return 1;
  }
  const db = await openDatabase(config.databaseUrl);
  try {
    // In this process nothing is cached: the running server (if any) verifies the new password
    // against the database at the next login. The admin's browser sessions are rows: they end
    // here, and running nodes drop their cached copies within a second (src/auth/session.ts).
    const sessions = new SessionStore(new BrowserSessionStore(db), new LocalChanges());
    const users = new UsersService({
      users: new UserStore(db),
      forgetCredentials: () => {},
      invalidateAccess: () => {},
      endSessions: (userId) => sessions.endUser(userId),
      dataDir: config.dataDir,
    });
    const { password, passwordFile } = await users.resetAdminPassword(config.adminPassword);
    // Running nodes drop the old password from their credential caches at once.
    const sql = pgSql(db);
    if (sql) await (await import('../db/pg-changes.ts')).announce(sql, 'credentials');
    const out = process.stdout;
    if (!passwordFile) {
      out.write('berth: the password of "admin" is now the one in BERTH_ADMIN_PASSWORD.\n');
    } else if (out.isTTY) {
      out.write(`berth: the new password of "admin" is:\n\n    ${password}\n\nIt is also in ${passwordFile} (mode 0600) until the admin changes it.\n`);
    } else {
      out.write(`berth: the new password of "admin" is in ${passwordFile} (mode 0600) until the admin changes it.\n`);
    }
    out.write('If Berth is running, it accepts the new password at once; the old one may still be accepted for up to a minute. The admin\'s browser sessions have ended.\n');
    return 0;
  } catch (e) {
    if (e instanceof AppError) {
      process.stderr.write(`berth: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await db.$disconnect();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`berth: resetting the admin password failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
    process.exit(1);
  },
);
