// Harbor's tag retention (/retentions): one policy per project says which artifacts to keep; a run
// deletes every other artifact of each repository the rules cover, the way a person deleting them
// through the API would (through the artifacts service, so caches, immutable tags and the audit log
// hold). A dry run only reports. Runs are manual or scheduled (Harbor's 6-field cron, fired once per
// cluster through the job runner); executions and a task per repository are rows
// (src/db/retention-store.ts), so any node lists them, stops them, and marks a dead node's run
// Failed.
//
// Rules (Harbor's templates, combined with "or": an artifact any rule keeps is kept):
//   latestPushedK       the K most recently pushed          latestPulledN     the N most recently pulled
//   nDaysSinceLastPush  pushed within the last N days        nDaysSinceLastPull pulled within the last N days
//   always              every artifact the rule selects
// A rule selects, in the repositories its scope selector matches (the name below the project:
// `**`, `team/*`), the artifacts with a tag its tag selector matches (`matches`) or with a tag it
// does not match (`excludes`), and untagged artifacts when its extras say {"untagged":true}.
// Repositories no enabled rule covers are left alone.
import { Cron } from 'croner';
import type { ArtifactRow, ArtifactStore } from '../db/artifact-store.ts';
import type { ProjectStore } from '../db/project-store.ts';
import type { RetentionExecutionRow, RetentionPolicyRow, RetentionStatus, RetentionStore, RetentionTaskRow } from '../db/retention-store.ts';
import { atMostOncePerMinute } from '../lib/cron.ts';
import { AppError } from '../lib/errors.ts';
import { globMatcher } from '../lib/glob.ts';
import type { ServiceLog } from '../lib/log.ts';
import type { ArtifactsService } from './artifacts.ts';
import { cronSlot } from './jobs.ts';


export const TEMPLATES = ['latestPushedK', 'latestPulledN', 'nDaysSinceLastPush', 'nDaysSinceLastPull', 'always'] as const;
export type Template = (typeof TEMPLATES)[number];
/** Harbor allows this many rules in a policy. */
export const MAX_RULES = 15;
/** A count or a number of days above this is a mistake, not a policy. */
const MAX_PARAM = 100_000;
/** A task's log keeps this many characters (the counts stay exact). */
const LOG_MAX = 512 * 1024;
const DAY_MS = 86_400_000;
/** Artifacts read at a time while a repository's candidates are gathered. */
const READ_CHUNK = 500;

export interface Selector {
  kind: string;
  decoration: string;
  pattern: string;
  extras?: string;
}

export interface Rule {
  id: number;
  priority: number;
  disabled: boolean;
  action: 'retain';
  template: Template;
  params: Record<string, number>;
  tag_selectors: Selector[];
  scope_selectors: { repository: Selector[] };
}

export interface PolicyView {
  id: number;
  projectId: number;
  algorithm: 'or';
  rules: Rule[];
  trigger: { kind: 'Schedule'; settings: { cron: string }; references: Record<string, unknown> };
}

/** What a client sends (Harbor's RetentionPolicy; unknown fields already dropped by the route schema). */
export interface PolicyInput {
  algorithm?: string | null;
  rules?: unknown[] | null;
  trigger?: { kind?: string | null; settings?: Record<string, unknown> | null } | null;
  scope?: { level?: string | null; ref?: number | null } | null;
}

/** One artifact as the rules see it. */
export interface Candidate {
  digest: string;
  pushedAt: Date;
  pulledAt: Date | null;
  tags: string[];
}

export interface RetentionDeps {
  store: RetentionStore;
  /** Reads a repository's artifacts. */
  artifactStore: ArtifactStore;
  /** Deletes them (as the API does). */
  artifacts: Pick<ArtifactsService, 'deleteArtifact'>;
  projects: Pick<ProjectStore, 'ref' | 'find' | 'update'>;
  log: ServiceLog;
  /** This node's name (on executions). */
  node: string;
  /** Runs a scheduled slot on one node of the cluster (JobRunner.runSlot). */
  once?: (job: string, slot: Date, fn: () => Promise<unknown>) => Promise<boolean>;
  /** How often a running execution says it is alive, and after how long without that it counts as dead. */
  heartbeatMs?: number;
  staleMs?: number;
  /** How often schedules changed on other nodes are picked up (default 30 s). */
  reloadMs?: number;
  now?: () => number;
}

