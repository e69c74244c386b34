// Project members: users (local or from the directory) and LDAP groups, each with one of Harbor's roles.
import type { Db } from '../db/client.ts';
import { MemberListStore } from '../db/list-store.ts';
import type { ProjectStore } from '../db/project-store.ts';
import type { UserStore } from '../db/user-store.ts';
import type { Principal } from '../access/principal.ts';
import { ROLE_NAMES, Roles, isRoleId, rolePermissions, type RoleId } from '../access/roles.ts';
import { normalizeDn } from '../lib/dn.ts';
import { AppError } from '../lib/errors.ts';
import type { AccessService } from './access-service.ts';
import type { Directory, IdentityService } from './identity.ts';

export interface MemberRecord {
  id: number;
  projectId: number;
  entityName: string;
  entityId: number;
  entityType: 'u' | 'g';
  roleId: RoleId;
  roleName: string;
}

export interface MembersDeps {
  /** Only for the members' page (list). */
  db: Db;
  projects: ProjectStore;
  users: UserStore;
  access: AccessService;
  identity: IdentityService;
  directory: () => (Directory & { searchGroups?(q: string, limit?: number): Promise<{ dn: string; name: string }[]> }) | null;
  onChange?: (e: { username: string; operation: string; resource: string }) => void;
}

/**
 * Members and their roles. Granting follows one rule with robots: nobody hands on a right it does not
 * hold. A principal adds a member with a role, changes a member's role, or removes a member only if it
 * holds every permission of the roles involved (so a robot with member rights can never make anyone a
 * project admin, nor demote or remove one). Nobody but a system admin changes their own role, and a
 * project keeps at least one project admin once it has one.
 */
export class MembersService {
  private memberList: MemberListStore | null = null;

  constructor(private readonly deps: MembersDeps) {}

  /** Refuses unless the actor holds every permission of each role in the project. */
  private async checkMayGrant(actor: Principal, project: { id: number; name: string }, roles: RoleId[], what: string): Promise<void> {
    if (actor.sysadmin) return;
    const ref = await this.deps.access.project(project.id);
    if (!ref) throw new AppError('NOT_FOUND', undefined, { message: 'project not found' });
    for (const role of roles) {
      const missing = await this.deps.access.missing(actor, ref, rolePermissions(role));
      if (missing.length) throw new AppError('FORBIDDEN', undefined, { message: `cannot ${what} ${ROLE_NAMES[role]}: it carries rights you do not hold` });
    }
  }

  /** Refuses to take away the project's last project admin membership (system admins excepted). */
  private async checkKeepsAdmin(actor: Principal, project: { id: number }, m: MemberRecord): Promise<void> {
    if (actor.sysadmin || m.roleId !== Roles.projectAdmin) return;
    const others = await this.deps.projects.countWithRole(project.id, Roles.projectAdmin, m.id);
    if (others === 0) throw new AppError('CONFLICT', undefined, { message: 'a project keeps at least one project admin: add another first' });
  }

  private isSelf(actor: Principal, m: MemberRecord): boolean {
    return actor.kind === 'user' && m.entityType === 'u' && m.entityId === actor.id;
  }

  /** One page of the project's members, oldest first (optionally those whose name contains `entityName`), and how many match. */
  async list(projectId: number, entityName?: string, page = 1, pageSize = 100): Promise<{ total: number; items: MemberRecord[] }> {
    this.memberList ??= new MemberListStore(this.deps.db);
    const { total, rows } = await this.memberList.page(projectId, entityName || undefined, (page - 1) * pageSize, pageSize);
    const items = rows.map((m) => this.toRecord({ ...m, user: m.userId ? { username: m.entityName } : null, group: m.userId ? null : { name: m.entityName } }));
    return { total, items };
  }

  async get(projectId: number, memberId: number): Promise<MemberRecord | null> {
    const m = await this.deps.projects.member(projectId, memberId);
    return m ? this.toRecord(m) : null;
  }

  private toRecord(m: { id: number; projectId: number; roleId: number; userId: number | null; groupId: number | null; user: { username: string } | null; group: { name: string } | null }): MemberRecord {
    const roleId = m.roleId as RoleId;
    return m.userId
      ? { id: m.id, projectId: m.projectId, entityName: m.user!.username, entityId: m.userId, entityType: 'u', roleId, roleName: ROLE_NAMES[roleId] }
      : { id: m.id, projectId: m.projectId, entityName: m.group!.name, entityId: m.groupId!, entityType: 'g', roleId, roleName: ROLE_NAMES[roleId] };
  }

