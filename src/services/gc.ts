// Garbage collection (Harbor's "Clean Up"): runs, their history and log, and the schedule.
//
// A run never stops the registry: it reads in bounded index pages (src/db/gc-store.ts) and gives
// the event loop back every few milliseconds, so pulls and pushes are answered throughout. Per
// repository it marks (manifests, tags, old links) and sweeps what nothing refers to; then blob
// rows no repository links, and their files; then manifest bytes no manifest has; then files with
// no row at all (left by a crash between a blob's rename into the store and its row), when older
// than the time window.
//
// Pushes stay correct during a run. Everything younger than the time window is kept. Each delete
// runs in one short transaction under the registry's write lock held exclusively
// (RegistryService.writes), which a push holds shared from the check of what it refers to until
// its rows are committed; inside it, what was pushed since the run began is read back and spared,
// and every statement checks its condition again as it deletes (see sweepRepository). Rows go
// before files; a crash between them leaves files without rows, which the next run deletes.
//
// Several nodes (PostgreSQL): the write lock is an advisory lock every node takes (src/db/
// cluster-lock.ts), so a push on any node and a sweep on any other exclude each other the same
// way; one run at a time for the whole cluster (the run lock, held for the run: a second start on
// any node is a 409); a stop asked on another node reaches the running node through the run's
// row ('Stopping', read back at each progress report and phase); a run whose node died (its row
// still Running, its lock gone with its connection) is marked Stopped by the next start or by a
// live node's check; the schedule fires on every node and runs on the one that claims the slot.
import { Cron } from 'croner';
import type { Changes } from '../db/changes.ts';
import type { HeldLock, TryLock } from '../db/cluster-lock.ts';
import type { GcManifestRow, GcReader, GcRunRow, GcRunUpdate, GcStore, GcSweep, Step } from '../db/gc-store.ts';
import { parseDigest } from '../lib/digest.ts';
import { AppError } from '../lib/errors.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { cronSlot } from './jobs.ts';
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

/** How far a run in progress has got (in memory only; the log and the counts carry it too). */
export interface GcProgress {
  phase: string;
  /** Rows and files read so far. */
  scanned: number;
  /** Found to delete so far (deleted already, unless a dry run). */
  manifests: number;
  blobs: number;
  bytes: number;
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
  /** While the run is in progress. */
  progress?: GcProgress;
}

/** Harbor's crons for its fixed schedule types (seconds first). */
const FIXED_CRON: Record<string, string> = { Hourly: '0 0 * * * *', Daily: '0 0 0 * * *', Weekly: '0 0 0 * * 0' };
/** The schedule's key among the settings (announced on topic 'settings' when saved). */
const SCHEDULE_SETTING = 'gc_schedule';
const DEFAULT_PARAMETERS: GcParameters = { delete_untagged: false, dry_run: false, time_window: 2 };

// Bounds on the work done between two turns of the event loop: pages of rows read, rows deleted
// per locked transaction, and the time after which a run lets requests in.
const REPOSITORY_PAGE = 500;
const MANIFEST_PAGE = 1000;
const TAG_PAGE = 2000;
const LINK_PAGE = 2000;
const BLOB_PAGE = 1000;
const CONTENT_PAGE = 1000;
const DELETE_BATCH = 250;
/** Blobs deleted per locked batch (their files too, so pushes wait for this many unlinks at most). */
const BLOB_DELETE_BATCH = 100;
/** File operations in flight at once: a few, leaving the thread pool to requests as well. */
const FILE_CONCURRENCY = 4;
const SLICE_MS = 4;
const PROGRESS_MS = 1000;
/** How often a node looks for runs left unfinished by a node that died (several nodes only). */
const DEAD_RUN_CHECK_MS = 60_000;
const MAX_OBJECT_LINES = 10_000;

interface Run {
  id: number;
  stop: boolean;
  progress?: GcProgress;
  /** The log so far (saved with the run at its end; GET .../log reads it from here meanwhile). */
  lines?: string[];
}

