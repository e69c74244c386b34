// Upload sessions as rows of "UploadSession", so that any node continues a session another node
// started (src/storage/uploads.ts, cluster mode). The only place this table's SQL lives.
//
// Every write is a check-and-set on "version": a node writes only the version it read, and each
// write bumps it, so a node whose copy is stale finds out (0 rows) instead of overwriting what
// another node wrote. Before a request's body is read the node claims a lease on the row (only
// when nobody holds an unexpired one), renews it while the body streams, and clears it with its
// final write: two nodes never write parts of one session at once, and no pooled connection is
// held for the length of an upload.
//
// Times are the nodes' clocks (passed in), compared on the engine through the dialect: nodes are
// expected to keep their clocks in step (NTP), as token expiry already requires; leases last tens
// of seconds, far more than any skew NTP leaves.
//
// The types below match src/storage/uploads.ts's SharedSessionRecords by shape (storage and db do
// not import each other); src/app.ts hands this store to the UploadStore, and TypeScript checks
// the fit there.
import { dialectOf, pgSql, type Db, type PgSql, type SqlArg } from './client.ts';
import type { Dialect } from './dialect.ts';

export interface UploadSessionInfo {
  uuid: string;
  repository: string;
  startedAt: string;
  owner?: string;
}

export interface UploadSessionPart {
  partNumber: number;
  etag: string;
  size: number;
}

/** What a request leaves behind: how many bytes, where they are, and (optionally) their hash. */
export interface UploadSessionState {
  offset: number;
  multipartId?: string;
  parts: UploadSessionPart[];
  tail: number;
  /** The hash over the first `offset` bytes, in `hashFormat`; null when the writer did not know it. */
  hashState?: Buffer | null;
  hashFormat?: string | null;
}

export interface UploadSessionRow extends UploadSessionInfo, UploadSessionState {
  version: number;
  updatedAt: Date;
  lease: string | null;
  leaseUntil: Date | null;
}

const COLUMNS = '"uuid", "repository", "owner", "startedAt", "updatedAt", "offset", "hashState", "hashFormat", "multipartId", "parts", "tail", "lease", "leaseUntil", "version"';

function statements(d: Dialect) {
  const sql = {
    create: 'INSERT INTO "UploadSession" ("uuid", "repository", "owner", "startedAt", "updatedAt", "offset", "parts", "tail", "version") VALUES (?, ?, ?, ?, ?, 0, \'[]\', 0, 0)',
    read: `SELECT ${COLUMNS} FROM "UploadSession" WHERE "uuid" = ?`,
    count: 'SELECT (SELECT COUNT(*) FROM "UploadSession" WHERE "repository" = ?) AS "repository", (SELECT COUNT(*) FROM "UploadSession" WHERE "owner" = ?) AS "owner"',
    claim: `UPDATE "UploadSession" SET "lease" = ?, "leaseUntil" = ?, "updatedAt" = ?, "version" = "version" + 1 WHERE "uuid" = ? AND "version" = ? AND ("lease" IS NULL OR ${d.dateBefore('"leaseUntil"', '?')})`,
    renew: 'UPDATE "UploadSession" SET "leaseUntil" = ?, "updatedAt" = ? WHERE "uuid" = ? AND "version" = ? AND "lease" = ?',
    update:
      'UPDATE "UploadSession" SET "offset" = ?, "hashState" = ?, "hashFormat" = ?, "multipartId" = ?, "parts" = ?, "tail" = ?, "lease" = ?, "leaseUntil" = ?, "updatedAt" = ?, "version" = "version" + 1 WHERE "uuid" = ? AND "version" = ? AND "lease" = ?',
    release: 'UPDATE "UploadSession" SET "lease" = NULL, "leaseUntil" = NULL, "updatedAt" = ?, "version" = "version" + 1 WHERE "uuid" = ? AND "version" = ? AND "lease" = ?',
    delete: 'DELETE FROM "UploadSession" WHERE "uuid" = ?',
    idle: `SELECT ${COLUMNS} FROM "UploadSession" WHERE ${d.dateBefore('"updatedAt"', '?')} AND ("lease" IS NULL OR ${d.dateBefore('"leaseUntil"', '?')}) ORDER BY "updatedAt" LIMIT ?`,
  };
  return Object.fromEntries(Object.entries(sql).map(([k, v]) => [k, d.text(v)])) as typeof sql;
}

function toDate(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  return v instanceof Date ? v : new Date(String(v));
}

