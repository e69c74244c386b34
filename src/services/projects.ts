// Projects: the first path segment of a repository name. Public or private, with members.
import { mayCreateProjects } from '../access/roles.ts';
import type { ProjectRow, ProjectSort, ProjectStore } from '../db/project-store.ts';
import type { Principal } from '../access/principal.ts';
import { Roles } from '../access/roles.ts';
import { AppError } from '../lib/errors.ts';
import type { AccessService } from './access-service.ts';

const PROJECT_NAME_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

export interface ProjectRecord {
  id: number;
  name: string;
  public: boolean;
  ownerId: number | null;
  ownerName: string;
  metadata: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
  repoCount: number;
  /** A proxy-cache project's upstream registry endpoint; null for a normal project. */
  registryId: number | null;
}

export interface ProjectsDeps {
  projects: ProjectStore;
  access: AccessService;
  /** 'adminonly' (default) or 'everyone': who may create projects. */
  creationRestriction: () => 'adminonly' | 'everyone';
  /** Whether a registry endpoint exists (for proxy-cache projects); without it none may be named. */
  registryExists?: (id: number) => Promise<boolean>;
  onChange?: (e: { username: string; operation: string; resource: string }) => void;
}

export class ProjectsService {
  constructor(private readonly deps: ProjectsDeps) {}

  async create(principal: Principal, input: { name: string; public: boolean; metadata?: Record<string, string>; registryId?: number | null }): Promise<ProjectRecord> {
    if (!mayCreateProjects(principal, this.deps.creationRestriction())) {
      throw new AppError('FORBIDDEN', undefined, { message: 'only system administrators may create projects' });
    }
    const name = input.name;
    if (typeof name !== 'string' || name.length < 1 || name.length > 255 || !PROJECT_NAME_RE.test(name)) {
      throw new AppError('BAD_REQUEST', undefined, { message: 'project name must be lower-case letters, digits and ._- separators' });
    }
    // A proxy-cache project (Harbor's registry_id): created by system admins only, as in Harbor,
    // for an endpoint that exists.
    const registryId = input.registryId || null;
    if (registryId !== null) {
      if (!principal.sysadmin) throw new AppError('FORBIDDEN', undefined, { message: 'only system administrators may create proxy-cache projects' });
      if (!(await this.deps.registryExists?.(registryId))) throw new AppError('BAD_REQUEST', undefined, { message: `registry ${registryId} does not exist` });
    }
    if (await this.deps.projects.ref({ name })) throw new AppError('CONFLICT', undefined, { message: `project ${name} already exists` });
    const metadata = { ...(input.metadata ?? {}), public: String(!!input.public) };
    const id = await this.deps.projects.create({
      name,
      public: !!input.public,
      ownerId: principal.kind === 'user' ? principal.id : null,
      metadata: JSON.stringify(metadata),
      registryId,
      ...(principal.kind === 'user' ? { firstMember: { userId: principal.id, roleId: Roles.projectAdmin } } : {}),
    });
    await this.deps.access.invalidate();
    this.deps.onChange?.({ username: principal.name, operation: 'create', resource: name });
    return (await this.get(id))!;
  }

  /** Ensures a project exists (the default `library`); used at start. */
  async ensure(name: string, isPublic: boolean): Promise<void> {
    await this.deps.projects.ensure(name, isPublic, JSON.stringify({ public: String(isPublic) }));
    // A lookup of the name before (an anonymous pull, a proxy check) may have cached "no such project".
    await this.deps.access.invalidate();
  }

  async get(nameOrId: string | number): Promise<ProjectRecord | null> {
    const where = typeof nameOrId === 'number' || /^\d+$/.test(String(nameOrId)) ? { id: Number(nameOrId) } : { name: String(nameOrId) };
    const p = await this.deps.projects.find(where);
    return p && projectRecord(p);
  }

  /** Projects the principal may see, filtered by name substring and visibility, paged. */
  async list(principal: Principal | null, q: { name?: string; public?: boolean; owner?: string; sort?: string; page: number; pageSize: number }): Promise<{ total: number; items: ProjectRecord[] }> {
    const visible = await this.deps.access.visibleProjectIds(principal);
    const { total, ids } = await this.deps.projects.page({ ids: visible, nameContains: q.name || undefined, public: q.public, owner: q.owner || undefined, sort: projectSort(q.sort), page: q.page, pageSize: q.pageSize });
    const rows = new Map((await this.deps.projects.findMany(ids)).map((p) => [p.id, p]));
    const items = ids.flatMap((id) => {
      const p = rows.get(id);
      return p ? [projectRecord(p)] : [];
    });
    return { total, items };
  }

  async update(principal: Principal, project: ProjectRecord, input: { public?: boolean; metadata?: Record<string, string> }): Promise<void> {
    const metadata = { ...project.metadata, ...(input.metadata ?? {}) };
    let isPublic = project.public;
    if (input.metadata?.public !== undefined) isPublic = input.metadata.public === 'true';
    if (input.public !== undefined && input.public !== null) isPublic = !!input.public;
    metadata.public = String(isPublic);
    await this.deps.projects.update(project.id, { public: isPublic, metadata: JSON.stringify(metadata) });
    await this.deps.access.invalidate();
    this.deps.onChange?.({ username: principal.name, operation: 'update', resource: project.name });
  }

  async delete(principal: Principal, project: ProjectRecord): Promise<void> {
    if (project.repoCount > 0) throw new AppError('PRECONDITION', undefined, { message: `project ${project.name} still has repositories` });
    await this.deps.projects.delete(project.id); // its members and robots go with it
    await this.deps.access.invalidate();
    this.deps.onChange?.({ username: principal.name, operation: 'delete', resource: project.name });
  }
}

function projectRecord(p: ProjectRow): ProjectRecord {
  return {
    id: p.id,
    name: p.name,
    public: p.public,
    ownerId: p.ownerId,
    ownerName: p.ownerName,
    metadata: { ...JSON.parse(p.metadata), public: String(p.public) },
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
    repoCount: p.repoCount,
    registryId: p.registryId ?? null,
  };
}

/**
 * Harbor's `sort` for projects: `name`, `creation_time` or `update_time`, `-` in front for
 * descending; of a list (`a,-b`) the first key. Anything else: by name.
 */
export function projectSort(sort: string | undefined): ProjectSort {
  const first = (sort ?? '').split(',')[0].trim();
  const desc = first.startsWith('-');
  const key = desc ? first.slice(1) : first;
  const by = key === 'creation_time' ? 'creation' : key === 'update_time' ? 'update' : key === 'name' ? 'name' : null;
  return by ? { by, desc } : { by: 'name', desc: false };
}
