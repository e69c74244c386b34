// Users: the built-in admin, local users created by admins, directory users recorded at login,
// and their personal access tokens (for CI and `docker login` without the directory password).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { GroupRow, UserProfile, UserStore } from '../db/user-store.ts';
import type { ServiceLog } from '../lib/log.ts';
import type { Principal } from '../access/principal.ts';
import { AppError } from '../lib/errors.ts';
import { normalizeDn } from '../lib/dn.ts';
import { hashPassword, verifyPassword } from '../lib/password.ts';
import { PAT_PREFIX, hashSecret } from './identity.ts';

export interface UserRecord {
  id: number;
  username: string;
  email: string;
  realname: string;
  sysadmin: boolean;
  source: string;
  createdAt: Date;
  updatedAt: Date;
}

const USERNAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,254}$/;

/** A user as the API shows it: an admin either by Berth's own flag or through the directory's admin group. */
function record(u: UserProfile): UserRecord {
  const { ldapAdmin, ...rest } = u;
  return { ...rest, sysadmin: u.sysadmin || ldapAdmin };
}

/**
 * The generated first password of the built-in admin lives in this file of the data directory (0600)
 * until the admin's password is changed: a log is read by more people and kept longer than the
 * data directory, and a file survives a first start that fails later (port in use).
 */
export const INITIAL_ADMIN_PASSWORD_FILE = 'initial-admin-password';

/** Where to reset a lost admin password, for messages. */
export const RESET_HINT = 'npm run admin:reset-password';

function generatePassword(): string {
  return randomBytes(12).toString('base64url');
}