interface RunContext {
  run: Run;
  p: GcParameters;
  /** Older than this may go. */
  cutoff: Date;
  /** When the run began, taken under the exclusive lock: rows a push adds or renews later are dated at or after it. */
  since: Date;
  /**
   * The highest manifest id when the run began (taken with `since`): a row inserted later has a
   * higher id whatever the clock of the node that wrote it says (nodes' clocks differ a little).
   */
  sinceId: number;
  progress: GcProgress;
  say: (msg: string) => void;
  sayObject: (msg: string) => void;
  /** Writes progress to the run's log and counts, at most about once a second. */
  report: () => Promise<void>;
  /** Yields to the event loop once the current slice of work has taken SLICE_MS. */
  pace: () => Promise<void>;
}

/** What a dry run would have deleted, by digest, so later phases can tell what would become unreferenced. */
interface DryRunCounts {
  staleLinks: Map<string, number>;
  doomed: Map<string, number>;
}

interface RepositoryMark {
  /** The repository's manifests (only when some are doomed: the sweep's graph). */
  rows: GcManifestRow[];
  /** Untagged manifests older than the window that nothing kept reaches. */
  doomed: GcManifestRow[];
  /** Links older than the window that no kept manifest refers to. */
  stale: Set<string>;
}

function pacer(): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < SLICE_MS) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    since = performance.now();
  };
}

/** Where the service logs (pino's shape; services know no HTTP, so not its Log type). */
interface ServiceLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface GcDeps {
  store: GcStore;
  registry: RegistryService;
  blobs: BlobStore;
  log: ServiceLog;
  /**
   * One run for the whole cluster (PostgreSQL: an advisory lock held for the run). Absent (SQLite,
   * one process per data directory): one run per process is one run.
   */
  runLock?: TryLock;
  /**
   * Runs a scheduled slot on one node of the cluster (JobRunner.runSlot); absent: on this one.
   * Every node's schedule fires; the slot is claimed once.
   */
  once?: (job: string, slot: Date, fn: () => Promise<unknown>) => Promise<boolean>;
  /** A schedule saved on one node is armed on every node (topic 'settings', key 'gc_schedule'). */
  changes?: Changes;
}

export class GcService {
  private current: Run | null = null;
  private cron: Cron | null = null;
  private schedule: GcSchedule = { type: 'None', cron: '', parameters: DEFAULT_PARAMETERS };
  private done: Promise<void> = Promise.resolve();

  private closed = false;
  private deadRunTimer: NodeJS.Timeout | null = null;
  /** A check for dead nodes' runs in progress (it holds the run lock for a moment). */
  private checking: Promise<void> = Promise.resolve();

  constructor(private readonly deps: GcDeps) {
    deps.changes?.subscribe('settings', (key, local) => {
      if (local || (key !== null && key !== SCHEDULE_SETTING)) return;
      this.loadSchedule().catch((err) => deps.log.warn({ err: (err as Error).message }, 'garbage collection schedule not reloaded'));
    });
  }

  /** Reads the saved schedule and arms it (None when there is none). */
  private async loadSchedule(): Promise<void> {
    const saved = await this.deps.store.loadSchedule();
    if (this.closed) return;
    this.arm(saved ? (JSON.parse(saved) as GcSchedule) : { type: 'None', cron: '', parameters: DEFAULT_PARAMETERS });
  }

  /** Reads the saved schedule, arms it, and marks runs interrupted by a restart (or a dead node) as stopped. */
  async start(): Promise<void> {
    await this.markInterrupted();
    await this.loadSchedule();
    if (this.deps.runLock) {
      // Several nodes: one that dies in a run leaves its row Running; a live node notices.
      this.deadRunTimer = setInterval(() => void this.clearDeadRuns().catch((err) => this.deps.log.warn({ err: (err as Error).message }, 'garbage collection runs not checked')), DEAD_RUN_CHECK_MS);
      this.deadRunTimer.unref();
    }
  }

  /**
   * Marks runs that no node runs any more (their node died) as Stopped; a no-op while none is
   * unfinished or this node runs one (its trigger marked the others already).
   */
  clearDeadRuns(): Promise<void> {
    if (this.current) return Promise.resolve();
    const check = (async () => {
      if (await this.deps.store.hasUnfinished()) await this.markInterrupted();
    })();
    this.checking = check.catch(() => undefined);
    return check;
  }

