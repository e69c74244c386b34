// Storage quotas per project (Harbor's): the bytes of distinct blobs and manifests the project's
// repositories hold, against a limit set by a system admin (-1 = unlimited, the default).
//
// Enforced where a project gains bytes: an upload's commit, a mount, a manifest PUT. A blob the
// project already holds costs nothing. The check and the write that adds the bytes run under one
// lock per project (in this process, and on PostgreSQL also across nodes), so parallel pushes cannot
// together overshoot the limit. Projects without a limit pay only a cached lookup; the cached
// limits are dropped on every node when one changes (topic 'quotas', key: the project id).
import { LocalChanges, type Changes } from '../db/changes.ts';
import type { Db } from '../db/client.ts';
import { QuotaStore } from '../db/quota-store.ts';
import { AppError } from '../lib/errors.ts';
import { KeyedMutex } from '../lib/mutex.ts';
import { projectOf } from '../lib/reference.ts';

export interface QuotaDeps {
  db: Db;
  /** Project id by name (cached by the access service). */
  projectId: (name: string) => Promise<number | null>;
  /** Announces limit changes to every node (default: this process only). */
  changes?: Changes;
}

export class QuotaService {
  /** projectId -> storage limit in bytes (-1 unlimited) */
  private limits = new Map<number, number>();
  /**
   * projectId -> usage shown by the summary and /quotas (a SUM over the project's links: ~100 ms at
   * 20,000 artifacts). Dropped here by every write this node admits, on every node by content
   * announcements (GC, deletes, pushes), and at most USAGE_SHOWN_MS old for links added on another
   * node. Quota enforcement never uses it: admit() reads the usage under the project's lock.
   */
  private shown = new Map<number, { bytes: number; at: number }>();
  private locks = new KeyedMutex();
  private readonly store: QuotaStore;
  private readonly changes: Changes;

  constructor(private readonly deps: QuotaDeps) {
    this.store = new QuotaStore(deps.db);
    this.changes = deps.changes ?? new LocalChanges();
    this.changes.subscribe('quotas', (key) => {
      if (key === null) this.limits.clear();
      else this.limits.delete(Number(key));
    });
    for (const topic of ['manifests', 'tags', 'repositories'] as const) this.changes.subscribe(topic, () => this.shown.clear());
  }

  async limit(projectId: number): Promise<number> {
    // While announcements may be missed, read through (src/db/changes.ts, rule 1).
    const live = this.changes.live;
    const hit = live ? this.limits.get(projectId) : undefined;
    if (hit !== undefined) return hit;
    const gen = this.changes.generation('quotas');
    const limit = (await this.store.limit(projectId)) ?? -1;
    // Kept only if no change was announced during the read (rule 2).
    if (live && this.changes.generation('quotas') === gen) this.limits.set(projectId, limit);
    return limit;
  }

  /** A storage limit from a request: a whole number of bytes, or -1 for unlimited; BAD_REQUEST otherwise. */
  static parseLimit(raw: unknown, field: string): number {
    if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < -1) throw new AppError('BAD_REQUEST', undefined, { message: `${field} must be a number of bytes, or -1 for unlimited` });
    return raw;
  }

  /** Sets a project's storage limit in bytes (-1 for none; see parseLimit). */
  async setLimit(projectId: number, bytes: number): Promise<void> {
    await this.store.setLimit(projectId, bytes);
    await this.changes.publish('quotas', String(projectId));
  }

  /** Bytes of the distinct blobs (and manifests) linked into the project's repositories. */
  async usage(projectId: number): Promise<number> {
    return this.store.usage(projectId);
  }

  /**
   * The usage to show (project summary, /quotas): as usage(), from a short cache that every change
   * this node makes or hears of drops.
   */
  async shownUsage(projectId: number): Promise<number> {
    const hit = this.changes.live ? this.shown.get(projectId) : undefined;
    if (hit && Date.now() - hit.at < USAGE_SHOWN_MS) return hit.bytes;
    const gen = this.usageGen();
    const bytes = await this.usage(projectId);
    if (this.changes.live && this.usageGen() === gen) {
      if (this.shown.size >= 10_000) this.shown.clear();
      this.shown.set(projectId, { bytes, at: Date.now() });
    }
    return bytes;
  }

  private usageGen(): number {
    return this.changes.generation('manifests') + this.changes.generation('tags') + this.changes.generation('repositories');
  }

  /** Drops a deleted project's cached limit (on every node). */
  forget(projectId: number): void {
    this.limits.delete(projectId);
    void this.changes.publish('quotas', String(projectId)).catch(() => undefined);
  }

  /**
   * Runs `write` (which adds `digest` of `size` bytes to `repository`) if the project's quota
   * allows it; DENIED otherwise, as Harbor answers (docker does not retry it).
   */
  async admit(repository: string, digest: string, size: number, write: () => Promise<void>): Promise<void> {
    const projectId = await this.deps.projectId(projectOf(repository));
    if (projectId === null) return write();
    this.shown.delete(projectId);
    const limit = await this.limit(projectId);
    if (limit < 0) return write().finally(() => this.shown.delete(projectId));
    // In this process first, so a node holds at most one cluster lock per project at a time.
    return this.locks.run(String(projectId), () => this.store.exclusive(projectId, async () => {
      if (!(await this.holds(projectId, digest))) {
        const used = await this.usage(projectId);
        if (used + size > limit) {
          throw new AppError('DENIED', { used, limit, adding: size }, {
            message: `Quota exceeded when processing the request of adding ${mib(size)}, which when added to current usage of ${mib(used)} will exceed the configured upper limit of ${mib(limit)}.`,
          });
        }
      }
      try {
        await write();
      } finally {
        this.shown.delete(projectId);
      }
    }));
  }

  private holds(projectId: number, digest: string): Promise<boolean> {
    return this.store.holds(projectId, digest);
  }
}

/** How old a shown usage may be for links another node added (its pushes' manifests are announced). */
const USAGE_SHOWN_MS = 5_000;

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
