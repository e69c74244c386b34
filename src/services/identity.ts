// Authentication sources, all at once (Harbor allows one): robot accounts, personal access tokens,
// local users, and LDAP / Active Directory. Verified credentials are cached briefly, so the
// many token requests of one `docker push` cost a single directory round trip. A change of any
// credential (password, secret, token, disabled, deleted) drops that cache on every node (topic
// 'credentials' of src/db/changes.ts); while such a change may be missed, nothing is taken from it.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RobotStore } from '../db/robot-store.ts';
import type { UserStore } from '../db/user-store.ts';
import { LocalChanges, type Changes } from '../db/changes.ts';
import type { Principal } from '../access/principal.ts';
import { LoginThrottle } from '../auth/throttle.ts';
import { AppError } from '../lib/errors.ts';
import { normalizeDn } from '../lib/dn.ts';
import type { DirectoryUser } from '../lib/directory.ts';

export type { DirectoryUser };
import { Lru } from '../lib/lru.ts';
import { verifyPassword } from '../lib/password.ts';

export interface Directory {
  authenticate(username: string, password: string): Promise<DirectoryUser | null>;
  findUser(username: string): Promise<DirectoryUser | null>;
}

export interface IdentityDeps {
  users: UserStore;
  robots: RobotStore;
  log: { warn(o: object, m: string): void; info(o: object, m: string): void };
  /** The directory, when LDAP is configured (may change at run time through /configurations). */
  directory: () => Directory | null;
  throttle?: LoginThrottle;
  /** Every login attempt, with the client's address (for the audit log). */
  onLogin?: (username: string, ok: boolean, clientAddress: string) => void;
  /** Announces credential changes to the other nodes and tells this one theirs (default: this process only). */
  changes?: Changes;
}

export const PAT_PREFIX = 'berth_pat_';
const CACHE_TTL_MS = 60_000;

