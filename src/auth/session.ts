// Browser sessions for the web UI: an opaque id in an HttpOnly cookie, idle expiry, and a CSRF
// token (double submit: a readable cookie echoed back in X-Harbor-CSRF-Token on every change).
// Sessions are capped per user and in total; past a cap the least recently seen session ends.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Principal } from '../access/principal.ts';

export const SESSION_COOKIE = 'berth_session';
export const CSRF_COOKIE = '__csrf';
export const CSRF_HEADER = 'x-harbor-csrf-token';

interface Session {
  /** This session's own copy: the API hands this very object to handlers as the caller. */
  principal: Principal;
  csrf: string;
  lastSeen: number;
}

export interface SessionLimits {
  /** Sessions kept per user (BERTH_MAX_SESSIONS_PER_USER); default 20. */
  maxPerUser?: number;
  /** Sessions kept in all, so memory stays bounded whatever the number of users; default 50,000. */
  maxTotal?: number;
}

const ownerOf = (p: Principal) => `${p.kind}:${p.id}`;

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    try {
      out[k] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      // ignore a malformed cookie
    }
  }
  return out;
}

export class SessionStore {
  /** In least recently seen order: `get` moves a session to the end. */
  private sessions = new Map<string, Session>();
  /** Session ids by owner (`kind:id`). */
  private byOwner = new Map<string, Set<string>>();
  private readonly maxPerUser: number;
  private readonly maxTotal: number;

  constructor(
    private readonly idleMs = 30 * 60_000,
    private readonly now: () => number = Date.now,
    limits: SessionLimits = {},
  ) {
    this.maxPerUser = Math.max(1, limits.maxPerUser ?? 20);
    this.maxTotal = Math.max(1, limits.maxTotal ?? 50_000);
  }

  /** Starts a session (setting its cookies); ends the owner's least recently seen one past the caps. */
  create(res: Response, principal: Principal, secure: boolean): Session {
    this.sweep();
    const owner = ownerOf(principal);
    const mine = this.byOwner.get(owner);
    while (mine && mine.size >= this.maxPerUser) {
      const oldest = this.leastRecent(mine);
      mine.delete(oldest);
      this.end(oldest);
    }
    while (this.sessions.size >= this.maxTotal) this.end(this.sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const s: Session = { principal: { ...principal }, csrf: randomBytes(24).toString('base64url'), lastSeen: this.now() };
    this.sessions.set(id, s);
    let set = this.byOwner.get(owner);
    if (!set) this.byOwner.set(owner, (set = new Set()));
    set.add(id);
    const flags = `Path=/; SameSite=Lax${secure ? '; Secure' : ''}`;
    res.append('Set-Cookie', `${SESSION_COOKIE}=${id}; HttpOnly; ${flags}`);
    res.append('Set-Cookie', `${CSRF_COOKIE}=${s.csrf}; ${flags}`);
    return s;
  }

  /** The session of the request, refreshed, or null when absent or expired. */
  get(req: Request): Session | null {
    const id = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (!id) return null;
    const s = this.sessions.get(id);
    if (!s) return null;
    if (this.now() - s.lastSeen > this.idleMs) {
      this.end(id);
      return null;
    }
    s.lastSeen = this.now();
    this.sessions.delete(id);
    this.sessions.set(id, s);
    return s;
  }

  /** Whether the request carries a session cookie at all (valid or not). */
  hasCookie(req: Request): boolean {
    return !!parseCookies(req.headers.cookie)[SESSION_COOKIE];
  }

  destroy(req: Request, res: Response): void {
    const id = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (id) this.end(id);
    res.append('Set-Cookie', `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax`);
    res.append('Set-Cookie', `${CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax`);
  }

  /** Drop every session whose principal matches. */
  forget(pred: (p: Principal) => boolean): void {
    for (const [id, s] of this.sessions) if (pred(s.principal)) this.end(id);
  }

  /**
   * Ends every session of a user (password changed or reset, admin flag changed, user deleted),
   * except the one `keep` came from: the principal of the request making the change. Each session
   * holds its own copy of its principal and the API passes that object on as the caller, so
   * identity marks the request's own session; a principal from Basic auth or a token matches none,
   * and then every session ends.
   */
  endUser(userId: number, keep?: Principal): void {
    for (const id of this.byOwner.get(`user:${userId}`) ?? []) {
      if (keep && this.sessions.get(id)?.principal === keep) continue;
      this.end(id);
    }
  }

  static csrfOk(req: Request, s: Session): boolean {
    const h = req.headers[CSRF_HEADER];
    if (typeof h !== 'string') return false;
    const a = Buffer.from(h);
    const b = Buffer.from(s.csrf);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private end(id: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    const owner = ownerOf(s.principal);
    const set = this.byOwner.get(owner);
    set?.delete(id);
    if (set && !set.size) this.byOwner.delete(owner);
  }

  private leastRecent(ids: Set<string>): string {
    let oldest = '';
    let seen = Infinity;
    for (const id of ids) {
      const t = this.sessions.get(id)?.lastSeen ?? -Infinity;
      if (t < seen) [oldest, seen] = [id, t];
    }
    return oldest;
  }

  /** Ends idle sessions: they sit at the front of the map, so this stops at the first live one. */
  private sweep(): void {
    const t = this.now();
    for (const [id, s] of this.sessions) {
      if (t - s.lastSeen <= this.idleMs) break;
      this.end(id);
    }
  }
}
