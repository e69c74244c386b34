// Users, their personal access tokens, and the user groups (LDAP groups known to Berth): the only
// place their SQL lives. Plain rows out; hashing, validation and cache announcements are the
// services' business (src/services/users.ts, identity.ts).
import type { Db } from './client.ts';
import { conflictOnDuplicate } from './unique.ts';
import { nameContains } from './search.ts';

/** A user as the API shows it (no secrets). */
export interface UserProfile {
  id: number;
  username: string;
  email: string;
  realname: string;
  /** Admin granted in Berth. */
  sysadmin: boolean;
  /** Admin through the directory's admin group, as of the last login. */
  ldapAdmin: boolean;
  /** "local" or "ldap". */
  source: string;
  createdAt: Date;
  updatedAt: Date;
}

/** What a password check needs. */
export interface UserCredentials {
  id: number;
  username: string;
  source: string;
  passwordHash: string | null;
  sysadmin: boolean;
}

export interface NewLocalUser {
  username: string;
  passwordHash: string;
  email?: string;
  realname?: string;
  sysadmin?: boolean;
}

/** What a directory login records of a user. */
export interface DirectoryUserData {
  email: string;
  realname: string;
  ldapDn: string;
  /** JSON array of the user's group DNs. */
  ldapGroups: string;
  ldapAdmin: boolean;
}

export interface TokenRow {
  id: number;
  name: string;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  createdAt: Date;
}

/** A personal token found by its prefix, with its owner. */
export interface TokenLookup {
  id: number;
  secretHash: string;
  expiresAt: Date | null;
  user: { id: number; username: string; sysadmin: boolean; ldapAdmin: boolean };
}

export interface GroupRow {
  id: number;
  name: string;
  /** 1: LDAP group (Harbor's group_type). */
  groupType: number;
  ldapDn: string;
}

const PROFILE = { id: true, username: true, email: true, realname: true, sysadmin: true, ldapAdmin: true, source: true, createdAt: true, updatedAt: true } as const;
const CREDENTIALS = { id: true, username: true, passwordHash: true, sysadmin: true, source: true } as const;
const GROUP = { id: true, name: true, groupType: true, ldapDn: true } as const;
const ADMIN = { username: 'admin', source: 'local', sysadmin: true, realname: 'System Administrator' } as const;

export class UserStore {
  constructor(private readonly db: Db) {}

  // ---- users ----------------------------------------------------------------------------------

  profile(id: number): Promise<UserProfile | null> {
    return this.db.user.findUnique({ where: { id }, select: PROFILE });
  }

  profileByName(username: string): Promise<UserProfile | null> {
    return this.db.user.findUnique({ where: { username }, select: PROFILE });
  }

  /** A page of users by name (ascending), optionally those whose name contains `nameContains` (any case); and how many match. */
  async page(q: { nameContains?: string; page: number; pageSize: number }): Promise<{ total: number; items: UserProfile[] }> {
    const where = q.nameContains ? await nameContains(this.db, 'User', 'username', q.nameContains) : {};
    const [total, items] = await Promise.all([
      this.db.user.count({ where }),
      this.db.user.findMany({ where, orderBy: { username: 'asc' }, skip: (q.page - 1) * q.pageSize, take: q.pageSize, select: PROFILE }),
    ]);
    return { total, items };
  }

  credentials(id: number): Promise<UserCredentials | null> {
    return this.db.user.findUnique({ where: { id }, select: CREDENTIALS });
  }

  credentialsByName(username: string): Promise<UserCredentials | null> {
    return this.db.user.findUnique({ where: { username }, select: CREDENTIALS });
  }

  /** Creates a local user; AppError CONFLICT when the name is taken. */
  createLocal(u: NewLocalUser): Promise<UserProfile> {
    return conflictOnDuplicate(
      this.db.user.create({ data: { username: u.username, source: 'local', passwordHash: u.passwordHash, email: u.email ?? '', realname: u.realname ?? '', sysadmin: !!u.sysadmin }, select: PROFILE }),
      'username already exists',
    );
  }

  /** Creates the built-in admin; AppError CONFLICT when it exists. */
  createAdmin(passwordHash: string): Promise<UserProfile> {
    return this.createLocal({ ...ADMIN, passwordHash });
  }

  /** Sets the built-in admin's password, creating the admin if missing (one statement: no race); its id. */
  async setAdminPassword(passwordHash: string): Promise<number> {
    const admin = await this.db.user.upsert({ where: { username: 'admin' }, update: { passwordHash }, create: { ...ADMIN, passwordHash }, select: { id: true } });
    return admin.id;
  }

  /** Changes the given profile fields (throws when the user does not exist). */
  async updateProfile(id: number, fields: { email?: string; realname?: string }): Promise<void> {
    await this.db.user.update({ where: { id }, data: { ...(fields.email !== undefined ? { email: fields.email } : {}), ...(fields.realname !== undefined ? { realname: fields.realname } : {}) } });
  }