  /**
   * Marks unfinished runs that no node is running as Stopped. With a cluster lock: only while the
   * run lock is free (a node that died mid-run lost its lock with its connection); while another
   * node holds it, its run is live, and the rows are left (the next run clears leftovers, and so
   * does every node's check once a minute, clearDeadRuns).
   */
  private async markInterrupted(): Promise<void> {
    if (!this.deps.runLock) {
      await this.deps.store.markInterrupted();
      return;
    }
    const held = await this.deps.runLock.tryAcquire();
    if (!held) return;
    try {
      await this.deps.store.markInterrupted();
    } finally {
      await held.release();
    }
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
    const run: Run = { id: 0, stop: false };
    this.current = run;
    let held: HeldLock | null = null;
    try {
      if (this.deps.runLock) {
        await this.checking; // this node's own check holds the run lock for a moment
        held = await this.deps.runLock.tryAcquire();
        if (!held) throw new AppError('CONFLICT', undefined, { message: 'a garbage collection is still running (on another node)' });
        // Holding the cluster's run lock: any other unfinished run is a dead node's.
        await this.deps.store.markInterrupted();
        held.onLost(() => {
          run.stop = true;
          this.deps.log.warn({ gc: run.id }, 'garbage collection lost its database connection; stopping');
        });
      }
      run.id = await this.deps.store.createRun(kind, JSON.stringify(parameters));
    } catch (e) {
      this.current = null;
      await held?.release().catch(() => undefined);
      throw e;
    }
    const lock = held;
    this.done = this.execute(run, parameters).finally(async () => {
      await lock?.release().catch(() => undefined);
      if (this.current === run) this.current = null;
    });
    return run.id;
  }

  /** Resolves when the run in progress (if any) has ended. */
  idle(): Promise<void> {
    return this.done;
  }

  /**
   * Stops a run. Run here: at once. Run by another node: the row is marked 'Stopping', which that
   * node reads at its next report (about once a second) or phase boundary, and stops there.
   */
  async stop(id: number): Promise<void> {
    if (this.current?.id === id) {
      this.current.stop = true;
      return;
    }
    if ((await this.deps.store.runStatus(id)) === null) throw new AppError('NOT_FOUND', undefined, { message: 'garbage collection run not found' });
    await this.deps.store.requestStop(id);
  }

