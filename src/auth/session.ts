// Browser sessions for the web UI: an opaque id in an HttpOnly cookie, idle expiry, and a CSRF
// token (double submit: a readable cookie echoed back in X-Harbor-CSRF-Token on every change).
// Sessions are capped per user and in total; past a cap the least recently seen session ends.
//
// Sessions live in the database (src/db/session-store.ts), so every node knows them and a restart
// signs nobody out; the database holds only the SHA-256 of the id the cookie carries. Each node
// reads them through a small cache: a page load's many API calls cost one read, not one each.
// A session ended anywhere stops working everywhere within CACHE_MS: ends are announced on topic
// 'sessions' (each node drops its copy at once), and a cached copy is never used longer than
// CACHE_MS, which holds even when an announcement is lost. lastSeen is written at most once per
// TOUCH_MS per session, not per request; this node's newer sightings are written before a cap
// decides which session is the least recently seen.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Principal } from '../access/principal.ts';
import type { Changes } from '../db/changes.ts';
import type { SessionRow, SessionRows } from '../db/session-store.ts';

export const SESSION_COOKIE = 'berth_session';
export const CSRF_COOKIE = '__csrf';
export const CSRF_HEADER = 'x-harbor-csrf-token';

/** Longest time a node answers from its copy of a session without reading the row again. */
export const CACHE_MS = 1_000;
/** lastSeen is written when this much newer than the stored value. */
export const TOUCH_MS = 60_000;
/** Sessions a node keeps cached. */
const CACHE_ENTRIES = 10_000;

export interface Session {
  /** This session's own copy: the API hands this very object to handlers as the caller. */
  principal: Principal;
  csrf: string;
}

export interface SessionOptions {
  /** Idle time after which a session ends; default 30 minutes. */
  idleMs?: number;
  /** The clock (tests). */
  now?: () => number;
  /** Sessions kept per user (BERTH_MAX_SESSIONS_PER_USER); default 20. */
  maxPerUser?: number;
  /** Sessions kept in all, so the table stays bounded whatever the number of users; default 50,000. */
  maxTotal?: number;
}

interface Cached {
  session: Session;
  owner: string;
  createdAt: number;
  /** lastSeen as stored. */
  stored: number;
  /** Last seen by this node (at least `stored`). */
  seen: number;
  /** When the row was read. */
  fetchedAt: number;
}

const ownerOf = (p: Principal) => `${p.kind}:${p.id}`;

