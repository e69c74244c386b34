// Tag retention policies, their executions and tasks (Harbor's /retentions). As with replication,
// an execution row is how nodes talk about a run: the running node refreshes `heartbeat`; a stop
// from any node sets Stopped, which the runner reads at its next heartbeat; a run whose heartbeat
// went stale (its node died) is marked Failed by whoever looks. Status changes of a running
// execution are conditional on it still being InProgress.
import type { Db } from './client.ts';
import { conflictOnDuplicate } from './unique.ts';

export interface RetentionPolicyRow {
  id: number;
  projectId: number;
  algorithm: string;
  /** JSON array of Harbor's RetentionRule. */
  rules: string;
  /** JSON of Harbor's RetentionRuleTrigger. */
  trigger: string;
}

export type RetentionStatus = 'InProgress' | 'Succeed' | 'Failed' | 'Stopped';

export interface RetentionExecutionRow {
  id: number;
  policyId: number;
  status: string;
  trigger: string;
  dryRun: boolean;
  node: string;
  heartbeat: Date;
  startedAt: Date;
  endedAt: Date | null;
}

export interface RetentionTaskRow {
  id: number;
  executionId: number;
  repository: string;
  status: string;
  total: number;
  retained: number;
  startedAt: Date;
  endedAt: Date | null;
}

const POLICY = { id: true, projectId: true, algorithm: true, rules: true, trigger: true } as const;
const TASK = { id: true, executionId: true, repository: true, status: true, total: true, retained: true, startedAt: true, endedAt: true } as const;

export class RetentionStore {
  constructor(private readonly db: Db) {}

  // ---- policies ------------------------------------------------------------------------------

  /** The new policy's id; CONFLICT when the project has one already. */
  async createPolicy(p: Omit<RetentionPolicyRow, 'id'>): Promise<number> {
    const row = await conflictOnDuplicate(this.db.retentionPolicy.create({ data: p, select: { id: true } }), `project ${p.projectId} already has a retention policy`);
    return row.id;
  }

  policy(id: number): Promise<RetentionPolicyRow | null> {
    return this.db.retentionPolicy.findUnique({ where: { id }, select: POLICY });
  }

  policyOfProject(projectId: number): Promise<RetentionPolicyRow | null> {
    return this.db.retentionPolicy.findUnique({ where: { projectId }, select: POLICY });
  }

  /** Every policy (for arming schedules). */
  policies(): Promise<RetentionPolicyRow[]> {
    return this.db.retentionPolicy.findMany({ select: POLICY, orderBy: { id: 'asc' } });
  }

  async updatePolicy(id: number, fields: Pick<RetentionPolicyRow, 'algorithm' | 'rules' | 'trigger'>): Promise<boolean> {
    return (await this.db.retentionPolicy.updateMany({ where: { id }, data: fields })).count > 0;
  }

  async deletePolicy(id: number): Promise<boolean> {
    return (await this.db.retentionPolicy.deleteMany({ where: { id } })).count > 0;
  }

  // ---- executions ----------------------------------------------------------------------------

  async createExecution(policyId: number, trigger: string, dryRun: boolean, node: string, now = new Date()): Promise<number> {
    const row = await this.db.retentionExecution.create({ data: { policyId, trigger, dryRun, node, heartbeat: now, status: 'InProgress', startedAt: now }, select: { id: true } });
    return row.id;
  }

  execution(id: number): Promise<RetentionExecutionRow | null> {
    return this.db.retentionExecution.findUnique({ where: { id } });
  }

  /** Newest first. */
  async listExecutions(policyId: number, page: number, pageSize: number): Promise<{ total: number; items: RetentionExecutionRow[] }> {
    const where = { policyId };
    const [total, items] = await Promise.all([
      this.db.retentionExecution.count({ where }),
      this.db.retentionExecution.findMany({ where, orderBy: { id: 'desc' }, skip: (page - 1) * pageSize, take: pageSize }),
    ]);
    return { total, items };
  }

  /** Whether the policy has a run in progress. */
  async running(policyId: number): Promise<RetentionExecutionRow | null> {
    return this.db.retentionExecution.findFirst({ where: { policyId, status: 'InProgress' } });
  }

  /** Refreshes a running execution's heartbeat; its status now (Stopped when stopped elsewhere), null when gone. */
  async beat(id: number, now = new Date()): Promise<string | null> {
    await this.db.retentionExecution.updateMany({ where: { id, status: 'InProgress' }, data: { heartbeat: now } });
    const row = await this.db.retentionExecution.findUnique({ where: { id }, select: { status: true } });
    return row?.status ?? null;
  }

  /** Ends a running execution; false when it was no longer InProgress. */
  async finishExecution(id: number, status: RetentionStatus, now = new Date()): Promise<boolean> {
    return (await this.db.retentionExecution.updateMany({ where: { id, status: 'InProgress' }, data: { status, endedAt: now, heartbeat: now } })).count > 0;
  }

  /** Marks Failed the runs whose node stopped beating before `staleBefore`; how many. */
  async failDead(staleBefore: Date, now = new Date()): Promise<number> {
    return (await this.db.retentionExecution.updateMany({ where: { status: 'InProgress', heartbeat: { lt: staleBefore } }, data: { status: 'Failed', endedAt: now } })).count;
  }

  // ---- tasks ---------------------------------------------------------------------------------

  async createTask(executionId: number, repository: string, now = new Date()): Promise<number> {
    const row = await this.db.retentionTask.create({ data: { executionId, repository, status: 'InProgress', startedAt: now }, select: { id: true } });
    return row.id;
  }

  async finishTask(id: number, fields: { status: RetentionStatus; total: number; retained: number; log: string }, now = new Date()): Promise<void> {
    await this.db.retentionTask.updateMany({ where: { id }, data: { ...fields, endedAt: now } });
  }

  async listTasks(executionId: number, page: number, pageSize: number): Promise<{ total: number; items: RetentionTaskRow[] }> {
    const where = { executionId };
    const [total, items] = await Promise.all([
      this.db.retentionTask.count({ where }),
      this.db.retentionTask.findMany({ where, orderBy: { id: 'asc' }, skip: (page - 1) * pageSize, take: pageSize, select: TASK }),
    ]);
    return { total, items };
  }

  async taskLog(executionId: number, id: number): Promise<string | null> {
    const row = await this.db.retentionTask.findFirst({ where: { id, executionId }, select: { log: true } });
    return row?.log ?? null;
  }
}
