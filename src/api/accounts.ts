// /api/v2.0/users, /usergroups, /robots and personal access tokens, in Harbor's shapes.
import express from 'express';
import { AppError } from '../lib/errors.ts';
import type { RobotRecord, RobotsService } from '../services/robots.ts';
import type { UserRecord, UsersService } from '../services/users.ts';
import { iso, paging, requireSysadmin, requireUser, setPageHeaders } from './common.ts';
import type { RobotDto, UserDto } from './responses.ts';
import { MAX_ID } from './schemas.ts';
import { route } from './validate.ts';

export interface AccountRouteDeps {
  users: UsersService;
  robots: RobotsService;
}

function userDto(u: UserRecord): UserDto {
  return { user_id: u.id, username: u.username, email: u.email, realname: u.realname, comment: '', sysadmin_flag: u.sysadmin, admin_role_in_auth: false, source: u.source === 'ldap' ? 'ldap' : 'local', creation_time: iso(u.createdAt), update_time: iso(u.updatedAt) };
}

function robotDto(r: RobotRecord): RobotDto {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    level: r.level,
    duration: r.durationDays,
    editable: true,
    disable: r.disabled,
    expires_at: r.expiresAt ? Math.floor(r.expiresAt.getTime() / 1000) : -1,
    permissions: r.permissions,
    creation_time: iso(r.createdAt),
    update_time: iso(r.updatedAt),
  };
}

