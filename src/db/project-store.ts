// Projects and their members (tables "Project" and "Member"): the only place their SQL lives, but
// for the members' page (src/db/list-store.ts) and storage quotas (quota-store.ts). Metadata is
// kept as the JSON text of Harbor's API; roles are plain ids here (src/access/roles.ts names them).
import type { Db } from './client.ts';
import { conflictOnDuplicate, isUniqueViolation } from './unique.ts';
import { nameContains } from './search.ts';

/** What access decisions need of a project. */

/** A project list's order (Harbor's `sort`: name, creation_time, update_time; `-` for descending). */
export interface ProjectSort {
  by: 'name' | 'creation' | 'update';
  desc: boolean;
}
export interface ProjectRef {
  id: number;
  name: string;
  public: boolean;
  /** The upstream registry endpoint of a proxy-cache project; null (or absent) for a normal project. */
  registryId?: number | null;
}

export interface ProjectRow extends ProjectRef {
  ownerId: number | null;
  /** The owner's user name ('' when none, or the user is gone). */
  ownerName: string;
  /** JSON object of Harbor's metadata (string values). */
  metadata: string;
  createdAt: Date;
  updatedAt: Date;
  /** Repositories in the project. */
  repoCount: number;
}

export interface NewProject {
  name: string;
  public: boolean;
  ownerId: number | null;
  metadata: string;
  /** A user made the project's first member with this role (its creator), if any. */
  firstMember?: { userId: number; roleId: number };
  /** A proxy-cache project: the upstream registry endpoint it pulls through. */
  registryId?: number | null;
}

/** A membership with the name of its user or group. */
export interface MemberRow {
  id: number;
  projectId: number;
  roleId: number;
  userId: number | null;
  groupId: number | null;
  user: { username: string } | null;
  group: { name: string } | null;
}

const REF = { id: true, name: true, public: true, registryId: true } as const;
const MEMBER = { id: true, projectId: true, roleId: true, userId: true, groupId: true, user: { select: { username: true } }, group: { select: { name: true } } } as const;

/** Members of a user, directly or through one of its groups. */
function memberOf(userId: number, groupIds: readonly number[]) {
  return { OR: [{ userId }, ...(groupIds.length ? [{ groupId: { in: [...groupIds] } }] : [])] };
}

export class ProjectStore {
  constructor(private readonly db: Db) {}

  // ---- projects -------------------------------------------------------------------------------

  ref(key: { id: number } | { name: string }): Promise<ProjectRef | null> {
    return this.db.project.findFirst({ where: key, select: REF });
  }

  /** The project with its owner's name and repository count. */
  async find(key: { id: number } | { name: string }): Promise<ProjectRow | null> {
    const p = await this.db.project.findFirst({
      where: key,
      select: { ...REF, ownerId: true, metadata: true, createdAt: true, updatedAt: true },
    });
    if (!p) return null;
    // A count of this project's repositories on the (projectId, name) index: Prisma's _count joined
    // a GROUP BY over every repository (5 ms per project request at 5,000 repositories on PostgreSQL).
    const [owner, repoCount] = await Promise.all([
      p.ownerId ? this.db.user.findUnique({ where: { id: p.ownerId }, select: { username: true } }) : null,
      this.db.repository.count({ where: { projectId: p.id } }),
    ]);
    return { ...p, ownerName: owner?.username ?? '', repoCount };
  }

  /** The projects with these ids (those that exist, in no particular order): three queries for a whole page. */
  async findMany(ids: readonly number[]): Promise<ProjectRow[]> {
    if (!ids.length) return [];
    const rows = await this.db.project.findMany({
      where: { id: { in: [...ids] } },
      select: { ...REF, ownerId: true, metadata: true, createdAt: true, updatedAt: true },
    });
    const ownerIds = [...new Set(rows.map((p) => p.ownerId).filter((id): id is number => id !== null))];
    const [owners, counts] = await Promise.all([
      ownerIds.length ? this.db.user.findMany({ where: { id: { in: ownerIds } }, select: { id: true, username: true } }) : [],
      // Counted on the (projectId, name) index, for these projects only.
      this.db.repository.groupBy({ by: ['projectId'], where: { projectId: { in: rows.map((p) => p.id) } }, _count: { _all: true } }),
    ]);
    const ownerName = new Map(owners.map((u) => [u.id, u.username]));
    const repoCount = new Map(counts.map((c) => [c.projectId, c._count._all]));
    return rows.map((p) => ({ ...p, ownerName: (p.ownerId !== null && ownerName.get(p.ownerId)) || '', repoCount: repoCount.get(p.id) ?? 0 }));
  }

