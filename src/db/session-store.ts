// Browser sessions of the web UI (table "BrowserSession"): the only place their SQL lives. A row is
// keyed by the SHA-256 of the cookie's session id, so the database never holds an id a browser
// could present. Written through Prisma on both engines: logins and the once-a-minute lastSeen
// writes are not hot paths (src/auth/session.ts keeps a per-node cache in front of `find`).
import type { Db } from './client.ts';

export interface SessionRow {
  /** SHA-256 (hex) of the session id the cookie carries. */
  idHash: string;
  /** "kind:id" of the principal ("user:12"). */
  owner: string;
  /** The principal as signed in, as JSON. */
  principal: string;
  csrf: string;
  createdAt: Date;
  lastSeen: Date;
}

/** What the session logic needs of the table (a fake may stand in for unit tests). */
export interface SessionRows {
  insert(row: SessionRow): Promise<void>;
  find(idHash: string): Promise<SessionRow | null>;
  /** Sets lastSeen; false when the row is gone. */
  touch(idHash: string, at: Date): Promise<boolean>;
  /** Sets lastSeen of several rows (missing ones are skipped). */
  touchMany(seen: readonly { idHash: string; at: Date }[]): Promise<void>;
  /**
   * Deletes the owner's rows beyond `keep`: `spare` (the row just made) stays, and so do the most
   * recently seen others (ties: the newer stays); their id hashes.
   */
  trimOwner(owner: string, keep: number, spare: string): Promise<string[]>;
  /** Deletes the least recently seen rows beyond `keep` in the whole table, never `spare`; their id hashes. */
  trimTotal(keep: number, spare: string): Promise<string[]>;
  /** Rows in the table. */
  count(): Promise<number>;
  /** Deletes one row; false when it was gone. */
  delete(idHash: string): Promise<boolean>;
  /** Deletes one row only when it was last seen before `before` (idle); false otherwise. */
  deleteIdle(idHash: string, before: Date): Promise<boolean>;
  /** Deletes the owner's rows, except `except`; their id hashes. */
  deleteOwner(owner: string, except?: string): Promise<string[]>;
  /** Deletes every row last seen before `before`; how many. */
  purgeIdle(before: Date): Promise<number>;
}

export class BrowserSessionStore implements SessionRows {
  constructor(private readonly db: Db) {}

  async insert(row: SessionRow): Promise<void> {
    await this.db.browserSession.create({ data: row });
  }

  async find(idHash: string): Promise<SessionRow | null> {
    return this.db.browserSession.findUnique({ where: { idHash } });
  }

  async touch(idHash: string, at: Date): Promise<boolean> {
    return (await this.db.browserSession.updateMany({ where: { idHash }, data: { lastSeen: at } })).count > 0;
  }

  async touchMany(seen: readonly { idHash: string; at: Date }[]): Promise<void> {
    if (!seen.length) return;
    await this.db.$transaction(seen.map((s) => this.db.browserSession.updateMany({ where: { idHash: s.idHash }, data: { lastSeen: s.at } })));
  }

  async trimOwner(owner: string, keep: number, spare: string): Promise<string[]> {
    const extra = await this.db.browserSession.findMany({
      where: { owner, idHash: { not: spare } },
      orderBy: [{ lastSeen: 'desc' }, { createdAt: 'desc' }, { idHash: 'asc' }],
      skip: Math.max(0, keep - 1),
      select: { idHash: true },
    });
    return this.deleteAll(extra.map((r) => r.idHash));
  }

  async trimTotal(keep: number, spare: string): Promise<string[]> {
    const n = (await this.count()) - keep;
    if (n <= 0) return [];
    const oldest = await this.db.browserSession.findMany({
      where: { idHash: { not: spare } },
      orderBy: [{ lastSeen: 'asc' }, { createdAt: 'asc' }, { idHash: 'asc' }],
      take: n,
      select: { idHash: true },
    });
    return this.deleteAll(oldest.map((r) => r.idHash));
  }

  count(): Promise<number> {
    return this.db.browserSession.count();
  }

  async delete(idHash: string): Promise<boolean> {
    return (await this.db.browserSession.deleteMany({ where: { idHash } })).count > 0;
  }

  async deleteIdle(idHash: string, before: Date): Promise<boolean> {
    return (await this.db.browserSession.deleteMany({ where: { idHash, lastSeen: { lt: before } } })).count > 0;
  }

  async deleteOwner(owner: string, except?: string): Promise<string[]> {
    const rows = await this.db.browserSession.findMany({
      where: { owner, ...(except ? { idHash: { not: except } } : {}) },
      select: { idHash: true },
    });
    return this.deleteAll(rows.map((r) => r.idHash));
  }

  async purgeIdle(before: Date): Promise<number> {
    return (await this.db.browserSession.deleteMany({ where: { lastSeen: { lt: before } } })).count;
  }

  /** Deletes the rows; the id hashes of those this call removed (another node may have been first). */
  private async deleteAll(idHashes: string[]): Promise<string[]> {
    if (!idHashes.length) return [];
    await this.db.browserSession.deleteMany({ where: { idHash: { in: idHashes } } });
    return idHashes;
  }
}
