// /api/v2.0/projects/{project_name_or_id}/immutabletagrules: Harbor's immutable tag rules
// (ImmutableRule, ImmutableSelector). Rights are those of the `immutable-tag` resource in the project
// of the path (project admins and maintainers); a rule of another project is not found there.
import express from 'express';
import type { AccessService } from '../services/access-service.ts';
import { ACTION, TEMPLATE, type ImmutableRule, type ImmutableRuleInput, type ImmutableTagsService } from '../services/immutable-tags.ts';
import type { ProjectsService } from '../services/projects.ts';
import { paging, setPageHeaders } from './common.ts';
import { projectGuard } from './project-guard.ts';
import type { ImmutableRuleDto } from './responses.ts';
import { route } from './validate.ts';

export interface ImmutableRuleRouteDeps {
  access: AccessService;
  projects: ProjectsService;
  immutableTags: ImmutableTagsService;
}

function dto(r: ImmutableRule): ImmutableRuleDto {
  return { id: r.id, priority: r.priority, disabled: r.disabled, action: ACTION, template: TEMPLATE, params: {}, tag_selectors: r.tagSelectors, scope_selectors: r.scopeSelectors };
}

type Selector = { kind: string; decoration: string; pattern: string; extras?: string | null };
type Body = { priority?: number | null; disabled?: boolean | null; action?: string | null; template?: string | null; tag_selectors?: Selector[] | null; scope_selectors?: Record<string, Selector[]> | null };

/** The body as the service takes it (null and absent alike: "keep" on an update). */
function input(b: Body): ImmutableRuleInput {
  const strip = (l: Selector[]) => l.map((s) => ({ kind: s.kind, decoration: s.decoration, pattern: s.pattern, extras: s.extras ?? undefined }));
  return {
    priority: b.priority ?? undefined,
    disabled: b.disabled ?? undefined,
    action: b.action ?? undefined,
    template: b.template ?? undefined,
    tagSelectors: b.tag_selectors ? strip(b.tag_selectors) : undefined,
    scopeSelectors: b.scope_selectors ? Object.fromEntries(Object.entries(b.scope_selectors).map(([k, v]) => [k, strip(v)])) : undefined,
  };
}

export function immutableRulesRouter(deps: ImmutableRuleRouteDeps): express.Router {
  const r = express.Router();
  const guard = projectGuard(deps);

  route(r, 'get /projects/:p/immutabletagrules', async (req, res, { params, query }) => {
    const { project } = await guard(res, params.p, 'immutable-tag', 'list');
    const pg = paging(query);
    const { total, items } = await deps.immutableTags.list(project.id, pg.page, pg.pageSize);
    setPageHeaders(req, res, total, pg);
    res.json(items.map(dto));
  });

  route(r, 'post /projects/:p/immutabletagrules', async (_req, res, { params, body }) => {
    const { project } = await guard(res, params.p, 'immutable-tag', 'create');
    const id = await deps.immutableTags.create(project.id, input(body));
    res.setHeader('Location', `/api/v2.0/projects/${project.id}/immutabletagrules/${id}`);
    res.status(201).end();
  });

  route(r, 'put /projects/:p/immutabletagrules/:id', async (_req, res, { params, body }) => {
    const { project } = await guard(res, params.p, 'immutable-tag', 'update');
    await deps.immutableTags.update(project.id, params.id, input(body));
    res.status(200).end();
  });

  route(r, 'delete /projects/:p/immutabletagrules/:id', async (_req, res, { params }) => {
    const { project } = await guard(res, params.p, 'immutable-tag', 'delete');
    await deps.immutableTags.delete(project.id, params.id);
    res.status(200).end();
  });

  return r;
}