export function accountsRouter(deps: AccountRouteDeps): express.Router {
  const r = express.Router();

  // ---- users --------------------------------------------------------------------------------
  route(r, 'get /users/current', async (_req, res) => {
    const p = requireUser(res);
    if (p.kind !== 'user') throw new AppError('FORBIDDEN', undefined, { message: 'robots have no user profile' });
    const u = await deps.users.get(p.id);
    if (!u) throw new AppError('NOT_FOUND');
    res.json(userDto(u));
  });

  route(r, 'get /users/current/tokens', async (_req, res) => {
    const p = requireUser(res);
    if (p.kind !== 'user') throw new AppError('FORBIDDEN');
    res.json((await deps.users.listTokens(p.id)).map((t) => ({ id: t.id, name: t.name, expires_at: t.expiresAt ? iso(t.expiresAt) : null, last_used_at: t.lastUsedAt ? iso(t.lastUsedAt) : null, creation_time: iso(t.createdAt) })));
  });

  route(r, 'post /users/current/tokens', async (_req, res, { body }) => {
    const p = requireUser(res);
    if (p.kind !== 'user') throw new AppError('FORBIDDEN', undefined, { message: 'robots cannot create personal tokens' });
    const t = await deps.users.createToken(p.id, body);
    res.status(201).json({ id: t.id, name: t.name, token: t.token, expires_at: t.expiresAt ? iso(t.expiresAt) : null });
  });

  route(r, 'delete /users/current/tokens/:id', async (_req, res, { params }) => {
    const p = requireUser(res);
    // A robot's id is no user id: robot 1 must not reach the tokens of user 1.
    if (p.kind !== 'user') throw new AppError('FORBIDDEN', undefined, { message: 'robots have no personal tokens' });
    await deps.users.deleteToken(p.id, params.id);
    res.status(200).end();
  });

  route(r, 'get /users/search', async (req, res, { query }) => {
    requireUser(res);
    const pg = paging(query);
    const result = await deps.users.list({ username: query.username ?? '', ...pg });
    setPageHeaders(req, res, result.total, pg);
    res.json(result.items.map((u) => ({ user_id: u.id, username: u.username })));
  });

  route(r, 'get /users', async (req, res, { query }) => {
    requireSysadmin(res);
    const pg = paging(query);
    const q = query.q;
    const result = await deps.users.list({ username: query.username ?? q.username?.fuzzy ?? q.username?.exact, ...pg });
    setPageHeaders(req, res, result.total, pg);
    res.json(result.items.map(userDto));
  });

  route(r, 'post /users', async (_req, res, { body }) => {
    requireSysadmin(res);
    const u = await deps.users.create(body);
    res.setHeader('Location', `/api/v2.0/users/${u.id}`);
    res.status(201).end();
  });

  /** The user `id`, for the user themself or a system admin; NOT_FOUND when there is none. */
  async function userFor(res: express.Response, id: number): Promise<UserRecord> {
    const p = requireUser(res);
    if (!p.sysadmin && !(p.kind === 'user' && p.id === id)) throw new AppError('FORBIDDEN');
    const u = await deps.users.get(id);
    if (!u) throw new AppError('NOT_FOUND', undefined, { message: 'user not found' });
    return u;
  }

  route(r, 'get /users/:id', async (_req, res, { params }) => {
    res.json(userDto(await userFor(res, params.id)));
  });

  route(r, 'put /users/:id', async (_req, res, { params, body }) => {
    await userFor(res, params.id);
    await deps.users.update(params.id, body);
    res.status(200).end();
  });

  route(r, 'put /users/:id/password', async (_req, res, { params, body }) => {
    await userFor(res, params.id);
    await deps.users.setPassword(requireUser(res), params.id, body);
    res.status(200).end();
  });

  route(r, 'put /users/:id/sysadmin', async (_req, res, { params, body }) => {
    requireSysadmin(res);
    await userFor(res, params.id);
    await deps.users.setSysadmin(params.id, body.sysadmin_flag);
    res.status(200).end();
  });

  route(r, 'delete /users/:id', async (_req, res, { params }) => {
    requireSysadmin(res);
    await deps.users.delete(params.id);
    res.status(200).end();
  });

  // ---- user groups (LDAP groups known to Berth) ---------------------------------------------
  route(r, 'get /usergroups', async (req, res, { query }) => {
    requireUser(res);
    const pg = paging(query);
    const { total, items: rows } = await deps.users.listGroups({ ldapDn: query.ldap_group_dn || undefined, name: query.group_name || undefined, ...pg });
    setPageHeaders(req, res, total, pg);
    res.json(rows.map((g) => ({ id: g.id, group_name: g.name, group_type: g.groupType, ldap_group_dn: g.ldapDn })));
  });

  route(r, 'get /usergroups/search', async (req, res, { query }) => {
    requireUser(res);
    const pg = paging(query);
    const { total, items: rows } = await deps.users.listGroups({ name: query.groupname ?? '', ...pg });
    setPageHeaders(req, res, total, pg);
    res.json(rows.map((g) => ({ id: g.id, group_name: g.name, group_type: g.groupType })));
  });

  route(r, 'post /usergroups', async (_req, res, { body: b }) => {
    requireSysadmin(res);
    if (b.group_type !== undefined && b.group_type !== 1) throw new AppError('BAD_REQUEST', undefined, { message: 'only LDAP groups (group_type 1) are supported' });
    if (!b.ldap_group_dn.includes('=')) throw new AppError('BAD_REQUEST', undefined, { message: 'ldap_group_dn is required' });
    const g = await deps.users.createGroup({ ldapDn: b.ldap_group_dn, name: b.group_name });
    res.setHeader('Location', `/api/v2.0/usergroups/${g.id}`);
    res.status(201).end();
  });

  route(r, 'get /usergroups/:id', async (_req, res, { params }) => {
    requireUser(res);
    const g = await deps.users.getGroup(params.id);
    if (!g) throw new AppError('NOT_FOUND', undefined, { message: 'group not found' });
    res.json({ id: g.id, group_name: g.name, group_type: g.groupType, ldap_group_dn: g.ldapDn });
  });

  route(r, 'put /usergroups/:id', async (_req, res, { params, body }) => {
    requireSysadmin(res);
    await deps.users.renameGroup(params.id, body.group_name);
    res.status(200).end();
  });

  route(r, 'delete /usergroups/:id', async (_req, res, { params }) => {
    requireSysadmin(res);
    await deps.users.deleteGroup(params.id);
    res.status(200).end();
  });

  // ---- robots -------------------------------------------------------------------------------
  async function robotFor(res: express.Response, id: number, verb: 'read' | 'update' | 'delete'): Promise<RobotRecord> {
    const p = requireUser(res);
    const robot = await deps.robots.get(id);
    if (!robot || !(await deps.robots.mayManage(p, robot, verb === 'read' ? 'read' : verb))) throw new AppError('NOT_FOUND', undefined, { message: 'robot not found' });
    return robot;
  }

  route(r, 'get /robots', async (req, res, { query }) => {
    const p = requireUser(res);
    const pg = paging(query);
    const q = query.q;
    let projectId: number | undefined;
    if (q.Level?.exact === 'project' && q.ProjectID?.exact) {
      projectId = Number(q.ProjectID.exact);
      if (!/^\d{1,10}$/.test(q.ProjectID.exact) || projectId < 1 || projectId > MAX_ID) throw new AppError('BAD_REQUEST', undefined, { message: 'q: ProjectID must be a project id' });
    }
    const result = await deps.robots.list(p, { projectId, ...pg });
    setPageHeaders(req, res, result.total, pg);
    res.json(result.items.map(robotDto));
  });

  route(r, 'post /robots', async (_req, res, { body }) => {
    const p = requireUser(res);
    const { robot, secret } = await deps.robots.create(p, body);
    res.setHeader('Location', `/api/v2.0/robots/${robot.id}`);
    res.status(201).json({ id: robot.id, name: robot.name, secret, creation_time: iso(robot.createdAt), expires_at: robot.expiresAt ? Math.floor(robot.expiresAt.getTime() / 1000) : -1 });
  });

  route(r, 'get /robots/:id', async (_req, res, { params }) => {
    res.json(robotDto(await robotFor(res, params.id, 'read')));
  });

  route(r, 'put /robots/:id', async (_req, res, { params, body }) => {
    const robot = await robotFor(res, params.id, 'update');
    await deps.robots.update(requireUser(res), robot, body);
    res.status(200).end();
  });

  route(r, 'patch /robots/:id', async (_req, res, { params, body }) => {
    const robot = await robotFor(res, params.id, 'update');
    const secret = await deps.robots.refreshSecret(requireUser(res), robot, body.secret);
    res.json({ secret });
  });

  route(r, 'delete /robots/:id', async (_req, res, { params }) => {
    const robot = await robotFor(res, params.id, 'delete');
    await deps.robots.delete(requireUser(res), robot);
    res.status(200).end();
  });

  return r;
}
