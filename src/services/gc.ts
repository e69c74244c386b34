// Garbage collection (Harbor's "Clean Up"): runs, their history and log, and the schedule.
//
// A run holds the registry's write lock exclusively (RegistryService.writes): uploads keep
// streaming, but completing one, mounting and manifest PUTs wait until the run is done, so
// nothing can start to rely on a blob between the decision to delete it and its deletion. The
// database rows go first, in one transaction (src/db/gc-store.ts); then the files of the blobs
// whose rows are gone; then files with no row at all (left by a crash between a blob's rename
// into the store and its row), when older than the time window. A crash between rows and files
// leaves files without rows, which the next run deletes.
import { Cron } from 'croner';
import type { Db } from '../db/client.ts';
import type { GcPlan, GcStore } from '../db/gc-store.ts';
import { parseDigest } from '../lib/digest.ts';
import { AppError } from '../lib/errors.ts';
import type { Log } from '../http/logger.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { RegistryService } from './registry-service.ts';

export interface GcParameters {
  delete_untagged: boolean;
  dry_run: boolean;
  /** Hours: anything younger is kept (pushes in progress). Harbor's default is 2. */
  time_window: number;
}

export type ScheduleType = 'None' | 'Hourly' | 'Daily' | 'Weekly' | 'Custom';

export interface GcSchedule {
  type: ScheduleType;
  cron: string;
  parameters: GcParameters;
}

export interface GcRunView {
  id: number;
  kind: 'MANUAL' | 'SCHEDULE';
  status: 'Pending' | 'Running' | 'Success' | 'Error' | 'Stopped';
  parameters: GcParameters;
  manifestsDeleted: number;
  blobsDeleted: number;
  bytesFreed: number;
  createdAt: Date;
  updatedAt: Date;
}

/** Harbor's crons for its fixed schedule types (seconds first). */
const FIXED_CRON: Record<string, string> = { Hourly: '0 0 * * * *', Daily: '0 0 0 * * *', Weekly: '0 0 0 * * 0' };
const SCHEDULE_KEY = 'gc_schedule';
const DEFAULT_PARAMETERS: GcParameters = { delete_untagged: false, dry_run: false, time_window: 2 };

export interface GcDeps {
  db: Db;
  store: GcStore;
  registry: RegistryService;
  blobs: BlobStore;
  log: Log;
}

export class GcService {
  private current: { id: number; stop: boolean } | null = null;
  private cron: Cron | null = null;
  private schedule: GcSchedule = { type: 'None', cron: '', parameters: DEFAULT_PARAMETERS };
  private done: Promise<void> = Promise.resolve();

  constructor(private readonly deps: GcDeps) {}

  /** Reads the saved schedule, arms it, and marks runs interrupted by a restart as stopped. */
  async start(): Promise<void> {
    await this.deps.db.gcRun.updateMany({ where: { status: { in: ['Pending', 'Running'] } }, data: { status: 'Stopped' } });
    const row = await this.deps.db.setting.findUnique({ where: { key: SCHEDULE_KEY } });
    if (row) this.arm(JSON.parse(row.value) as GcSchedule);
  }

  /** Validates Harbor's parameters object ({delete_untagged, dry_run, workers, time_window}). */
  static parameters(raw: unknown): GcParameters {
    const p = (raw ?? {}) as Record<string, unknown>;
    if (typeof p !== 'object' || Array.isArray(p)) throw new AppError('BAD_REQUEST', undefined, { message: 'parameters must be an object' });
    const bool = (k: string) => {
      const v = p[k];
      if (v === undefined) return false;
      if (typeof v !== 'boolean') throw new AppError('BAD_REQUEST', undefined, { message: `parameters.${k} must be true or false` });
      return v;
    };
    const tw = p.time_window ?? DEFAULT_PARAMETERS.time_window;
    if (typeof tw !== 'number' || !Number.isFinite(tw) || tw < 0 || tw > 24 * 365) throw new AppError('BAD_REQUEST', undefined, { message: 'parameters.time_window must be a number of hours (0 or more)' });
    return { delete_untagged: bool('delete_untagged'), dry_run: bool('dry_run'), time_window: tw };
  }

  /** Starts a run now; CONFLICT while one is running. Resolves once it is recorded (not finished). */
  async trigger(kind: 'MANUAL' | 'SCHEDULE', parameters: GcParameters): Promise<number> {
    if (this.current) throw new AppError('CONFLICT', undefined, { message: `garbage collection ${this.current.id} is still running` });
    const run = { id: 0, stop: false };
    this.current = run;
    try {
      run.id = (await this.deps.db.gcRun.create({ data: { kind, parameters: JSON.stringify(parameters) }, select: { id: true } })).id;
    } catch (e) {
      this.current = null;
      throw e;
    }
    this.done = this.execute(run, parameters).finally(() => {
      if (this.current === run) this.current = null;
    });
    return run.id;
  }

