// /api/v2.0/projects and /projects/{project_name_or_id}/members, in Harbor's shapes.
import express from 'express';
import type { Principal } from '../access/principal.ts';
import { AppError } from '../lib/errors.ts';
import type { AccessService } from '../services/access-service.ts';
import type { MemberRecord, MembersService } from '../services/members.ts';
import type { ProjectRecord, ProjectsService } from '../services/projects.ts';
import type { QuotaService } from '../services/quotas.ts';
import { iso, paging, principalOf, requireUser, setPageHeaders } from './common.ts';
import { projectGuard } from './project-guard.ts';
import type { MemberDto, ProjectDto } from './responses.ts';
import { route } from './validate.ts';

export interface ProjectRouteDeps {
  projects: ProjectsService;
  members: MembersService;
  access: AccessService;
  /** Artifacts (manifests that are not referrers) in the project: a Berth extension of the summary. */
  artifactCount?: (projectId: number) => Promise<number>;
  quotas: QuotaService;
}

async function projectDto(deps: ProjectRouteDeps, p: ProjectRecord, principal: Principal | null): Promise<ProjectDto> {
  const grant = principal ? await deps.access.grant(principal, { id: p.id, name: p.name, public: p.public }) : null;
  const roles = grant?.roles ?? [];
  return {
    project_id: p.id,
    owner_id: p.ownerId ?? 0,
    name: p.name,
    registry_id: p.registryId ?? 0,
    creation_time: iso(p.createdAt),
    update_time: iso(p.updatedAt),
    deleted: false,
    owner_name: p.ownerName,
    togglable: true,
    // the most privileged role: admin, maintainer, developer, guest, limited guest
    current_user_role_id: ([1, 4, 2, 3, 5] as const).find((r) => roles.includes(r)) ?? 0,
    current_user_role_ids: [...roles],
    repo_count: p.repoCount,
    metadata: p.metadata,
  };
}

function memberDto(m: MemberRecord): MemberDto {
  return { id: m.id, project_id: m.projectId, entity_name: m.entityName, role_name: m.roleName, role_id: m.roleId, entity_id: m.entityId, entity_type: m.entityType };
}

export function projectsRouter(deps: ProjectRouteDeps): express.Router {
  const r = express.Router();

  const visibleProject = projectGuard(deps);

  // Harbor's "does this name exist": a private project the caller may not see answers exactly
  // like a missing one.
  route(r, 'head /projects', async (_req, res, { query }) => {
    const p = await deps.projects.get(query.project_name);
    const visible = p ? await deps.access.can(principalOf(res), { id: p.id, name: p.name, public: p.public }, 'project', 'read') : false;
    res.status(visible ? 200 : 404).end();
  });

  route(r, 'get /projects', async (req, res, { query }) => {
    const pg = paging(query);
    const q = query.q;
    const name = query.name ?? q.name?.exact ?? q.name?.fuzzy;
    const pub = query.public ?? q.public?.exact;
    const owner = query.owner ?? q.owner?.exact;
    const result = await deps.projects.list(principalOf(res), { name, public: pub === undefined ? undefined : pub === 'true', owner, sort: query.sort, ...pg });
    setPageHeaders(req, res, result.total, pg);
    res.json(await Promise.all(result.items.map((p) => projectDto(deps, p, principalOf(res)))));
  });

  route(r, 'post /projects', async (_req, res, { body }) => {
    const principal = requireUser(res);
    const isPublic = body.public ?? body.metadata?.public === 'true';
    // Harbor's storage_limit (bytes, -1 unlimited) is for system admins; others get no limit.
    const limit = body.storage_limit ?? -1;
    const p = await deps.projects.create(principal, { name: body.project_name, public: isPublic, metadata: body.metadata ?? undefined, registryId: body.registry_id ?? null });
    if (limit !== -1 && principal.sysadmin) await deps.quotas.setLimit(p.id, limit);
    res.setHeader('Location', `/api/v2.0/projects/${p.id}`);
    res.status(201).end();
  });

  route(r, 'get /projects/:p', async (_req, res, { params }) => {
    const { project, principal } = await visibleProject(res, params.p);
    res.json(await projectDto(deps, project, principal));
  });

  route(r, 'get /projects/:p/summary', async (_req, res, { params }) => {
    const { project } = await visibleProject(res, params.p);
    const members = await deps.members.list(project.id);
    const count = (role: number) => members.items.filter((m) => m.roleId === role).length;
    res.json({
      repo_count: project.repoCount,
      artifact_count: deps.artifactCount ? await deps.artifactCount(project.id) : undefined,
      project_admin_count: count(1),
      maintainer_count: count(4),
      developer_count: count(2),
      guest_count: count(3),
      limited_guest_count: count(5),
      quota: { hard: { storage: await deps.quotas.limit(project.id) }, used: { storage: await deps.quotas.shownUsage(project.id) } },
    });
  });

  route(r, 'put /projects/:p', async (_req, res, { params, body }) => {
    const { project, principal } = await visibleProject(res, params.p, 'project', 'update');
    await deps.projects.update(principal!, project, { public: body.public ?? undefined, metadata: body.metadata ?? undefined });
    res.status(200).end();
  });

  route(r, 'delete /projects/:p', async (_req, res, { params }) => {
    const { project, principal } = await visibleProject(res, params.p, 'project', 'delete');
    await deps.projects.delete(principal!, project);
    deps.quotas.forget(project.id);
    res.status(200).end();
  });

  route(r, 'get /projects/:p/_deletable', async (_req, res, { params }) => {
    const { project } = await visibleProject(res, params.p, 'project', 'delete');
    res.json(project.repoCount > 0 ? { deletable: false, message: `the project still has ${project.repoCount} repositories` } : { deletable: true, message: '' });
  });

  route(r, 'get /projects/:p/members', async (req, res, { params, query }) => {
    const { project } = await visibleProject(res, params.p, 'member', 'list');
    const pg = paging(query);
    const result = await deps.members.list(project.id, query.entityname, pg.page, pg.pageSize);
    setPageHeaders(req, res, result.total, pg);
    res.json(result.items.map(memberDto));
  });

  route(r, 'post /projects/:p/members', async (_req, res, { params, body }) => {
    const { project, principal } = await visibleProject(res, params.p, 'member', 'create');
    const id = await deps.members.add(principal!, project, body);
    res.setHeader('Location', `/api/v2.0/projects/${project.id}/members/${id}`);
    res.status(201).end();
  });

  route(r, 'get /projects/:p/members/:mid', async (_req, res, { params }) => {
    const { project } = await visibleProject(res, params.p, 'member', 'read');
    const m = await deps.members.get(project.id, params.mid);
    if (!m) throw new AppError('NOT_FOUND', undefined, { message: 'member not found' });
    res.json(memberDto(m));
  });

  route(r, 'put /projects/:p/members/:mid', async (_req, res, { params, body }) => {
    const { project, principal } = await visibleProject(res, params.p, 'member', 'update');
    await deps.members.updateRole(principal!, project, params.mid, body.role_id);
    res.status(200).end();
  });

  route(r, 'delete /projects/:p/members/:mid', async (_req, res, { params }) => {
    const { project, principal } = await visibleProject(res, params.p, 'member', 'delete');
    await deps.members.remove(principal!, project, params.mid);
    res.status(200).end();
  });

  return r;
}
