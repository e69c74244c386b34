// Scheduled jobs, once per cluster (garbage collection's schedule, upload expiry, audit and session
// purges). Every node keeps its own timers; when one fires, the node claims the job's slot (the
// scheduled fire time, the same on every node) in the database, and only the node whose claim
// lands runs it (src/db/job-store.ts). On SQLite there is one node, and the claim always lands.
import os from 'node:os';
import crypto from 'node:crypto';
import type { JobStore } from '../db/job-store.ts';
import type { ServiceLog } from '../lib/log.ts';

export interface JobDeps {
  store: JobStore;
  log: ServiceLog;
  /** This node's name in the history (default: host, process id and a random suffix). */
  node?: string;
  /** How long the history of runs is kept (default 7 days). */
  keepMs?: number;
}

const DAY = 24 * 3600_000;
/** How often the runs' history is trimmed. */
const HISTORY_PURGE_MS = 3600_000;

export class JobRunner {
  readonly node: string;
  private timers = new Set<NodeJS.Timeout>();
  private running = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly deps: JobDeps) {
    this.node = deps.node ?? `${os.hostname()}:${process.pid}:${crypto.randomBytes(3).toString('hex')}`;
  }

  /** Trims the runs' history every hour (itself a job, once per cluster). */
  start(): void {
    this.every('job-runs.purge', HISTORY_PURGE_MS, async () => {
      await this.deps.store.purge(new Date(Date.now() - (this.deps.keepMs ?? 7 * DAY)));
    });
  }

  /**
   * Runs fn for the slot if this node is the first to claim it in the cluster; resolves whether it
   * ran here. fn's failure is logged, not thrown (the slot counts as taken: it is not retried).
   */
  async runSlot(job: string, slot: Date, fn: () => Promise<unknown>): Promise<boolean> {
    if (this.closed) return false;
    let mine: boolean;
    try {
      mine = await this.deps.store.claim(job, slot, this.node);
    } catch (err) {
      this.deps.log.warn({ job, slot, err: (err as Error).message }, 'scheduled job not claimed');
      return false;
    }
    if (!mine) return false;
    const run = fn().catch((err: unknown) => this.deps.log.warn({ job, slot, err: (err as Error).message }, 'scheduled job failed'));
    this.running.add(run);
    try {
      await run;
    } finally {
      this.running.delete(run);
    }
    return true;
  }

  /**
   * Runs fn every `periodMs`, at multiples of it since the epoch: every node's timer aims at the same
   * instants, and the instant is the slot, so a slot runs on one node however the nodes' timers drift.
   */
  every(job: string, periodMs: number, fn: () => Promise<unknown>): void {
    const arm = () => {
      if (this.closed) return;
      const wait = periodMs - (Date.now() % periodMs);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        // Timers fire a little late, never early: the slot is the multiple of the period nearest to now.
        const slot = new Date(Math.round(Date.now() / periodMs) * periodMs);
        void this.runSlot(job, slot, fn);
        arm();
      }, wait);
      timer.unref();
      this.timers.add(timer);
    };
    arm();
  }

  /** Stops the timers and waits for the jobs running here. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all([...this.running]);
  }
}

/** A cron slot: the scheduled fire time as every node sees it (croner fires a few ms after it; rounded to the second). */
export function cronSlot(now = Date.now()): Date {
  return new Date(Math.round(now / 1000) * 1000);
}
