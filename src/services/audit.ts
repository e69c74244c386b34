// Audit log of logins, pushes, pulls, deletes and membership changes. Events are buffered and
// written in batches (a pull must not pay a database write), and old entries are purged by a
// retention setting so the table cannot grow without bound.
import { dialectOf, type Db } from '../db/client.ts';
import { AuditStore, type AuditEntry, type AuditFilter } from '../db/audit-store.ts';
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
 * PostgreSQL: an entry with a lower id may commit after a higher one (another node's batch), so a
 * count is kept only up to the newest entry recorded this long ago. SQLite has one writer: ids
 * commit in order, and everything read is settled.
 */
const SETTLE_MS = 30_000;

/** A filter's count up to a settled id, valid while the log's lowest id is `lo` (no purge since). */
interface KeptCount {
  lo: number | null;
  upTo: number | null;
  count: number;
}

export class AuditService {
  private buffer: (AuditEvent & { createdAt: Date })[] = [];
  private timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private readonly store: AuditStore;
  /** filter -> its count up to a settled id. */
  private kept = new Lru<string, KeptCount>(1_000, 1024 * 1024);
  /**
   * lowest id, filter, rank -> the id of the entry with that rank counted from the oldest. Ranks
   * from the bottom stay put while entries are added at the top, so a page is found again (or the
   * next one of a walk) by the rank of the entry before it, whatever was added meanwhile.
   */
  private ranks = new Lru<string, number>(20_000, 4 * 1024 * 1024);

  /** `settleMs`: on PostgreSQL, how old an entry must be before counts are kept up to it (SETTLE_MS). */
  constructor(private readonly db: Db, private readonly opts: { retentionDays: number; maxRows: number; log: { warn(o: object, m: string): void }; settleMs?: number }) {
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
   * One page of entries, newest first, and how many match. The count is kept up to a settled id
   * and only newer entries are counted again; the entry before a page is found by its rank from the
   * oldest. So a listing neither counts the whole log nor skips every entry before a deep page on
   * each request, and a purge (the lowest id changes) voids both.
   */
  async list(f: AuditFilter, page: number, pageSize: number): Promise<{ total: number; items: AuditEntry[] }> {
    const fkey = JSON.stringify(f);
    const cacheable = fkey.length <= 2_000;
    const marks = await this.store.marks();
    const settled = dialectOf(this.db).engine === 'sqlite' ? marks.hi : await this.store.lastBefore(new Date(Date.now() - (this.opts.settleMs ?? SETTLE_MS)));
    let kept = cacheable ? this.kept.get(fkey) : undefined;
    if (!kept || kept.lo !== marks.lo || (kept.upTo ?? 0) > (settled ?? 0)) kept = { lo: marks.lo, upTo: null, count: 0 };
    // Counted up to the settled id (from what was kept), then what is newer.
    if (settled !== null && settled !== kept.upTo) kept = { lo: marks.lo, upTo: settled, count: kept.count + (await this.store.count(f, { above: kept.upTo, upTo: settled })) };
    const recent = await this.store.count(f, { above: kept.upTo });
    const total = kept.count + recent;
    if (cacheable) this.kept.set(fkey, kept);

    const offset = (page - 1) * pageSize;
    const first = total - offset; // the rank of the page's first entry (the newest has rank `total`)
    const rankKey = (rank: number) => `${marks.lo}|${rank}|${fkey}`;
    const anchor = cacheable && offset > 0 ? this.ranks.get(rankKey(first + 1)) : undefined;
    const lead = anchor === undefined && offset > 0 ? 1 : 0;
    const found = await this.store.page(f, anchor !== undefined ? { afterId: anchor } : { offset: offset - lead }, pageSize + lead);
    const items = lead ? found.slice(1) : found;
    // A rank is the total less the position, so only if nothing was added between the count and
    // the page; and only of settled entries (a later commit below an unsettled one would move it).
    const steady = cacheable && kept.upTo !== null && (offset === 0 || anchor === undefined ? (await this.store.count(f, { above: kept.upTo })) === recent : true);
    const remember = (rank: number, id: number) => {
      if (steady && id <= kept.upTo!) this.ranks.set(rankKey(rank), id);
    };
    if (lead && found.length) remember(first + 1, found[0].id);
    if (items.length) remember(first - items.length + 1, items[items.length - 1].id);
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
