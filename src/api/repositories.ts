// /api/v2.0 repositories, artifacts, tags, archive import, project logs, search, statistics and
// quotas, in Harbor's shapes. Repository names below a project are URL-encoded twice when they
// contain "/" (Harbor's convention): "app%252Fapi" names "<project>/app/api".
import express from 'express';
import fs from 'node:fs';
import type { RequestHandler } from 'express';
import { AppError } from '../lib/errors.ts';
import type { Principal } from '../access/principal.ts';
import type { Resource, Verb } from '../access/roles.ts';
import type { AccessService, ProjectRef } from '../services/access-service.ts';
import type { AuditEntry, AuditFilter, AuditMatch, AuditService } from '../services/audit.ts';
import type { ArtifactRecord, ArtifactsService, RepositoryRecord } from '../services/artifacts.ts';
import type { ImportService } from '../services/import.ts';
import type { ProjectsService } from '../services/projects.ts';
import type { TagImmutability } from '../services/registry-service.ts';
import { QuotaService } from '../services/quotas.ts';
import { iso, paging, principalOf, requireSysadmin, requireUser, setPageHeaders, type HarborQuery } from './common.ts';
import type { ArtifactDto, QuotaDto, RepositoryDto } from './responses.ts';
import { MAX_ID } from './schemas.ts';
import { route } from './validate.ts';

export interface RepositoryRouteDeps {
  access: AccessService;
  projects: ProjectsService;
  artifacts: ArtifactsService;
  importer: ImportService;
  tmpDir: string;
  /** Largest accepted archive upload, in bytes. */
  maxImportBytes: number;
  quotas: QuotaService;
  audit: AuditService;
  /** Which tags are immutable (Harbor's immutable tag rules), for the tags' `immutable` field. */
  immutableTags?: Pick<TagImmutability, 'tagTest'>;
}

function repoDto(r: RepositoryRecord): RepositoryDto {
  return { id: r.id, project_id: r.projectId ?? 0, name: r.name, description: r.description, artifact_count: r.artifactCount, pull_count: r.pullCount, creation_time: iso(r.createdAt), update_time: iso(r.updatedAt) };
}

type TagTest = ((tag: string) => boolean) | null;

function artifactDto(a: ArtifactRecord, projectId: number, immutable: TagTest): ArtifactDto {
  return {
    id: a.id,
    type: a.type,
    media_type: a.configType ?? a.mediaType,
    manifest_media_type: a.mediaType,
    artifact_type: a.artifactType ?? undefined,
    project_id: projectId,
    repository_id: a.repositoryId,
    digest: a.digest,
    size: a.size,
    push_time: iso(a.pushedAt),
    pull_time: a.pulledAt ? iso(a.pulledAt) : '0001-01-01T00:00:00.000Z',
    extra_attrs: a.extra,
    annotations: a.annotations ?? {},
    references: a.references.map((r) => ({ parent_id: a.id, child_digest: r.digest, platform: r.platform ?? undefined, annotations: {}, urls: [] })),
    tags: a.tags.map((t) => ({ repository_id: a.repositoryId, artifact_id: a.id, name: t.name, push_time: iso(t.pushedAt), pull_time: '0001-01-01T00:00:00.000Z', immutable: immutable?.(t.name) ?? false })),
    accessories: a.accessories.map((x) => ({ artifact_id: 0, subject_artifact_id: a.id, subject_artifact_digest: a.digest, digest: x.digest, type: x.type, artifact_type: x.artifactType ?? undefined, size: x.size, creation_time: '' })),
    labels: [],
  };
}

/**
 * projectGuard's rule (src/api/project-guard.ts) for routes that need only the project's id and name:
 * the project comes from the access service's cache instead of a full project record (which counts
 * the project's repositories on every request). Digits name a project by id, as projects.get reads
 * them; an id the database cannot hold names no project.
 */
function projectRefGuard(deps: { access: AccessService }) {
  return async (res: express.Response, nameOrId: string, resource: Resource, verb: Verb): Promise<{ project: ProjectRef; principal: Principal | null }> => {
    const id = /^\d+$/.test(nameOrId) ? Number(nameOrId) : null;
    const project = id === null ? await deps.access.project(nameOrId) : id >= 1 && id <= MAX_ID ? await deps.access.project(id) : null;
    const principal = principalOf(res);
    if (!project || !(await deps.access.can(principal, project, 'project', 'read'))) throw new AppError('NOT_FOUND', undefined, { message: 'project not found' });
    if (!(await deps.access.can(principal, project, resource, verb))) {
      if (!principal) throw new AppError('UNAUTHORIZED');
      throw new AppError('FORBIDDEN', undefined, { message: `no permission to ${verb} ${resource}` });
    }
    return { project, principal };
  };
}

