// The audit log: batches of events, retention, and the API's listing (newest first), read with
// prepared statements (src/db/list-store.ts).
import { dialectOf, directSql, pgSql, type Db } from './client.ts';
import { asDate, containsPattern, listReader, type ReadArg } from './list-store.ts';

export interface AuditRow {
  username: string;
  operation: string;
  resource: string;
  resourceType: string;
  clientAddress: string | null;
  createdAt: Date;
}

const INSERT = 'INSERT INTO "AuditLog" ("username", "operation", "resource", "resourceType", "clientAddress", "createdAt") VALUES (?, ?, ?, ?, ?, ?)';
// PostgreSQL: a whole batch in one statement (one round trip), columns as arrays.
const INSERT_MANY =
  'INSERT INTO "AuditLog" ("username", "operation", "resource", "resourceType", "clientAddress", "createdAt") SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamp(3)[])';

/** A column's value equal to `exact`, or containing `contains` (ignoring case). */
export type AuditMatch = { exact: string } | { contains: string };

/** Which entries a listing shows (all when empty). */
export interface AuditFilter {
  username?: AuditMatch;
  operation?: AuditMatch;
  resource?: AuditMatch;
  resourceType?: AuditMatch;
  /** Only entries about this project: its name, or a resource under it (`<project>/…`, `<project>:…`). */
  project?: string;
}

export interface AuditEntry extends AuditRow {
  id: number;
}

/** The log's lowest id (changes with every purge, which deletes a prefix by id) and highest. */
export interface AuditMarks {
  lo: number | null;
  hi: number | null;
}

const COLUMNS: Record<Exclude<keyof AuditFilter, 'project'>, string> = { username: '"username"', operation: '"operation"', resource: '"resource"', resourceType: '"resourceType"' };
const likePrefix = (v: string) => `${v.replace(/[\\%_]/g, (c) => '\\' + c)}%`;

export class AuditStore {
  constructor(private readonly db: Db) {}

  private where(f: AuditFilter): { sql: string; args: ReadArg[] } {
    const d = dialectOf(this.db);
    const parts: string[] = [];
    const args: ReadArg[] = [];
    for (const [k, col] of Object.entries(COLUMNS) as [keyof typeof COLUMNS, string][]) {
      const m = f[k];
      if (!m) continue;
      if ('exact' in m) {
        parts.push(`${col} = ?`);
        args.push(m.exact);
      } else {
        parts.push(`${col} ${d.ilike} ? ESCAPE '\\'`);
        args.push(containsPattern(m.contains));
      }
    }
    if (f.project !== undefined) {
      parts.push(`("resource" LIKE ? ESCAPE '\\' OR "resource" LIKE ? ESCAPE '\\' OR "resource" = ?)`);
      args.push(likePrefix(`${f.project}/`), likePrefix(`${f.project}:`), f.project);
    }
    return { sql: parts.join(' AND '), args };
  }

  /** The lowest and highest id (two index lookups). */
  async marks(): Promise<AuditMarks> {
    const rows = await listReader(this.db).all('SELECT (SELECT MIN("id") FROM "AuditLog") AS lo, (SELECT MAX("id") FROM "AuditLog") AS hi', []);
    const r = rows[0] ?? {};
    return { lo: r.lo == null ? null : Number(r.lo), hi: r.hi == null ? null : Number(r.hi) };
  }

  /** The id of the newest entry recorded before `before` (one index lookup), or null. */
  async lastBefore(before: Date): Promise<number | null> {
    const rows = await listReader(this.db).all('SELECT "id" FROM "AuditLog" WHERE "createdAt" < ? ORDER BY "createdAt" DESC LIMIT 1', [dialectOf(this.db).date(before)]);
    return rows.length ? Number(rows[0].id) : null;
  }