  /**
   * Ids of a page of projects in `sort`'s order (default by name), and how many match: among `ids`
   * (null: all), whose name contains `nameContains` (any case), public or not, owned by `owner`.
   */
  async page(q: { ids: readonly number[] | null; nameContains?: string; public?: boolean; owner?: string; sort?: ProjectSort; page: number; pageSize: number }): Promise<{ total: number; ids: number[] }> {
    const where = {
      AND: [
        ...(q.ids ? [{ id: { in: [...q.ids] } }] : []),
        ...(q.nameContains ? [await nameContains(this.db, 'Project', 'name', q.nameContains)] : []),
        ...(q.public !== undefined ? [{ public: q.public }] : []),
        ...(q.owner !== undefined ? [{ ownerId: (await this.db.user.findUnique({ where: { username: q.owner }, select: { id: true } }))?.id ?? -1 }] : []),
      ],
    };
    const sort = q.sort ?? { by: 'name', desc: false };
    const dir: 'asc' | 'desc' = sort.desc ? 'desc' : 'asc';
    // Creation order is the id's (ids grow with creation time); ties in update time go by id.
    const orderBy = sort.by === 'name' ? [{ name: dir }] : sort.by === 'creation' ? [{ id: dir }] : [{ updatedAt: dir }, { id: dir }];
    const [total, rows] = await Promise.all([
      this.db.project.count({ where }),
      this.db.project.findMany({ where, orderBy, skip: (q.page - 1) * q.pageSize, take: q.pageSize, select: { id: true } }),
    ]);
    return { total, ids: rows.map((r) => r.id) };
  }

  publicIds(): Promise<number[]> {
    return this.ids({ public: true });
  }

  /** Ids of the projects with these names (those that exist). */
  idsNamed(names: readonly string[]): Promise<number[]> {
    return this.ids({ name: { in: [...names] } });
  }

  private async ids(where: object): Promise<number[]> {
    return (await this.db.project.findMany({ where, select: { id: true } })).map((p) => p.id);
  }

  /** Creates the project (and its first member, in the same statement); its id. AppError CONFLICT when the name is taken. */
  async create(p: NewProject): Promise<number> {
    const created = await conflictOnDuplicate(
      this.db.project.create({
        data: { name: p.name, public: p.public, ownerId: p.ownerId, metadata: p.metadata, registryId: p.registryId ?? null, ...(p.firstMember ? { members: { create: p.firstMember } } : {}) },
        select: { id: true },
      }),
      `project ${p.name} already exists`,
    );
    return created.id;
  }

  /** Creates the project unless it exists (one native upsert: nodes starting together cannot collide). */
  async ensure(name: string, isPublic: boolean, metadata: string): Promise<void> {
    // A non-empty update is what makes Prisma issue one INSERT .. ON CONFLICT instead of a read and a write.
    await this.db.project.upsert({ where: { name }, create: { name, public: isPublic, metadata }, update: { name } });
  }

  async update(id: number, fields: { public: boolean; metadata: string }): Promise<void> {
    await this.db.project.update({ where: { id }, data: fields });
  }

  /**
   * Deletes the project, its members (cascade) and its robots (no foreign key: they name the project
   * in their permissions), all or none. Throws when the project does not exist.
   */
  async delete(id: number): Promise<void> {
    await this.db.$transaction([this.db.project.delete({ where: { id } }), this.db.robot.deleteMany({ where: { projectId: id } })]);
  }

  // ---- members --------------------------------------------------------------------------------

  member(projectId: number, memberId: number): Promise<MemberRow | null> {
    return this.db.member.findFirst({ where: { id: memberId, projectId }, select: MEMBER });
  }

  /** Adds a user or a group to the project; its id, or null when it is a member already. */
  async addMember(m: { projectId: number; userId: number | null; groupId: number | null; roleId: number }): Promise<number | null> {
    try {
      return (await this.db.member.create({ data: m, select: { id: true } })).id;
    } catch (e) {
      if (isUniqueViolation(e)) return null;
      throw e;
    }
  }

  async setMemberRole(memberId: number, roleId: number): Promise<void> {
    await this.db.member.update({ where: { id: memberId }, data: { roleId } });
  }

  async removeMember(memberId: number): Promise<void> {
    await this.db.member.delete({ where: { id: memberId } });
  }

  /** Members of the project with the role, other than `exceptMemberId`. */
  countWithRole(projectId: number, roleId: number, exceptMemberId: number): Promise<number> {
    return this.db.member.count({ where: { projectId, roleId, id: { not: exceptMemberId } } });
  }

  /** The role ids the user holds in the project, directly or through its groups (repeats possible). */
  async roleIds(projectId: number, userId: number, groupIds: readonly number[]): Promise<number[]> {
    return (await this.db.member.findMany({ where: { projectId, ...memberOf(userId, groupIds) }, select: { roleId: true } })).map((m) => m.roleId);
  }

  /** Ids of the projects the user is a member of, directly or through its groups (repeats possible). */
  async memberProjectIds(userId: number, groupIds: readonly number[]): Promise<number[]> {
    return (await this.db.member.findMany({ where: memberOf(userId, groupIds), select: { projectId: true } })).map((m) => m.projectId);
  }
}