  /** Resolves when the run in progress (if any) has ended. */
  idle(): Promise<void> {
    return this.done;
  }

  async stop(id: number): Promise<void> {
    const row = await this.deps.db.gcRun.findUnique({ where: { id }, select: { id: true } });
    if (!row) throw new AppError('NOT_FOUND', undefined, { message: 'garbage collection run not found' });
    if (this.current?.id === id) this.current.stop = true;
  }

  private async execute(run: { id: number; stop: boolean }, p: GcParameters): Promise<void> {
    const lines: string[] = [];
    const say = (msg: string) => lines.push(`${new Date().toISOString()} [INFO] ${msg}`);
    const save = (data: Record<string, unknown>) => this.deps.db.gcRun.update({ where: { id: run.id }, data: { ...data, log: lines.join('\n') + '\n' } });
    const t0 = Date.now();
    let stats = { manifestsDeleted: 0, blobsDeleted: 0, bytesFreed: 0n };
    try {
      say(`garbage collection started: delete_untagged=${p.delete_untagged} dry_run=${p.dry_run} time_window=${p.time_window}h`);
      await save({ status: 'Running' });
      const cutoff = new Date(Date.now() - p.time_window * 3600_000);
      stats = await this.deps.registry.writes.exclusive(async () => {
        const plan = await this.deps.store.collect({ cutoff, deleteUntagged: p.delete_untagged, dryRun: p.dry_run });
        if (!p.dry_run) this.deps.registry.forgetCollected(plan.links, plan.manifests);
        return this.deletePlanned(plan, p.dry_run, run, say);
      });
      // The collected blobs are not met again here: their files are gone, or (dry run) their rows remain.
      const extra = await this.deleteUnrecorded(cutoff, p.dry_run, run, say);
      stats.blobsDeleted += extra.blobs;
      stats.bytesFreed += extra.bytes;
      say(`${p.dry_run ? 'would delete' : 'deleted'} ${stats.manifestsDeleted} untagged manifest(s) and ${stats.blobsDeleted} blob(s), ${p.dry_run ? 'freeing' : 'freed'} ${stats.bytesFreed} bytes`);
      say(`garbage collection ${run.stop ? 'stopped' : 'finished'} in ${Date.now() - t0} ms`);
      await save({ status: run.stop ? 'Stopped' : 'Success', ...stats });
      this.deps.log.info({ gc: run.id, ...stats, bytesFreed: Number(stats.bytesFreed), dryRun: p.dry_run }, 'garbage collection finished');
    } catch (e) {
      lines.push(`${new Date().toISOString()} [ERROR] ${(e as Error).message}`);
      this.deps.log.error({ gc: run.id, err: (e as Error).message }, 'garbage collection failed');
      await save({ status: 'Error', ...stats }).catch(() => undefined);
    }
  }

  /** Deletes the files of the blobs whose rows were collected (under the exclusive lock). */
  private async deletePlanned(plan: GcPlan, dryRun: boolean, run: { stop: boolean }, say: (m: string) => void) {
    for (const m of plan.manifests) say(`untagged manifest ${m.repository}@${m.digest}${dryRun ? ' would be' : ''} deleted`);
    const out = { manifestsDeleted: plan.manifests.length, blobsDeleted: 0, bytesFreed: BigInt(plan.manifestBytes) };
    for (const b of plan.blobs) {
      if (run.stop) break; // the rows are gone already: the next run deletes the files
      const d = parseDigest(b.digest);
      const size = d && (await this.deps.blobs.size(d));
      if (!d || size === null) continue; // a manifest kept in the database, counted in manifestBytes
      if (!dryRun) await this.deps.blobs.delete(d);
      out.blobsDeleted++;
      out.bytesFreed += BigInt(size);
      say(`blob ${b.digest} (${size} bytes)${dryRun ? ' would be' : ''} deleted`);
    }
    return out;
  }

