// Access decisions for every API: which roles a principal holds in a project (direct membership,
// LDAP group memberships, robot permissions), evaluated with the one can() of src/access/roles.ts.
// Results are cached briefly and dropped on every node when any of it changes (topic 'access' of
// src/db/changes.ts); while another node's change may be missed, they are read through.
import type { ProjectRef, ProjectStore } from '../db/project-store.ts';
import type { RobotStore } from '../db/robot-store.ts';
import type { UserStore } from '../db/user-store.ts';
import { LocalChanges, type Changes } from '../db/changes.ts';
import type { Action, Principal, RepositoryPolicy } from '../access/principal.ts';
import { can, isRobotGrantable, isRoleId, mayCreateProjects, missingPermissions, type Permission, type ProjectCreationRestriction, type ProjectGrant, type Resource, type RoleId, type Verb } from '../access/roles.ts';
import { Lru } from '../lib/lru.ts';
import { projectOf } from '../lib/reference.ts';

const TTL_MS = 30_000;

export type { ProjectRef };

interface Timed<T> {
  value: T;
  expires: number;
}

/** Pairs that let a robot see a project in listings and the catalog. */
const VISIBLE = new Set(['project:read', 'repository:list', 'repository:read', 'repository:pull']);

const ACTION_VERB: Record<Action, Verb> = { pull: 'pull', push: 'push', delete: 'delete' };

export class AccessService implements RepositoryPolicy {
  private projects = new Lru<string, Timed<ProjectRef | null>>(10_000, 4 * 1024 * 1024);
  private grants = new Lru<string, Timed<ProjectGrant>>(20_000, 8 * 1024 * 1024);
  private groupIds = new Lru<number, Timed<number[]>>(10_000, 2 * 1024 * 1024);
  private robots = new Lru<number, Timed<{ namespace: string; access: Permission[] }[] | null>>(10_000, 4 * 1024 * 1024);

  private readonly changes: Changes;

  constructor(
    private readonly stores: { projects: ProjectStore; users: UserStore; robots: RobotStore },
    private readonly opts: { creationRestriction?: () => ProjectCreationRestriction; changes?: Changes } = {},
  ) {
    this.changes = opts.changes ?? new LocalChanges();
    this.changes.subscribe('access', () => this.clear());
  }

  /**
   * Drops every cached decision on every node (after membership, project, group, user or robot
   * changes, once they are committed).
   */
  invalidate(): Promise<void> {
    return this.changes.publish('access');
  }

  private clear(): void {
    this.projects.clear();
    this.grants.clear();
    this.groupIds.clear();
    this.robots.clear();
  }

  /** A cached value still valid and usable now (never while another node's change may be missed). */
  private cached<K, T>(cache: Lru<K, Timed<T>>, key: K): Timed<T> | undefined {
    if (!this.changes.live) return undefined;
    const hit = cache.get(key);
    return hit && hit.expires > Date.now() ? hit : undefined;
  }

  /** Keeps what a read found unless a change was announced while it ran (src/db/changes.ts, rule 2). */
  private keep<K, T>(cache: Lru<K, Timed<T>>, key: K, value: T, gen: number): void {
    if (this.changes.live && this.changes.generation('access') === gen) cache.set(key, { value, expires: Date.now() + TTL_MS });
  }

  async project(nameOrId: string | number): Promise<ProjectRef | null> {
    const key = String(nameOrId);
    const hit = this.cached(this.projects, key);
    if (hit) return hit.value;
    const gen = this.changes.generation('access');
    const p = await this.stores.projects.ref(typeof nameOrId === 'number' ? { id: nameOrId } : { name: nameOrId });
    this.keep(this.projects, key, p, gen);
    return p;
  }