  private async execute(run: Run, p: GcParameters): Promise<void> {
    const lines: string[] = [];
    run.lines = lines;
    let listed = 0;
    const say = (msg: string) => lines.push(`${new Date().toISOString()} [INFO] ${msg}`);
    // One line per object deleted, up to a bound: the counts stay exact beyond it.
    const sayObject = (msg: string) => {
      if (++listed <= MAX_OBJECT_LINES) say(msg);
      else if (listed === MAX_OBJECT_LINES + 1) say(`more than ${MAX_OBJECT_LINES} objects: the rest are counted, not listed`);
    };
    const t0 = Date.now();
    const progress: GcProgress = { phase: 'starting', scanned: 0, manifests: 0, blobs: 0, bytes: 0 };
    run.progress = progress;
    // Each write of the row reads back its status: 'Stopping' means a stop was asked for on some node.
    const heed = (status: string | null) => {
      if (status === 'Stopping') run.stop = true;
    };
    const save = async (data: GcRunUpdate) => heed(await this.deps.store.updateRun(run.id, { ...data, log: lines.join('\n') + '\n' }));
    const counts = () => ({ manifestsDeleted: progress.manifests, blobsDeleted: progress.blobs, bytesFreed: BigInt(progress.bytes) });
    let lastSave = Date.now();
    // Progress goes to the log and the run's counts about once a second (GET .../gc/{id} and
    // .../log show it); the log itself is saved at the end, not rewritten every second.
    const report = async () => {
      if (Date.now() - lastSave < PROGRESS_MS) return;
      lastSave = Date.now();
      say(`progress: ${progress.phase}: ${progress.scanned} objects scanned; found ${progress.manifests} manifest(s), ${progress.blobs} blob(s), ${progress.bytes} bytes`);
      heed(await this.deps.store.updateRun(run.id, counts()));
    };
    const ctx: RunContext = { run, p, cutoff: new Date(0), since: new Date(0), sinceId: 0, progress, say, sayObject, report, pace: pacer() };
    try {
      say(`garbage collection started: delete_untagged=${p.delete_untagged} dry_run=${p.dry_run} time_window=${p.time_window}h`);
      if (!(await this.deps.store.markRunning(run.id, lines.join('\n') + '\n'))) run.stop = true; // stopped while pending
      ctx.cutoff = new Date(Date.now() - p.time_window * 3600_000);
      // Taken while no push is between its check and its write: every row a push adds or renews
      // from now on is dated at or after `since`, which is how the sweep recognizes it.
      [ctx.since, ctx.sinceId] = await this.deps.registry.writes.exclusive(async () => [new Date(), await this.deps.store.highestManifestId()] as const);
      heed(await this.deps.store.runStatus(run.id));
      const reader = await this.deps.store.reader(ctx.cutoff);
      try {
        const dry: DryRunCounts = { staleLinks: new Map(), doomed: new Map() };
        progress.phase = 'repositories';
        await this.repositories(ctx, reader, dry);
        await save(counts()); // the log so far too, at each phase's end
        progress.phase = 'blobs';
        if (!run.stop) await this.orphanBlobs(ctx, reader, dry);
        await save(counts());
        progress.phase = 'manifest bytes';
        if (!run.stop) await this.orphanContents(ctx, reader, dry);
      } finally {
        reader.close();
      }
      progress.phase = 'files without a record';
      // The collected blobs are not met again here: their files are gone, or (dry run) their rows remain.
      if (!run.stop) await this.deleteUnrecorded(ctx);
      progress.phase = 'done';
      const freed = p.dry_run ? 'freeing' : 'freed';
      say(`${p.dry_run ? 'would delete' : 'deleted'} ${progress.manifests} untagged manifest(s) and ${progress.blobs} blob(s), ${freed} ${progress.bytes} bytes (${progress.scanned} objects scanned)`);
      say(`garbage collection ${run.stop ? 'stopped' : 'finished'} in ${Date.now() - t0} ms`);
      await save({ status: run.stop ? 'Stopped' : 'Success', ...counts() });
      this.deps.log.info({ gc: run.id, ...counts(), bytesFreed: progress.bytes, scanned: progress.scanned, dryRun: p.dry_run }, 'garbage collection finished');
    } catch (e) {
      lines.push(`${new Date().toISOString()} [ERROR] ${(e as Error).message}`);
      this.deps.log.error({ gc: run.id, err: (e as Error).message }, 'garbage collection failed');
      await save({ status: 'Error', ...counts() }).catch(() => undefined);
    }
  }

  /**
   * Per repository: mark (read its manifests, tags and old links in index pages), then sweep what
   * nothing refers to in short locked batches. A dry run only counts, and remembers what it would
   * have deleted so that the blob and manifest-bytes phases can tell what would become unreferenced.
   */
  private async repositories(ctx: RunContext, reader: GcReader, dry: DryRunCounts): Promise<void> {
    const queue = new SweepQueue(ctx, this.deps);
    await this.eachRepository(ctx, reader, dry, queue);
    if (!ctx.run.stop) await queue.flush();
  }

  private async eachRepository(ctx: RunContext, reader: GcReader, dry: DryRunCounts, queue: SweepQueue): Promise<void> {
    let after = 0;
    for (;;) {
      const repos = await reader.repositories(after, REPOSITORY_PAGE);
      if (!repos.length) return;
      for (const repo of repos) {
        if (ctx.run.stop) return;
        const mark = await this.mark(ctx, reader, repo);
        if (ctx.p.dry_run) {
          for (const m of mark.doomed) {
            dry.doomed.set(m.digest, (dry.doomed.get(m.digest) ?? 0) + 1);
            ctx.progress.manifests++;
            ctx.sayObject(`untagged manifest ${repo.name}@${m.digest} would be deleted`);
          }
          for (const d of mark.stale) dry.staleLinks.set(d, (dry.staleLinks.get(d) ?? 0) + 1);
        } else if (mark.doomed.length || mark.stale.size) {
          await queue.add(repo, mark);
        }
        await ctx.report();
      }
      after = repos.at(-1)!.id;
    }
  }