function bad(message: string): AppError {
  return new AppError('BAD_REQUEST', undefined, { message });
}

function selector(raw: unknown, where: string, decorations: readonly string[]): Selector {
  if (!raw || typeof raw !== 'object') throw bad(`${where}: an object {kind, decoration, pattern}`);
  const s = raw as Record<string, unknown>;
  const kind = s.kind ?? 'doublestar';
  if (kind !== 'doublestar') throw bad(`${where}.kind: only "doublestar" is supported`);
  if (typeof s.decoration !== 'string' || !decorations.includes(s.decoration)) throw bad(`${where}.decoration: one of ${decorations.join(', ')}`);
  if (typeof s.pattern !== 'string' || !s.pattern || s.pattern.length > 255) throw bad(`${where}.pattern: a pattern of 1 to 255 characters`);
  try {
    globMatcher(s.pattern);
  } catch (e) {
    throw bad(`${where}.pattern: ${(e as Error).message}`);
  }
  let extras: string | undefined;
  if (s.extras !== undefined && s.extras !== null && s.extras !== '') {
    if (typeof s.extras !== 'string' || s.extras.length > 1024) throw bad(`${where}.extras: a JSON string such as {"untagged":true}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(s.extras);
    } catch {
      throw bad(`${where}.extras: not JSON`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw bad(`${where}.extras: a JSON object such as {"untagged":true}`);
    extras = s.extras;
  }
  return { kind: 'doublestar', decoration: s.decoration, pattern: s.pattern, ...(extras !== undefined ? { extras } : {}) };
}

function rule(raw: unknown, i: number): Rule {
  const where = `rules[${i}]`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad(`${where}: an object`);
  const r = raw as Record<string, unknown>;
  if (r.action !== undefined && r.action !== 'retain') throw bad(`${where}.action: only "retain" is supported`);
  if (typeof r.template !== 'string' || !(TEMPLATES as readonly string[]).includes(r.template)) throw bad(`${where}.template: one of ${TEMPLATES.join(', ')}`);
  const template = r.template as Template;
  if (r.disabled !== undefined && typeof r.disabled !== 'boolean') throw bad(`${where}.disabled: true or false`);
  if (r.priority !== undefined && (!Number.isInteger(r.priority) || Math.abs(r.priority as number) > MAX_PARAM)) throw bad(`${where}.priority: a whole number`);
  const params: Record<string, number> = {};
  if (template !== 'always') {
    const p = r.params as Record<string, unknown> | undefined;
    const v = p && typeof p === 'object' ? p[template] : undefined;
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_PARAM) throw bad(`${where}.params.${template}: a whole number from 0 to ${MAX_PARAM}`);
    params[template] = n;
  }
  const tags = r.tag_selectors;
  if (!Array.isArray(tags) || tags.length < 1 || tags.length > 8) throw bad(`${where}.tag_selectors: 1 to 8 selectors`);
  const scope = r.scope_selectors as Record<string, unknown> | undefined;
  const repos = scope && typeof scope === 'object' ? scope.repository : undefined;
  if (!Array.isArray(repos) || repos.length < 1 || repos.length > 8) throw bad(`${where}.scope_selectors.repository: 1 to 8 selectors`);
  return {
    id: i + 1,
    priority: (r.priority as number | undefined) ?? 0,
    disabled: (r.disabled as boolean | undefined) ?? false,
    action: 'retain',
    template,
    params,
    tag_selectors: tags.map((t, k) => selector(t, `${where}.tag_selectors[${k}]`, ['matches', 'excludes'])),
    scope_selectors: { repository: repos.map((t, k) => selector(t, `${where}.scope_selectors.repository[${k}]`, ['repoMatches', 'repoExcludes'])) },
  };
}

/** A compiled rule: which repositories and artifacts it selects, and which of those it keeps. */
interface Compiled {
  rule: Rule;
  repo: (name: string) => boolean;
  selects: (c: Candidate) => boolean;
}

function compile(rule: Rule): Compiled {
  const repoTests = rule.scope_selectors.repository.map((s) => ({ m: globMatcher(s.pattern), excludes: s.decoration === 'repoExcludes' }));
  const tagTests = rule.tag_selectors.map((s) => {
    let untagged = false;
    try {
      untagged = !!s.extras && (JSON.parse(s.extras) as { untagged?: unknown }).untagged === true;
    } catch {
      /* validated when saved */
    }
    return { m: globMatcher(s.pattern), excludes: s.decoration === 'excludes', untagged };
  });
  return {
    rule,
    // Every selector must agree (Harbor's selectors narrow one another).
    repo: (name) => repoTests.every((t) => t.m(name) !== t.excludes),
    selects: (c) => tagTests.every((t) => (c.tags.length ? c.tags.some((tag) => t.m(tag) !== t.excludes) : t.untagged)),
  };
}

/**
 * The artifacts of one repository (its name below the project) the rules keep, by digest, with the
 * rule that kept each first. Only the rules whose scope covers the repository count.
 */
export function retained(rules: Rule[], repository: string, candidates: Candidate[], now: number): Map<string, number> {
  const kept = new Map<string, number>();
  for (const c of rules.filter((r) => !r.disabled).map(compile)) {
    if (!c.repo(repository)) continue;
    const selected = candidates.filter(c.selects);
    const n = c.rule.params[c.rule.template] ?? 0;
    let keep: Candidate[];
    switch (c.rule.template) {
      case 'latestPushedK':
        keep = [...selected].sort((a, b) => b.pushedAt.getTime() - a.pushedAt.getTime()).slice(0, n);
        break;
      case 'latestPulledN':
        keep = selected.filter((x) => x.pulledAt).sort((a, b) => b.pulledAt!.getTime() - a.pulledAt!.getTime()).slice(0, n);
        break;
      case 'nDaysSinceLastPush':
        keep = selected.filter((x) => x.pushedAt.getTime() >= now - n * DAY_MS);
        break;
      case 'nDaysSinceLastPull':
        keep = selected.filter((x) => x.pulledAt && x.pulledAt.getTime() >= now - n * DAY_MS);
        break;
      default:
        keep = selected;
    }
    for (const k of keep) if (!kept.has(k.digest)) kept.set(k.digest, c.rule.id);
  }
  return kept;
}

/** Whether any enabled rule covers the repository (its name below the project). */
export function covers(rules: Rule[], repository: string): boolean {
  return rules.some((r) => !r.disabled && compile(r).repo(repository));
}

interface Running {
  stop: boolean;
  done: Promise<void>;
}

export class RetentionService {
  private crons = new Map<number, { key: string; cron: Cron }>();
  private running = new Map<number, Running>();
  private reloadTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly deps: RetentionDeps) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  // ---- policies ----------------------------------------------------------------------------------

  private view(r: RetentionPolicyRow): PolicyView {
    let rules: Rule[] = [];
    let cron = '';
    try {
      rules = JSON.parse(r.rules) as Rule[];
      cron = (JSON.parse(r.trigger) as { settings?: { cron?: string } }).settings?.cron ?? '';
    } catch {
      /* rows are written by this module only */
    }
    return { id: r.id, projectId: r.projectId, algorithm: 'or', rules, trigger: { kind: 'Schedule', settings: { cron }, references: {} } };
  }

  /** The policy's fields from a client's body; BAD_REQUEST naming the field. */
  private fields(input: PolicyInput): { algorithm: string; rules: string; trigger: string } {
    if (input.algorithm !== undefined && input.algorithm !== null && input.algorithm !== 'or') throw bad('algorithm: only "or" is supported');
    const raw = input.rules ?? [];
    if (!Array.isArray(raw)) throw bad('rules: an array');
    if (raw.length > MAX_RULES) throw bad(`rules: at most ${MAX_RULES}`);
    const rules = raw.map((r, i) => rule(r, i));
    const kind = input.trigger?.kind ?? 'Schedule';
    if (kind !== 'Schedule') throw bad('trigger.kind: only "Schedule" is supported');
    const c = input.trigger?.settings?.cron ?? '';
    if (typeof c !== 'string' || c.length > 128) throw bad('trigger.settings.cron: a 6-field cron string, or "" for none');
    const cron = c.trim();
    if (cron) {
      if (cron.split(/\s+/).length !== 6) throw bad('trigger.settings.cron: 6 fields (seconds minutes hours day month weekday)');
      if (!atMostOncePerMinute(cron)) throw bad('trigger.settings.cron: the seconds field must name one second (at most one run a minute)');
      try {
        new Cron(cron, { paused: true }).stop();
      } catch (e) {
        throw bad(`trigger.settings.cron: ${(e as Error).message}`);
      }
    }
    return { algorithm: 'or', rules: JSON.stringify(rules), trigger: JSON.stringify({ kind: 'Schedule', settings: { cron } }) };
  }

  /** The project a new policy is for (scope.ref); BAD_REQUEST when it names none. */
  scopeOf(input: PolicyInput): number {
    if (input.scope?.level !== undefined && input.scope?.level !== null && input.scope.level !== 'project') throw bad('scope.level: only "project" is supported');
    const ref = input.scope?.ref;
    if (typeof ref !== 'number' || !Number.isInteger(ref) || ref < 1) throw bad('scope.ref: the id of the project');
    return ref;
  }

  async create(projectId: number, input: PolicyInput): Promise<number> {
    const f = this.fields(input);
    const id = await this.deps.store.createPolicy({ projectId, ...f });
    await this.setProjectMetadata(projectId, String(id));
    await this.reload();
    return id;
  }

  async get(id: number): Promise<PolicyView> {
    const r = await this.deps.store.policy(id);
    if (!r) throw new AppError('NOT_FOUND', undefined, { message: `retention policy ${id} not found` });
    return this.view(r);
  }

  async update(id: number, input: PolicyInput): Promise<void> {
    const f = this.fields(input);
    if (!(await this.deps.store.updatePolicy(id, f))) throw new AppError('NOT_FOUND', undefined, { message: `retention policy ${id} not found` });
    await this.reload();
  }

  async delete(id: number): Promise<void> {
    const p = await this.get(id);
    if (await this.deps.store.running(id)) throw new AppError('PRECONDITION', undefined, { message: 'a run of this policy is in progress; stop it first' });
    await this.deps.store.deletePolicy(id);
    await this.setProjectMetadata(p.projectId, null);
    await this.reload();
  }

  /** Harbor keeps the policy's id in the project's metadata (`retention_id`), where its UI looks for it. */
  private async setProjectMetadata(projectId: number, value: string | null): Promise<void> {
    const p = await this.deps.projects.find({ id: projectId });
    if (!p) return;
    let metadata: Record<string, string> = {};
    try {
      metadata = JSON.parse(p.metadata) as Record<string, string>;
    } catch {
      /* a damaged value is replaced */
    }
    if (value === null) delete metadata.retention_id;
    else metadata.retention_id = value;
    await this.deps.projects.update(projectId, { public: p.public, metadata: JSON.stringify(metadata) });
  }

  // ---- runs --------------------------------------------------------------------------------------

  /**
   * Starts a run of the policy; its execution id. CONFLICT while another run of the policy is in
   * progress (on any node).
   */
  async trigger(policyId: number, dryRun: boolean, trigger: 'MANUAL' | 'SCHEDULE' = 'MANUAL'): Promise<number> {
    const policy = await this.get(policyId);
    await this.reap();
    if (await this.deps.store.running(policyId)) throw new AppError('CONFLICT', undefined, { message: 'a run of this policy is in progress' });
    const id = await this.deps.store.createExecution(policyId, trigger, dryRun, this.deps.node, new Date(this.now()));
    const run: Running = { stop: false, done: Promise.resolve() };
    run.done = this.execute(id, policy, dryRun, run)
      .catch((err: unknown) => {
        this.deps.log.warn({ execution: id, err: (err as Error).message }, 'retention run failed');
        return this.deps.store.finishExecution(id, 'Failed');
      })
      .then(() => undefined)
      .finally(() => this.running.delete(id));
    this.running.set(id, run);
    return id;
  }

  private async execute(id: number, policy: PolicyView, dryRun: boolean, run: Running): Promise<void> {
    const project = await this.deps.projects.ref({ id: policy.projectId });
    if (!project) return void (await this.deps.store.finishExecution(id, 'Failed'));
    let lastBeat = this.now();
    /** Whether the run should go on (false: stopped here or on another node). */
    const alive = async (): Promise<boolean> => {
      if (run.stop || this.closed) return false;
      if (this.now() - lastBeat < (this.deps.heartbeatMs ?? 5_000)) return true;
      lastBeat = this.now();
      return (await this.deps.store.beat(id, new Date(lastBeat))) === 'InProgress';
    };
    let after: string | undefined;
    let stopped = false;
    const prefix = `${project.name}/`;
    outer: for (;;) {
      const page = await this.deps.artifactStore.repositoryPage({ projectIds: [project.id] }, { by: 'name', desc: false }, after === undefined ? { offset: 0 } : { after: { value: after, id: 0 } }, 200);
      for (const repo of page) {
        const below = repo.name.startsWith(prefix) ? repo.name.slice(prefix.length) : repo.name;
        if (!covers(policy.rules, below)) continue;
        if (!(await alive())) {
          stopped = true;
          break outer;
        }
        const status = await this.repository(id, repo.id, repo.name, below, policy.rules, dryRun, alive);
        if (status === 'Stopped') {
          stopped = true;
          break outer;
        }
      }
      if (page.length < 200) break;
      after = page[page.length - 1].name;
    }
    await this.deps.store.finishExecution(id, stopped ? 'Stopped' : 'Succeed', new Date(this.now()));
  }

  /** One repository: its task, what the rules keep, and (not a dry run) the deletion of the rest. */
  private async repository(executionId: number, repositoryId: number, name: string, below: string, rules: Rule[], dryRun: boolean, alive: () => Promise<boolean>): Promise<RetentionStatus> {
    const task = await this.deps.store.createTask(executionId, name, new Date(this.now()));
    const lines: string[] = [];
    let size = 0;
    const log = (line: string) => {
      if (size > LOG_MAX) return;
      size += line.length + 1;
      lines.push(size > LOG_MAX ? '... (log truncated; the counts are exact)' : line);
    };
    let total = 0;
    let keptCount = 0;
    let status: RetentionStatus = 'Succeed';
    try {
      const candidates = await this.candidates(repositoryId);
      total = candidates.length;
      const kept = retained(rules, below, candidates, this.now());
      log(`${name}: ${total} artifacts, ${kept.size} kept by the rules${dryRun ? ' (dry run: nothing is deleted)' : ''}`);
      for (const c of candidates) {
        const tags = c.tags.length ? c.tags.join(', ') : '(untagged)';
        const by = kept.get(c.digest);
        if (by !== undefined) {
          keptCount++;
          log(`kept ${c.digest} [${tags}] by rule ${by}`);
          continue;
        }
        if (dryRun) {
          log(`would delete ${c.digest} [${tags}]`);
          continue;
        }
        if (!(await alive())) {
          status = 'Stopped';
          log('stopped');
          break;
        }
        try {
          await this.deps.artifacts.deleteArtifact(name, c.digest);
          log(`deleted ${c.digest} [${tags}]`);
        } catch (e) {
          if (e instanceof AppError && e.code === 'NOT_FOUND') {
            log(`gone already ${c.digest} [${tags}]`);
            continue;
          }
          // Refused (an immutable tag, a lock) or failed: the artifact stays.
          keptCount++;
          log(`kept ${c.digest} [${tags}]: ${e instanceof AppError ? e.message : (e as Error).message}`);
        }
      }
    } catch (e) {
      status = 'Failed';
      log(`failed: ${(e as Error).message}`);
    }
    await this.deps.store.finishTask(task, { status, total, retained: keptCount, log: lines.join('\n') + '\n' }, new Date(this.now()));
    return status;
  }

  /** Every artifact of the repository (as the artifact list counts them), with its tags. */
  private async candidates(repositoryId: number): Promise<Candidate[]> {
    const s = this.deps.artifactStore;
    const { excluded } = await s.artifactFacts(repositoryId);
    const order = await s.artifactOrder(repositoryId, excluded);
    const out: Candidate[] = [];
    for (let i = 0; i < order.length; i += READ_CHUNK) {
      const rows: ArtifactRow[] = await s.artifactsByIds(order.subarray(i, i + READ_CHUNK));
      const tags = new Map<string, string[]>();
      for (const t of await s.tagsOf(repositoryId, rows.map((r) => r.digest))) {
        const list = tags.get(t.digest);
        if (list) list.push(t.name);
        else tags.set(t.digest, [t.name]);
      }
      for (const r of rows) out.push({ digest: r.digest, pushedAt: r.pushedAt, pulledAt: r.pulledAt, tags: (tags.get(r.digest) ?? []).sort() });
    }
    return out;
  }

  /** Stops a run (on whichever node runs it: that node reads the status at its next heartbeat). */
  async stop(policyId: number, executionId: number): Promise<void> {
    const e = await this.execution(policyId, executionId);
    if (e.status !== 'InProgress') throw new AppError('PRECONDITION', undefined, { message: `the execution is ${e.status}` });
    const mine = this.running.get(executionId);
    if (mine) mine.stop = true;
    await this.deps.store.finishExecution(executionId, 'Stopped', new Date(this.now()));
    await mine?.done;
  }

  async execution(policyId: number, executionId: number): Promise<RetentionExecutionRow> {
    const e = await this.deps.store.execution(executionId);
    if (!e || e.policyId !== policyId) throw new AppError('NOT_FOUND', undefined, { message: `execution ${executionId} not found` });
    return e;
  }

  async executions(policyId: number, page: number, pageSize: number): Promise<{ total: number; items: RetentionExecutionRow[] }> {
    await this.get(policyId);
    return this.deps.store.listExecutions(policyId, page, pageSize);
  }

  async tasks(policyId: number, executionId: number, page: number, pageSize: number): Promise<{ total: number; items: RetentionTaskRow[] }> {
    await this.execution(policyId, executionId);
    return this.deps.store.listTasks(executionId, page, pageSize);
  }

  async taskLog(policyId: number, executionId: number, taskId: number): Promise<string> {
    await this.execution(policyId, executionId);
    const log = await this.deps.store.taskLog(executionId, taskId);
    if (log === null) throw new AppError('NOT_FOUND', undefined, { message: `task ${taskId} not found` });
    return log;
  }

  /** Marks Failed the runs whose node stopped saying it is alive. */
  private async reap(): Promise<void> {
    const n = await this.deps.store.failDead(new Date(this.now() - (this.deps.staleMs ?? 60_000)), new Date(this.now()));
    if (n) this.deps.log.warn({ executions: n }, 'retention runs of a dead node marked failed');
  }

  // ---- schedules ---------------------------------------------------------------------------------

  /** Loads the schedules, and picks up changes made on other nodes every 30 s. */
  async start(): Promise<void> {
    await Promise.all([this.reload(), this.reap()]);
    // Also the look for dead nodes' runs: on this timer and before a run starts, not on every read.
    this.reloadTimer = setInterval(
      () => void Promise.all([this.reload(), this.reap()]).catch((err) => this.deps.log.warn({ err: (err as Error).message }, 'retention schedules not reloaded')),
      this.deps.reloadMs ?? 30_000,
    );
    this.reloadTimer.unref();
  }

  private async reload(): Promise<void> {
    if (this.closed) return;
    const wanted = new Map((await this.deps.store.policies()).map((r) => this.view(r)).filter((p) => p.trigger.settings.cron && p.rules.some((r) => !r.disabled)).map((p) => [p.id, p]));
    for (const [id, c] of this.crons) {
      if (wanted.get(id)?.trigger.settings.cron !== c.key) {
        c.cron.stop();
        this.crons.delete(id);
      }
    }
    for (const [id, p] of wanted) {
      if (this.crons.has(id) || !atMostOncePerMinute(p.trigger.settings.cron)) continue;
      const cron = new Cron(p.trigger.settings.cron, { unref: true }, () => void this.fire(id, cronSlot()));
      this.crons.set(id, { key: p.trigger.settings.cron, cron });
    }
  }

  /** A scheduled slot: one run on the one node that claims it. */
  private async fire(policyId: number, slot: Date): Promise<void> {
    const run = async () => {
      const id = await this.trigger(policyId, false, 'SCHEDULE').catch((err: unknown) => {
        this.deps.log.warn({ policy: policyId, err: (err as Error).message }, 'scheduled retention run not started');
        return null;
      });
      if (id !== null) await this.running.get(id)?.done;
    };
    if (this.deps.once) await this.deps.once(`retention:${policyId}`, slot, run);
    else await run();
  }

  /** Stops the schedules and the runs on this node (they end Stopped). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.reloadTimer) clearInterval(this.reloadTimer);
    for (const c of this.crons.values()) c.cron.stop();
    this.crons.clear();
    const runs = [...this.running.values()];
    for (const r of runs) r.stop = true;
    await Promise.all(runs.map((r) => r.done));
  }
}
