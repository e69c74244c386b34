// /api/v2.0/replication/policies and /replication/executions in Harbor's shapes
// (ReplicationPolicy, ReplicationExecution, ReplicationTask). System admins only, as Harbor. The
// side of a policy that is this Berth shows as the registry with id 0, named "Local", as Harbor
// shows itself; a registry endpoint's secret is never sent ("*****" where one is saved).
import express from 'express';
import { AppError } from '../lib/errors.ts';
import { SECRET_PLACEHOLDER, type RegistriesService } from '../services/registries.ts';
import type { ExecutionView, PolicyInput, PolicyView, ReplicationService, TaskView } from '../services/replication.ts';
import { iso, paging, requireSysadmin, setPageHeaders } from './common.ts';
import type { RegistryDto, ReplicationExecutionDto, ReplicationPolicyDto, ReplicationTaskDto } from './responses.ts';
import { route } from './validate.ts';

export interface ReplicationRouteDeps {
  replication: ReplicationService;
  registries: RegistriesService;
  externalUrl?: string;
}

export function replicationRouter(deps: ReplicationRouteDeps): express.Router {
  const r = express.Router();

  const local = (): RegistryDto => ({
    id: 0,
    name: 'Local',
    type: 'harbor',
    url: deps.externalUrl ?? '',
    description: 'this Berth',
    credential: { type: '', access_key: '' },
    insecure: false,
    status: 'healthy',
    creation_time: '',
    update_time: '',
  });

  const registry = async (id: number | null): Promise<RegistryDto> => {
    if (id === null) return local();
    try {
      const reg = await deps.registries.get(id);
      return {
        id: reg.id,
        name: reg.name,
        type: reg.type,
        url: reg.url,
        description: reg.description,
        credential: { type: reg.credential.type, access_key: reg.credential.accessKey, ...(reg.credential.hasSecret ? { access_secret: SECRET_PLACEHOLDER } : {}) },
        insecure: reg.insecure,
        status: reg.status,
        creation_time: iso(reg.createdAt),
        update_time: iso(reg.updatedAt),
      };
    } catch (e) {
      if (!(e instanceof AppError) || e.code !== 'NOT_FOUND') throw e;
      return { ...local(), id, name: '', description: 'deleted registry', status: 'unknown' };
    }
  };

  const policyDto = async (p: PolicyView): Promise<ReplicationPolicyDto> => ({
    id: p.id,
    name: p.name,
    description: p.description,
    src_registry: await registry(p.srcRegistryId),
    dest_registry: await registry(p.destRegistryId),
    dest_namespace: p.destNamespace,
    dest_namespace_replace_count: p.destNamespaceReplaceCount,
    trigger: { type: p.trigger.type, trigger_settings: { cron: p.trigger.cron } },
    filters: p.filters,
    replicate_deletion: p.replicateDeletion,
    deletion: p.replicateDeletion,
    override: p.override,
    enabled: p.enabled,
    speed: p.speed,
    copy_by_chunk: p.copyByChunk,
    creation_time: iso(p.createdAt),
    update_time: iso(p.updatedAt),
  });

  const executionDto = (e: ExecutionView): ReplicationExecutionDto => ({
    id: e.id,
    policy_id: e.policyId,
    status: e.status as ReplicationExecutionDto['status'],
    trigger: e.trigger,
    start_time: iso(e.startedAt),
    end_time: iso(e.endedAt),
    status_text: e.statusText,
    total: e.total,
    failed: e.failed,
    succeed: e.succeed,
    in_progress: e.inProgress,
    stopped: e.stopped,
  });

  const taskDto = (t: TaskView): ReplicationTaskDto => ({
    id: t.id,
    execution_id: t.executionId,
    status: t.status as ReplicationTaskDto['status'],
    job_id: String(t.id),
    operation: t.operation,
    resource_type: t.resourceType,
    src_resource: t.srcResource,
    dst_resource: t.dstResource,
    start_time: iso(t.startedAt),
    end_time: iso(t.endedAt),
  });

  /** ReplicationPolicy's body as the service's input (registries by id; 0 or none is this Berth). */
  type Body = {
    name?: string | null;
    description?: string | null;
    src_registry?: { id?: number | null } | null;
    dest_registry?: { id?: number | null } | null;
    dest_namespace?: string | null;
    dest_namespace_replace_count?: number | null;
    trigger?: { type?: string | null; trigger_settings?: { cron?: string | null } | null } | null;
    filters?: { type?: string | null; value?: unknown; decoration?: string | null }[] | null;
    replicate_deletion?: boolean | null;
    deletion?: boolean | null;
    override?: boolean | null;
    enabled?: boolean | null;
    speed?: number | null;
    copy_by_chunk?: boolean | null;
  };
  const input = (b: Body): PolicyInput => ({
    name: b.name,
    description: b.description,
    src_registry_id: b.src_registry === undefined ? undefined : (b.src_registry?.id ?? null),
    dest_registry_id: b.dest_registry === undefined ? undefined : (b.dest_registry?.id ?? null),
    dest_namespace: b.dest_namespace,
    dest_namespace_replace_count: b.dest_namespace_replace_count,
    trigger: b.trigger ? { type: b.trigger.type, cron: b.trigger.trigger_settings?.cron } : b.trigger,
    filters: b.filters,
    replicate_deletion: b.replicate_deletion ?? b.deletion,
    override: b.override,
    enabled: b.enabled,
    speed: b.speed,
    copy_by_chunk: b.copy_by_chunk,
  });

  route(r, 'get /replication/policies', async (req, res, { query }) => {
    requireSysadmin(res);
    const pg = paging(query);
    const name = query.q.name ?? (query.name !== undefined ? { fuzzy: query.name } : undefined);
    const { total, items } = await deps.replication.listPolicies(name, pg.page, pg.pageSize);
    setPageHeaders(req, res, total, pg);
    res.json(await Promise.all(items.map(policyDto)));
  });

  route(r, 'post /replication/policies', async (_req, res, { body }) => {
    const p = requireSysadmin(res);
    const id = await deps.replication.createPolicy(p.name, input(body));
    res.setHeader('Location', `/api/v2.0/replication/policies/${id}`);
    res.status(201).end();
  });

  route(r, 'get /replication/policies/:id', async (_req, res, { params }) => {
    requireSysadmin(res);
    res.json(await policyDto(await deps.replication.getPolicy(params.id)));
  });

  route(r, 'put /replication/policies/:id', async (_req, res, { params, body }) => {
    const p = requireSysadmin(res);
    await deps.replication.updatePolicy(p.name, params.id, input(body));
    res.status(200).end();
  });

  route(r, 'delete /replication/policies/:id', async (_req, res, { params }) => {
    const p = requireSysadmin(res);
    await deps.replication.deletePolicy(p.name, params.id);
    res.status(200).end();
  });

  route(r, 'get /replication/executions', async (req, res, { query }) => {
    requireSysadmin(res);
    const pg = paging(query);
    const { total, items } = await deps.replication.listExecutions({ policyId: query.policy_id, status: query.status, trigger: query.trigger }, pg.page, pg.pageSize);
    setPageHeaders(req, res, total, pg);
    res.json(items.map(executionDto));
  });

  route(r, 'post /replication/executions', async (_req, res, { body }) => {
    requireSysadmin(res);
    if (!body.policy_id) throw new AppError('BAD_REQUEST', undefined, { message: 'policy_id: required' });
    const id = await deps.replication.startManual(body.policy_id);
    res.setHeader('Location', `/api/v2.0/replication/executions/${id}`);
    res.status(201).end();
  });

  route(r, 'get /replication/executions/:id', async (_req, res, { params }) => {
    requireSysadmin(res);
    res.json(executionDto(await deps.replication.getExecution(params.id)));
  });

  route(r, 'put /replication/executions/:id', async (_req, res, { params }) => {
    requireSysadmin(res);
    await deps.replication.stop(params.id);
    res.status(200).end();
  });

  route(r, 'get /replication/executions/:id/tasks', async (req, res, { params, query }) => {
    requireSysadmin(res);
    const pg = paging(query);
    const { total, items } = await deps.replication.listTasks(params.id, { status: query.status, resourceType: query.resource_type }, pg.page, pg.pageSize);
    setPageHeaders(req, res, total, pg);
    res.json(items.map(taskDto));
  });

  route(r, 'get /replication/executions/:id/tasks/:task_id/log', async (_req, res, { params }) => {
    requireSysadmin(res);
    // The log quotes what the other registry answered: never let a browser take it for HTML.
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.type('text/plain').send(await deps.replication.taskLog(params.id, params.task_id));
  });

  return r;
}