  /** Reads one repository and decides, as of now, which manifests and links nothing refers to. */
  private async mark(ctx: RunContext, reader: GcReader, repo: { id: number; name: string }): Promise<RepositoryMark> {
    const rows: GcManifestRow[] = [];
    const referenced = new Set<string>();
    for (let last = ''; ; ) {
      const page = await reader.manifests(repo.id, last, MANIFEST_PAGE);
      ctx.progress.scanned += page.length;
      for (const m of page) {
        if (ctx.p.delete_untagged) rows.push(m);
        else {
          referenced.add(m.digest);
          for (const r of m.refs) referenced.add(r);
        }
      }
      await ctx.pace();
      if (page.length < MANIFEST_PAGE) break;
      last = page.at(-1)!.digest;
    }
    let doomed: GcManifestRow[] = [];
    if (ctx.p.delete_untagged) {
      const tagged = new Set<string>();
      for (let last = ''; ; ) {
        const page = await reader.taggedDigests(repo.id, last, TAG_PAGE);
        ctx.progress.scanned += page.length;
        for (const d of page) tagged.add(d);
        await ctx.pace();
        if (page.length < TAG_PAGE) break;
        last = page.at(-1)!;
      }
      const graph = manifestGraph(rows);
      const kept = reach(graph, rows.filter((m) => tagged.has(m.digest) || m.recent).map((m) => m.digest));
      doomed = rows.filter((m) => !kept.has(m.digest));
      const gone = new Set(doomed.map((m) => m.digest));
      for (const m of rows) {
        if (gone.has(m.digest)) continue;
        referenced.add(m.digest);
        for (const r of m.refs) referenced.add(r);
      }
      await ctx.pace();
    }
    const stale = new Set<string>();
    for (let last = ''; ; ) {
      const page = await reader.oldLinks(repo.id, last, LINK_PAGE);
      ctx.progress.scanned += page.rows;
      for (const d of page.digests) if (!referenced.has(d)) stale.add(d);
      await ctx.pace();
      if (page.rows < LINK_PAGE) break;
      last = page.last;
    }
    return { rows: doomed.length ? rows : [], doomed, stale };
  }

  /**
   * Blob rows older than the window that no repository links (a dry run: whose every link it
   * would have deleted). Each batch's rows and files go together under the exclusive lock: a push
   * that finds the file (an upload adopting it, a mount) records its link under the shared lock,
   * so it either comes before (and the row is kept) or finds no file.
   */
  private async orphanBlobs(ctx: RunContext, reader: GcReader, dry: DryRunCounts): Promise<void> {
    let pending: string[] = [];
    const flush = async () => {
      const batch = pending;
      pending = [];
      if (!batch.length) return;
      if (ctx.p.dry_run) {
        await inParallel(batch, FILE_CONCURRENCY, (digest) => this.countBlob(ctx, digest, false));
        return;
      }
      await this.deps.registry.writes.exclusive(async () => {
        const gone = await this.deps.store.sweep(ctx.cutoff, (s) => s.deleteBlobs(batch));
        await inParallel(gone, FILE_CONCURRENCY, (b) => this.countBlob(ctx, b.digest, true));
      });
    };
    for (let last = ''; ; ) {
      const page = await reader.oldBlobs(last, BLOB_PAGE);
      for (const b of page.rows) {
        ctx.progress.scanned++;
        const wouldGo = ctx.p.dry_run ? (dry.staleLinks.get(b.digest) ?? 0) >= b.links : b.links === 0;
        if (wouldGo) pending.push(b.digest);
        if (pending.length >= BLOB_DELETE_BATCH) await flush();
      }
      await ctx.pace();
      await ctx.report();
      if (!page.last || ctx.run.stop) break;
      last = page.last;
    }
    if (!ctx.run.stop) await flush();
  }

  /** Counts (and unless dry, deletes) a collected blob's file; a manifest kept in the database has none. */
  private async countBlob(ctx: RunContext, digest: string, remove: boolean): Promise<void> {
    const d = parseDigest(digest);
    const size = d && (await this.deps.blobs.size(d));
    if (!d || size === null) return; // counted with the manifest bytes
    if (remove) await this.deps.blobs.delete(d);
    ctx.progress.blobs++;
    ctx.progress.bytes += size;
    ctx.sayObject(`blob ${digest} (${size} bytes)${remove ? '' : ' would be'} deleted`);
  }

