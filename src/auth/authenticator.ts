// Who is calling /v2: the identity behind the Authorization header, and the challenge to send
// when there is none. Bearer tokens from /service/token carry narrowed grants; Basic stays
// available for robots and simple clients; no header means anonymous (public projects only).
import type { IncomingMessage } from 'node:http';
import type { Action, Principal } from '../access/principal.ts';
import { AppError } from '../lib/errors.ts';
import { clientAddress, requestProtocol } from '../http/raw.ts';
import { notePrincipal } from '../http/access-log.ts';
import { parseBasic } from './basic.ts';
import type { TokenSigner } from './token.ts';

export interface Identity {
  principal: Principal | null;
  /**
   * Access granted by a bearer token, by repository. When present it is the whole truth for this
   * request (the token was narrowed when it was issued); when absent the policy decides.
   */
  grants?: Map<string, Set<Action>>;
  /** Catalog access granted by a bearer token (registry:catalog:*). */
  catalog?: boolean;
}

export interface Authenticator {
  /** Resolves the caller; throws UNAUTHORIZED for credentials that are present but wrong. */
  authenticate(req: IncomingMessage): Promise<Identity>;
  /** The WWW-Authenticate value for a request that needs credentials or a better token. */
  challenge(req: IncomingMessage, scope?: string, error?: 'insufficient_scope' | 'invalid_token'): string;
}

export type PasswordCheck = (username: string, password: string, remoteAddress: string) => Promise<Principal | null>;

async function basic(check: PasswordCheck, req: IncomingMessage, header: string): Promise<Identity> {
  const creds = parseBasic(header);
  if (!creds) throw new AppError('UNAUTHORIZED', undefined, { message: 'malformed basic credentials' });
  const principal = await check(creds.username, creds.password, clientAddress(req));
  if (!principal) throw new AppError('UNAUTHORIZED', undefined, { message: 'invalid username or password' });
  notePrincipal(req, principal.name);
  return { principal };
}

/** Basic only (tests, and registries run without the token service). */
export function basicAuthenticator(check: PasswordCheck, realm = 'Berth'): Authenticator {
  return {
    async authenticate(req) {
      const h = req.headers.authorization;
      if (!h) return { principal: null };
      if (!/^basic /i.test(h)) throw new AppError('UNAUTHORIZED', undefined, { message: 'unsupported authorization scheme' });
      return basic(check, req, h);
    },
    challenge() {
      return `Basic realm="${realm}"`;
    },
  };
}

export interface TokenAuthOptions {
  check: PasswordCheck;
  tokens: TokenSigner;
  service: string;
  /** External URL; when unset the realm is built from the request's own scheme and host. */
  externalUrl?: string;
}

/** Docker token authentication, as Harbor runs it, with Basic accepted too. */
export function tokenAuthenticator(opts: TokenAuthOptions): Authenticator {
  return {
    async authenticate(req) {
      const h = req.headers.authorization;
      if (!h) return { principal: null };
      if (/^bearer /i.test(h)) {
        const v = opts.tokens.verify(h.slice(7).trim());
        if (!v) throw new AppError('UNAUTHORIZED', undefined, { message: 'invalid or expired token' });
        notePrincipal(req, v.principal?.name);
        return { principal: v.principal, grants: v.grants, catalog: v.catalog };
      }
      if (/^basic /i.test(h)) return basic(opts.check, req, h);
      throw new AppError('UNAUTHORIZED', undefined, { message: 'unsupported authorization scheme' });
    },
    challenge(req, scope, error) {
      const base = opts.externalUrl ?? `${requestProtocol(req)}://${req.headers.host}`;
      let v = `Bearer realm="${base}/service/token",service="${opts.service}"`;
      if (scope) v += `,scope="${scope}"`;
      if (error) v += `,error="${error}"`;
      return v;
    },
  };
}
