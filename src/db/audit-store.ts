// The audit log's writes: batches of events and retention. Reads (the API's listing) go through
// Prisma in the services that page them.
import { dialectOf, directSql, pgSql, type Db } from './client.ts';

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

export class AuditStore {
  constructor(private readonly db: Db) {}

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
    let n = (await this.db.auditLog.deleteMany({ where: { createdAt: { lt: cutoff } } })).count;
    const total = await this.db.auditLog.count();
    if (total > maxRows) {
      const edge = await this.db.auditLog.findMany({ orderBy: { id: 'desc' }, skip: maxRows, take: 1, select: { id: true } });
      if (edge[0]) n += (await this.db.auditLog.deleteMany({ where: { id: { lte: edge[0].id } } })).count;
    }
    return n;
  }
}
