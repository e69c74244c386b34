// Replication policies, their executions and the executions' tasks (Harbor's /replication/*).
// An execution row is also how nodes talk about a run: the node running it refreshes `heartbeat`;
// a stop from any node sets the status to Stopped, which the running node reads at its next
// heartbeat; a run whose heartbeat went stale (its node died) is marked Failed by whoever looks.
// Every status change of a running execution is conditional on it still being InProgress, so a
// stop is never overwritten by the runner's own end.
import type { Db } from './client.ts';
import { nameContains } from './search.ts';
import { conflictOnDuplicate } from './unique.ts';

export interface ReplicationPolicyRow {
  id: number;
  name: string;
  description: string;
  srcRegistryId: number | null;
  destRegistryId: number | null;
  destNamespace: string;
  destNamespaceReplaceCount: number;
  /** JSON: {"type": ..., "trigger_settings": {"cron": ...}} */
  trigger: string;
  /** JSON: [{"type", "value", "decoration"}] */
  filters: string;
  replicateDeletion: boolean;
  override: boolean;
  enabled: boolean;
  speed: number;
  copyByChunk: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export type ReplicationPolicyFields = Omit<ReplicationPolicyRow, 'id' | 'createdAt' | 'updatedAt'>;

export type ExecutionStatus = 'InProgress' | 'Succeed' | 'Failed' | 'Stopped';
export type TaskStatus = 'Pending' | 'InProgress' | 'Succeed' | 'Failed' | 'Stopped';

export interface ReplicationExecutionRow {
  id: number;
  policyId: number;
  status: string;
  statusText: string;
  trigger: string;
  total: number;
  failed: number;
  succeed: number;
  inProgress: number;
  stopped: number;
  node: string | null;
  heartbeat: Date | null;
  startedAt: Date;
  endedAt: Date | null;
}

export interface ExecutionCounts {
  total: number;
  failed: number;
  succeed: number;
  inProgress: number;
  stopped: number;
}

export interface ReplicationTaskRow {
  id: number;
  executionId: number;
  resourceType: string;
  srcResource: string;
  dstResource: string;
  operation: string;
  status: string;
  log: string;
  startedAt: Date;
  endedAt: Date | null;
}

export type NewTask = Pick<ReplicationTaskRow, 'resourceType' | 'srcResource' | 'dstResource' | 'operation'>;

/** Tasks created per transaction. */
const TASK_BATCH = 250;

const taskSelect = { id: true, executionId: true, resourceType: true, srcResource: true, dstResource: true, operation: true, status: true, startedAt: true, endedAt: true } as const;

export class ReplicationStore {
  constructor(private readonly db: Db) {}

  // ---- policies ------------------------------------------------------------------------------

  async listPolicies(f: { name?: { exact?: string; fuzzy?: string } }, page: number, pageSize: number): Promise<{ total: number; items: ReplicationPolicyRow[] }> {
    const where = f.name ? (f.name.exact !== undefined ? { name: f.name.exact } : await nameContains(this.db, 'ReplicationPolicy', 'name', f.name.fuzzy ?? '')) : {};
    const [total, items] = await Promise.all([
      this.db.replicationPolicy.count({ where }),
      this.db.replicationPolicy.findMany({ where, orderBy: { id: 'asc' }, skip: (page - 1) * pageSize, take: pageSize }),
    ]);
    return { total, items };
  }

  /** Every policy (for triggers: a registry has a handful, not thousands). */
  allPolicies(): Promise<ReplicationPolicyRow[]> {
    return this.db.replicationPolicy.findMany({ orderBy: { id: 'asc' } });
  }

  getPolicy(id: number): Promise<ReplicationPolicyRow | null> {
    return this.db.replicationPolicy.findUnique({ where: { id } });
  }

  /** CONFLICT when the name is taken. */
  async createPolicy(fields: ReplicationPolicyFields): Promise<number> {
    const row = await conflictOnDuplicate(this.db.replicationPolicy.create({ data: fields, select: { id: true } }), `a replication policy named "${fields.name}" already exists`);
    return row.id;
  }

  /** CONFLICT when the new name is taken; false when there is no such policy. */
  async updatePolicy(id: number, fields: Partial<ReplicationPolicyFields>): Promise<boolean> {
    const n = await conflictOnDuplicate(this.db.replicationPolicy.updateMany({ where: { id }, data: fields }), `a replication policy named "${fields.name ?? ''}" already exists`);
    return n.count > 0;
  }

