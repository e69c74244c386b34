// Local users: the built-in admin, password checks with a short-lived cache of verified
// credentials (so a client sending Basic on every request does not pay scrypt every time).
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../db/client.ts';
import type { Principal } from '../access/principal.ts';
import { hashPassword, verifyPassword } from '../lib/password.ts';
import { Lru } from '../lib/lru.ts';

export interface UsersDeps {
  db: Db;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

const CACHE_TTL_MS = 60_000;

export class UsersService {
  private verified = new Lru<string, { principal: Principal; expires: number }>(10_000);

  constructor(private readonly deps: UsersDeps) {}

  /**
   * Creates the built-in admin on first start. Returns the generated password when none was
   * configured (the caller prints it once), otherwise null.
   */
  async ensureAdmin(configured: string | undefined): Promise<string | null> {
    const existing = await this.deps.db.user.findUnique({ where: { username: 'admin' }, select: { id: true } });
    if (existing) return null;
    const password = configured ?? randomBytes(12).toString('base64url');
    await this.deps.db.user.create({ data: { username: 'admin', source: 'local', passwordHash: await hashPassword(password), sysadmin: true, realname: 'System Administrator' } });
    return configured ? null : password;
  }

  /** Checks a local user's password; null for an unknown user or a wrong password alike. */
  async authenticateLocal(username: string, password: string): Promise<Principal | null> {
    const key = createHash('sha256').update(username).update('\0').update(password).digest('base64');
    const hit = this.verified.get(key);
    if (hit && hit.expires > Date.now()) return hit.principal;
    const user = await this.deps.db.user.findUnique({ where: { username }, select: { id: true, username: true, passwordHash: true, sysadmin: true, source: true } });
    const ok = await verifyPassword(password, user?.source === 'local' ? user.passwordHash : null);
    if (!ok || !user) return null;
    const principal: Principal = { kind: 'user', id: user.id, name: user.username, sysadmin: user.sysadmin };
    this.verified.set(key, { principal, expires: Date.now() + CACHE_TTL_MS });
    return principal;
  }

  /** Forget cached credentials (after a password change or user deletion). */
  forgetCredentials(): void {
    this.verified.clear();
  }
}
