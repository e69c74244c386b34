// GET /service/token: the Docker token service. Basic credentials (user, robot, personal token) or
// none (anonymous); every requested scope is narrowed to what the principal may do — asking for
// too much is never an error, the token simply grants less. Served on plain node:http, like /v2:
// docker asks for a token per repository and operation, and going through Express (router,
// res.json, the garbage both leave) cost two to three times the rest of a token request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Action, Principal, RepositoryPolicy } from '../access/principal.ts';
import { parseBasic } from '../auth/basic.ts';
import { parseScope, type AccessEntry, type TokenSigner } from '../auth/token.ts';
import { AppError } from '../lib/errors.ts';
import { harborErrorWriter } from '../http/errors.ts';
import type { Log } from '../http/logger.ts';
import { clientAddress, sendJson } from '../http/raw.ts';
import { notePrincipal } from '../http/access-log.ts';
import { isValidName } from '../lib/reference.ts';
import type { PasswordCheck } from '../auth/authenticator.ts';

export interface TokenRouteDeps {
  tokens: TokenSigner;
  policy: RepositoryPolicy;
  login: PasswordCheck;
  service: string;
  log: Log;
}

export const TOKEN_PATH = '/service/token';

/** Whether a request URL is the token endpoint (with or without a query). */
export function isTokenUrl(url: string): boolean {
  return url.startsWith(TOKEN_PATH) && (url.length === TOKEN_PATH.length || url[TOKEN_PATH.length] === '?');
}

function scopesOf(query: URLSearchParams): string[] {
  return query.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
}

/** The access entries the principal actually gets for the requested scopes. */
export async function narrow(policy: RepositoryPolicy, principal: Principal | null, scopes: string[]): Promise<AccessEntry[]> {
  const out: AccessEntry[] = [];
  for (const s of scopes) {
    const e = parseScope(s);
    if (!e) continue;
    if (e.type === 'repository') {
      if (!isValidName(e.name)) continue;
      const wanted = new Set<Action>();
      for (const a of e.actions) {
        if (a === '*') ['pull', 'push', 'delete'].forEach((x) => wanted.add(x as Action));
        else if (a === 'pull' || a === 'push' || a === 'delete') wanted.add(a);
      }
      const allowed = await policy.allowedActions(principal, e.name, [...wanted]);
      const actions = e.actions.includes('*') && allowed.length === 3 ? ['*', ...allowed] : allowed;
      const prev = out.find((x) => x.type === 'repository' && x.name === e.name);
      if (prev) prev.actions = [...new Set([...prev.actions, ...actions])];
      else out.push({ type: 'repository', name: e.name, actions });
    } else if (e.type === 'registry' && e.name === 'catalog') {
      // The whole catalog is for system admins only, as in Harbor: anyone else lists what they
      // may see with Basic credentials (a token's catalog grant would list every repository).
      out.push({ type: 'registry', name: 'catalog', actions: principal?.sysadmin && e.actions.includes('*') ? ['*'] : [] });
    }
  }
  return out;
}

export function tokenHandler(deps: TokenRouteDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const fail = harborErrorWriter(deps.log);
  return async (req, res) => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new AppError('UNSUPPORTED', undefined, { message: 'the token service answers GET', headers: { Allow: 'GET, HEAD' } });
      const query = new URL(req.url ?? '/', 'http://token').searchParams;
      let principal: Principal | null = null;
      const h = req.headers.authorization;
      if (h) {
        const creds = parseBasic(h);
        if (!creds) throw new AppError('UNAUTHORIZED', undefined, { message: 'only Basic credentials are accepted here' });
        principal = await deps.login(creds.username, creds.password, clientAddress(req));
        notePrincipal(req, principal?.name);
        if (!principal) throw new AppError('UNAUTHORIZED', undefined, { message: 'invalid username or password', headers: { 'WWW-Authenticate': 'Basic realm="Berth"' } });
      }
      const service = query.get('service') ?? deps.service;
      if (service !== deps.service) throw new AppError('BAD_REQUEST', undefined, { message: `unknown service "${service}"` });
      const access = await narrow(deps.policy, principal, scopesOf(query));
      const t = deps.tokens.sign(principal, access);
      res.setHeader('Cache-Control', 'no-store');
      sendJson(res, 200, { token: t.token, access_token: t.token, expires_in: t.expiresIn, issued_at: t.issuedAt });
    } catch (err) {
      fail(err, req, res);
    }
  };
}