  /** Deletes the policy with its executions and tasks unless one of them runs: 'running' then. */
  async deletePolicy(id: number): Promise<'deleted' | 'missing' | 'running'> {
    return this.db.$transaction(async (tx) => {
      if (await tx.replicationExecution.findFirst({ where: { policyId: id, status: 'InProgress' }, select: { id: true } })) return 'running';
      const n = await tx.replicationPolicy.deleteMany({ where: { id } });
      return n.count ? 'deleted' : 'missing';
    });
  }

  /** Names of policies (at most 10) that use the registry endpoint as source or destination. */
  async policiesUsing(registryId: number): Promise<string[]> {
    const rows = await this.db.replicationPolicy.findMany({ where: { OR: [{ srcRegistryId: registryId }, { destRegistryId: registryId }] }, select: { name: true }, orderBy: { name: 'asc' }, take: 10 });
    return rows.map((r) => r.name);
  }

  /**
   * The untagged artifacts of a repository of this Berth, for a push-based run: manifests without a
   * tag that are neither a referrer (copied with its subject) nor a child of an index there
   * (copied with its index). Oldest first, at most `limit`.
   */
  async untaggedArtifacts(repository: string, limit = 10_000): Promise<string[]> {
    const repo = await this.db.repository.findUnique({ where: { name: repository }, select: { id: true } });
    if (!repo) return [];
    const [manifests, tags] = await Promise.all([
      this.db.manifest.findMany({ where: { repositoryId: repo.id, subject: null }, select: { digest: true, refs: true }, orderBy: { id: 'asc' }, take: 100_000 }),
      this.db.tag.findMany({ where: { repositoryId: repo.id }, select: { digest: true } }),
    ]);
    const covered = new Set(tags.map((t) => t.digest));
    const digests = new Set(manifests.map((m) => m.digest));
    for (const m of manifests) {
      try {
        for (const r of JSON.parse(m.refs) as string[]) if (digests.has(r)) covered.add(r);
      } catch {
        /* refs are written as JSON by the registry store */
      }
    }
    return manifests.filter((m) => !covered.has(m.digest)).slice(0, limit).map((m) => m.digest);
  }

  // ---- executions ----------------------------------------------------------------------------

  async createExecution(policyId: number, trigger: string, node: string, now = new Date()): Promise<number> {
    const row = await this.db.replicationExecution.create({ data: { policyId, trigger, node, heartbeat: now, status: 'InProgress', startedAt: now }, select: { id: true } });
    return row.id;
  }

  getExecution(id: number): Promise<ReplicationExecutionRow | null> {
    return this.db.replicationExecution.findUnique({ where: { id } });
  }

  /** Newest first. */
  async listExecutions(f: { policyId?: number; status?: string; trigger?: string }, page: number, pageSize: number): Promise<{ total: number; items: ReplicationExecutionRow[] }> {
    const where = { ...(f.policyId !== undefined ? { policyId: f.policyId } : {}), ...(f.status ? { status: f.status } : {}), ...(f.trigger ? { trigger: f.trigger } : {}) };
    const [total, items] = await Promise.all([
      this.db.replicationExecution.count({ where }),
      this.db.replicationExecution.findMany({ where, orderBy: { id: 'desc' }, skip: (page - 1) * pageSize, take: pageSize }),
    ]);
    return { total, items };
  }

  /** Refreshes the heartbeat and counts of a running execution; returns its status (Stopped when stopped elsewhere), null when gone. */
  async beat(id: number, counts: ExecutionCounts | null, now = new Date()): Promise<string | null> {
    await this.db.replicationExecution.updateMany({ where: { id, status: 'InProgress' }, data: { heartbeat: now, ...(counts ?? {}) } });
    const row = await this.db.replicationExecution.findUnique({ where: { id }, select: { status: true } });
    return row?.status ?? null;
  }

  /** Ends a running execution; false when it was no longer InProgress (stopped, or marked failed). */
  async finishExecution(id: number, status: ExecutionStatus, statusText: string, counts: ExecutionCounts, now = new Date()): Promise<boolean> {
    const n = await this.db.replicationExecution.updateMany({ where: { id, status: 'InProgress' }, data: { status, statusText: statusText.slice(0, 2000), ...counts, endedAt: now, heartbeat: now } });
    return n.count > 0;
  }

  /** Sets a running execution's counts (after it was ended from outside, so they stay right). */
  async setCounts(id: number, counts: ExecutionCounts): Promise<void> {
    await this.db.replicationExecution.updateMany({ where: { id }, data: counts });
  }

