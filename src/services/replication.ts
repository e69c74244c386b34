// Replication (Harbor's /replication/*): policies that copy images between this Berth and another
// registry, push-based (this Berth → a registry endpoint) or pull-based (an endpoint → this Berth).
//
// A run is an execution with one task per artifact (a tag, or a referrer pushed by digest). Each
// task copies by digest with copyArtifact (index, children, blobs; what the destination holds is
// skipped, blobs mounted where possible; the artifact's referrers follow), so digests, and so
// signatures, stay valid. Transient failures (unreachable, timeout, 429, 5xx) are retried with
// backoff; the task's log names what failed ("unauthorized: ... refused the credentials...").
//
// Across nodes the execution row is the contract (src/db/replication-store.ts): the running node
// refreshes its heartbeat every few seconds and reads the status back, so a stop saved on any node
// stops it; a run whose heartbeat goes stale (its node died) is marked Failed by the reaper, which
// app.ts runs once per cluster every minute, and at start (on SQLite, one node: every run left
// InProgress is dead). Triggers: manual (POST /executions), scheduled (a 6-field cron per policy,
// every node's timer fires, the job runner lets one node claim the slot), event_based (pushes and
// deletes announced by the registry on this node, gathered for a moment into one execution).
// Credentials never reach this module: clients come built from the registry endpoints service.
import { Cron } from 'croner';
import type { Readable } from 'node:stream';
import type { ExecutionCounts, ExecutionStatus, NewTask, ReplicationExecutionRow, ReplicationPolicyFields, ReplicationPolicyRow, ReplicationStore, ReplicationTaskRow, TaskStatus } from '../db/replication-store.ts';
import { parseDigest } from '../lib/digest.ts';
import { AppError } from '../lib/errors.ts';
import { parseManifest, type Descriptor } from '../lib/manifest.ts';
import { isValidName, isValidTag, projectOf } from '../lib/reference.ts';
import { copyArtifact, type CopyClient, type CopyResult } from '../upstream/copy.ts';
import { UpstreamError } from '../upstream/errors.ts';
import { withRetry } from '../upstream/retry.ts';
import { speedToBytesPerSecond } from '../upstream/throttle.ts';
import type { UpstreamClient } from '../upstream/client.ts';
import { atMostOncePerMinute } from '../lib/cron.ts';
import { globMatcher } from '../lib/glob.ts';
import { cronSlot } from './jobs.ts';
import type { RegistryService } from './registry-service.ts';

