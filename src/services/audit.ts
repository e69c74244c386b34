// Audit log of logins, pushes, pulls, deletes and membership changes. Events are buffered and
// written in batches (a pull must not pay a database write), and old entries are purged by a
// retention setting so the table cannot grow without bound.
import type { Db } from '../db/client.ts';

export interface AuditEvent {
  username: string;
  operation: string;
  resource: string;
  resourceType: string;
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
        // Plain multi-row INSERTs (far cheaper than Prisma's createMany on the pull path), all in
        // one transaction: one durable commit (one WAL fsync, which blocks the event loop) per flush.
        const stmts = [];
        for (let i = 0; i < batch.length; i += 200) {
          const rows = batch.slice(i, i + 200);
          const values = rows.map(() => '(?, ?, ?, ?, ?)').join(', ');
          const args = rows.flatMap((e) => [e.username, e.operation, e.resource, e.resourceType, e.createdAt]);
          stmts.push(this.db.$executeRawUnsafe(`INSERT INTO "AuditLog" ("username", "operation", "resource", "resourceType", "createdAt") VALUES ${values}`, ...args));
        }
        await this.db.$transaction(stmts);
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