  async setPasswordHash(id: number, passwordHash: string): Promise<void> {
    await this.db.user.update({ where: { id }, data: { passwordHash } });
  }

  async setSysadmin(id: number, flag: boolean): Promise<void> {
    await this.db.user.update({ where: { id }, data: { sysadmin: flag } });
  }

  /** Deletes the user; its memberships and personal tokens go with it (cascade). */
  async delete(id: number): Promise<void> {
    await this.db.user.delete({ where: { id } });
  }

  /**
   * Records a directory user at login: creates it (source "ldap") or updates the directory's data.
   * Null when a local user has the name (never taken over).
   */
  async recordDirectoryUser(username: string, data: DirectoryUserData): Promise<{ id: number; username: string; sysadmin: boolean } | null> {
    const existing = await this.db.user.findUnique({ where: { username }, select: { id: true, source: true } });
    if (existing && existing.source !== 'ldap') return null;
    const select = { id: true, username: true, sysadmin: true } as const;
    return existing ? this.db.user.update({ where: { id: existing.id }, data, select }) : this.db.user.create({ data: { username, source: 'ldap', ...data }, select });
  }

  /** Ids of the known user groups the user was in at its last directory login. */
  async groupIdsOf(userId: number): Promise<number[]> {
    const u = await this.db.user.findUnique({ where: { id: userId }, select: { ldapGroups: true } });
    const dns = u ? (JSON.parse(u.ldapGroups) as string[]) : [];
    return dns.length ? (await this.db.userGroup.findMany({ where: { ldapDn: { in: dns } }, select: { id: true } })).map((g) => g.id) : [];
  }

  // ---- personal access tokens -----------------------------------------------------------------

  /** Stores a token (its hash only); its id. AppError CONFLICT when the prefix is taken. */
  async createToken(t: { userId: number; name: string; prefix: string; secretHash: string; expiresAt: Date | null }): Promise<number> {
    return (await conflictOnDuplicate(this.db.personalToken.create({ data: t, select: { id: true } }), 'token prefix already in use; try again')).id;
  }

  /** The user's tokens, oldest first. */
  tokens(userId: number): Promise<TokenRow[]> {
    return this.db.personalToken.findMany({ where: { userId }, orderBy: { id: 'asc' }, select: { id: true, name: true, expiresAt: true, lastUsedAt: true, createdAt: true } });
  }

  tokenByPrefix(prefix: string): Promise<TokenLookup | null> {
    return this.db.personalToken.findUnique({ where: { prefix }, select: { id: true, secretHash: true, expiresAt: true, user: { select: { id: true, username: true, sysadmin: true, ldapAdmin: true } } } });
  }

  async tokenUsed(id: number, at: Date): Promise<void> {
    await this.db.personalToken.update({ where: { id }, data: { lastUsedAt: at } });
  }

  /** Deletes the user's token; false when the user has no such token. */
  async deleteToken(userId: number, id: number): Promise<boolean> {
    return (await this.db.personalToken.deleteMany({ where: { id, userId } })).count > 0;
  }

  // ---- user groups ----------------------------------------------------------------------------

  /** A page of groups by id: the one with `ldapDn`, or those whose name contains `nameContains` (any case), or all; and how many match. */
  async groupPage(q: { ldapDn?: string; nameContains?: string; page: number; pageSize: number }): Promise<{ total: number; items: GroupRow[] }> {
    const where = q.ldapDn !== undefined ? { ldapDn: q.ldapDn } : q.nameContains !== undefined ? await nameContains(this.db, 'UserGroup', 'name', q.nameContains) : {};
    const [total, items] = await Promise.all([
      this.db.userGroup.count({ where }),
      this.db.userGroup.findMany({ where, orderBy: { id: 'asc' }, skip: (q.page - 1) * q.pageSize, take: q.pageSize, select: GROUP }),
    ]);
    return { total, items };
  }

  group(id: number): Promise<GroupRow | null> {
    return this.db.userGroup.findUnique({ where: { id }, select: GROUP });
  }

  groupByDn(ldapDn: string): Promise<GroupRow | null> {
    return this.db.userGroup.findUnique({ where: { ldapDn }, select: GROUP });
  }

  /** Records an LDAP group; AppError CONFLICT when one with the DN exists. */
  createGroup(g: { name: string; ldapDn: string }): Promise<GroupRow> {
    return conflictOnDuplicate(this.db.userGroup.create({ data: { name: g.name, ldapDn: g.ldapDn, groupType: 1 }, select: GROUP }), 'group already exists');
  }

  /** False when there is no such group. */
  async renameGroup(id: number, name: string): Promise<boolean> {
    return (await this.db.userGroup.updateMany({ where: { id }, data: { name } })).count > 0;
  }

  /** Deletes the group and its memberships (cascade); false when there is no such group. */
  async deleteGroup(id: number): Promise<boolean> {
    return (await this.db.userGroup.deleteMany({ where: { id } })).count > 0;
  }
}