  /** Adds a user (by id or name; directory users are imported on first use) or an LDAP group (by DN or id). */
  async add(
    actor: Principal,
    project: { id: number; name: string },
    input: { role_id?: unknown; member_user?: { user_id?: number; username?: string }; member_group?: { id?: number; ldap_group_dn?: string; group_name?: string; group_type?: number } },
  ): Promise<number> {
    if (!isRoleId(input.role_id)) throw new AppError('BAD_REQUEST', undefined, { message: 'role_id must be 1 (project admin), 2 (developer), 3 (guest), 4 (maintainer) or 5 (limited guest)' });
    const roleId = input.role_id;
    await this.checkMayGrant(actor, project, [roleId], 'grant');
    let userId: number | null = null;
    let groupId: number | null = null;
    let label: string;
    const id = (v: unknown) => v === undefined || v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v > 0);
    const text = (v: unknown) => v === undefined || v === null || (typeof v === 'string' && v.length <= 1024);
    const u0 = input.member_user as Record<string, unknown> | undefined;
    const g0 = input.member_group as Record<string, unknown> | undefined;
    if ((u0 !== undefined && (typeof u0 !== 'object' || !id(u0?.user_id) || !text(u0?.username))) || (g0 !== undefined && (typeof g0 !== 'object' || !id(g0?.id) || !text(g0?.ldap_group_dn) || !text(g0?.group_name)))) {
      throw new AppError('BAD_REQUEST', undefined, { message: 'member_user needs a user_id (number) or username (string); member_group an id, ldap_group_dn or group_name' });
    }
    if (input.member_user) {
      const u = input.member_user;
      let user = u.user_id ? await this.deps.users.profile(u.user_id) : u.username ? await this.deps.users.profileByName(u.username) : null;
      if (!user && u.username) {
        const d = this.deps.directory();
        const found = d ? await d.findUser(u.username) : null;
        if (found) {
          const p = await this.deps.identity.upsertDirectoryUser(found);
          user = await this.deps.users.profile(p.id);
        }
      }
      if (!user) throw new AppError('NOT_FOUND', undefined, { message: 'user not found' });
      userId = user.id;
      label = user.username;
    } else if (input.member_group) {
      const g = input.member_group;
      let group = g.id ? await this.deps.users.group(g.id) : null;
      if (!group && g.ldap_group_dn) {
        const dn = normalizeDn(g.ldap_group_dn);
        group = await this.deps.users.groupByDn(dn);
        if (!group) {
          let name = g.group_name;
          if (!name) {
            const d = this.deps.directory();
            const hits = d?.searchGroups ? await d.searchGroups(g.ldap_group_dn, 1).catch(() => []) : [];
            name = hits[0]?.name ?? /^[^=]+=([^,]+)/.exec(g.ldap_group_dn)?.[1] ?? dn;
          }
          group = await this.deps.users.createGroup({ name, ldapDn: dn });
        }
      }
      if (!group) throw new AppError('NOT_FOUND', undefined, { message: 'group not found' });
      groupId = group.id;
      label = group.name;
    } else {
      throw new AppError('BAD_REQUEST', undefined, { message: 'member_user or member_group is required' });
    }
    // Already a member: the unique (project, user) or (project, group) pair refuses it, also when two add at once.
    const memberId = await this.deps.projects.addMember({ projectId: project.id, userId, groupId, roleId });
    if (memberId === null) throw new AppError('CONFLICT', undefined, { message: `${label} is already a member` });
    await this.deps.access.invalidate();
    this.deps.onChange?.({ username: actor.name, operation: 'create', resource: `${project.name}:member:${label}` });
    return memberId;
  }

  async updateRole(actor: Principal, project: { id: number; name: string }, memberId: number, roleId: unknown): Promise<void> {
    if (!isRoleId(roleId)) throw new AppError('BAD_REQUEST', undefined, { message: 'invalid role_id' });
    const m = await this.get(project.id, memberId);
    if (!m) throw new AppError('NOT_FOUND', undefined, { message: 'member not found' });
    if (m.roleId === roleId) return;
    if (!actor.sysadmin && this.isSelf(actor, m)) throw new AppError('FORBIDDEN', undefined, { message: 'you cannot change your own role' });
    await this.checkMayGrant(actor, project, [m.roleId, roleId], 'change a member to or from');
    await this.checkKeepsAdmin(actor, project, m);
    await this.deps.projects.setMemberRole(memberId, roleId);
    await this.deps.access.invalidate();
    this.deps.onChange?.({ username: actor.name, operation: 'update', resource: `${project.name}:member:${m.entityName}` });
  }

  async remove(actor: Principal, project: { id: number; name: string }, memberId: number): Promise<void> {
    const m = await this.get(project.id, memberId);
    if (!m) throw new AppError('NOT_FOUND', undefined, { message: 'member not found' });
    if (!this.isSelf(actor, m)) await this.checkMayGrant(actor, project, [m.roleId], 'remove a');
    await this.checkKeepsAdmin(actor, project, m);
    await this.deps.projects.removeMember(memberId);
    await this.deps.access.invalidate();
    this.deps.onChange?.({ username: actor.name, operation: 'delete', resource: `${project.name}:member:${m.entityName}` });
  }
}
