// The run-time settings (table "Setting", one JSON value per Harbor key): the only place their SQL
// lives. Values are opaque JSON texts here; sealing secrets is the settings service's business. The
// token-signing keys share the table but have their own store (signing-key-store.ts).
import { dialectOf, type Db } from './client.ts';

export interface SettingRow {
  key: string;
  /** The value as JSON text. */
  value: string;
}

export class SettingStore {
  constructor(private readonly db: Db) {}

  /** Every saved setting. */
  all(): Promise<SettingRow[]> {
    return this.db.setting.findMany();
  }

  /** Saves the values (inserted or replaced), all or none. */
  async save(rows: readonly SettingRow[]): Promise<void> {
    await this.db.$transaction(rows.map(({ key, value }) => this.db.setting.upsert({ where: { key }, create: { key, value }, update: { value } })));
  }

  /**
   * Replaces the values of existing settings, all or none, and scrubs the old values from the
   * database file where the engine can: SQLite zeroes the freed bytes (secure_delete) and empties
   * the WAL, which held older copies (a TRUNCATE checkpoint). PostgreSQL cannot: old row versions
   * are reclaimed by VACUUM, not zeroed (README).
   */
  async replaceScrubbed(rows: readonly SettingRow[]): Promise<void> {
    const write = () => this.db.$transaction(rows.map(({ key, value }) => this.db.setting.update({ where: { key }, data: { value } })));
    if (dialectOf(this.db).engine === 'postgresql') {
      await write();
      return;
    }
    await this.db.$queryRawUnsafe('PRAGMA secure_delete = ON');
    try {
      await write();
    } finally {
      await this.db.$queryRawUnsafe('PRAGMA secure_delete = OFF');
    }
    await this.db.$queryRawUnsafe('PRAGMA wal_checkpoint(TRUNCATE)');
  }
}
