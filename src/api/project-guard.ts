// Resolves {project_name_or_id} for a request and checks one permission on it. A project the caller
// may not read answers 404, exactly like one that does not exist.
import type { Response } from 'express';
import type { Principal } from '../access/principal.ts';
import type { Resource, Verb } from '../access/roles.ts';
import { AppError } from '../lib/errors.ts';
import type { AccessService } from '../services/access-service.ts';
import type { ProjectRecord, ProjectsService } from '../services/projects.ts';
import { principalOf } from './common.ts';
import { MAX_ID } from './schemas.ts';

export type ProjectGuard = (res: Response, nameOrId: string, resource?: Resource, verb?: Verb) => Promise<{ project: ProjectRecord; principal: Principal | null }>;

export function projectGuard(deps: { projects: ProjectsService; access: AccessService }): ProjectGuard {
  return async (res, nameOrId, resource = 'project', verb = 'read') => {
    const isId = res.req.headers['x-is-resource-name'] !== 'true' && /^\d+$/.test(nameOrId);
    // An id the database cannot hold names no project (and must not reach the query).
    const id = isId ? Number(nameOrId) : 0;
    const project = isId && !(id >= 1 && id <= MAX_ID) ? null : await deps.projects.get(isId ? id : nameOrId);
    const principal = principalOf(res);
    const ref = project && { id: project.id, name: project.name, public: project.public };
    if (!project || !ref || !(await deps.access.can(principal, ref, 'project', 'read'))) throw new AppError('NOT_FOUND', undefined, { message: 'project not found' });
    if (!(await deps.access.can(principal, ref, resource, verb))) {
      if (!principal) throw new AppError('UNAUTHORIZED');
      throw new AppError('FORBIDDEN', undefined, { message: `no permission to ${verb} ${resource}` });
    }
    return { project, principal };
  };
}
