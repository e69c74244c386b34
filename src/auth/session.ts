// Browser sessions for the web UI: an opaque id in an HttpOnly cookie, idle expiry, and a CSRF
// token (double submit: a readable cookie echoed back in X-Harbor-CSRF-Token on every change).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Principal } from '../access/principal.ts';

export const SESSION_COOKIE = 'berth_session';
export const CSRF_COOKIE = '__csrf';
export const CSRF_HEADER = 'x-harbor-csrf-token';

interface Session {
  principal: Principal;
  csrf: string;
  lastSeen: number;
}

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
  private sessions = new Map<string, Session>();

  constructor(private readonly idleMs = 30 * 60_000, private readonly now: () => number = Date.now) {}

  create(res: Response, principal: Principal, secure: boolean): Session {
    this.sweep();
    const id = randomBytes(32).toString('base64url');
    const s: Session = { principal, csrf: randomBytes(24).toString('base64url'), lastSeen: this.now() };
    this.sessions.set(id, s);
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
      this.sessions.delete(id);
      return null;
    }
    s.lastSeen = this.now();
    return s;
  }

  /** Whether the request carries a session cookie at all (valid or not). */
  hasCookie(req: Request): boolean {
    return !!parseCookies(req.headers.cookie)[SESSION_COOKIE];
  }

  destroy(req: Request, res: Response): void {
    const id = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (id) this.sessions.delete(id);
    res.append('Set-Cookie', `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax`);
    res.append('Set-Cookie', `${CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax`);
  }

  /** Drop every session of a principal (user deleted, password changed). */
  forget(pred: (p: Principal) => boolean): void {
    for (const [id, s] of this.sessions) if (pred(s.principal)) this.sessions.delete(id);
  }

  static csrfOk(req: Request, s: Session): boolean {
    const h = req.headers[CSRF_HEADER];
    if (typeof h !== 'string') return false;
    const a = Buffer.from(h);
    const b = Buffer.from(s.csrf);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private sweep(): void {
    if (this.sessions.size < 10_000) return;
    const t = this.now();
    for (const [id, s] of this.sessions) if (t - s.lastSeen > this.idleMs) this.sessions.delete(id);
  }
}
