// The /v2 API: one anchored pattern per route (repository names contain "/"), the access check in
// one place, and short handlers that parse, call the registry service and shape the response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Action, RepositoryPolicy } from '../access/principal.ts';
import type { ProxyCacheService, ProxyProject } from '../services/proxy-cache.ts';
import type { Authenticator, Identity } from '../auth/authenticator.ts';
import { AppError } from '../lib/errors.ts';
import { NAME_PATTERN, isValidName } from '../lib/reference.ts';
import type { RegistryService } from '../services/registry-service.ts';
import { ociErrorWriter } from '../http/errors.ts';
import type { Log } from '../http/logger.ts';
import { handlers, type Ctx } from './handlers.ts';

export interface RegistryRouterDeps {
  registry: RegistryService;
  authn: Authenticator;
  policy: RepositoryPolicy;
  log: Log;
  /** Prefix for Location headers (external URL), '' for path-only locations. */
  baseUrl: string;
  /** Audit hooks, called after a successful manifest GET / PUT (never awaited). */
  onPull?: (identity: Identity, repository: string, reference: string, digest?: string) => void;
  onPush?: (identity: Identity, repository: string, reference: string) => void;
  /** Proxy-cache projects: which project a repository's pulls go through to an upstream (null: a normal project), and the read path. */
  proxy?: { project(repository: string): Promise<ProxyProject | null>; cache: ProxyCacheService };
}

type Kind = 'base' | 'catalog' | 'tags' | 'manifest' | 'uploads' | 'upload' | 'blob' | 'referrers';

const N = `(${NAME_PATTERN})`;
const ROUTES: { kind: Kind; re: RegExp; loose: RegExp }[] = [
  { kind: 'base', re: /^\/?$/, loose: /^\/?$/ },
  { kind: 'catalog', re: /^\/_catalog$/, loose: /^\/_catalog$/ },
  { kind: 'tags', re: new RegExp(`^/${N}/tags/list$`), loose: /^\/(.+)\/tags\/list$/ },
  { kind: 'manifest', re: new RegExp(`^/${N}/manifests/([^/]+)$`), loose: /^\/(.+)\/manifests\/([^/]+)$/ },
  { kind: 'uploads', re: new RegExp(`^/${N}/blobs/uploads/?$`), loose: /^\/(.+)\/blobs\/uploads\/?$/ },
  { kind: 'upload', re: new RegExp(`^/${N}/blobs/uploads/([^/]+)$`), loose: /^\/(.+)\/blobs\/uploads\/([^/]+)$/ },
  { kind: 'blob', re: new RegExp(`^/${N}/blobs/([^/]+)$`), loose: /^\/(.+)\/blobs\/([^/]+)$/ },
  { kind: 'referrers', re: new RegExp(`^/${N}/referrers/([^/]+)$`), loose: /^\/(.+)\/referrers\/([^/]+)$/ },
];

/** Method -> action, as Distribution does; undefined means the method is not allowed on the route. */
const ACTIONS: Record<Kind, Partial<Record<string, Action | 'login'>>> = {
  base: { GET: 'login', HEAD: 'login' },
  catalog: { GET: 'login' },
  tags: { GET: 'pull' },
  manifest: { GET: 'pull', HEAD: 'pull', PUT: 'push', DELETE: 'delete' },
  uploads: { POST: 'push' },
  upload: { GET: 'push', PATCH: 'push', PUT: 'push', DELETE: 'push' },
  blob: { GET: 'pull', HEAD: 'pull', DELETE: 'delete' },
  referrers: { GET: 'pull' },
};

function match(path: string): { kind: Kind; name?: string; arg?: string } {
  for (const r of ROUTES) {
    const m = r.re.exec(path);
    if (m) return { kind: r.kind, name: m[1], arg: m[2] };
  }
  for (const r of ROUTES) {
    const m = r.loose.exec(path);
    if (m && m[1] !== undefined && !isValidName(m[1])) throw new AppError('NAME_INVALID', { name: m[1] });
  }
  throw new AppError('NAME_UNKNOWN', { path }, { message: 'no such registry endpoint' });
}

/** Whether a request URL belongs to the registry API (/v2, /v2/..., /v2?...). */
export function isRegistryUrl(url: string): boolean {
  return url.startsWith('/v2') && (url.length === 3 || url[3] === '/' || url[3] === '?');
}

/**
 * The /v2 handler on plain node:http requests, outside Express: every request here goes through
 * one anchored match below, so a router layer, Express's request/response decoration and
 * res.json would only add per-request work on the hottest paths (manifest GET, blob HEAD,
 * listing pages). The caller routes by isRegistryUrl().
 */
export function registryHandler(deps: RegistryRouterDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const onError = ociErrorWriter(deps.log);
  return (req, res) => {
    dispatch(deps, req, res).catch((err: unknown) => onError(err, req, res));
  };
}