/** Secrets with 190+ bits of entropy need no slow hash: sha256 keeps checks fast. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function newSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class IdentityService {
  private cache = new Lru<string, { principal: Principal; expires: number }>(10_000, 8 * 1024 * 1024);
  /** The last queued password check per (name, address) pair; see login(). */
  private checking = new Map<string, Promise<void>>();
  readonly throttle: LoginThrottle;
  private readonly changes: Changes;

  constructor(private readonly deps: IdentityDeps) {
    this.throttle = deps.throttle ?? new LoginThrottle();
    this.changes = deps.changes ?? new LocalChanges();
    this.changes.subscribe('credentials', () => this.cache.clear());
  }

  /** Forget cached credentials on every node (after password changes, deletions, secret refreshes). */
  forget(): Promise<void> {
    return this.changes.publish('credentials');
  }

  /**
   * Checks a user name and password (or robot secret, or personal token). Returns null for every kind
   * of failure alike: unknown user, wrong password, expired robot. Throws TOOMANYREQUESTS (with
   * Retry-After) while this name is locked from this address (see LoginThrottle): the right password
   * is refused too, so a guesser learns nothing during a lock.
   */
  async login(username: string, password: string, remoteAddress = ''): Promise<Principal | null> {
    if (!username || !password) return null;
    // The lock comes before the credentials cache: a locked pair is refused even with a password
    // someone else verified a moment ago.
    this.refuseIfLocked(username, remoteAddress);
    const key = createHash('sha256').update(username).update('\0').update(password).digest('base64');
    const hit = this.cached(key);
    if (hit) return hit;
    // One check at a time per (name, address): a parallel burst of guesses would otherwise all be
    // checked before the first failure is counted, outrunning the lock. Parallel logins with the
    // right password wait for the first, then find it cached.
    const pair = this.throttle.pairKey(username, remoteAddress);
    const previous = this.checking.get(pair);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous ? previous.then(() => mine) : mine;
    this.checking.set(pair, tail);
    try {
      if (previous) {
        await previous;
        this.refuseIfLocked(username, remoteAddress);
        const now = this.cached(key);
        if (now) return now;
      }
      return await this.check(username, password, remoteAddress, key);
    } finally {
      release();
      if (this.checking.get(pair) === tail) this.checking.delete(pair);
    }
  }

  private refuseIfLocked(username: string, remoteAddress: string): void {
    const verdict = this.throttle.check(username, remoteAddress);
    if (!verdict.locked) return;
    this.deps.onLogin?.(username, false, remoteAddress);
    throw new AppError('TOOMANYREQUESTS', undefined, { message: 'too many failed logins; retry later', headers: { 'Retry-After': String(Math.max(1, Math.ceil(verdict.retryAfterMs / 1000))) } });
  }

  private cached(key: string): Principal | null {
    if (!this.changes.live) return null;
    const hit = this.cache.get(key);
    return hit && hit.expires > Date.now() ? hit.principal : null;
  }

  private async check(username: string, password: string, remoteAddress: string, key: string): Promise<Principal | null> {
    // A name (or address) that failed often is slowed before the check, for right and wrong
    // passwords alike, so the wait says nothing; the delay is bounded, so the owner still gets in.
    const verdict = this.throttle.check(username, remoteAddress);
    if (!verdict.locked && verdict.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, verdict.delayMs));
    let principal: Principal | null = null;
    const gen = this.changes.generation('credentials');
    try {
      principal = await this.verify(username, password);
    } catch (err) {
      // Not a wrong password (a directory or database outage): no failure is counted, or an
      // outage would lock out everyone who retries.
      this.deps.log.warn({ err: (err as Error).message, username }, 'login source unavailable');
      this.deps.onLogin?.(username, false, remoteAddress);
      return null;
    }
    if (!principal) {
      const lockMs = this.throttle.fail(username, remoteAddress);
      if (lockMs) this.deps.log.warn({ username, clientAddress: remoteAddress, lockSeconds: Math.ceil(lockMs / 1000) }, 'login locked after repeated failures');
      this.deps.onLogin?.(username, false, remoteAddress);
      return null;
    }
    this.throttle.succeed(username, remoteAddress);
    // A credential changed while this one was checked: the check may have read the old one.
    if (this.changes.live && this.changes.generation('credentials') === gen) this.cache.set(key, { principal, expires: Date.now() + CACHE_TTL_MS });
    this.deps.onLogin?.(username, true, remoteAddress);
    return principal;
  }

  private async verify(username: string, password: string): Promise<Principal | null> {
    if (username.startsWith('robot$')) return this.verifyRobot(username, password);
    if (password.startsWith(PAT_PREFIX)) return this.verifyToken(username, password);
    const user = await this.deps.users.credentialsByName(username);
    if (user && user.source === 'local') {
      return (await verifyPassword(password, user.passwordHash)) ? { kind: 'user', id: user.id, name: user.username, sysadmin: user.sysadmin } : null;
    }
    const directory = this.deps.directory();
    if (!directory) {
      await verifyPassword(password, null); // same time as a wrong password
      return null;
    }
    const d = await directory.authenticate(username, password);
    if (!d) return null;
    return this.upsertDirectoryUser(d);
  }

  /** Records a directory user (first login or import) with its groups; returns its principal. */
  async upsertDirectoryUser(d: DirectoryUser): Promise<Principal> {
    const groups = JSON.stringify([...new Set(d.groups.map(normalizeDn))]);
    // Admin-group membership is re-read at every login, so leaving the group takes the right away.
    const data = { email: d.email ?? '', realname: d.realname ?? '', ldapDn: d.dn, ldapGroups: groups, ldapAdmin: d.admin };
    const user = await this.deps.users.recordDirectoryUser(d.username, data);
    if (!user) throw new Error('a local user with this name exists');
    return { kind: 'user', id: user.id, name: user.username, sysadmin: user.sysadmin || d.admin };
  }

  private async verifyRobot(name: string, secret: string): Promise<Principal | null> {
    const r = await this.deps.robots.byName(name);
    if (!r || r.disabled || (r.expiresAt && r.expiresAt.getTime() <= Date.now())) return null;
    if (!sameHash(hashSecret(secret), r.secretHash)) return null;
    return { kind: 'robot', id: r.id, name: r.name, sysadmin: false };
  }

  private async verifyToken(username: string, token: string): Promise<Principal | null> {
    const prefix = token.slice(PAT_PREFIX.length, PAT_PREFIX.length + 8);
    const t = await this.deps.users.tokenByPrefix(prefix);
    if (!t || t.user.username !== username) return null;
    if (t.expiresAt && t.expiresAt.getTime() <= Date.now()) return null;
    if (!sameHash(hashSecret(token), t.secretHash)) return null;
    await this.deps.users.tokenUsed(t.id, new Date());
    return { kind: 'user', id: t.user.id, name: t.user.username, sysadmin: t.user.sysadmin || t.user.ldapAdmin };
  }
}