  /**
   * Manifest bytes stored in the database that no manifest row has (a dry run: whose every row it
   * would have deleted). No lock needed: a manifest PUT writes its bytes and its row in one
   * transaction, and the delete checks again that no row has the digest.
   */
  private async orphanContents(ctx: RunContext, reader: GcReader, dry: DryRunCounts): Promise<void> {
    for (let last = ''; !ctx.run.stop; ) {
      const page = await reader.contents(last, CONTENT_PAGE);
      ctx.progress.scanned += page.length;
      const orphans = page.filter((c) => (ctx.p.dry_run ? (dry.doomed.get(c.digest) ?? 0) >= c.manifests : c.manifests === 0));
      if (ctx.p.dry_run) for (const c of orphans) ctx.progress.bytes += c.bytes;
      else if (orphans.length) for (const c of await this.deps.store.sweep(ctx.cutoff, (s) => s.deleteContents(orphans.map((o) => o.digest)))) ctx.progress.bytes += c.bytes;
      await ctx.pace();
      await ctx.report();
      if (page.length < CONTENT_PAGE) break;
      last = page.at(-1)!.digest;
    }
  }

  /**
   * Files older than the window that have no row: left by a crash between a blob's rename into
   * the store and its row, or by a run stopped or crashed after its transaction. The walk runs
   * unlocked; each batch is checked and deleted under the exclusive lock, where a file without
   * a row cannot be a push in progress (a push renames and records under the shared lock).
   */
  private async deleteUnrecorded(ctx: RunContext): Promise<void> {
    const dryRun = ctx.p.dry_run;
    const batch: { digest: string; size: number }[] = [];
    const flush = () =>
      this.deps.registry.writes.exclusive(async () => {
        const rows = await this.deps.store.blobRowsOf(batch.map((b) => b.digest));
        for (const b of batch) {
          const d = parseDigest(b.digest);
          if (!d || rows.has(b.digest)) continue;
          if (!dryRun) await this.deps.blobs.delete(d);
          ctx.progress.blobs++;
          ctx.progress.bytes += b.size;
          ctx.sayObject(`blob ${b.digest} (${b.size} bytes) had no record${dryRun ? ', would be' : ','} deleted`);
        }
        batch.length = 0;
      });
    for await (const f of this.deps.blobs.list()) {
      if (ctx.run.stop) return;
      ctx.progress.scanned++;
      if (f.modTime < ctx.cutoff) batch.push({ digest: f.digest.digest, size: f.size });
      if (batch.length >= DELETE_BATCH) await flush();
      await ctx.pace();
      await ctx.report();
    }
    if (batch.length) await flush();
  }

  // ---- history ----------------------------------------------------------------------------

  async list(page: number, pageSize: number): Promise<{ total: number; items: GcRunView[] }> {
    const [total, rows] = await Promise.all([this.deps.store.countRuns(), this.deps.store.listRuns((page - 1) * pageSize, pageSize)]);
    return { total, items: rows.map((r) => this.withProgress(view(r))) };
  }

  async get(id: number): Promise<GcRunView> {
    const row = await this.deps.store.getRun(id);
    if (!row) throw new AppError('NOT_FOUND', undefined, { message: 'garbage collection run not found' });
    return this.withProgress(view(row));
  }

  private withProgress(v: GcRunView): GcRunView {
    const p = this.current?.id === v.id ? this.current.progress : undefined;
    return p && (v.status === 'Running' || v.status === 'Pending') ? { ...v, progress: { ...p } } : v;
  }

  async log(id: number): Promise<string> {
    const live = this.current?.id === id ? this.current.lines : undefined;
    if (live) return live.join('\n') + '\n';
    const log = await this.deps.store.runLog(id);
    if (log === null) throw new AppError('NOT_FOUND', undefined, { message: 'garbage collection run not found' });
    return log;
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
    await this.deps.store.saveSchedule(JSON.stringify(s));
    this.arm(s);
    await this.deps.changes?.publish('settings', SCHEDULE_SETTING);
  }