  /** Marks a running execution Stopped (the running node sees it at its next heartbeat); false when it was not running. */
  async stopExecution(id: number, now = new Date()): Promise<boolean> {
    const n = await this.db.replicationExecution.updateMany({ where: { id, status: 'InProgress' }, data: { status: 'Stopped', statusText: 'stopped by a user', endedAt: now } });
    if (n.count) await this.db.replicationTask.updateMany({ where: { executionId: id, status: 'Pending' }, data: { status: 'Stopped', endedAt: now } });
    return n.count > 0;
  }

  /**
   * Marks Failed every execution still InProgress whose heartbeat is older than `staleBefore` (its
   * node died or was restarted), and their unfinished tasks; `staleBefore` null: every running
   * one (a single node's start). Returns the ids.
   */
  async failStale(staleBefore: Date | null, now = new Date()): Promise<number[]> {
    const where = staleBefore ? { status: 'InProgress', OR: [{ heartbeat: null }, { heartbeat: { lt: staleBefore } }] } : { status: 'InProgress' };
    const stale = await this.db.replicationExecution.findMany({ where, select: { id: true } });
    const ids: number[] = [];
    for (const { id } of stale) {
      const n = await this.db.replicationExecution.updateMany({
        where: { id, ...where },
        data: { status: 'Failed', statusText: 'the node running this execution stopped (restarted or died) before it ended', endedAt: now },
      });
      if (!n.count) continue;
      ids.push(id);
      await this.db.replicationTask.updateMany({ where: { executionId: id, status: { in: ['Pending', 'InProgress'] } }, data: { status: 'Failed', endedAt: now } });
      const tasks = await this.db.replicationTask.groupBy({ by: ['status'], where: { executionId: id }, _count: { _all: true } });
      const c = (s: string) => tasks.find((t) => t.status === s)?._count._all ?? 0;
      await this.setCounts(id, { total: tasks.reduce((a, t) => a + t._count._all, 0), failed: c('Failed'), succeed: c('Succeed'), inProgress: 0, stopped: c('Stopped') });
    }
    return ids;
  }

  // ---- tasks ---------------------------------------------------------------------------------

  /**
   * Adds tasks (Pending) in order; their ids in the same order. One INSERT per few hundred: one
   * transaction of a create per task held PostgreSQL's interactive transaction past its 5 s limit
   * for a source with tens of thousands of tags (20,000 failed there), and SQLite's write lock as
   * long (every push waiting).
   */
  async createTasks(executionId: number, tasks: NewTask[], now = new Date()): Promise<number[]> {
    const ids: number[] = [];
    for (let i = 0; i < tasks.length; i += TASK_BATCH) {
      const rows = await this.db.replicationTask.createManyAndReturn({ data: tasks.slice(i, i + TASK_BATCH).map((t) => ({ executionId, ...t, status: 'Pending', startedAt: now })), select: { id: true } });
      // One INSERT numbers its rows in the order given.
      ids.push(...rows.map((r) => r.id).sort((a, b) => a - b));
    }
    return ids;
  }

  /** Changes a task unless it was already stopped or failed from outside (false then). */
  async updateTask(id: number, fields: { status?: TaskStatus; log?: string; startedAt?: Date; endedAt?: Date | null }): Promise<boolean> {
    const n = await this.db.replicationTask.updateMany({ where: { id, status: { in: ['Pending', 'InProgress'] } }, data: fields });
    if (!n.count && fields.log !== undefined) await this.db.replicationTask.updateMany({ where: { id }, data: { log: fields.log } });
    return n.count > 0;
  }

  async listTasks(executionId: number, f: { status?: string; resourceType?: string }, page: number, pageSize: number): Promise<{ total: number; items: Omit<ReplicationTaskRow, 'log'>[] }> {
    const where = { executionId, ...(f.status ? { status: f.status } : {}), ...(f.resourceType ? { resourceType: f.resourceType } : {}) };
    const [total, items] = await Promise.all([
      this.db.replicationTask.count({ where }),
      this.db.replicationTask.findMany({ where, orderBy: { id: 'asc' }, skip: (page - 1) * pageSize, take: pageSize, select: taskSelect }),
    ]);
    return { total, items };
  }

  getTask(executionId: number, id: number): Promise<ReplicationTaskRow | null> {
    return this.db.replicationTask.findFirst({ where: { id, executionId } });
  }
}