/** As Harbor: a proxy-cache project holds what its upstream has; no tag is created and nothing imported there. */
function refuseProxyCache(project: ProjectRef): void {
  if (project.registryId) throw new AppError('UNSUPPORTED', undefined, { message: "the operation isn't supported for a proxy cache project" });
}

/** Harbor's audit-log `q` (username, operation, resource, resource_type: exact or ~part) as a filter. */
export function auditQuery(q: HarborQuery, project?: string): AuditFilter {
  const m = (x: { exact?: string; fuzzy?: string } | undefined): AuditMatch | undefined => (x ? (x.exact !== undefined ? { exact: x.exact } : { contains: x.fuzzy ?? '' }) : undefined);
  return { username: m(q.username), operation: m(q.operation), resource: m(q.resource), resourceType: m(q.resource_type), project };
}

export function auditLogDto(a: AuditEntry): { id: number; username: string; resource: string; resource_type: string; operation: string; op_time: string } {
  return { id: a.id, username: a.username, resource: a.resource, resource_type: a.resourceType, operation: a.operation, op_time: iso(a.createdAt) };
}

export function repositoriesRouter(deps: RepositoryRouteDeps): express.Router {
  const r = express.Router();
  const guard = projectRefGuard(deps);
  fs.mkdirSync(deps.tmpDir, { recursive: true });
  // multer loads on the first import (memory is only paid by registries that use imports).
  let upload: RequestHandler | null = null;
  const uploader = async (): Promise<RequestHandler> => {
    if (!upload) {
      const multer = (await import('multer')).default;
      upload = multer({ dest: deps.tmpDir, limits: { fileSize: deps.maxImportBytes, files: 1, fields: 10 } }).single('archive');
    }
    return upload;
  };

  async function repository(res: express.Response, p: string, rname: string, resource: 'repository' | 'artifact' | 'tag', verb: 'read' | 'list' | 'update' | 'delete' | 'create' | 'push') {
    const { project, principal } = await guard(res, p, resource, verb);
    const full = `${project.name}/${rname}`;
    return { project, principal, full };
  }

  async function existing(res: express.Response, p: string, rname: string, resource: 'repository' | 'artifact' | 'tag', verb: 'read' | 'list' | 'update' | 'delete' | 'create') {
    const ctx = await repository(res, p, rname, resource, verb);
    const repo = await deps.artifacts.findRepository(ctx.full);
    if (!repo) throw new AppError('NOT_FOUND', undefined, { message: 'repository not found' });
    return { ...ctx, repo };
  }

  route(r, 'get /repositories', async (req, res, { query }) => {
    const pg = paging(query);
    const q = query.q;
    const visible = await deps.access.visibleProjectIds(principalOf(res));
    const result = await deps.artifacts.listRepositories({ projectIds: visible, name: q.name?.fuzzy ?? q.name?.exact, page: pg.page, pageSize: pg.pageSize, sort: query.sort });
    setPageHeaders(req, res, result.total, pg);
    res.json(result.items.map(repoDto));
  });

  route(r, 'get /projects/:p/repositories', async (req, res, { params, query }) => {
    const { project } = await guard(res, params.p, 'repository', 'list');
    const pg = paging(query);
    const q = query.q;
    const result = await deps.artifacts.listRepositories({ projectIds: [project.id], name: q.name?.fuzzy ?? q.name?.exact, page: pg.page, pageSize: pg.pageSize, sort: query.sort });
    setPageHeaders(req, res, result.total, pg);
    res.json(result.items.map(repoDto));
  });

  route(r, 'get /projects/:p/repositories/:r', async (_req, res, { params }) => {
    const { full } = await repository(res, params.p, params.r, 'repository', 'read');
    const repo = await deps.artifacts.getRepository(full);
    if (!repo) throw new AppError('NOT_FOUND', undefined, { message: 'repository not found' });
    res.json(repoDto(repo));
  });

  route(r, 'put /projects/:p/repositories/:r', async (_req, res, { params, body }) => {
    const { full } = await existing(res, params.p, params.r, 'repository', 'update');
    await deps.artifacts.updateRepository(full, body.description ?? '');
    res.status(200).end();
  });

  route(r, 'delete /projects/:p/repositories/:r', async (_req, res, { params }) => {
    const { full } = await existing(res, params.p, params.r, 'repository', 'delete');
    await deps.artifacts.deleteRepository(full);
    res.status(200).end();
  });

  route(r, 'get /projects/:p/repositories/:r/artifacts', async (req, res, { params, query }) => {
    const { project, repo } = await existing(res, params.p, params.r, 'artifact', 'list');
    const pg = paging(query);
    const q = query.q;
    const result = await deps.artifacts.listArtifacts(repo.id, { tag: q.tags?.fuzzy ?? q.tags?.exact, exactTag: q.tags?.fuzzy === undefined && q.tags?.exact !== undefined, digest: q.digest?.exact, page: pg.page, pageSize: pg.pageSize, withAccessories: query.with_accessory !== 'false' });
    setPageHeaders(req, res, result.total, pg);
    const immutable = (await deps.immutableTags?.tagTest(repo.name)) ?? null;
    res.json(result.items.map((a) => artifactDto(a, project.id, immutable)));
  });

  route(r, 'get /projects/:p/repositories/:r/artifacts/:ref', async (_req, res, { params }) => {
    const { project, repo } = await existing(res, params.p, params.r, 'artifact', 'read');
    const a = await deps.artifacts.getArtifact(repo.id, params.ref);
    if (!a) throw new AppError('NOT_FOUND', undefined, { message: 'artifact not found' });
    res.json(artifactDto(a, project.id, (await deps.immutableTags?.tagTest(repo.name)) ?? null));
  });

  route(r, 'delete /projects/:p/repositories/:r/artifacts/:ref', async (_req, res, { params }) => {
    const { full } = await existing(res, params.p, params.r, 'artifact', 'delete');
    await deps.artifacts.deleteArtifact(full, params.ref);
    res.status(200).end();
  });

  route(r, 'get /projects/:p/repositories/:r/artifacts/:ref/tags', async (req, res, { params, query }) => {
    const { repo } = await existing(res, params.p, params.r, 'tag', 'list');
    const a = await deps.artifacts.getArtifact(repo.id, params.ref);
    if (!a) throw new AppError('NOT_FOUND', undefined, { message: 'artifact not found' });
    const pg = paging(query);
    const q = query.q;
    const needle = q.name?.fuzzy ?? q.name?.exact;
    const tags = needle ? a.tags.filter((t) => (q.name?.exact ? t.name === needle : t.name.includes(needle))) : a.tags;
    setPageHeaders(req, res, tags.length, pg);
    const immutable = (await deps.immutableTags?.tagTest(repo.name)) ?? null;
    res.json(tags.slice((pg.page - 1) * pg.pageSize, pg.page * pg.pageSize).map((t) => ({ repository_id: repo.id, artifact_id: a.id, name: t.name, push_time: iso(t.pushedAt), immutable: immutable?.(t.name) ?? false })));
  });

  route(r, 'post /projects/:p/repositories/:r/artifacts/:ref/tags', async (_req, res, { params, body }) => {
    const { project, full } = await existing(res, params.p, params.r, 'tag', 'create');
    refuseProxyCache(project);
    await deps.artifacts.addTag(full, params.ref, body.name);
    res.status(201).end();
  });

  route(r, 'delete /projects/:p/repositories/:r/artifacts/:ref/tags/:tag', async (_req, res, { params }) => {
    const { full } = await existing(res, params.p, params.r, 'tag', 'delete');
    await deps.artifacts.deleteTag(full, params.tag);
    res.status(200).end();
  });

  // Import an image archive: streamed to a temp file by multer, never held in memory.
  route(r, 'post /projects/:p/repositories/:r/import', async (req, res, { params, query }) => {
    const { project, full } = await repository(res, params.p, params.r, 'repository', 'push');
    refuseProxyCache(project);
    const tag = query.tag;
    deps.importer.checkTarget(full, tag); // before the archive is received
    const handle = await uploader();
    await new Promise<void>((resolve, reject) =>
      handle(req, res, (err: unknown) => {
        if (!err) return resolve();
        const e = err as { code?: string; message?: string };
        reject(e.code === 'LIMIT_FILE_SIZE' ? new AppError('PAYLOAD_TOO_LARGE', undefined, { message: 'archive too large' }) : new AppError('BAD_REQUEST', undefined, { message: e.message ?? 'bad upload' }));
      }),
    );
    const file = (req as express.Request & { file?: { path: string } }).file;
    if (!file) throw new AppError('BAD_REQUEST', undefined, { message: 'multipart field "archive" is required' });
    try {
      // Without ?tag= the archive's own tags are kept (docker save RepoTags, OCI ref.name).
      const result = await deps.importer.importImages(full, tag, file.path, principalOf(res)?.name ?? '');
      res.status(201).json({ repository: full, tag: result.tags[0].tag, digest: result.digest, tags: result.tags });
    } finally {
      fs.rm(file.path, { force: true }, () => undefined);
    }
  });

  route(r, 'get /projects/:p/logs', async (req, res, { params, query }) => {
    const { project } = await guard(res, params.p, 'log', 'list');
    const pg = paging(query);
    const result = await deps.audit.list(auditQuery(query.q, project.name), pg.page, pg.pageSize);
    setPageHeaders(req, res, result.total, pg);
    res.json(result.items.map(auditLogDto));
  });

  route(r, 'get /search', async (_req, res, { query }) => {
    const q = query.q ?? '';
    const principal = principalOf(res);
    const list = await deps.projects.list(principal, { name: q, page: 1, pageSize: 50 });
    const visible = await deps.access.visibleProjectIds(principal);
    const repos = await deps.artifacts.listRepositories({ projectIds: visible, name: q, page: 1, pageSize: 50 });
    const byId = new Map<number, { name: string; public: boolean }>();
    for (const id of new Set(repos.items.map((x) => x.projectId ?? 0))) {
      const p = id ? await deps.access.project(id) : null;
      if (p) byId.set(p.id, p);
    }
    res.json({
      project: list.items.map((p) => ({ project_id: p.id, name: p.name, repo_count: p.repoCount, metadata: p.metadata })),
      repository: repos.items.map((x) => ({ project_id: x.projectId ?? 0, project_name: byId.get(x.projectId ?? 0)?.name ?? '', project_public: byId.get(x.projectId ?? 0)?.public ?? false, repository_name: x.name, pull_count: x.pullCount, artifact_count: x.artifactCount })),
    });
  });

  // Harbor's statistics: signed-in callers only; public counts for everyone, private ones for the
  // projects the caller belongs to (all of them for system admins); totals and storage for admins.
  route(r, 'get /statistics', async (_req, res) => {
    const principal = requireUser(res);
    const scope = principal.sysadmin ? null : await deps.access.visibleProjectIds(principal);
    const s = await deps.artifacts.statistics(scope, principal.sysadmin);
    res.json({
      private_project_count: s.privateProjects,
      private_repo_count: s.privateRepos,
      public_project_count: s.publicProjects,
      public_repo_count: s.publicRepos,
      total_project_count: principal.sysadmin ? s.publicProjects + s.privateProjects : 0,
      total_repo_count: principal.sysadmin ? s.publicRepos + s.privateRepos : 0,
      total_storage_consumption: principal.sysadmin ? s.storage : 0,
    });
  });

  const quotaDto = async (p: { id: number; name: string; ownerName: string; createdAt: Date; updatedAt: Date }): Promise<QuotaDto> => ({
    id: p.id,
    ref: { id: p.id, name: p.name, owner_name: p.ownerName },
    hard: { storage: await deps.quotas.limit(p.id) },
    used: { storage: await deps.quotas.shownUsage(p.id) },
    creation_time: iso(p.createdAt),
    update_time: iso(p.updatedAt),
  });

  // Quotas have the id of their project.
  route(r, 'get /quotas', async (req, res, { query }) => {
    requireSysadmin(res);
    const pg = paging(query);
    const projects = await deps.projects.list(principalOf(res), { page: pg.page, pageSize: pg.pageSize });
    setPageHeaders(req, res, projects.total, pg);
    res.json(await Promise.all(projects.items.map(quotaDto)));
  });

  route(r, 'get /quotas/:id', async (_req, res, { params }) => {
    requireSysadmin(res);
    const p = await deps.projects.get(params.id);
    if (!p) throw new AppError('NOT_FOUND', undefined, { message: 'quota not found' });
    res.json(await quotaDto(p));
  });

  route(r, 'put /quotas/:id', async (_req, res, { params, body }) => {
    requireSysadmin(res);
    const p = await deps.projects.get(params.id);
    if (!p) throw new AppError('NOT_FOUND', undefined, { message: 'quota not found' });
    const storage = QuotaService.parseLimit(body.hard.storage, 'hard.storage');
    await deps.quotas.setLimit(p.id, storage);
    res.status(200).end();
  });

  return r;
}
