// /api/v2.0: the management API in Harbor's shapes. Authentication by HTTP Basic (users, robots,
// personal tokens); errors in Harbor's {"errors":[{code,message}]} shape.
import { pingDatabase } from '../db/client.ts';
import express from 'express';
import { parseBasic } from '../auth/basic.ts';
import type { PasswordCheck } from '../auth/authenticator.ts';
import { SessionStore } from '../auth/session.ts';
import { harborErrorHandler } from '../http/errors.ts';
import { clientAddress } from '../http/raw.ts';
import { notePrincipal } from '../http/access-log.ts';
import type { Log } from '../http/logger.ts';
import { AppError } from '../lib/errors.ts';
import { accountsRouter, type AccountRouteDeps } from './accounts.ts';
import { projectsRouter, type ProjectRouteDeps } from './projects.ts';
import { systemRouter, type SystemRouteDeps } from './system.ts';
import { repositoriesRouter, type RepositoryRouteDeps } from './repositories.ts';
import { gcRouter, type GcRouteDeps } from './gc.ts';
import { registriesRouter, type RegistryRouteDeps } from './registries.ts';
import { replicationRouter, type ReplicationRouteDeps } from './replication.ts';
import { tokenKeyRouter, type TokenKeyRouteDeps } from './token-keys.ts';
import { immutableRulesRouter, type ImmutableRuleRouteDeps } from './immutable-rules.ts';
import { retentionRouter, type RetentionRouteDeps } from './retention.ts';
import { listRoutes, openApiDocument } from './openapi.ts';

export type ApiDeps = ProjectRouteDeps & AccountRouteDeps & SystemRouteDeps & RepositoryRouteDeps & GcRouteDeps & TokenKeyRouteDeps & RegistryRouteDeps & ReplicationRouteDeps & ImmutableRuleRouteDeps & RetentionRouteDeps & {
  login: PasswordCheck;
  log: Log;
  sessions: SessionStore;
  /** Whether the blob store answers (a cheap read), for /health. */
  storageHealthy?: () => Promise<boolean>;
};

export function apiRouter(deps: ApiDeps): express.Router {
  const r = express.Router();
  r.use(express.json({ limit: '1mb' }));
  r.use(async (req, res, next) => {
    res.locals.principal = null;
    const h = req.headers.authorization;
    if (h) {
      const creds = parseBasic(h);
      const principal = creds ? await deps.login(creds.username, creds.password, clientAddress(req)) : null;
      if (!principal) throw new AppError('UNAUTHORIZED', undefined, { message: 'invalid credentials' });
      res.locals.principal = principal;
      notePrincipal(req, principal.name);
    } else {
      const session = await deps.sessions.get(req);
      if (!session && deps.sessions.hasCookie(req)) {
        // An expired or unknown session is a 401 (the UI goes back to login), not an anonymous call.
        // Nothing to delete: get() removed an expired row already.
        deps.sessions.clearCookies(res);
        throw new AppError('UNAUTHORIZED', undefined, { message: 'session expired' });
      }
      if (session) {
        // A browser session changes nothing without the CSRF token (double submit).
        if (req.method !== 'GET' && req.method !== 'HEAD' && !SessionStore.csrfOk(req, session)) {
          throw new AppError('FORBIDDEN', undefined, { message: 'CSRF token missing or invalid' });
        }
        res.locals.principal = session.principal;
        notePrincipal(req, session.principal.name);
      }
    }
    next();
  });
  // Harbor's shape. A node whose database or storage does not answer says so, with a 503, so a
  // load balancer's health check takes it out (and puts it back when they answer again).
  r.get('/health', async (_req, res) => {
    // pingDatabase has its own 2 s limit; the storage check gets the same.
    const storageCheck = deps.storageHealthy ? Promise.race([deps.storageHealthy().catch(() => false), new Promise<boolean>((r) => setTimeout(() => r(false), 2_000).unref())]) : Promise.resolve(true);
    const [database, storage] = await Promise.all([pingDatabase(deps.db), storageCheck]);
    const state = (ok: boolean) => (ok ? 'healthy' : 'unhealthy');
    const components = [{ name: 'core', status: 'healthy' }, { name: 'database', status: state(database) }, { name: 'storage', status: state(storage) }];
    res.status(database && storage ? 200 : 503).json({ status: state(database && storage), components });
  });
  r.get('/ping', (_req, res) => {
    res.type('text/plain').send('Pong');
  });
  const routes = express.Router();
  routes.use(repositoriesRouter(deps));
  routes.use(projectsRouter(deps));
  routes.use(accountsRouter(deps));
  routes.use(systemRouter(deps));
  routes.use(gcRouter(deps));
  routes.use(registriesRouter(deps));
  routes.use(replicationRouter(deps));
  routes.use(tokenKeyRouter(deps));
  routes.use(immutableRulesRouter(deps));
  routes.use(retentionRouter(deps));
  // Every route takes its input through its schema (route() in validate.ts): one mounted any other
  // way would skip validation and be missing from the OpenAPI document, so it stops the start.
  const loose = listRoutes(routes).filter((x) => !x.key);
  if (loose.length) throw new Error(`API routes without an input schema: ${loose.map((x) => `${x.method} ${x.path}`).join(', ')}`);
  let doc: object | null = null;
  r.get('/openapi.json', (_req, res) => {
    doc ??= openApiDocument(routes, deps.version);
    res.json(doc);
  });
  r.use(routes);
  r.use(() => {
    throw new AppError('NOT_FOUND', undefined, { message: 'no such API endpoint' });
  });
  r.use(harborErrorHandler(deps.log));
  return r;
}
