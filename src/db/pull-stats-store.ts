// Pull counts per repository and last pull times per manifest, written in batches.
import type { Db } from './client.ts';

export interface PullBatch {
  /** Pulls of the repository since the last write. */
  count: number;
  /** The manifests pulled (by digest). */
  digests: Set<string>;
}

export class PullStatsStore {
  constructor(private readonly db: Db) {}

  /** Adds the counts and sets the pull times, all in one transaction. */
  async add(batch: Map<string, PullBatch>, now: Date): Promise<void> {
    const ops = [];
    for (const [name, e] of batch) {
      // An increment, not a value: every node adds its own pulls.
      ops.push(this.db.repository.updateMany({ where: { name }, data: { pullCount: { increment: e.count } } }));
      if (e.digests.size) ops.push(this.db.manifest.updateMany({ where: { repository: { name }, digest: { in: [...e.digests] } }, data: { pulledAt: now } }));
    }
    await this.db.$transaction(ops);
  }
}