function toRow(r: Record<string, unknown>): UploadSessionRow {
  const hash = r.hashState as Uint8Array | null;
  return {
    uuid: String(r.uuid),
    repository: String(r.repository),
    startedAt: toDate(r.startedAt)!.toISOString(),
    ...(r.owner !== null && r.owner !== undefined ? { owner: String(r.owner) } : {}),
    updatedAt: toDate(r.updatedAt)!,
    offset: Number(r.offset),
    hashState: hash ? Buffer.from(hash) : null,
    hashFormat: (r.hashFormat as string | null) ?? null,
    ...(r.multipartId ? { multipartId: String(r.multipartId) } : {}),
    parts: JSON.parse(String(r.parts)) as UploadSessionPart[],
    tail: Number(r.tail),
    lease: (r.lease as string | null) ?? null,
    leaseUntil: toDate(r.leaseUntil),
    version: Number(r.version),
  };
}

export class UploadSessionStore {
  /** Marks the store as one every node shares: the UploadStore runs in cluster mode with it. */
  readonly shared = true as const;
  private readonly d: Dialect;
  private readonly pg: PgSql | null;
  private readonly sql: ReturnType<typeof statements>;

  constructor(private readonly db: Db) {
    this.d = dialectOf(db);
    this.pg = pgSql(db);
    this.sql = statements(this.d);
  }

  private async rows(sql: string, args: SqlArg[]): Promise<Record<string, unknown>[]> {
    if (this.pg) return (await this.pg.query(sql, args)).rows;
    return this.db.$queryRawUnsafe<Record<string, unknown>[]>(sql, ...args);
  }

  /** Rows changed. */
  private async exec(sql: string, args: SqlArg[]): Promise<number> {
    if (this.pg) return (await this.pg.query(sql, args)).rowCount;
    return this.db.$executeRawUnsafe(sql, ...args);
  }

  /** Inserts a new session's record: offset 0, version 0, no lease. */
  async create(info: UploadSessionInfo, now: Date): Promise<void> {
    await this.exec(this.sql.create, [info.uuid, info.repository, info.owner ?? null, this.d.date(new Date(info.startedAt)), this.d.date(now)]);
  }

  async read(uuid: string): Promise<UploadSessionRow | null> {
    const rows = await this.rows(this.sql.read, [uuid]);
    return rows[0] ? toRow(rows[0]) : null;
  }

  /** Open sessions of the repository and of the owner, on every node. */
  async count(repository: string, owner: string | undefined): Promise<{ repository: number; owner: number }> {
    const [r] = await this.rows(this.sql.count, [repository, owner ?? null]);
    return { repository: Number(r?.repository ?? 0), owner: Number(r?.owner ?? 0) };
  }

  /**
   * Takes the lease until `until` when the row is at `version` and nobody holds an unexpired lease;
   * the version goes up by one. False: another node wrote the row, holds it, or it is gone.
   */
  async claim(uuid: string, version: number, lease: string, now: Date, until: Date): Promise<boolean> {
    return (await this.exec(this.sql.claim, [lease, this.d.date(until), this.d.date(now), uuid, version, this.d.date(now)])) === 1;
  }

  /** Extends a lease held at `version`; false when it was lost (expired and taken, or the row is gone). */
  async renew(uuid: string, version: number, lease: string, now: Date, until: Date): Promise<boolean> {
    return (await this.exec(this.sql.renew, [this.d.date(until), this.d.date(now), uuid, version, lease])) === 1;
  }

  /**
   * Writes the state when the row is at `version` under `lease` (version + 1). The lease is kept
   * until `hold` (a write in the middle of a request), else cleared (the request's last write).
   */
  async update(uuid: string, version: number, lease: string, state: UploadSessionState, now: Date, hold?: Date): Promise<boolean> {
    const args: SqlArg[] = [
      state.offset,
      state.hashState ?? null,
      state.hashState ? (state.hashFormat ?? null) : null,
      state.multipartId ?? null,
      JSON.stringify(state.parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag, size: p.size }))),
      state.tail,
      hold ? lease : null,
      hold ? this.d.date(hold) : null,
      this.d.date(now),
      uuid,
      version,
      lease,
    ];
    return (await this.exec(this.sql.update, args)) === 1;
  }

  /** Clears a lease held at `version` without changing the state (version + 1). */
  async release(uuid: string, version: number, lease: string, now: Date): Promise<boolean> {
    return (await this.exec(this.sql.release, [this.d.date(now), uuid, version, lease])) === 1;
  }

  async delete(uuid: string): Promise<void> {
    await this.exec(this.sql.delete, [uuid]);
  }

  /** Sessions written last before `before` and not leased at `now`, oldest first; at most `limit`. */
  async idle(before: Date, now: Date, limit: number): Promise<UploadSessionRow[]> {
    return (await this.rows(this.sql.idle, [this.d.date(before), this.d.date(now), limit])).map(toRow);
  }
}