// ---- filters ------------------------------------------------------------------------------------
const GLOB_CHARS = /[*?{[\\]/;

export interface ReplicationFilter {
  type: 'name' | 'tag' | 'resource';
  value: string;
  decoration: 'matches' | 'excludes';
}

export interface ReplicationTrigger {
  type: 'manual' | 'scheduled' | 'event_based';
  cron: string;
}

interface Matcher {
  test(s: string): boolean;
}

function matcher(filters: ReplicationFilter[], type: 'name' | 'tag'): Matcher {
  const mine = filters.filter((f) => f.type === type && f.value !== '');
  const compiled = mine.map((f) => ({ match: globMatcher(f.value), excludes: f.decoration === 'excludes' }));
  return { test: (s) => compiled.every((m) => m.match(s) !== m.excludes) };
}

/**
 * Harbor's dest_namespace with dest_namespace_replace_count: no namespace keeps the name; -1
 * (legacy, "flatten all levels") keeps only the last component under the namespace; 0 prepends the
 * namespace; n replaces the first n components (more than the name has but its last: an error).
 */
export function destinationName(repository: string, namespace: string, replaceCount: number): string {
  if (!namespace) return repository;
  const parts = repository.split('/');
  if (replaceCount < 0) return `${namespace}/${parts[parts.length - 1]}`;
  if (replaceCount === 0) return `${namespace}/${repository}`;
  if (replaceCount > parts.length - 1) {
    throw new UpstreamError('protocol', `the source repository "${repository}" has only ${parts.length - 1} path components before its last one, but dest_namespace_replace_count is ${replaceCount}`);
  }
  return `${namespace}/${parts.slice(replaceCount).join('/')}`;
}

// ---- this Berth as a copy end ----------------------------------------------------------------------

export type LocalRegistryPort = Pick<
  RegistryService,
  'getManifest' | 'putManifest' | 'deleteManifest' | 'blobSize' | 'openBlob' | 'mountBlob' | 'startUpload' | 'completeUpload' | 'cancelUpload' | 'referrers' | 'listTags' | 'listRepositories'
>;

/** What a run needs of either end: a copy end, plus listings and deletes. */
export type ReplicationEnd = CopyClient & Pick<UpstreamClient, 'tags' | 'catalog' | 'deleteManifest'>;

const missing = (e: unknown) => e instanceof AppError && (e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN' || e.code === 'BLOB_UNKNOWN');

/** This Berth's registry behind the methods of an UpstreamClient (trusted: what it stores was verified when stored). */
export class LocalEnd implements ReplicationEnd {
  constructor(
    private readonly registry: LocalRegistryPort,
    /** Creates the project a repository belongs to when it does not exist (pull-based replication into a new project). */
    private readonly ensureProject: (name: string) => Promise<void>,
    /** Whether the project is a proxy cache (what it holds comes from its upstream only). */
    private readonly isProxyCache: (project: string) => Promise<boolean> = async () => false,
  ) {}

  /** Refuses writes into a proxy-cache project, as /v2 does: a replicated copy would pass for its upstream's. */
  private async writable(name: string): Promise<void> {
    const project = projectOf(name);
    if (await this.isProxyCache(project)) throw new UpstreamError('denied', `project ${project} is a proxy cache of another registry: replication does not write into it`);
  }

  async getManifest(name: string, ref: string) {
    try {
      const m = await this.registry.getManifest(name, ref);
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length, body: m.bytes };
    } catch (e) {
      if (missing(e)) return null;
      throw e;
    }
  }

  async headManifest(name: string, ref: string) {
    const m = await this.getManifest(name, ref);
    return m && { digest: m.digest, mediaType: m.mediaType, size: m.size };
  }

  async putManifest(name: string, ref: string, body: Buffer, mediaType: string): Promise<string> {
    // Created first (a project that exists already is left as it is): the check reads through the
    // access cache, which would otherwise remember the project as missing.
    await this.ensureProject(projectOf(name));
    await this.writable(name);
    return (await this.registry.putManifest(name, ref, mediaType, body)).digest;
  }

  async deleteManifest(name: string, digest: string): Promise<boolean> {
    await this.writable(name);
    try {
      await this.registry.deleteManifest(name, digest);
      return true;
    } catch (e) {
      if (missing(e)) return false;
      throw e;
    }
  }

  headBlob(name: string, digest: string): Promise<number | null> {
    return this.registry.blobSize(name, digest);
  }

  async getBlob(name: string, digest: string) {
    const d = parseDigest(digest);
    const size = d && (await this.registry.blobSize(name, digest));
    if (!d || size === null) throw new UpstreamError('not-found', `blob ${digest} of ${name} does not exist here`, 404);
    return { size, stream: await this.registry.openBlob(d) };
  }

  async pushBlob(name: string, digest: string, _size: number, source: () => Readable | Promise<Readable>): Promise<'mounted' | 'uploaded'> {
    const d = parseDigest(digest);
    if (!d) throw new UpstreamError('protocol', `invalid digest ${digest.slice(0, 80)}`);
    await this.ensureProject(projectOf(name));
    await this.writable(name);
    // Replication works for the whole registry: any repository holding the blob may lend it.
    if ((await this.registry.mountBlob(name, d, undefined, async () => true)) !== null) return 'mounted';
    const upload = await this.registry.startUpload(name, true);
    try {
      await this.registry.completeUpload(name, upload.uuid, d, await source());
    } catch (e) {
      await this.registry.cancelUpload(name, upload.uuid).catch(() => undefined);
      if (e instanceof AppError && e.code === 'DIGEST_INVALID') throw new UpstreamError('digest-mismatch', `blob ${digest} arrived with other content`);
      throw e;
    }
    return 'uploaded';
  }

  async referrers(name: string, digest: string): Promise<Descriptor[]> {
    return (await this.registry.referrers(name, digest)).map((r) => ({
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      ...(r.artifactType ? { artifactType: r.artifactType } : {}),
      ...(r.annotations ? { annotations: JSON.parse(r.annotations) as Record<string, string> } : {}),
    }));
  }

  referrersApi(name: string, digest: string): Promise<Descriptor[]> {
    return this.referrers(name, digest);
  }

  async tags(name: string): Promise<string[]> {
    try {
      return await this.registry.listTags(name, 100_000);
    } catch (e) {
      if (missing(e)) return [];
      throw e;
    }
  }

  async catalog(): Promise<string[]> {
    const all: string[] = [];
    let last: string | undefined;
    for (;;) {
      const page = await this.registry.listRepositories(1000, last);
      all.push(...page);
      if (page.length < 1000) return all;
      last = page[page.length - 1];
    }
  }
}

// ---- the service --------------------------------------------------------------------------------

export interface PolicyInput {
  name?: string | null;
  description?: string | null;
  src_registry_id?: number | null;
  dest_registry_id?: number | null;
  dest_namespace?: string | null;
  dest_namespace_replace_count?: number | null;
  trigger?: { type?: string | null; cron?: string | null } | null;
  filters?: { type?: string | null; value?: unknown; decoration?: string | null }[] | null;
  replicate_deletion?: boolean | null;
  override?: boolean | null;
  enabled?: boolean | null;
  speed?: number | null;
  copy_by_chunk?: boolean | null;
}

export interface PolicyView {
  id: number;
  name: string;
  description: string;
  srcRegistryId: number | null;
  destRegistryId: number | null;
  destNamespace: string;
  destNamespaceReplaceCount: number;
  trigger: ReplicationTrigger;
  filters: ReplicationFilter[];
  replicateDeletion: boolean;
  override: boolean;
  enabled: boolean;
  speed: number;
  copyByChunk: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export type ExecutionView = ReplicationExecutionRow;
export type TaskView = Omit<ReplicationTaskRow, 'log'>;

export interface RegistryEvent {
  type: 'push' | 'delete' | 'pull';
  repository: string;
  digest: string;
  tag?: string;
}

export interface ReplicationDeps {
  store: ReplicationStore;
  /** The client of a saved registry endpoint (NOT_FOUND when there is none). */
  client: (registryId: number) => Promise<ReplicationEnd>;
  /** Whether a registry endpoint exists (policy validation). */
  registryExists: (registryId: number) => Promise<boolean>;
  local: ReplicationEnd;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  /** This node's name on the execution rows. */
  node: string;
  /** Runs a scheduled slot on one node of the cluster (JobRunner.runSlot). */
  once: (job: string, slot: Date, fn: () => Promise<unknown>) => Promise<boolean>;
  /** One node only (SQLite): at start every execution left InProgress is dead. */
  singleNode?: boolean;
  onChange?: (e: { username: string; operation: string; resource: string }) => void;
  /** How often a running execution refreshes its heartbeat and reads its status (ms, default 3 s). */
  heartbeatMs?: number;
  /** A heartbeat older than this marks the execution's node dead (ms, default 60 s). */
  staleMs?: number;
  /** How long pushes and deletes are gathered into one event-based execution (ms, default 1 s). */
  eventDelayMs?: number;
  /** How often policies saved on other nodes are read again (ms, default 30 s). */
  reloadMs?: number;
  /** Retries of a task's transient failures. */
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
}

interface Candidate {
  operation: 'copy' | 'deletion';
  repository: string;
  /** A tag, or a digest. */
  reference: string;
}

interface Running {
  controller: AbortController;
  done: Promise<void>;
}

function bad(message: string): AppError {
  return new AppError('BAD_REQUEST', undefined, { message });
}

/** Stops a copy at its next step when the execution is stopped. */
class StoppedError extends Error {
  constructor() {
    super('stopped');
  }
}

const FILTER_TYPES = ['name', 'tag', 'resource'];

export class ReplicationService {
  private policies: PolicyView[] = [];
  private crons = new Map<number, { key: string; cron: Cron }>();
  private running = new Map<number, Running>();
  private pending = new Map<number, { candidates: Candidate[]; timer: NodeJS.Timeout }>();
  private chains = new Map<number, Promise<unknown>>();
  private reloadTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly deps: ReplicationDeps) {}

  // ---- policies ----------------------------------------------------------------------------------

  private view(r: ReplicationPolicyRow): PolicyView {
    let trigger: ReplicationTrigger = { type: 'manual', cron: '' };
    let filters: ReplicationFilter[] = [];
    try {
      const t = JSON.parse(r.trigger) as { type?: string; trigger_settings?: { cron?: string } };
      trigger = { type: (t.type ?? 'manual') as ReplicationTrigger['type'], cron: t.trigger_settings?.cron ?? '' };
      filters = JSON.parse(r.filters) as ReplicationFilter[];
    } catch {
      /* rows are written by this module only; a damaged one reads as manual without filters */
    }
    return { ...r, trigger, filters };
  }

  async listPolicies(name: { exact?: string; fuzzy?: string } | undefined, page: number, pageSize: number): Promise<{ total: number; items: PolicyView[] }> {
    const { total, items } = await this.deps.store.listPolicies({ name }, page, pageSize);
    return { total, items: items.map((r) => this.view(r)) };
  }

  async getPolicy(id: number): Promise<PolicyView> {
    const r = await this.deps.store.getPolicy(id);
    if (!r) throw new AppError('NOT_FOUND', undefined, { message: `replication policy ${id} not found` });
    return this.view(r);
  }

  private async fields(input: PolicyInput, current?: PolicyView): Promise<ReplicationPolicyFields> {
    const name = (input.name ?? current?.name ?? '').trim();
    if (!name) throw bad('name: required');
    if (name.length > 255) throw bad('name: at most 255 characters');
    const src = input.src_registry_id !== undefined ? input.src_registry_id || null : (current?.srcRegistryId ?? null);
    const dst = input.dest_registry_id !== undefined ? input.dest_registry_id || null : (current?.destRegistryId ?? null);
    if (src === null && dst === null) throw bad('src_registry or dest_registry: one of them must be another registry (the other side is this Berth)');
    if (src !== null && dst !== null) throw bad('src_registry and dest_registry: one side must be this Berth (leave it out, or give id 0)');
    for (const id of [src, dst]) if (id !== null && !(await this.deps.registryExists(id))) throw bad(`registry ${id} does not exist`);
    const namespace = (input.dest_namespace ?? current?.destNamespace ?? '').trim();
    if (namespace && !isValidName(namespace)) throw bad(`dest_namespace: "${namespace.slice(0, 100)}" is not a valid repository path`);
    const replaceCount = input.dest_namespace_replace_count ?? current?.destNamespaceReplaceCount ?? -1;
    if (!Number.isInteger(replaceCount) || replaceCount < -1 || replaceCount > 127) throw bad('dest_namespace_replace_count: -1 (legacy: flatten all levels), 0 (prepend), or the number of leading path components to replace');
    const t = input.trigger !== undefined && input.trigger !== null ? input.trigger : current ? { type: current.trigger.type, cron: current.trigger.cron } : { type: 'manual' };
    const type = t.type || 'manual';
    if (!['manual', 'scheduled', 'event_based'].includes(type)) throw bad(`trigger.type: "${type.slice(0, 32)}" is not supported (manual, scheduled, event_based)`);
    let cron = '';
    if (type === 'scheduled') {
      cron = (t.cron ?? '').trim();
      const parts = cron.split(/\s+/);
      if (parts.length !== 6) throw bad('trigger.trigger_settings.cron: six fields required (second minute hour day-of-month month day-of-week)');
      // At most once a minute (every second would start an execution a second): the seconds field
      // is one number (Harbor asks for 0; another second of the minute is as harmless).
      if (!atMostOncePerMinute(cron)) throw bad('trigger.trigger_settings.cron: the 1st field (seconds) must be a single second, e.g. 0');
      try {
        new Cron(cron, { paused: true }).stop();
      } catch (e) {
        throw bad(`trigger.trigger_settings.cron: ${(e as Error).message}`);
      }
    }
    if (type === 'event_based' && src !== null) throw bad('trigger.type: event_based works for push-based policies only (this Berth is the source)');
    const filters: ReplicationFilter[] = [];
    for (const [i, f] of (input.filters ?? current?.filters ?? []).entries()) {
      const ftype = f.type ?? '';
      // Harbor's UI sends an empty label filter when no label is chosen: nothing to filter.
      if (ftype === 'label' && (f.value === undefined || f.value === null || f.value === '' || (Array.isArray(f.value) && f.value.length === 0))) continue;
      if (ftype === 'label') throw bad(`filters.${i}.type: label filters are not supported`);
      if (!FILTER_TYPES.includes(ftype)) throw bad(`filters.${i}.type: "${String(ftype).slice(0, 32)}" is not supported (name, tag, resource)`);
      if (typeof f.value !== 'string') throw bad(`filters.${i}.value: a string is required`);
      if (f.value.length > 1024) throw bad(`filters.${i}.value: at most 1024 characters`);
      const decoration = f.decoration || 'matches';
      if (decoration !== 'matches' && decoration !== 'excludes') throw bad(`filters.${i}.decoration: matches or excludes`);
      if (ftype !== 'resource') {
        try {
          globMatcher(f.value);
        } catch {
          throw bad(`filters.${i}.value: not a valid pattern`);
        }
      } else if (f.value && f.value !== 'image' && f.value !== 'artifact') throw bad(`filters.${i}.value: resource is image or artifact`);
      filters.push({ type: ftype as ReplicationFilter['type'], value: f.value, decoration });
    }
    const speed = input.speed ?? current?.speed ?? -1;
    if (!Number.isInteger(speed) || speed < -1 || speed > 2 ** 31 - 1) throw bad('speed: KB/s, -1 or 0 for no limit');
    return {
      name,
      description: input.description ?? current?.description ?? '',
      srcRegistryId: src,
      destRegistryId: dst,
      destNamespace: namespace,
      destNamespaceReplaceCount: replaceCount,
      trigger: JSON.stringify({ type, ...(cron ? { trigger_settings: { cron } } : {}) }),
      filters: JSON.stringify(filters),
      replicateDeletion: input.replicate_deletion ?? current?.replicateDeletion ?? false,
      override: input.override ?? current?.override ?? true,
      enabled: input.enabled ?? current?.enabled ?? true,
      speed,
      copyByChunk: input.copy_by_chunk ?? current?.copyByChunk ?? false,
    };
  }

  async createPolicy(actor: string, input: PolicyInput): Promise<number> {
    const fields = await this.fields(input);
    const id = await this.deps.store.createPolicy(fields);
    this.deps.onChange?.({ username: actor, operation: 'create', resource: fields.name });
    await this.reload();
    return id;
  }

  async updatePolicy(actor: string, id: number, input: PolicyInput): Promise<void> {
    const current = await this.getPolicy(id);
    const fields = await this.fields(input, current);
    if (!(await this.deps.store.updatePolicy(id, fields))) throw new AppError('NOT_FOUND', undefined, { message: `replication policy ${id} not found` });
    this.deps.onChange?.({ username: actor, operation: 'update', resource: fields.name });
    await this.reload();
  }

  async deletePolicy(actor: string, id: number): Promise<void> {
    const current = await this.getPolicy(id);
    const r = await this.deps.store.deletePolicy(id);
    if (r === 'running') throw new AppError('PRECONDITION', undefined, { message: `replication policy ${id} has an execution in progress: stop it first` });
    if (r === 'missing') throw new AppError('NOT_FOUND', undefined, { message: `replication policy ${id} not found` });
    this.deps.onChange?.({ username: actor, operation: 'delete', resource: current.name });
    await this.reload();
  }

  // ---- executions ----------------------------------------------------------------------------------

  listExecutions(f: { policyId?: number; status?: string; trigger?: string }, page: number, pageSize: number): Promise<{ total: number; items: ExecutionView[] }> {
    return this.deps.store.listExecutions(f, page, pageSize);
  }

  async getExecution(id: number): Promise<ExecutionView> {
    const r = await this.deps.store.getExecution(id);
    if (!r) throw new AppError('NOT_FOUND', undefined, { message: `replication execution ${id} not found` });
    return r;
  }

  async listTasks(executionId: number, f: { status?: string; resourceType?: string }, page: number, pageSize: number): Promise<{ total: number; items: TaskView[] }> {
    await this.getExecution(executionId);
    return this.deps.store.listTasks(executionId, f, page, pageSize);
  }

  async taskLog(executionId: number, taskId: number): Promise<string> {
    const t = await this.deps.store.getTask(executionId, taskId);
    if (!t) throw new AppError('NOT_FOUND', undefined, { message: `task ${taskId} of replication execution ${executionId} not found` });
    return t.log;
  }

  /** Starts a manual run of the policy; resolves with the execution's id once it is recorded (not finished). */
  async startManual(policyId: number): Promise<number> {
    const p = await this.getPolicy(policyId).catch((e: unknown) => {
      throw e instanceof AppError && e.code === 'NOT_FOUND' ? bad(`policy_id: replication policy ${policyId} not found`) : e;
    });
    if (!p.enabled) throw bad(`replication policy ${policyId} is disabled: enable it first`);
    return this.launch(p, 'manual', null);
  }

  /** Stops an execution: at once when it runs here; another node sees it at its next heartbeat. */
  async stop(id: number): Promise<void> {
    const e = await this.getExecution(id);
    if (e.status !== 'InProgress') return;
    await this.deps.store.stopExecution(id);
    this.running.get(id)?.controller.abort(new StoppedError());
  }

  /** Waits for the execution to end if it runs on this node (tests, shutdown). */
  async settled(id: number): Promise<void> {
    await this.running.get(id)?.done;
  }

  // ---- triggers ------------------------------------------------------------------------------------

  /** Marks dead runs failed, loads the policies, arms the schedules. */
  async start(): Promise<void> {
    await this.reap(this.deps.singleNode ? null : undefined);
    await this.reload();
    const every = this.deps.reloadMs ?? 30_000;
    this.reloadTimer = setInterval(() => void this.reload().catch((err) => this.deps.log.warn({ err: (err as Error).message }, 'replication policies not reloaded')), every);
    this.reloadTimer.unref();
  }

  /** Marks Failed the executions whose node stopped refreshing them (`null`: every running one not on this node). */
  async reap(staleBefore?: Date | null): Promise<number[]> {
    const before = staleBefore === undefined ? new Date(Date.now() - (this.deps.staleMs ?? 60_000)) : staleBefore;
    const ids = (await this.deps.store.failStale(before)).filter((id) => !this.running.has(id));
    if (ids.length) this.deps.log.warn({ executions: ids }, 'replication executions of a dead node marked failed');
    return ids;
  }

  /** Reads the policies again (after a change here, and regularly for changes made on other nodes) and arms their schedules. */
  async reload(): Promise<void> {
    if (this.closed) return;
    this.policies = (await this.deps.store.allPolicies()).map((r) => this.view(r));
    const wanted = new Map(this.policies.filter((p) => p.enabled && p.trigger.type === 'scheduled' && p.trigger.cron).map((p) => [p.id, p]));
    for (const [id, c] of this.crons) {
      const p = wanted.get(id);
      if (!p || p.trigger.cron !== c.key) {
        c.cron.stop();
        this.crons.delete(id);
      }
    }
    for (const [id, p] of wanted) {
      if (this.crons.has(id)) continue;
      // A schedule saved before the once-a-minute rule is not armed to fire every second.
      if (!atMostOncePerMinute(p.trigger.cron)) {
        this.deps.log.warn({ policy: p.name, cron: p.trigger.cron }, 'replication schedule fires more than once a minute: not armed (save it with one second in the first field)');
        continue;
      }
      const cron = new Cron(p.trigger.cron, { unref: true }, () => void this.fireSchedule(id, cronSlot()));
      this.crons.set(id, { key: p.trigger.cron, cron });
    }
  }

  /**
   * A scheduled slot of a policy: runs it (one execution, trigger "scheduled") on the one node of
   * the cluster whose claim of the slot lands; resolves whether it ran here.
   */
  fireSchedule(policyId: number, slot: Date): Promise<boolean> {
    return this.deps.once(`replication.policy.${policyId}`, slot, async () => {
      const p = await this.deps.store.getPolicy(policyId);
      if (!p) return;
      const v = this.view(p);
      if (!v.enabled || v.trigger.type !== 'scheduled') return;
      await this.launch(v, 'scheduled', null);
    });
  }

  /**
   * A push or delete announced by the registry on this node: event-based push policies whose
   * filters match get a copy (a tag pushed; a referrer pushed by digest) or a deletion (a manifest
   * deleted by digest, with replicate_deletion), gathered for a moment into one execution per policy.
   * Never throws, never waits (the caller is the registry's write path).
   */
  onRegistryEvent(e: RegistryEvent): void {
    if (this.closed || e.type === 'pull') return;
    const policies = this.policies.filter((p) => p.enabled && p.srcRegistryId === null && p.trigger.type === 'event_based' && matcher(p.filters, 'name').test(e.repository));
    if (!policies.length) return;
    void this.candidateOf(e)
      .then((c) => {
        if (!c) return;
        for (const p of policies) {
          if (c.operation === 'deletion' && !p.replicateDeletion) continue;
          if (c.operation === 'copy' && !c.reference.includes(':') && !matcher(p.filters, 'tag').test(c.reference)) continue;
          this.gather(p.id, c);
        }
      })
      .catch((err) => this.deps.log.warn({ repository: e.repository, err: (err as Error).message }, 'replication event not handled'));
  }

  private async candidateOf(e: RegistryEvent): Promise<Candidate | null> {
    if (e.type === 'delete') return e.digest && !e.tag ? { operation: 'deletion', repository: e.repository, reference: e.digest } : null;
    if (e.tag) return { operation: 'copy', repository: e.repository, reference: e.tag };
    // Pushed by digest: a blob, a child of an index (copied with its index), or a referrer (copied on its own).
    const m = await this.deps.local.getManifest(e.repository, e.digest);
    if (!m) return null;
    try {
      return parseManifest(m.body, m.mediaType).subject ? { operation: 'copy', repository: e.repository, reference: e.digest } : null;
    } catch {
      return null;
    }
  }

  private gather(policyId: number, c: Candidate): void {
    let p = this.pending.get(policyId);
    if (!p) {
      const timer = setTimeout(() => {
        const batch = this.pending.get(policyId);
        this.pending.delete(policyId);
        if (!batch || this.closed) return;
        // Runs of one policy from events go one after the other, in the order of the events.
        const prev = this.chains.get(policyId) ?? Promise.resolve();
        const next = prev
          .then(async () => {
            const row = await this.deps.store.getPolicy(policyId);
            if (!row || this.closed) return;
            const id = await this.launch(this.view(row), 'event_based', batch.candidates);
            await this.settled(id);
          })
          .catch((err) => this.deps.log.warn({ policy: policyId, err: (err as Error).message }, 'event-based replication not started'));
        this.chains.set(policyId, next);
        void next.finally(() => {
          if (this.chains.get(policyId) === next) this.chains.delete(policyId);
        });
      }, this.deps.eventDelayMs ?? 1000);
      timer.unref();
      p = { candidates: [], timer };
      this.pending.set(policyId, p);
    }
    if (!p.candidates.some((x) => x.operation === c.operation && x.repository === c.repository && x.reference === c.reference)) p.candidates.push(c);
  }

  // ---- running ---------------------------------------------------------------------------------------

  /** Records an execution and runs it in the background; resolves with its id. */
  private async launch(p: PolicyView, trigger: string, candidates: Candidate[] | null): Promise<number> {
    if (this.closed) throw new AppError('UNAVAILABLE', undefined, { message: 'Berth is shutting down' });
    const id = await this.deps.store.createExecution(p.id, trigger, this.deps.node);
    const controller = new AbortController();
    const done = this.execute(id, p, candidates, controller.signal)
      .catch((err: unknown) => this.deps.log.warn({ execution: id, err: (err as Error).message }, 'replication execution failed'))
      .finally(() => this.running.delete(id));
    this.running.set(id, { controller, done });
    this.deps.log.info({ execution: id, policy: p.name, trigger }, 'replication execution started');
    return id;
  }

  private async ends(p: PolicyView): Promise<{ src: ReplicationEnd; dst: ReplicationEnd }> {
    return {
      src: p.srcRegistryId === null ? this.deps.local : await this.deps.client(p.srcRegistryId),
      dst: p.destRegistryId === null ? this.deps.local : await this.deps.client(p.destRegistryId),
    };
  }

  /** The destination repository of a source one. */
  private destination(p: PolicyView, repository: string): string {
    const given = destinationName(repository, p.destNamespace, p.destNamespaceReplaceCount);
    // This Berth keeps repositories in projects: a single-component name goes to library/.
    const name = p.destRegistryId === null && !given.includes('/') ? `library/${given}` : given;
    // A namespace and a source name may add up to more than a repository name may be: such a
    // repository could be written here but never pulled (or pushed to another registry).
    if (!isValidName(name)) throw new UpstreamError('protocol', `the destination "${name.slice(0, 100)}${name.length > 100 ? '…' : ''}" is not a valid repository name (${name.length > 255 ? 'longer than 255 characters' : 'outside the grammar'})`);
    return name;
  }

  /** The source's tags that pass the policy's filters, as copy candidates. */
  private async list(p: PolicyView, src: ReplicationEnd): Promise<Candidate[]> {
    const names = matcher(p.filters, 'name');
    const tags = matcher(p.filters, 'tag');
    const nameFilters = p.filters.filter((f) => f.type === 'name' && f.value);
    // An exact name (no pattern) needs no catalog, which Docker Hub and others do not offer.
    const exact = nameFilters.length === 1 && nameFilters[0].decoration === 'matches' && !GLOB_CHARS.test(nameFilters[0].value) ? [nameFilters[0].value] : null;
    // Names and tags outside the grammar (a remote's catalog may list anything) name nothing to copy:
    // skipped, so one odd entry does not fail the whole run.
    const repositories = (exact ?? (await src.catalog())).filter((r) => isValidName(r) && names.test(r)).sort();
    const out: Candidate[] = [];
    for (const repository of repositories) {
      for (const tag of (await src.tags(repository)).sort()) if (isValidTag(tag) && tags.test(tag)) out.push({ operation: 'copy', repository, reference: tag });
      // Untagged artifacts count as the tag "" (as Harbor matches them); only this Berth can list them.
      if (p.srcRegistryId === null && tags.test('')) {
        for (const digest of await this.deps.store.untaggedArtifacts(repository)) out.push({ operation: 'copy', repository, reference: digest });
      }
    }
    return out;
  }

  private async execute(id: number, p: PolicyView, given: Candidate[] | null, signal: AbortSignal): Promise<void> {
    const counts: ExecutionCounts = { total: 0, failed: 0, succeed: 0, inProgress: 0, stopped: 0 };
    const beat = setInterval(() => {
      void this.deps.store
        .beat(id, counts)
        .then((status) => {
          if (status !== 'InProgress') this.running.get(id)?.controller.abort(new StoppedError());
        })
        .catch((err) => this.deps.log.warn({ execution: id, err: (err as Error).message }, 'replication heartbeat failed'));
    }, this.deps.heartbeatMs ?? 3000);
    beat.unref();
    const finish = async (status: ExecutionStatus, text: string) => {
      clearInterval(beat);
      if (!(await this.deps.store.finishExecution(id, status, text, counts))) await this.deps.store.setCounts(id, counts);
      this.deps.log.info({ execution: id, policy: p.name, status, ...counts }, 'replication execution ended');
    };
    try {
      return await this.work(id, p, given, signal, counts, finish);
    } catch (e) {
      // Whatever failed outside a task (the database, most likely): the execution ends Failed
      // instead of staying InProgress with its heartbeat running, which no reaper would end and
      // which would keep the policy from being deleted.
      this.deps.log.warn({ execution: id, err: describe(e) }, 'replication execution failed');
      try {
        await finish('Failed', `the execution failed: ${describe(e)}`.slice(0, 1000));
      } finally {
        clearInterval(beat);
      }
    }
  }

  private async work(id: number, p: PolicyView, given: Candidate[] | null, signal: AbortSignal, counts: ExecutionCounts, finish: (status: ExecutionStatus, text: string) => Promise<void>): Promise<void> {
    let candidates: Candidate[];
    let ends: { src: ReplicationEnd; dst: ReplicationEnd };
    try {
      ends = await this.ends(p);
      const retry = { ...this.deps.retry, signal };
      candidates = given ?? (await withRetry(() => this.list(p, ends.src), retry));
    } catch (e) {
      return finish(signal.aborted ? 'Stopped' : 'Failed', `listing the source failed: ${describe(e)}`);
    }
    const work: { c: Candidate; task: NewTask; dstRepo: string | null; error: string | null }[] = candidates.map((c) => {
      let dstRepo: string | null = null;
      let error: string | null = null;
      try {
        dstRepo = this.destination(p, c.repository);
      } catch (e) {
        error = describe(e);
      }
      const sep = c.reference.includes(':') ? '@' : ':';
      return { c, dstRepo, error, task: { resourceType: 'image', operation: c.operation, srcResource: `${c.repository}${sep}${c.reference}`, dstResource: `${dstRepo ?? '?'}${sep}${c.reference}` } };
    });
    const taskIds = await this.deps.store.createTasks(id, work.map((w) => w.task));
    counts.total = work.length;
    await this.deps.store.beat(id, counts);
    for (const [i, w] of work.entries()) {
      const taskId = taskIds[i];
      if (signal.aborted) {
        counts.stopped++;
        await this.deps.store.updateTask(taskId, { status: 'Stopped', endedAt: new Date() });
        continue;
      }
      counts.inProgress++;
      const status = await this.runTask(taskId, p, w.c, w.dstRepo, w.error, ends, signal);
      counts.inProgress--;
      if (status === 'Succeed') counts.succeed++;
      else if (status === 'Stopped') counts.stopped++;
      else counts.failed++;
    }
    if (signal.aborted && signal.reason instanceof Error && signal.reason.message === 'shutdown') return finish('Failed', 'Berth stopped during the execution');
    if (signal.aborted) return finish('Stopped', 'stopped by a user');
    if (counts.failed) return finish('Failed', `${counts.failed} of ${counts.total} tasks failed`);
    return finish('Succeed', '');
  }

  private async runTask(taskId: number, p: PolicyView, c: Candidate, dstRepo: string | null, error: string | null, ends: { src: ReplicationEnd; dst: ReplicationEnd }, signal: AbortSignal): Promise<TaskStatus> {
    const lines: string[] = [];
    const log = (level: 'INFO' | 'WARNING' | 'ERROR', msg: string) => lines.push(`${new Date().toISOString()} [${level}] ${msg}`);
    await this.deps.store.updateTask(taskId, { status: 'InProgress', startedAt: new Date() });
    const end = async (status: TaskStatus) => {
      await this.deps.store.updateTask(taskId, { status, log: lines.join('\n') + '\n', endedAt: new Date() });
      return status;
    };
    if (dstRepo === null) {
      log('ERROR', error ?? 'no destination');
      return end('Failed');
    }
    const sep = c.reference.includes(':') ? '@' : ':';
    const src = `${c.repository}${sep}${c.reference}`;
    const dst = `${dstRepo}${sep}${c.reference}`;
    const retry = {
      ...this.deps.retry,
      signal,
      onRetry: (e: UpstreamError, attempt: number, delay: number) => log('WARNING', `attempt ${attempt} failed (${e.kind}: ${e.message}); trying again in ${Math.round(delay / 100) / 10} s`),
    };
    try {
      if (c.operation === 'deletion') {
        log('INFO', `deleting ${dst} (deleted at the source)`);
        const there = await withRetry(() => ends.dst.headManifest(dstRepo, c.reference), retry);
        if (!there) log('INFO', `${dst} does not exist at the destination: nothing to delete`);
        else {
          await withRetry(() => ends.dst.deleteManifest(dstRepo, c.reference), retry);
          log('INFO', `deleted ${dst}`);
        }
        return end('Succeed');
      }
      log('INFO', `copying ${src} to ${dst}`);
      // The log so far is readable while the task runs (a long copy is not a blank log).
      await this.deps.store.updateTask(taskId, { log: lines.join('\n') + '\n' });
      if (!p.override && sep === ':') {
        const there = await withRetry(() => ends.dst.headManifest(dstRepo, c.reference), retry);
        const here = there && (await withRetry(() => ends.src.headManifest(c.repository, c.reference), retry));
        if (there && here && there.digest !== here.digest) {
          log('INFO', `skipped: ${dst} exists at the destination as ${there.digest} and override is off`);
          return end('Succeed');
        }
      }
      const srcEnd = stoppable(ends.src, signal);
      const result: CopyResult = await withRetry(
        () =>
          copyArtifact({ client: srcEnd, repository: c.repository }, { client: ends.dst, repository: dstRepo }, c.reference, {
            referrers: true,
            bytesPerSecond: speedToBytesPerSecond(p.speed),
            chunkSize: p.copyByChunk ? 10 * 1024 * 1024 : undefined,
            onStep: (s) => {
              if (signal.aborted) throw new StoppedError();
              if (s.kind === 'manifest' && s.action === 'pushed') log('INFO', `manifest ${s.digest} pushed`);
              if (s.kind === 'blob' && s.action !== 'skipped') log('INFO', `blob ${s.digest} (${s.size} bytes) ${s.action}`);
            },
          }),
        retry,
      );
      log(
        'INFO',
        `done: ${dst} is ${result.digest} (manifests: ${result.manifestsPushed} pushed, ${result.manifestsSkipped} already there; blobs: ${result.blobsUploaded} uploaded, ${result.blobsMounted} mounted, ${result.blobsSkipped} already there; ${result.bytesUploaded} bytes)`,
      );
      return end('Succeed');
    } catch (e) {
      if (signal.aborted) {
        log('WARNING', 'stopped');
        return end(signal.reason instanceof Error && signal.reason.message === 'shutdown' ? 'Failed' : 'Stopped');
      }
      log('ERROR', `${c.operation === 'deletion' ? 'deleting' : 'copying'} ${src} failed: ${describe(e)}`);
      this.deps.log.warn({ task: taskId, src, dst, err: describe(e) }, 'replication task failed');
      return end('Failed');
    }
  }

  /** Stops the schedules, and the runs on this node (they end Failed: "Berth stopped during the execution"). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.reloadTimer) clearInterval(this.reloadTimer);
    for (const c of this.crons.values()) c.cron.stop();
    this.crons.clear();
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    const runs = [...this.running.values()];
    for (const r of runs) r.controller.abort(new Error('shutdown'));
    await Promise.all(runs.map((r) => r.done));
  }
}

/** The cause of a failure in words (an UpstreamError's kind first: "unauthorized: ..."). */
function describe(e: unknown): string {
  if (e instanceof UpstreamError) return `${e.kind}: ${e.message}`;
  if (e instanceof AppError) return `${e.code}: ${e.message}`;
  return (e as Error)?.message ?? String(e);
}

/** The source end whose blob streams break off when the execution is stopped (a throttled copy may be mid-blob). */
function stoppable(end: ReplicationEnd, signal: AbortSignal): CopyClient {
  return {
    getManifest: (n, r) => end.getManifest(n, r),
    headManifest: (n, r) => end.headManifest(n, r),
    putManifest: (n, r, b, m) => end.putManifest(n, r, b, m),
    headBlob: (n, d) => end.headBlob(n, d),
    pushBlob: (n, d, s, src, o) => end.pushBlob(n, d, s, src, o),
    referrers: (n, d, a) => end.referrers(n, d, a),
    referrersApi: (n, d, a) => end.referrersApi(n, d, a),
    getBlob: async (n, d, s) => {
      if (signal.aborted) throw new StoppedError();
      const dl = await end.getBlob(n, d, s);
      const stop = () => dl.stream.destroy(new StoppedError());
      signal.addEventListener('abort', stop, { once: true });
      dl.stream.once('close', () => signal.removeEventListener('abort', stop));
      return dl;
    },
  };
}
