// /api/v2.0/retentions in Harbor's shapes (RetentionPolicy, RetentionExecution,
// RetentionExecutionTask, RetentionMetadata). A policy belongs to a project: every route checks the
// caller's tag-retention right on that project, found by its id (a policy the caller may not see
// answers 404, like one that does not exist).
import express from 'express';
import type { Response } from 'express';
import type { Verb } from '../access/roles.ts';
import type { RetentionExecutionRow, RetentionTaskRow } from '../db/retention-store.ts';
import { AppError } from '../lib/errors.ts';
import type { AccessService } from '../services/access-service.ts';
import type { ProjectsService } from '../services/projects.ts';
import type { PolicyView, RetentionService } from '../services/retention.ts';
import { iso, paging, principalOf, requireUser, setPageHeaders } from './common.ts';
import type { RetentionExecutionDto, RetentionMetadataDto, RetentionPolicyDto, RetentionTaskDto } from './responses.ts';
import { route } from './validate.ts';

export interface RetentionRouteDeps {
  retention: RetentionService;
  projects: ProjectsService;
  access: AccessService;
}

const COUNT = [{ type: 'int', unit: 'COUNT', required: true }];
const DAYS = [{ type: 'int', unit: 'DAYS', required: true }];

const METADATA: RetentionMetadataDto = {
  templates: [
    { rule_template: 'latestPushedK', display_text: 'the most recently pushed # artifacts', action: 'retain', params: COUNT },
    { rule_template: 'latestPulledN', display_text: 'the most recently pulled # artifacts', action: 'retain', params: COUNT },
    { rule_template: 'nDaysSinceLastPush', display_text: 'pushed within the last # days', action: 'retain', params: DAYS },
    { rule_template: 'nDaysSinceLastPull', display_text: 'pulled within the last # days', action: 'retain', params: DAYS },
    { rule_template: 'always', display_text: 'always', action: 'retain', params: [] },
  ],
  scope_selectors: [{ display_text: 'Repositories', kind: 'doublestar', decorations: ['repoMatches', 'repoExcludes'] }],
  tag_selectors: [{ display_text: 'Tags', kind: 'doublestar', decorations: ['matches', 'excludes'] }],
};

function policyDto(p: PolicyView): RetentionPolicyDto {
  return { id: p.id, algorithm: p.algorithm, rules: p.rules, trigger: p.trigger, scope: { level: 'project', ref: p.projectId } };
}

function executionDto(e: RetentionExecutionRow): RetentionExecutionDto {
  return { id: e.id, policy_id: e.policyId, start_time: iso(e.startedAt), end_time: iso(e.endedAt), status: e.status, trigger: e.trigger, dry_run: e.dryRun };
}

function taskDto(t: RetentionTaskRow): RetentionTaskDto {
  return {
    id: t.id,
    execution_id: t.executionId,
    repository: t.repository,
    job_id: String(t.id),
    status: t.status,
    status_code: 0,
    status_revision: 0,
    start_time: iso(t.startedAt),
    end_time: iso(t.endedAt),
    total: t.total,
    retained: t.retained,
  };
}

export function retentionRouter(deps: RetentionRouteDeps): express.Router {
  const r = express.Router();

  /**
   * The caller's `verb` on tag retention in the project with this id (looked up by id only, never
   * by a name a header could choose): 404 when the caller may not see the project.
   */
  const allowed = async (res: Response, projectId: number, verb: Verb): Promise<void> => {
    const project = await deps.projects.get(projectId);
    const principal = principalOf(res);
    const ref = project && { id: project.id, name: project.name, public: project.public };
    // The right itself is enough (as Harbor: a robot given tag-retention rights only); without it, a
    // project the caller may not read answers like one that does not exist.
    if (ref && (await deps.access.can(principal, ref, 'tag-retention', verb))) return;
    const visible = ref && ((await deps.access.can(principal, ref, 'project', 'read')) || (await deps.access.can(principal, ref, 'tag-retention', 'read')));
    if (!visible) throw new AppError('NOT_FOUND', undefined, { message: 'project not found' });
    if (!principal) throw new AppError('UNAUTHORIZED');
    throw new AppError('FORBIDDEN', undefined, { message: `no permission to ${verb} tag retention` });
  };

  /** The policy, once the caller may `verb` it. */
  const policy = async (res: Response, id: number, verb: Verb): Promise<PolicyView> => {
    const p = await deps.retention.get(id).catch((e: unknown) => {
      if (!principalOf(res) && e instanceof AppError && e.code === 'NOT_FOUND') throw new AppError('UNAUTHORIZED');
      throw e;
    });
    await allowed(res, p.projectId, verb);
    return p;
  };

  route(r, 'get /retentions/metadatas', async (_req, res) => {
    requireUser(res);
    res.json(METADATA);
  });

  route(r, 'post /retentions', async (_req, res, { body }) => {
    requireUser(res);
    const projectId = deps.retention.scopeOf(body);
    await allowed(res, projectId, 'create');
    const id = await deps.retention.create(projectId, body);
    res.setHeader('Location', `/api/v2.0/retentions/${id}`);
    res.status(201).end();
  });

  route(r, 'get /retentions/:id', async (_req, res, { params }) => {
    res.json(policyDto(await policy(res, params.id, 'read')));
  });

  route(r, 'put /retentions/:id', async (_req, res, { params, body }) => {
    const p = await policy(res, params.id, 'update');
    // The scope stays the policy's project: a body naming another is a mistake, not a move.
    if (body.scope?.ref && body.scope.ref !== p.projectId) throw new AppError('BAD_REQUEST', undefined, { message: 'scope.ref: a policy stays with its project' });
    await deps.retention.update(p.id, body);
    res.status(200).end();
  });

  route(r, 'delete /retentions/:id', async (_req, res, { params }) => {
    const p = await policy(res, params.id, 'delete');
    await deps.retention.delete(p.id);
    res.status(200).end();
  });

  route(r, 'post /retentions/:id/executions', async (_req, res, { params, body }) => {
    const p = await policy(res, params.id, 'operate');
    const id = await deps.retention.trigger(p.id, body.dry_run === true);
    res.setHeader('Location', `/api/v2.0/retentions/${p.id}/executions/${id}`);
    res.status(201).end();
  });

  route(r, 'get /retentions/:id/executions', async (req, res, { params, query }) => {
    const p = await policy(res, params.id, 'list');
    const pg = paging(query);
    const { total, items } = await deps.retention.executions(p.id, pg.page, pg.pageSize);
    setPageHeaders(req, res, total, pg);
    res.json(items.map(executionDto));
  });

  route(r, 'patch /retentions/:id/executions/:eid', async (_req, res, { params }) => {
    const p = await policy(res, params.id, 'operate');
    await deps.retention.stop(p.id, params.eid);
    res.status(200).end();
  });

  route(r, 'get /retentions/:id/executions/:eid/tasks', async (req, res, { params, query }) => {
    const p = await policy(res, params.id, 'list');
    const pg = paging(query);
    const { total, items } = await deps.retention.tasks(p.id, params.eid, pg.page, pg.pageSize);
    setPageHeaders(req, res, total, pg);
    res.json(items.map(taskDto));
  });

  route(r, 'get /retentions/:id/executions/:eid/tasks/:tid', async (_req, res, { params }) => {
    const p = await policy(res, params.id, 'read');
    res.type('text/plain').send(await deps.retention.taskLog(p.id, params.eid, params.tid));
  });

  return r;
}