async function dispatch(deps: RegistryRouterDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
  const url = req.url ?? '/v2';
  const qi = url.indexOf('?');
  const path = qi < 0 ? url.slice(3) : url.slice(3, qi);
  const route = match(path);
  const method = req.method ?? 'GET';
  const action = ACTIONS[route.kind][method];
  if (!action) {
    throw new AppError('UNSUPPORTED', { method }, { headers: { Allow: Object.keys(ACTIONS[route.kind]).join(', ') } });
  }
  if (route.name !== undefined && route.name.length > 255) throw new AppError('NAME_INVALID', { name: route.name });
  const query = qi < 0 ? undefined : new URLSearchParams(url.slice(qi + 1));
  const scope = challengeScope(route.kind, route.name, action, query);
  const identity = await authenticate(deps, req, scope, action);
  if (action !== 'login') await authorize(deps, req, identity, route.name!, action, scope);
  // A proxy-cache project holds what its upstream has: nobody pushes or deletes there.
  const proxied = route.name && deps.proxy ? await deps.proxy.project(route.name) : null;
  if (proxied && action !== 'pull') throw new AppError('DENIED', undefined, { message: `project ${proxied.name} is a proxy cache of another registry: ${action === 'push' ? 'pushing into it' : 'deleting from it'} is not allowed` });
  const ctx: Ctx = { deps, identity, name: route.name ?? '', arg: route.arg ?? '', method, query, req, res, proxied };
  await handlers[route.kind](ctx);
  if (route.kind === 'manifest' && res.statusCode < 300) {
    if (method === 'GET') deps.onPull?.(identity, ctx.name, ctx.arg, res.getHeader('Docker-Content-Digest') as string | undefined);
    else if (method === 'PUT') deps.onPush?.(identity, ctx.name, ctx.arg);
  }
}

/** The scope the catalog needs in a token (system admins get it). */
export const CATALOG_SCOPE = 'registry:catalog:*';

/**
 * The scope a challenge names for a request: what the route needs, and for a cross-repository
 * mount also pull on the source repository, space-separated in one value as Distribution sends it,
 * so a client that asks for the challenged scope gets a token that can mount.
 */
function challengeScope(kind: Kind, name: string | undefined, action: Action | 'login', query: URLSearchParams | undefined): string | undefined {
  if (kind === 'catalog') return CATALOG_SCOPE;
  if (!name || action === 'login') return undefined;
  const scope = `repository:${name}:${action === 'pull' ? 'pull' : action === 'push' ? 'pull,push' : 'delete'}`;
  if (kind !== 'uploads' || !query?.has('mount')) return scope;
  const from = query.get('from');
  return from && from !== name && isValidName(from) ? `${scope} repository:${from}:pull` : scope;
}

async function authenticate(deps: RegistryRouterDeps, req: IncomingMessage, scope: string | undefined, action: Action | 'login'): Promise<Identity> {
  let identity: Identity;
  try {
    identity = await deps.authn.authenticate(req);
  } catch (e) {
    if (e instanceof AppError && e.code === 'UNAUTHORIZED') throw new AppError('UNAUTHORIZED', e.detail, { message: e.message, headers: { 'WWW-Authenticate': deps.authn.challenge(req, scope, req.headers.authorization && /^bearer /i.test(req.headers.authorization) ? 'invalid_token' : undefined) } });
    throw e;
  }
  if (action === 'login' && !identity.principal && !identity.grants) {
    throw new AppError('UNAUTHORIZED', undefined, { headers: { 'WWW-Authenticate': deps.authn.challenge(req, scope) } });
  }
  return identity;
}

/** Whether the identity may perform `action` on the repository. */
export async function mayDo(deps: Pick<RegistryRouterDeps, 'policy'>, identity: Identity, name: string, action: Action): Promise<boolean> {
  if (identity.grants) return identity.grants.get(name)?.has(action) ?? false;
  const allowed = await deps.policy.allowedActions(identity.principal, name, [action]);
  return allowed.includes(action);
}

async function authorize(deps: RegistryRouterDeps, req: IncomingMessage, identity: Identity, name: string, action: Action, scope: string | undefined): Promise<void> {
  if (await mayDo(deps, identity, name, action)) return;
  const detail = [{ Type: 'repository', Name: name, Action: action }];
  if (!identity.principal && !identity.grants) {
    throw new AppError('UNAUTHORIZED', detail, { headers: { 'WWW-Authenticate': deps.authn.challenge(req, scope) } });
  }
  // Someone who may create projects is told that the project is missing, and what to do. The
  // token service grants nothing in a missing project, so this also answers a token without the
  // scope. 404 NAME_UNKNOWN rather than 403: a client that checks a blob with HEAD (no body) takes
  // a 404 as "not there yet" and goes on to the upload, whose answer carries the message.
  const missing = identity.principal ? await deps.policy.missingProject?.(identity.principal, name) : null;
  if (missing) {
    throw new AppError('NAME_UNKNOWN', detail, { message: action === 'push' ? `project "${missing}" does not exist; create it first` : `project "${missing}" does not exist` });
  }
  if (identity.grants) {
    // A token without the needed scope: the client asks for a new one (docker does, per repository).
    throw new AppError('UNAUTHORIZED', detail, { message: 'token does not grant this access', headers: { 'WWW-Authenticate': deps.authn.challenge(req, scope, 'insufficient_scope') } });
  }
  // Same answer whether or not the repository exists: nothing leaks about private projects.
  throw new AppError('DENIED', detail);
}
