// Who is calling /v2: the identity behind the Authorization header, and the challenge to send
// when there is none. Token-based authentication plugs in here (see src/auth/token-*.ts).
import type { Request } from 'express';
import type { Action, Principal } from '../access/principal.ts';
import { AppError } from '../lib/errors.ts';
import { parseBasic } from './basic.ts';

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
  authenticate(req: Request): Promise<Identity>;
  /** The WWW-Authenticate value for a request that needs credentials it did not carry. */
  challenge(scope?: string): string;
}

export type PasswordCheck = (username: string, password: string, remoteAddress: string) => Promise<Principal | null>;

/** Basic only: the built-in admin and other accounts with a password. */
export function basicAuthenticator(check: PasswordCheck, realm = 'Berth'): Authenticator {
  return {
    async authenticate(req) {
      const h = req.headers.authorization;
      if (!h) return { principal: null };
      const creds = parseBasic(h);
      if (!creds) throw new AppError('UNAUTHORIZED', undefined, { message: 'unsupported authorization scheme' });
      const principal = await check(creds.username, creds.password, req.socket.remoteAddress ?? '');
      if (!principal) throw new AppError('UNAUTHORIZED', undefined, { message: 'invalid username or password' });
      return { principal };
    },
    challenge() {
      return `Basic realm="${realm}"`;
    },
  };
}
