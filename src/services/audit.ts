// Audit log of logins, pushes, pulls, deletes and membership changes. Events are buffered and
// written in batches (a pull must not pay a database write), and old entries are purged by a
// retention setting so the table cannot grow without bound.
import type { Db } from '../db/client.ts';
import { AuditStore } from '../db/audit-store.ts';

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
  private readonly store: AuditStore;

  constructor(db: Db, private readonly opts: { retentionDays: number; maxRows: number; log: { warn(o: object, m: string): void } }) {
    this.store = new AuditStore(db);
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
        await this.store.insert(batch.map((e) => ({ ...e, clientAddress: e.clientAddress ?? null })));
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message, lost: batch.length }, 'audit write failed');
      }
    });
    return this.flushing;
  }

  /** Deletes entries older than the retention period, then the oldest beyond maxRows. */
  async purge(now = Date.now()): Promise<number> {
    return this.store.purge(new Date(now - this.opts.retentionDays * 86_400_000), this.opts.maxRows);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