  /** The principal's standing in a project. */
  async grant(principal: Principal | null, project: ProjectRef): Promise<ProjectGrant> {
    if (!principal) return { roles: [], public: project.public, sysadmin: false };
    if (principal.sysadmin) return { roles: [], public: project.public, sysadmin: true };
    const key = `${principal.kind}:${principal.id}:${project.id}`;
    const hit = this.cached(this.grants, key);
    if (hit) return hit.value;
    const gen = this.changes.generation('access');
    let grant: ProjectGrant;
    if (principal.kind === 'robot') {
      const perms = (await this.robotPermissions(principal.id)) ?? [];
      // Only pairs a robot may hold count, whatever is stored (robots saved before that rule existed).
      const access = perms.filter((p) => p.namespace === project.name || p.namespace === '*').flatMap((p) => p.access ?? []).filter((a) => isRobotGrantable(a.resource, a.action));
      grant = { roles: [], public: project.public, sysadmin: false, robot: access };
    } else {
      const groups = await this.userGroupIds(principal.id);
      const roleIds = await this.stores.projects.roleIds(project.id, principal.id, groups);
      const roles = [...new Set(roleIds.filter(isRoleId))] as RoleId[];
      grant = { roles, public: project.public, sysadmin: false };
    }
    this.keep(this.grants, key, grant, gen);
    return grant;
  }

  async can(principal: Principal | null, project: ProjectRef, resource: Resource, action: Verb): Promise<boolean> {
    return can(await this.grant(principal, project), resource, action);
  }

  /**
   * The permissions in `wanted` the principal does not hold in the project by its own standing (its
   * roles, its robot permissions, or system admin), public access not counted: what it may not hand on.
   */
  async missing(principal: Principal, project: ProjectRef, wanted: readonly Permission[]): Promise<Permission[]> {
    return missingPermissions(await this.grant(principal, project), wanted);
  }

  async allowedActions(principal: Principal | null, repository: string, wanted: readonly Action[]): Promise<Action[]> {
    const project = await this.project(projectOf(repository));
    // No project, no repository: pushing into a project that does not exist is refused, as Harbor does.
    if (!project) return [];
    const grant = await this.grant(principal, project);
    return wanted.filter((a) => can(grant, 'repository', ACTION_VERB[a]));
  }

  async missingProject(principal: Principal, repository: string): Promise<string | null> {
    if (!mayCreateProjects(principal, this.opts.creationRestriction?.() ?? 'adminonly')) return null;
    const name = projectOf(repository);
    return (await this.project(name)) ? null : name;
  }

  async visibleProjectIds(principal: Principal | null): Promise<number[] | null> {
    if (principal?.sysadmin) return null;
    const ids = new Set<number>();
    for (const id of await this.stores.projects.publicIds()) ids.add(id);
    if (principal?.kind === 'user') {
      const groups = await this.userGroupIds(principal.id);
      for (const id of await this.stores.projects.memberProjectIds(principal.id, groups)) ids.add(id);
    } else if (principal?.kind === 'robot') {
      // A robot sees a project's repositories where it may read the project or its repositories, not
      // merely because it holds some other right there (robot:create, member:read...).
      const sees = (p: { access?: Permission[] }) => (p.access ?? []).some((a) => VISIBLE.has(`${a.resource}:${a.action}`));
      const perms = ((await this.robotPermissions(principal.id)) ?? []).filter(sees);
      if (perms.some((p) => p.namespace === '*')) return null;
      const names = perms.map((p) => p.namespace);
      for (const id of await this.stores.projects.idsNamed(names)) ids.add(id);
    }
    return [...ids];
  }

  /** Ids of the Berth user groups (LDAP groups) the user was in at the last directory login. */
  async userGroupIds(userId: number): Promise<number[]> {
    const hit = this.cached(this.groupIds, userId);
    if (hit) return hit.value;
    const gen = this.changes.generation('access');
    const ids = await this.stores.users.groupIdsOf(userId);
    this.keep(this.groupIds, userId, ids, gen);
    return ids;
  }

  private async robotPermissions(robotId: number): Promise<{ namespace: string; access: Permission[] }[] | null> {
    const hit = this.cached(this.robots, robotId);
    if (hit) return hit.value;
    const gen = this.changes.generation('access');
    const r = await this.stores.robots.find(robotId);
    const value = r && !r.disabled && (!r.expiresAt || r.expiresAt.getTime() > Date.now()) ? (JSON.parse(r.permissions) as { namespace: string; access: Permission[] }[]) : null;
    this.keep(this.robots, robotId, value, gen);
    return value;
  }
}
