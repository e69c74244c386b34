// Audit log of logins, pushes, pulls, deletes and membership changes. Events are buffered and
// written in batches (a pull must not pay a database write), and old entries are purged by a
// retention setting so the table cannot grow without bound.
import { dialectOf, type Db } from '../db/client.ts';
import { AuditStore, type AuditEntry, type AuditFilter, type AuditSignature } from '../db/audit-store.ts';
import { Lru } from '../lib/lru.ts';

export type { AuditEntry, AuditFilter, AuditMatch } from '../db/audit-store.ts';

export interface AuditEvent {
  username: string;
  operation: string;
  resource: string;
  resourceType: string;
  /** The client's address (logins and failed logins record it). */
  clientAddress?: string;
}

/**
 * On PostgreSQL an entry with a lower id may still commit after a higher one (another node's batch):
 * what is read is kept only once the newest entry is this old. SQLite has one writer: ids commit in order.
 */
const SETTLED_MS = 10_000;

export class AuditService {
  /** filter -> its count, valid while the log's signature (lowest id, highest id) is the same. */
  private totals = new Lru<string, { sig: string; total: number }>(1_000);
  /** signature, filter, page size, page -> the id of the entry just before that page. */
  private anchors = new Lru<string, number>(10_000);

  private buffer: (AuditEvent & { createdAt: Date })[] = [];
  private timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private readonly store: AuditStore;

  constructor(private readonly db: Db, private readonly opts: { retentionDays: number; maxRows: number; log: { warn(o: object, m: string): void } }) {
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

  /**
   * One page of entries, newest first, and how many match: the count and the position of each page
   * are kept while no entry is added or purged (the signature: three index lookups), so a listing
   * neither counts the whole log nor skips every entry before a deep page on each request.
   */
  async list(f: AuditFilter, page: number, pageSize: number): Promise<{ total: number; items: AuditEntry[] }> {
    const s: AuditSignature = await this.store.signature();
    const settled = s.newestAt === null || dialectOf(this.db).engine === 'sqlite' || Date.now() - s.newestAt.getTime() > SETTLED_MS;
    const fkey = JSON.stringify(f);
    const sig = `${s.lo}|${s.hi}`;
    const keep = settled && fkey.length <= 2_000;
    const kept = keep ? this.totals.get(fkey) : undefined;
    const offset = (page - 1) * pageSize;
    const key = (p: number) => `${sig}|${pageSize}|${p}|${fkey}`;
    const anchor = keep && page > 1 ? this.anchors.get(key(page)) : undefined;
    const lead = anchor === undefined && offset > 0 ? 1 : 0;
    const [total, found] = await Promise.all([
      kept && kept.sig === sig ? kept.total : this.store.count(f),
      this.store.page(f, anchor !== undefined ? { afterId: anchor } : { offset: offset - lead }, pageSize + lead),
    ]);
    const items = lead ? found.slice(1) : found;
    // Kept under the signature read first: a change while this was read gives the next request
    // another signature, so what this read may have missed or included is never reused.
    if (keep) {
      this.totals.set(fkey, { sig, total });
      if (lead && found.length) this.anchors.set(key(page), found[0].id);
      if (items.length === pageSize) this.anchors.set(key(page + 1), items[items.length - 1].id);
    }
    return { total, items };
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