  /** How many entries match, optionally only those with an id above `above` and at most `upTo`. */
  async count(f: AuditFilter, range: { above?: number | null; upTo?: number | null } = {}): Promise<number> {
    const w = this.where(f);
    const parts = w.sql ? [w.sql] : [];
    const args = [...w.args];
    if (range.above != null) {
      parts.push('"id" > ?');
      args.push(range.above);
    }
    if (range.upTo != null) {
      parts.push('"id" <= ?');
      args.push(range.upTo);
    }
    const rows = await listReader(this.db).all(`SELECT COUNT(*) AS n FROM "AuditLog"${parts.length ? ` WHERE ${parts.join(' AND ')}` : ''}`, args);
    return Number(rows[0]?.n ?? 0);
  }

  /** Entries newest first (by id), after the entry `afterId` or after `offset` entries. */
  async page(f: AuditFilter, start: { afterId: number } | { offset: number }, limit: number): Promise<AuditEntry[]> {
    const w = this.where(f);
    const parts = w.sql ? [w.sql] : [];
    const args = [...w.args];
    if ('afterId' in start) {
      parts.push('"id" < ?');
      args.push(start.afterId);
    }
    let sql = `SELECT "id", "username", "operation", "resource", "resourceType", "clientAddress", "createdAt" FROM "AuditLog"${parts.length ? ` WHERE ${parts.join(' AND ')}` : ''} ORDER BY "id" DESC LIMIT ?`;
    args.push(limit);
    if ('offset' in start && start.offset > 0) {
      sql += ' OFFSET ?';
      args.push(start.offset);
    }
    const rows = await listReader(this.db).all(sql, args);
    return rows.map((r) => ({
      id: Number(r.id),
      username: r.username as string,
      operation: r.operation as string,
      resource: r.resource as string,
      resourceType: r.resourceType as string,
      clientAddress: (r.clientAddress as string | null) ?? null,
      createdAt: asDate(r.createdAt),
    }));
  }

  /** Writes the events in one transaction. */
  async insert(rows: AuditRow[]): Promise<void> {
    if (!rows.length) return;
    const d = dialectOf(this.db);
    const pg = pgSql(this.db);
    if (pg) {
      const col = <K extends keyof AuditRow>(k: K) => rows.map((r) => r[k]);
      await pg.query(INSERT_MANY, [col('username'), col('operation'), col('resource'), col('resourceType'), col('clientAddress'), rows.map((r) => d.date(r.createdAt))]);
      return;
    }
    const direct = directSql(this.db);
    if (direct) {
      // One prepared INSERT per row on the writer connection, all in one transaction: one
      // durable commit per flush, and no trip through Prisma's query engine, whose
      // WebAssembly memory grows with the biggest batch it was ever given and never shrinks.
      await direct.transaction((run) => {
        for (const e of rows) run(INSERT, [e.username, e.operation, e.resource, e.resourceType, e.clientAddress, d.date(e.createdAt)]);
      });
      return;
    }
    await this.db.$transaction(rows.map((e) => this.db.$executeRawUnsafe(INSERT, e.username, e.operation, e.resource, e.resourceType, e.clientAddress, e.createdAt)));
  }

  /** Deletes entries created before `cutoff`, then the oldest beyond `maxRows`; returns how many. */
  async purge(cutoff: Date, maxRows: number): Promise<number> {
    // Deletes a prefix by id (up to the newest entry older than the cutoff; ids follow recording
    // order but for a second's skew between nodes' batches), so that any purge changes the lowest
    // id: the lowest id then changes, which is how listings know their kept counts are void (AuditService.list).
    const old = await this.db.auditLog.aggregate({ where: { createdAt: { lt: cutoff } }, _max: { id: true } });
    let n = old._max.id === null ? 0 : (await this.db.auditLog.deleteMany({ where: { id: { lte: old._max.id } } })).count;
    const total = await this.db.auditLog.count();
    if (total > maxRows) {
      const edge = await this.db.auditLog.findMany({ orderBy: { id: 'desc' }, skip: maxRows, take: 1, select: { id: true } });
      if (edge[0]) n += (await this.db.auditLog.deleteMany({ where: { id: { lte: edge[0].id } } })).count;
    }
    return n;
  }
}
