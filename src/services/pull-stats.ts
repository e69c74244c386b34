// Pull counts and last pull times, aggregated in memory and written in one transaction every few
// seconds, so a manifest GET never waits for a database write.
import type { Db } from '../db/client.ts';
import { PullStatsStore, type PullBatch } from '../db/pull-stats-store.ts';

export class PullStats {
  private pending = new Map<string, PullBatch>();
  private readonly store: PullStatsStore;
  private timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(db: Db, private readonly log: { warn(o: object, m: string): void }, intervalMs = 5000) {
    this.store = new PullStatsStore(db);
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  record(repository: string, digest: string | undefined): void {
    let e = this.pending.get(repository);
    if (!e) {
      e = { count: 0, digests: new Set() };
      this.pending.set(repository, e);
    }
    e.count++;
    if (digest) e.digests.add(digest);
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (!this.pending.size) return;
      const batch = this.pending;
      this.pending = new Map();
      try {
        await this.store.add(batch, new Date());
      } catch (err) {
        // Kept for the next write (a busy or briefly unreachable database loses no counts).
        for (const [name, e] of batch) {
          const now = this.pending.get(name);
          if (!now) this.pending.set(name, e);
          else {
            now.count += e.count;
            for (const d of e.digests) now.digests.add(d);
          }
        }
        this.log.warn({ err: (err as Error).message }, 'pull statistics write failed; kept for the next write');
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
