// Audit log of logins, pushes, pulls, deletes and membership changes. Events are buffered and
// written in batches (a pull must not pay a database write), and old entries are purged by a
// retention setting so the table cannot grow without bound.
import { directSql, sqlDate, type Db } from '../db/client.ts';

const INSERT = 'INSERT INTO "AuditLog" ("username", "operation", "resource", "resourceType", "clientAddress", "createdAt") VALUES (?, ?, ?, ?, ?, ?)';

export interface AuditEvent {
  username: string;
  operation: string;
  resource: string;
  resourceType: string;
  /** The client's address (logins and failed logins record it). */
  clientAddress?: string;
}

export class AuditService {
  private buffer: (AuditEvent & { createdAt: Date })[] = [];
  private timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly db: Db, private readonly opts: { retentionDays: number; maxRows: number; log: { warn(o: object, m: string): void } }) {
    this.timer = setInterval(() => void this.flush(), 1000);
    this.timer.unref();
  }

  record(e: AuditEvent): void {
    this.buffer.push({ ...e, createdAt: new Date() });
    if (this.buffer.length >= 5000) void this.flush();
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (!this.buffer.length) return;
      const batch = this.buffer;
      this.buffer = [];
      try {
        const direct = directSql(this.db);
        if (direct) {
          // One prepared INSERT per row on the writer connection, all in one transaction: one
          // durable commit per flush, and no trip through Prisma's query engine, whose
          // WebAssembly memory grows with the biggest batch it was ever given and never shrinks.
          await direct.transaction((run) => {
            for (const e of batch) run(INSERT, [e.username, e.operation, e.resource, e.resourceType, e.clientAddress ?? null, sqlDate(e.createdAt)]);
          });
        } else {
          await this.db.$transaction(batch.map((e) => this.db.$executeRawUnsafe(INSERT, e.username, e.operation, e.resource, e.resourceType, e.clientAddress ?? null, e.createdAt)));
        }
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message, lost: batch.length }, 'audit write failed');
      }
    });
    return this.flushing;
  }

  /** Deletes entries older than the retention period, then the oldest beyond maxRows. */
  async purge(now = Date.now()): Promise<number> {
    const cutoff = new Date(now - this.opts.retentionDays * 86_400_000);
    let n = (await this.db.auditLog.deleteMany({ where: { createdAt: { lt: cutoff } } })).count;
    const total = await this.db.auditLog.count();
    if (total > this.opts.maxRows) {
      const edge = await this.db.auditLog.findMany({ orderBy: { id: 'desc' }, skip: this.opts.maxRows, take: 1, select: { id: true } });
      if (edge[0]) n += (await this.db.auditLog.deleteMany({ where: { id: { lte: edge[0].id } } })).count;
    }
    return n;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
