// /c/login and /c/log_out: the browser session (Harbor's paths), for local and directory users alike.
import express from 'express';
import type { PasswordCheck } from '../auth/authenticator.ts';
import type { SessionStore } from '../auth/session.ts';
import { AppError } from '../lib/errors.ts';
import { harborErrorHandler } from '../http/errors.ts';
import { clientAddress, requestProtocol } from '../http/raw.ts';
import type { Log } from '../http/logger.ts';

export function sessionRouter(deps: { login: PasswordCheck; sessions: SessionStore; log: Log; secureCookies: boolean }): express.Router {
  const r = express.Router();
  // Login CSRF: a form on another site posting someone's own credentials here would sign the
  // victim's browser into that account (the session cookie is set by the answer). Browsers say
  // where a request comes from (Sec-Fetch-Site); one started by another site neither signs in nor
  // out. Clients that are not browsers send no such header.
  r.use((req, _res, next) => {
    if (req.headers['sec-fetch-site'] === 'cross-site') throw new AppError('FORBIDDEN', undefined, { message: 'signing in or out from another site is not allowed' });
    next();
  });
  r.post('/login', express.urlencoded({ extended: false, limit: '16kb' }), express.json({ limit: '16kb' }), async (req, res) => {
    const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
    const name = body.principal ?? body.username ?? '';
    const pass = body.password ?? '';
    if (typeof name !== 'string' || typeof pass !== 'string') throw new AppError('BAD_REQUEST', undefined, { message: 'principal and password must be strings' });
    if (name.length > 255 || pass.length > 1024) throw new AppError('BAD_REQUEST', undefined, { message: 'principal or password too long' });
    const username = name;
    const password = pass;
    const principal = username && password ? await deps.login(username, password, clientAddress(req)) : null;
    if (!principal || principal.kind !== 'user') throw new AppError('UNAUTHORIZED', undefined, { message: 'invalid username or password' });
    await deps.sessions.create(res, principal, deps.secureCookies || requestProtocol(req) === 'https');
    res.json({ user_id: principal.id, username: principal.name, sysadmin_flag: principal.sysadmin });
  });
  r.get('/log_out', async (req, res) => {
    await deps.sessions.destroy(req, res);
    res.status(200).end();
  });
  r.use(harborErrorHandler(deps.log));
  return r;
}
