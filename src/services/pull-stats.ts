// Pull counts and last pull times, aggregated in memory and written in one transaction every few
// seconds, so a manifest GET never waits for a database write.
import type { Db } from '../db/client.ts';

export class PullStats {
  private pending = new Map<string, { count: number; digests: Set<string> }>();
  private timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly db: Db, private readonly log: { warn(o: object, m: string): void }, intervalMs = 5000) {
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
      const now = new Date();
      try {
        const ops = [];
        for (const [name, e] of batch) {
          ops.push(this.db.repository.updateMany({ where: { name }, data: { pullCount: { increment: e.count } } }));
          if (e.digests.size) ops.push(this.db.manifest.updateMany({ where: { repository: { name }, digest: { in: [...e.digests] } }, data: { pulledAt: now } }));
        }
        await this.db.$transaction(ops);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'pull statistics write failed');
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