  private arm(s: GcSchedule): void {
    this.cron?.stop();
    this.cron = null;
    this.schedule = s;
    if (s.type === 'None' || !s.cron) return;
    this.cron = new Cron(s.cron, { protect: true, unref: true }, (self: Cron) => {
      const start = () => this.trigger('SCHEDULE', s.parameters);
      // The slot is the scheduled time (the latest the pattern matches up to now), the same on
      // every node however late its timer fired.
      const slot = self.previousRuns(1, new Date(Date.now() + 1))[0] ?? cronSlot();
      (this.deps.once ? this.deps.once('gc.schedule', slot, start) : start()).catch((err) => this.deps.log.warn({ err: (err as Error).message }, 'scheduled garbage collection not started'));
    });
  }

  /** Stops the schedule and waits for a run in progress. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.deadRunTimer) clearInterval(this.deadRunTimer);
    this.cron?.stop();
    this.cron = null;
    if (this.current) this.current.stop = true;
    await this.done;
  }
}

function view(r: GcRunRow): GcRunView {
  return {
    id: r.id,
    kind: r.kind as GcRunView['kind'],
    // A run asked to stop is running until it has stopped (Harbor has no 'Stopping').
    status: (r.status === 'Stopping' ? 'Running' : r.status) as GcRunView['status'],
    parameters: { ...DEFAULT_PARAMETERS, ...(JSON.parse(r.parameters) as Partial<GcParameters>) },
    manifestsDeleted: r.manifestsDeleted,
    blobsDeleted: r.blobsDeleted,
    bytesFreed: Number(r.bytesFreed),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

/** One repository's sweep: what the mark found, and what the sweep has learned since. */
class RepositorySweep {
  readonly graph: ManifestGraph;
  /** Digests whose links must stay: what was pushed since the run began and what it lists, and doomed manifests that survived. */
  readonly spared = new Set<string>();
  private readonly seenFresh = new Set<string>();
  /** Doomed manifests reached from what was pushed since the run began. */
  private rescued = new Set<string>();

  constructor(readonly repo: { id: number; name: string }, readonly mark: RepositoryMark) {
    this.graph = manifestGraph(mark.rows);
  }

  /** Reads back what was pushed into the repository since the run began, and spares what it reaches. */
  *refresh(s: GcSweep, since: Date, sinceId: number): Step<void> {
    const fresh = (yield* s.pushedSince(this.repo.id, since, sinceId)).filter((f) => !this.seenFresh.has(f.digest));
    if (!fresh.length) return;
    for (const f of fresh) {
      this.seenFresh.add(f.digest);
      this.spared.add(f.digest);
      for (const r of f.refs) this.spared.add(r);
    }
    const roots = fresh.flatMap((f) => [f.digest, ...f.refs, ...(this.graph.bySubject.get(f.digest) ?? []).map((a) => a.digest)]);
    this.rescued = reach(this.graph, roots, this.rescued);
  }

  deletable(batch: GcManifestRow[]): number[] {
    return batch.filter((m) => !this.rescued.has(m.digest)).map((m) => m.id);
  }
}

type SweepOp = { sweep: RepositorySweep; manifests: GcManifestRow[]; links?: undefined } | { sweep: RepositorySweep; links: string[]; manifests?: undefined };

/**
 * Deletes what the mark found, in transactions of at most about DELETE_BATCH rows that may span
 * several repositories (a registry of many small repositories would otherwise pay a commit per
 * repository), each under the registry's exclusive write lock. A repository's manifests go
 * before its links, since a doomed manifest that survives keeps the links it lists.
 *
 * Why nothing a push relies on is deleted, although pushes run between the transactions: a push
 * checks what it refers to and records its rows under the shared lock, and every row it adds or
 * renews is dated at or after `since` (taken under the exclusive lock before the mark), and every
 * manifest row it inserts has an id above `sinceId` (whatever its node's clock). So inside
 * each transaction, for each repository in it, the manifests pushed since the run began are read
 * back (an index range) and everything they reach through the mark's graph is spared, with their
 * own digests and references. The statements themselves delete only rows still older than the
 * cutoff (a blob or manifest pushed again is renewed) and manifests no tag points at.
 */
class SweepQueue {
  private ops: SweepOp[] = [];
  private rows = 0;