/** The principal of a row: only the fields a principal has, whatever else the JSON holds. */
function parsePrincipal(row: SessionRow): Principal {
  const p = JSON.parse(row.principal) as Principal;
  return { kind: p.kind, id: p.id, name: p.name, sysadmin: p.sysadmin };
}
const hashOf = (id: string) => createHash('sha256').update(id).digest('hex');

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
  /** By id hash, least recently used first. */
  private cache = new Map<string, Cached>();
  /** The id hash of each principal object handed out (endUser's `keep`). */
  private handedOut = new WeakMap<Principal, string>();
  /**
   * Owners whose sessions this node is ending (endUser) while the delete is on its way: sessions
   * created at or before `at`, except `keep`, count as ended already.
   */
  private ending = new Map<string, { at: number; keep?: string }[]>();
  private readonly idleMs: number;
  private readonly now: () => number;
  private readonly maxPerUser: number;
  private readonly maxTotal: number;
  /** The last creation time handed out: creations on this node are strictly ordered. */
  private lastStamp = 0;

  constructor(
    private readonly rows: SessionRows,
    private readonly changes: Changes,
    opts: SessionOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? 30 * 60_000;
    this.now = opts.now ?? Date.now;
    this.maxPerUser = Math.max(1, opts.maxPerUser ?? 20);
    this.maxTotal = Math.max(1, opts.maxTotal ?? 50_000);
    changes.subscribe('sessions', (key) => (key ? this.cache.delete(key) : this.cache.clear()));
  }

  /** Starts a session (setting its cookies); ends the least recently seen ones past the caps. */
  async create(res: Response, principal: Principal, secure: boolean): Promise<Session> {
    const owner = ownerOf(principal);
    const at = (this.lastStamp = Math.max(this.now(), this.lastStamp + 1));
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    const idHash = hashOf(id);
    // Sightings only this node knows first, so the caps go by who was really seen last.
    await this.flushSeen((c) => c.owner === owner);
    await this.rows.insert({ idHash, owner, principal: JSON.stringify({ kind: principal.kind, id: principal.id, name: principal.name, sysadmin: principal.sysadmin }), csrf, createdAt: new Date(at), lastSeen: new Date(at) });
    // The new session itself always stays (another node's clock may be ahead of this one's).
    const ended = await this.rows.trimOwner(owner, this.maxPerUser, idHash);
    if ((await this.rows.count()) > this.maxTotal) {
      await this.flushSeen(() => true);
      ended.push(...(await this.rows.trimTotal(this.maxTotal, idHash)));
    }
    await this.announce(ended);
    const flags = `Path=/; SameSite=Lax${secure ? '; Secure' : ''}`;
    res.append('Set-Cookie', `${SESSION_COOKIE}=${id}; HttpOnly; ${flags}`);
    res.append('Set-Cookie', `${CSRF_COOKIE}=${csrf}; ${flags}`);
    return this.remember(idHash, { principal: { ...principal }, csrf, owner, createdAt: at, stored: at, fetchedAt: at }).session;
  }

  /** The session of the request, refreshed, or null when absent, ended or expired. */
  async get(req: Request): Promise<Session | null> {
    const id = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (!id) return null;
    const idHash = hashOf(id);
    const now = this.now();
    let c = this.cache.get(idHash);
    let fresh = false;
    if (!c || !this.changes.live || now - c.fetchedAt >= CACHE_MS) {
      c = await this.read(idHash, c);
      fresh = true;
      if (!c) return null;
    } else {
      this.cache.delete(idHash); // most recently used last
      this.cache.set(idHash, c);
    }
    if (this.isEnding(idHash, c)) return null;
    if (now - c.seen > this.idleMs) {
      // Another node may have seen it since: ask the table before ending it.
      if (!fresh) c = await this.read(idHash, c);
      if (!c) return null;
      if (now - c.seen > this.idleMs) {
        this.cache.delete(idHash);
        if (await this.rows.deleteIdle(idHash, new Date(now - this.idleMs))) await this.announce([idHash]);
        return null;
      }
    }
    c.seen = Math.max(c.seen, now);
    if (c.seen - c.stored >= TOUCH_MS) {
      if (!(await this.rows.touch(idHash, new Date(c.seen)))) {
        this.cache.delete(idHash);
        return null;
      }
      c.stored = c.seen;
    }
    return c.session;
  }

  /** Whether the request carries a session cookie at all (valid or not). */
  hasCookie(req: Request): boolean {
    return !!parseCookies(req.headers.cookie)[SESSION_COOKIE];
  }

  /** Tells the browser to drop the session's cookies. */
  clearCookies(res: Response): void {
    res.append('Set-Cookie', `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax`);
    res.append('Set-Cookie', `${CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax`);
  }

  /** Ends the request's session (if any) and clears its cookies. */
  async destroy(req: Request, res: Response): Promise<void> {
    const id = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    this.clearCookies(res);
    if (!id) return;
    const idHash = hashOf(id);
    this.cache.delete(idHash);
    if (await this.rows.delete(idHash)) await this.announce([idHash]);
  }

  /**
   * Ends every session of a user (password changed or reset, admin flag changed, user deleted),
   * except the one `keep` came from: the principal of the request making the change. Each session
   * holds its own copy of its principal and the API passes that object on as the caller, so
   * identity marks the request's own session; a principal from Basic auth or a token matches none,
   * and then every session ends. On this node the sessions stop working at once, before the
   * returned promise settles.
   */
  async endUser(userId: number, keep?: Principal): Promise<void> {
    const owner = `user:${userId}`;
    // Every session this node made so far is older than the mark; the next one is newer.
    this.lastStamp = Math.max(this.now(), this.lastStamp);
    const mark = { at: this.lastStamp, keep: keep ? this.handedOut.get(keep) : undefined };
    const marks = this.ending.get(owner) ?? [];
    marks.push(mark);
    this.ending.set(owner, marks);
    try {
      for (const [h, c] of this.cache) if (c.owner === owner && h !== mark.keep && c.createdAt <= mark.at) this.cache.delete(h);
      // In the table, every session but `keep` goes, whenever and wherever it began: clocks of
      // nodes differ, and a sign-in racing the change just signs in again.
      await this.announce(await this.rows.deleteOwner(owner, mark.keep));
    } finally {
      // Reads that began before the delete may still bring a row back: they are not cached (the
      // announcement changed the topic's generation), and the mark outlives them by CACHE_MS.
      setTimeout(() => {
        const list = this.ending.get(owner)?.filter((m) => m !== mark) ?? [];
        if (list.length) this.ending.set(owner, list);
        else this.ending.delete(owner);
      }, CACHE_MS).unref();
    }
  }

  /** Deletes the sessions idle past the limit (run periodically; a request finds its own expired session anyway). */
  async purgeExpired(): Promise<number> {
    // Another node's sightings reach the table up to TOUCH_MS late: give them that long.
    return this.rows.purgeIdle(new Date(this.now() - this.idleMs - TOUCH_MS));
  }

  static csrfOk(req: Request, s: Session): boolean {
    const h = req.headers[CSRF_HEADER];
    if (typeof h !== 'string') return false;
    const a = Buffer.from(h);
    const b = Buffer.from(s.csrf);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** The row as stored now (keeping this node's later sighting), cached unless a change raced the read. */
  private async read(idHash: string, prev: Cached | undefined): Promise<Cached | undefined> {
    const gen = this.changes.generation('sessions');
    const row = await this.rows.find(idHash);
    if (!row) {
      this.cache.delete(idHash);
      return undefined;
    }
    // The same object as before for the same session: it marks the request's own session (endUser).
    const principal = prev && prev.session.csrf === row.csrf ? prev.session.principal : parsePrincipal(row);
    const stored = row.lastSeen.getTime();
    const fields = { principal, csrf: row.csrf, owner: row.owner, createdAt: row.createdAt.getTime(), stored, fetchedAt: this.now(), seen: Math.max(stored, prev?.seen ?? 0) };
    return this.remember(idHash, fields, this.changes.live && this.changes.generation('sessions') === gen);
  }

  private remember(idHash: string, f: { principal: Principal; csrf: string; owner: string; createdAt: number; stored: number; fetchedAt: number; seen?: number }, cache = true): Cached {
    const c: Cached = { session: { principal: f.principal, csrf: f.csrf }, owner: f.owner, createdAt: f.createdAt, stored: f.stored, seen: f.seen ?? f.stored, fetchedAt: f.fetchedAt };
    this.handedOut.set(f.principal, idHash);
    this.cache.delete(idHash);
    if (cache) {
      this.cache.set(idHash, c);
      if (this.cache.size > CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    }
    return c;
  }

  private isEnding(idHash: string, c: Cached): boolean {
    return !!this.ending.get(c.owner)?.some((m) => idHash !== m.keep && c.createdAt <= m.at);
  }

  /** Writes this node's sightings newer than the stored lastSeen, of the cached sessions that match. */
  private async flushSeen(match: (c: Cached) => boolean): Promise<void> {
    const seen: { idHash: string; at: Date }[] = [];
    for (const [idHash, c] of this.cache) {
      if (c.seen > c.stored && match(c)) {
        seen.push({ idHash, at: new Date(c.seen) });
        c.stored = c.seen;
      }
    }
    await this.rows.touchMany(seen);
  }

  private async announce(idHashes: string[]): Promise<void> {
    // Many at once (a cap, a user's sessions): one announcement that drops every cached copy.
    if (idHashes.length > 16) return this.changes.publish('sessions', null);
    for (const h of idHashes) await this.changes.publish('sessions', h);
  }
}
