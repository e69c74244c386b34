// The one way the UI talks to Berth: same-origin fetch with the session cookie, the CSRF header on
// every non-GET, Harbor's error shape turned into a message, and a 401 turned into "session ended".
import type { Artifact, Permission, Project, Repository } from './types.ts';

export const API = '/api/v2.0';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();
/** Called whenever an API call answers 401 (the session expired or was logged out elsewhere). */
export function onUnauthorized(l: Listener): () => void {
  unauthorizedListeners.add(l);
  return () => unauthorizedListeners.delete(l);
}

const deniedListeners = new Set<Listener>();
/** Called when an API call answers 403 or 404 (possibly because the session silently ended). */
export function onDenied(l: Listener): () => void {
  deniedListeners.add(l);
  return () => deniedListeners.delete(l);
}

export function csrfToken(): string {
  const m = /(?:^|;\s*)__csrf=([^;]*)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : '';
}

async function errorMessage(r: Response): Promise<string> {
  const text = await r.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { errors?: { message?: string; code?: string }[]; message?: string };
    const e = body.errors?.[0];
    if (e?.message) return e.message;
    if (e?.code) return e.code.toLowerCase().replace(/_/g, ' ');
    if (body.message) return body.message;
  } catch {
    // not JSON
  }
  if (r.status === 403) return 'You do not have permission to do this.';
  if (r.status === 404) return 'Not found.';
  if (r.status >= 500) return `The server failed (${r.status}). Try again, or ask an administrator to look at the logs.`;
  return text.slice(0, 200) || `Request failed (${r.status})`;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  /** Do not treat 401 as "session ended" (the login form itself). */
  quiet401?: boolean;
}

export async function request(path: string, opts: RequestOptions = {}): Promise<Response> {
  const method = opts.method ?? 'GET';
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-Harbor-CSRF-Token'] = csrfToken();
  let body: BodyInit | undefined;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const r = await fetch(path.startsWith('/') ? path : `${API}/${path}`, { method, headers, body, credentials: 'same-origin', signal: opts.signal });
  if (r.status === 401 && !opts.quiet401) {
    for (const l of unauthorizedListeners) l();
  } else if ((r.status === 403 || r.status === 404) && !opts.quiet401) {
    // An expired session cookie makes the caller anonymous, and private things then answer 404:
    // let the session check whether it is still signed in.
    for (const l of deniedListeners) l();
  }
  if (!r.ok) throw new ApiError(r.status, await errorMessage(r));
  return r;
}

export async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  const r = await request(path, { signal });
  const text = await r.text();
  return (text ? JSON.parse(text) : null) as T;
}

export interface Page<T> {
  items: T[];
  total: number;
}

/** A Harbor list endpoint: the items of one page and X-Total-Count. */
export async function getPage<T>(path: string, params: Record<string, string | number | boolean | undefined>, signal?: AbortSignal): Promise<Page<T>> {
  const r = await request(withQuery(path, params), { signal });
  const items = ((await r.json()) ?? []) as T[];
  const total = Number(r.headers.get('X-Total-Count') ?? items.length);
  return { items, total: Number.isFinite(total) ? total : items.length };
}

export function send(path: string, method: string, body?: unknown): Promise<Response> {
  return request(path, { method, body });
}

export async function sendJson<T>(path: string, method: string, body?: unknown): Promise<T> {
  const r = await request(path, { method, body });
  return (await r.json()) as T;
}

export function withQuery(path: string, params: Record<string, string | number | boolean | undefined>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') qs.set(k, String(v));
  const s = qs.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

// ---- names in paths ---------------------------------------------------------------------------

export const enc = encodeURIComponent;
/** Repository names inside a project path are URL-encoded twice (a/b → a%252Fb), as Harbor wants. */
export const encRepo = (name: string) => encodeURIComponent(encodeURIComponent(name));

/** "library/tools/jq" in project "library" → "tools/jq". */
export function repoInProject(fullName: string, project: string): string {
  return fullName.startsWith(`${project}/`) ? fullName.slice(project.length + 1) : fullName;
}

export const repoPath = (project: string, repo: string) => `projects/${enc(project)}/repositories/${encRepo(repo)}`;
export const artifactPath = (project: string, repo: string, reference: string) => `${repoPath(project, repo)}/artifacts/${enc(reference)}`;

// ---- session ----------------------------------------------------------------------------------

export interface SessionUser {
  user_id: number;
  username: string;
  sysadmin_flag: boolean;
  email?: string;
  realname?: string;
}

export async function login(principal: string, password: string): Promise<SessionUser> {
  const r = await fetch('/c/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ principal, password }),
    credentials: 'same-origin',
  });
  if (r.status === 401 || r.status === 403) throw new ApiError(r.status, 'Wrong username or password.');
  if (r.status === 429) {
    const wait = Number(r.headers.get('Retry-After'));
    throw new ApiError(r.status, wait > 0 ? `Too many failed attempts. Try again in ${wait < 90 ? `${Math.ceil(wait)} seconds` : `${Math.ceil(wait / 60)} minutes`}.` : 'Too many failed attempts. Wait a minute and try again.');
  }
  if (!r.ok) throw new ApiError(r.status, await errorMessage(r));
  return (await r.json()) as SessionUser;
}

export async function logout(): Promise<void> {
  await fetch('/c/log_out', { credentials: 'same-origin' }).catch(() => undefined);
}

export async function currentUser(): Promise<SessionUser | null> {
  try {
    return await get<SessionUser>('users/current');
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return null;
    throw e;
  }
}

// ---- typed helpers used in several places -----------------------------------------------------

export const getProject = (idOrName: string | number, signal?: AbortSignal) => get<Project>(`projects/${enc(String(idOrName))}`, signal);

export async function permissions(projectId: number, signal?: AbortSignal): Promise<Permission[]> {
  return (await get<Permission[]>(withQuery('users/current/permissions', { scope: `/project/${projectId}`, relative: 'false' }), signal)) ?? [];
}

export const getRepository = (project: string, repo: string, signal?: AbortSignal) => get<Repository>(repoPath(project, repo), signal);
export const getArtifact = (project: string, repo: string, ref: string, signal?: AbortSignal) =>
  get<Artifact>(withQuery(artifactPath(project, repo, ref), { with_tag: true, with_accessory: true }), signal);