  constructor(private readonly ctx: RunContext, private readonly deps: Pick<GcDeps, 'registry' | 'store'>) {}

  async add(repo: { id: number; name: string }, mark: RepositoryMark): Promise<void> {
    const sweep = new RepositorySweep(repo, mark);
    for (const m of mark.doomed) mark.stale.add(m.digest); // a deleted manifest's own link goes too
    for (let i = 0; i < mark.doomed.length; i += DELETE_BATCH) await this.push({ sweep, manifests: mark.doomed.slice(i, i + DELETE_BATCH) });
    const stale = [...mark.stale];
    for (let i = 0; i < stale.length; i += DELETE_BATCH) await this.push({ sweep, links: stale.slice(i, i + DELETE_BATCH) });
  }

  private async push(op: SweepOp): Promise<void> {
    this.ops.push(op);
    this.rows += (op.manifests ?? op.links).length;
    if (this.rows >= DELETE_BATCH) await this.flush();
  }

  async flush(): Promise<void> {
    const ops = this.ops;
    this.ops = [];
    this.rows = 0;
    if (!ops.length || this.ctx.run.stop) return;
    const { ctx } = this;
    await this.deps.registry.writes.exclusive(async () => {
      const results = await this.deps.store.sweep(ctx.cutoff, function* (s) {
        const out: string[][] = [];
        for (const op of ops) {
          yield* op.sweep.refresh(s, ctx.since, ctx.sinceId);
          if (op.manifests) {
            const deleted = new Set(yield* s.deleteManifests(op.sweep.repo.id, op.sweep.deletable(op.manifests)));
            // A doomed manifest that survives keeps what it lists (its links go later in this or a later transaction).
            for (const m of op.manifests) {
              if (deleted.has(m.digest)) continue;
              op.sweep.spared.add(m.digest);
              for (const r of m.refs) op.sweep.spared.add(r);
            }
            out.push([...deleted]);
          } else {
            out.push(
              yield* s.deleteLinks(
                op.sweep.repo.id,
                op.links.filter((d) => !op.sweep.spared.has(d)),
              ),
            );
          }
        }
        return out;
      });
      const links: { repositoryId: number; digest: string }[] = [];
      const manifests: { repositoryId: number; digest: string }[] = [];
      ops.forEach((op, i) => {
        const repositoryId = op.sweep.repo.id;
        for (const digest of results[i]) {
          if (op.links) {
            links.push({ repositoryId, digest });
            continue;
          }
          manifests.push({ repositoryId, digest });
          ctx.progress.manifests++;
          ctx.sayObject(`untagged manifest ${op.sweep.repo.name}@${digest} deleted`);
        }
      });
      await this.deps.registry.forgetCollected(links, manifests);
    });
    await ctx.pace();
  }
}

interface ManifestGraph {
  byDigest: Map<string, GcManifestRow>;
  bySubject: Map<string, GcManifestRow[]>;
}

function manifestGraph(rows: GcManifestRow[]): ManifestGraph {
  const byDigest = new Map(rows.map((m) => [m.digest, m]));
  const bySubject = new Map<string, GcManifestRow[]>();
  for (const m of rows) if (m.subject) (bySubject.get(m.subject) ?? bySubject.set(m.subject, []).get(m.subject)!).push(m);
  return { byDigest, bySubject };
}

/**
 * The manifests of the graph reached from `roots` (added to `kept`): the children a kept manifest
 * lists, and the accessories whose subject is kept, repeatedly. Linear in the graph's size.
 * Kept from the start are the tagged and the recent; untagged manifests older than the window that
 * are not reached are collected (signatures and other accessories go with their subject).
 */
function reach(g: ManifestGraph, roots: Iterable<string>, kept = new Set<string>()): Set<string> {
  const queue: string[] = [];
  const keep = (d: string) => {
    if (kept.has(d) || !g.byDigest.has(d)) return;
    kept.add(d);
    queue.push(d);
  };
  for (const d of roots) keep(d);
  while (queue.length) {
    const d = queue.pop()!;
    for (const r of g.byDigest.get(d)!.refs) keep(r);
    for (const a of g.bySubject.get(d) ?? []) keep(a.digest);
  }
  return kept;
}

/** Runs fn over the items with at most `limit` in flight. */
async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