/** Writes `content` to `file` with mode 0600, all or nothing: a new temporary file renamed over it. */
function writePrivateFileAtomic(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function checkPasswordStrength(p: unknown): string {
  if (typeof p !== 'string' || p.length < 8 || p.length > 128 || !/[a-z]/.test(p) || !/[A-Z]/.test(p) || !/\d/.test(p)) {
    throw new AppError('BAD_REQUEST', undefined, { message: 'password must be 8-128 characters with at least one lower-case letter, one upper-case letter and one digit' });
  }
  return p;
}

export class UsersService {
  constructor(
    private readonly deps: {
      users: UserStore;
      /** Drops cached credential checks (passwords, personal tokens) on every node: a change takes effect at once. */
      forgetCredentials: () => void | Promise<void>;
      /** Drops cached access decisions on every node. */
      invalidateAccess: () => void | Promise<void>;
      /** Ends the user's browser sessions, except the one `keep` (the caller) was authenticated by. */
      endSessions?: (userId: number, keep?: Principal) => void | Promise<void>;
      /** The data directory: holds INITIAL_ADMIN_PASSWORD_FILE. */
      dataDir: string;
      log?: ServiceLog;
    },
  ) {}

  /** The file holding the admin's generated password while it is unchanged. */
  get initialPasswordFile(): string {
    return path.join(this.deps.dataDir, INITIAL_ADMIN_PASSWORD_FILE);
  }

  /**
   * Creates the built-in admin on first start, with the configured password or a generated one
   * written to the initial password file (before the admin exists, so no start that fails later
   * can lose it). An existing admin keeps its password: a configured one that differs is reported
   * as ignored. Logs where a generated password is, never the password.
   */
  async ensureAdmin(configured: string | undefined): Promise<{ created: boolean; passwordFile: string | null }> {
    const { users, log } = this.deps;
    const file = this.initialPasswordFile;
    const existing = await users.credentialsByName('admin');
    if (existing) {
      if (configured !== undefined && !(await verifyPassword(configured, existing.passwordHash))) {
        log?.warn({ resetCommand: RESET_HINT }, 'BERTH_ADMIN_PASSWORD ignored: the admin user exists already; to set its password, run npm run admin:reset-password');
      }
      const present = fs.existsSync(file);
      if (present) log?.info({ file }, 'the initial admin password is in this file until the admin changes it');
      return { created: false, passwordFile: present ? file : null };
    }
    const password = configured ?? generatePassword();
    const passwordFile = configured === undefined ? file : null;
    if (passwordFile) writePrivateFileAtomic(passwordFile, `${password}\n`);
    try {
      await users.createAdmin(await hashPassword(password));
    } catch (e) {
      if (passwordFile) fs.rmSync(passwordFile, { force: true });
      throw e;
    }
    if (passwordFile) log?.info({ file: passwordFile }, 'admin user created; its generated password is in this file until the admin changes it');
    else log?.info({}, 'admin user created with the password from BERTH_ADMIN_PASSWORD');
    return { created: true, passwordFile };
  }

  /**
   * Sets the built-in admin's password, for recovery (the reset command; works with Berth stopped).
   * `given` is checked like any new password; without it one is generated and written to the
   * initial password file. A given password removes that file (its password no longer works).
   * Creates the admin if it is missing; changes nothing else (other users, tokens, the admin flag).
   */
  async resetAdminPassword(given?: string): Promise<{ password: string; passwordFile: string | null }> {
    const password = given === undefined ? generatePassword() : checkPasswordStrength(given);
    const file = this.initialPasswordFile;
    if (given === undefined) writePrivateFileAtomic(file, `${password}\n`);
    const passwordHash = await hashPassword(password);
    const adminId = await this.deps.users.setAdminPassword(passwordHash);
    if (given !== undefined) this.removeInitialPasswordFile();
    await this.deps.forgetCredentials();
    await this.deps.endSessions?.(adminId);
    return { password, passwordFile: given === undefined ? file : null };
  }

  private removeInitialPasswordFile(): void {
    const file = this.initialPasswordFile;
    if (fs.existsSync(file)) {
      fs.rmSync(file, { force: true });
      this.deps.log?.info({ file }, 'admin password changed; initial admin password file removed');
    }
  }

  async get(id: number): Promise<UserRecord | null> {
    const u = await this.deps.users.profile(id);
    return u && record(u);
  }

  async list(q: { username?: string; page: number; pageSize: number }): Promise<{ total: number; items: UserRecord[] }> {
    const { total, items } = await this.deps.users.page({ nameContains: q.username || undefined, page: q.page, pageSize: q.pageSize });
    return { total, items: items.map(record) };
  }

  async create(input: { username?: string; password?: string; email?: string; realname?: string; comment?: string }): Promise<UserRecord> {
    if (!input.username || !USERNAME_RE.test(input.username) || input.username.startsWith('robot$')) throw new AppError('BAD_REQUEST', undefined, { message: 'invalid username' });
    const password = checkPasswordStrength(input.password);
    if (await this.deps.users.credentialsByName(input.username)) throw new AppError('CONFLICT', undefined, { message: 'username already exists' });
    return record(await this.deps.users.createLocal({ username: input.username, passwordHash: await hashPassword(password), email: input.email ?? '', realname: input.realname ?? '' }));
  }

  async update(id: number, input: { email?: string; realname?: string }): Promise<void> {
    await this.deps.users.updateProfile(id, { ...(input.email !== undefined ? { email: String(input.email) } : {}), ...(input.realname !== undefined ? { realname: String(input.realname) } : {}) });
  }

  async setPassword(actor: Principal, id: number, input: { old_password?: string; new_password?: string }): Promise<void> {
    const user = await this.deps.users.credentials(id);
    if (!user) throw new AppError('NOT_FOUND', undefined, { message: 'user not found' });
    if (user.source !== 'local') throw new AppError('PRECONDITION', undefined, { message: 'directory users change their password in the directory' });
    if (!actor.sysadmin || actor.id === id) {
      if (!(await verifyPassword(input.old_password ?? '', user.passwordHash))) throw new AppError('BAD_REQUEST', undefined, { message: 'the old password is wrong' });
    }
    const password = checkPasswordStrength(input.new_password);
    await this.deps.users.setPasswordHash(id, await hashPassword(password));
    // The generated first password no longer works, whoever changed it: its file goes.
    if (user.username === 'admin') this.removeInitialPasswordFile();
    await this.deps.forgetCredentials();
    // Whoever knew the old password is signed out everywhere; a user changing their own password
    // in the browser keeps that one session (an admin's reset ends them all).
    await this.deps.endSessions?.(id, actor.kind === 'user' && actor.id === id ? actor : undefined);
  }

  async setSysadmin(id: number, flag: boolean): Promise<void> {
    await this.deps.users.setSysadmin(id, !!flag);
    await this.deps.forgetCredentials();
    await this.deps.invalidateAccess();
    await this.deps.endSessions?.(id); // a session carries the old admin flag
  }

  async delete(id: number): Promise<void> {
    const user = await this.deps.users.profile(id);
    if (!user) throw new AppError('NOT_FOUND', undefined, { message: 'user not found' });
    if (user.username === 'admin') throw new AppError('FORBIDDEN', undefined, { message: 'the built-in admin cannot be deleted' });
    await this.deps.users.delete(id);
    await this.deps.forgetCredentials();
    await this.deps.invalidateAccess();
    await this.deps.endSessions?.(id);
  }

  // ---- personal access tokens ---------------------------------------------------------------

  async createToken(userId: number, input: { name?: string; duration_days?: number }): Promise<{ id: number; name: string; token: string; expiresAt: Date | null }> {
    const name = (input.name ?? '').trim();
    if (!name || name.length > 100) throw new AppError('BAD_REQUEST', undefined, { message: 'token name is required (at most 100 characters)' });
    const days = input.duration_days ?? 90;
    if (!Number.isInteger(days) || (days !== -1 && days <= 0)) throw new AppError('BAD_REQUEST', undefined, { message: 'duration_days is a number of days, or -1 for never' });
    const prefix = randomBytes(6).toString('base64url').slice(0, 8);
    const token = `${PAT_PREFIX}${prefix}${randomBytes(24).toString('base64url')}`;
    const expiresAt = days === -1 ? null : new Date(Date.now() + days * 86_400_000);
    const id = await this.deps.users.createToken({ userId, name, prefix, secretHash: hashSecret(token), expiresAt });
    return { id, name, token, expiresAt };
  }

  async listTokens(userId: number): Promise<{ id: number; name: string; expiresAt: Date | null; lastUsedAt: Date | null; createdAt: Date }[]> {
    return this.deps.users.tokens(userId);
  }

  async deleteToken(userId: number, id: number): Promise<void> {
    if (!(await this.deps.users.deleteToken(userId, id))) throw new AppError('NOT_FOUND', undefined, { message: 'token not found' });
    await this.deps.forgetCredentials();
  }

  // ---- user groups (LDAP groups known to Berth) ----------------------------------------------

  /** Groups by id: the one with the DN (any spelling of it), or those whose name contains `name` (any case), or all; paged. */
  listGroups(q: { ldapDn?: string; name?: string; page: number; pageSize: number }): Promise<{ total: number; items: GroupRow[] }> {
    return this.deps.users.groupPage({ ldapDn: q.ldapDn ? normalizeDn(q.ldapDn) : undefined, nameContains: q.ldapDn ? undefined : q.name, page: q.page, pageSize: q.pageSize });
  }

  getGroup(id: number): Promise<GroupRow | null> {
    return this.deps.users.group(id);
  }

  /** Records an LDAP group by DN (its name: the one given, or the DN's first value); CONFLICT when known already. */
  async createGroup(input: { ldapDn: string; name?: string }): Promise<GroupRow> {
    const dn = normalizeDn(input.ldapDn);
    if (await this.deps.users.groupByDn(dn)) throw new AppError('CONFLICT', undefined, { message: 'group already exists' });
    const g = await this.deps.users.createGroup({ name: input.name || /^[^=]+=([^,]+)/.exec(input.ldapDn)?.[1] || dn, ldapDn: dn });
    await this.deps.invalidateAccess();
    return g;
  }

  async renameGroup(id: number, name: string): Promise<void> {
    if (!(await this.deps.users.renameGroup(id, name))) throw new AppError('NOT_FOUND', undefined, { message: 'group not found' });
  }

  async deleteGroup(id: number): Promise<void> {
    if (!(await this.deps.users.deleteGroup(id))) throw new AppError('NOT_FOUND', undefined, { message: 'group not found' });
    await this.deps.invalidateAccess();
  }
}