  /**
   * Files older than the window that have no row: left by a crash between a blob's rename into
   * the store and its row, or by a run stopped or crashed after its transaction. The walk runs
   * unlocked; each batch is checked and deleted under the exclusive lock, where a file without
   * a row cannot be a push in progress (a push renames and records under the shared lock).
   */
  private async deleteUnrecorded(cutoff: Date, dryRun: boolean, run: { stop: boolean }, say: (m: string) => void) {
    const out = { blobs: 0, bytes: 0n };
    const batch: { digest: string; size: number }[] = [];
    const flush = () =>
      this.deps.registry.writes.exclusive(async () => {
        const rows = await this.deps.store.blobRowsOf(batch.map((b) => b.digest));
        for (const b of batch) {
          const d = parseDigest(b.digest);
          if (!d || rows.has(b.digest)) continue;
          if (!dryRun) await this.deps.blobs.delete(d);
          out.blobs++;
          out.bytes += BigInt(b.size);
          say(`blob ${b.digest} (${b.size} bytes) had no record${dryRun ? ', would be' : ','} deleted`);
        }
        batch.length = 0;
      });
    for await (const f of this.deps.blobs.list()) {
      if (run.stop) return out;
      if (f.modTime >= cutoff) continue;
      batch.push({ digest: f.digest.digest, size: f.size });
      if (batch.length >= 500) await flush();
    }
    if (batch.length) await flush();
    return out;
  }

  // ---- history ----------------------------------------------------------------------------

  async list(page: number, pageSize: number): Promise<{ total: number; items: GcRunView[] }> {
    const [total, rows] = await Promise.all([this.deps.db.gcRun.count(), this.deps.db.gcRun.findMany({ orderBy: { id: 'desc' }, skip: (page - 1) * pageSize, take: pageSize, omit: { log: true } })]);
    return { total, items: rows.map(view) };
  }

  async get(id: number): Promise<GcRunView> {
    const row = await this.deps.db.gcRun.findUnique({ where: { id }, omit: { log: true } });
    if (!row) throw new AppError('NOT_FOUND', undefined, { message: 'garbage collection run not found' });
    return view(row);
  }

  async log(id: number): Promise<string> {
    const row = await this.deps.db.gcRun.findUnique({ where: { id }, select: { log: true } });
    if (!row) throw new AppError('NOT_FOUND', undefined, { message: 'garbage collection run not found' });
    return row.log;
  }

  // ---- schedule ---------------------------------------------------------------------------

  getSchedule(): GcSchedule & { next?: Date } {
    const next = this.cron?.nextRun() ?? undefined;
    return { ...this.schedule, ...(next ? { next } : {}) };
  }

  /** Sets the recurring schedule (type None removes it). */
  async setSchedule(type: string, cron: string | undefined, parameters: GcParameters): Promise<void> {
    if (!['None', 'Hourly', 'Daily', 'Weekly', 'Custom'].includes(type)) throw new AppError('BAD_REQUEST', undefined, { message: `unknown schedule type ${type}` });
    const pattern = type === 'Custom' ? (cron ?? '').trim() : (FIXED_CRON[type] ?? '');
    if (type === 'Custom') {
      if (pattern.split(/\s+/).length !== 6) throw new AppError('BAD_REQUEST', undefined, { message: 'cron must have six fields: second minute hour day-of-month month day-of-week' });
      try {
        new Cron(pattern, { paused: true }).stop();
      } catch (e) {
        throw new AppError('BAD_REQUEST', undefined, { message: `invalid cron: ${(e as Error).message}` });
      }
    }
    const s: GcSchedule = { type: type as ScheduleType, cron: pattern, parameters };
    await this.deps.db.setting.upsert({ where: { key: SCHEDULE_KEY }, create: { key: SCHEDULE_KEY, value: JSON.stringify(s) }, update: { value: JSON.stringify(s) } });
    this.arm(s);
  }

  private arm(s: GcSchedule): void {
    this.cron?.stop();
    this.cron = null;
    this.schedule = s;
    if (s.type === 'None' || !s.cron) return;
    this.cron = new Cron(s.cron, { protect: true, unref: true }, () => {
      this.trigger('SCHEDULE', s.parameters).catch((err) => this.deps.log.warn({ err: (err as Error).message }, 'scheduled garbage collection not started'));
    });
  }

  /** Stops the schedule and waits for a run in progress. */
  async close(): Promise<void> {
    this.cron?.stop();
    this.cron = null;
    if (this.current) this.current.stop = true;
    await this.done;
  }
}

function view(r: { id: number; kind: string; status: string; parameters: string; manifestsDeleted: number; blobsDeleted: number; bytesFreed: bigint; createdAt: Date; updatedAt: Date }): GcRunView {
  return {
    id: r.id,
    kind: r.kind as GcRunView['kind'],
    status: r.status as GcRunView['status'],
    parameters: { ...DEFAULT_PARAMETERS, ...(JSON.parse(r.parameters) as Partial<GcParameters>) },
    manifestsDeleted: r.manifestsDeleted,
    blobsDeleted: r.blobsDeleted,
    bytesFreed: Number(r.bytesFreed),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}
