// The token-signing keys (row "token_signing_keys" of "Setting"): the only place their SQL lives.
// The value is sealed by the caller (src/auth/token.ts); here it is an opaque text, kept as a JSON
// string as every Setting value is. One row for the whole key set (current and previous), so a
// rotation is one compare-and-swap and no node ever sees half of one.
import { dialectOf, type Db } from './client.ts';

const KEY = 'token_signing_keys';

export class SigningKeyStore {
  private readonly insertSql: string;

  constructor(private readonly db: Db) {
    this.insertSql = dialectOf(db).text('INSERT INTO "Setting" ("key", "value") VALUES (?, ?) ON CONFLICT ("key") DO NOTHING');
  }

  /** The stored (sealed) key set, or null before the first start. */
  async read(): Promise<string | null> {
    const row = await this.db.setting.findUnique({ where: { key: KEY } });
    return row ? (JSON.parse(row.value) as string) : null;
  }

  /** Stores `value` unless a key set exists already (another node was first); returns the one stored. */
  async createOnce(value: string): Promise<string> {
    await this.db.$executeRawUnsafe(this.insertSql, KEY, JSON.stringify(value));
    const winner = await this.read();
    if (winner === null) throw new Error('the token-signing key could not be stored');
    return winner;
  }

  /** Replaces `expected` by `next`; false when the stored value is no longer `expected` (another rotation won). */
  async replace(expected: string, next: string): Promise<boolean> {
    const r = await this.db.setting.updateMany({ where: { key: KEY, value: JSON.stringify(expected) }, data: { value: JSON.stringify(next) } });
    return r.count === 1;
  }
}
