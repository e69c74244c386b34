// /api/v2.0/users, /usergroups, /robots and personal access tokens, in Harbor's shapes.
import express from 'express';
import type { Db } from '../db/client.ts';
import { AppError } from '../lib/errors.ts';
import { normalizeDn } from '../lib/dn.ts';
import type { AccessService } from '../services/access-service.ts';
import type { RobotRecord, RobotsService } from '../services/robots.ts';
import type { UserRecord, UsersService } from '../services/users.ts';
import { intParam, iso, paging, parseQuery, requireSysadmin, requireUser, setPageHeaders } from './common.ts';

export interface AccountRouteDeps {
  db: Db;
  users: UsersService;
  robots: RobotsService;
  access: AccessService;
}

function userDto(u: UserRecord) {
  return { user_id: u.id, username: u.username, email: u.email, realname: u.realname, comment: '', sysadmin_flag: u.sysadmin, admin_role_in_auth: false, creation_time: iso(u.createdAt), update_time: iso(u.updatedAt) };
}

function robotDto(r: RobotRecord) {
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
  r.get('/users/current', async (_req, res) => {
    const p = requireUser(res);
    if (p.kind !== 'user') throw new AppError('FORBIDDEN', undefined, { message: 'robots have no user profile' });
    const u = await deps.users.get(p.id);
    if (!u) throw new AppError('NOT_FOUND');
    res.json(userDto(u));
  });

  r.get('/users/current/tokens', async (_req, res) => {
    const p = requireUser(res);
    if (p.kind !== 'user') throw new AppError('FORBIDDEN');
    res.json((await deps.users.listTokens(p.id)).map((t) => ({ id: t.id, name: t.name, expires_at: t.expiresAt ? iso(t.expiresAt) : null, last_used_at: t.lastUsedAt ? iso(t.lastUsedAt) : null, creation_time: iso(t.createdAt) })));
  });

  r.post('/users/current/tokens', async (req, res) => {
    const p = requireUser(res);
    if (p.kind !== 'user') throw new AppError('FORBIDDEN', undefined, { message: 'robots cannot create personal tokens' });
    const t = await deps.users.createToken(p.id, req.body ?? {});
    res.status(201).json({ id: t.id, name: t.name, token: t.token, expires_at: t.expiresAt ? iso(t.expiresAt) : null });
  });

  r.delete('/users/current/tokens/:id', async (req, res) => {
    const p = requireUser(res);
    await deps.users.deleteToken(p.id, intParam(req.params.id, 'id'));
    res.status(200).end();
  });

  r.get('/users/search', async (req, res) => {
    requireUser(res);
    const pg = paging(req);
    const result = await deps.users.list({ username: String(req.query.username ?? ''), ...pg });
    setPageHeaders(req, res, result.total, pg);
    res.json(result.items.map((u) => ({ user_id: u.id, username: u.username })));
  });

  r.get('/users', async (req, res) => {
    requireSysadmin(res);
    const pg = paging(req);
    const q = parseQuery(req.query.q);
    const result = await deps.users.list({ username: (req.query.username as string | undefined) ?? q.username?.fuzzy ?? q.username?.exact, ...pg });
    setPageHeaders(req, res, result.total, pg);
    res.json(result.items.map(userDto));
  });

  r.post('/users', async (req, res) => {
    requireSysadmin(res);
    const u = await deps.users.create(req.body ?? {});
    res.setHeader('Location', `/api/v2.0/users/${u.id}`);
    res.status(201).end();
  });

  r.get('/users/:id', async (req, res) => {
    const p = requireUser(res);
    const id = intParam(req.params.id, 'user_id');
    if (!p.sysadmin && !(p.kind === 'user' && p.id === id)) throw new AppError('FORBIDDEN');
    const u = await deps.users.get(id);
    if (!u) throw new AppError('NOT_FOUND', undefined, { message: 'user not found' });
    res.json(userDto(u));
  });

  r.put('/users/:id', async (req, res) => {
    const p = requireUser(res);
    const id = intParam(req.params.id, 'user_id');
    if (!p.sysadmin && !(p.kind === 'user' && p.id === id)) throw new AppError('FORBIDDEN');
    await deps.users.update(id, req.body ?? {});
    res.status(200).end();
  });

  r.put('/users/:id/password', async (req, res) => {
    const p = requireUser(res);
    const id = intParam(req.params.id, 'user_id');
    if (!p.sysadmin && !(p.kind === 'user' && p.id === id)) throw new AppError('FORBIDDEN');
    await deps.users.setPassword(p, id, req.body ?? {});
    res.status(200).end();
  });

  r.put('/users/:id/sysadmin', async (req, res) => {
    requireSysadmin(res);
    await deps.users.setSysadmin(intParam(req.params.id, 'user_id'), !!req.body?.sysadmin_flag);
    res.status(200).end();
  });

  r.delete('/users/:id', async (req, res) => {
    requireSysadmin(res);
    await deps.users.delete(intParam(req.params.id, 'user_id'));
    res.status(200).end();
  });

  // ---- user groups (LDAP groups known to Berth) ---------------------------------------------
  r.get('/usergroups', async (req, res) => {
    requireUser(res);
    const pg = paging(req);
    const where = req.query.ldap_group_dn ? { ldapDn: normalizeDn(String(req.query.ldap_group_dn)) } : req.query.group_name ? { name: { contains: String(req.query.group_name) } } : {};
    const [total, rows] = await Promise.all([deps.db.userGroup.count({ where }), deps.db.userGroup.findMany({ where, orderBy: { id: 'asc' }, skip: (pg.page - 1) * pg.pageSize, take: pg.pageSize })]);
    setPageHeaders(req, res, total, pg);
    res.json(rows.map((g) => ({ id: g.id, group_name: g.name, group_type: g.groupType, ldap_group_dn: g.ldapDn })));
  });

  r.get('/usergroups/search', async (req, res) => {
    requireUser(res);
    const pg = paging(req);
    const name = String(req.query.groupname ?? '');
    if (!name) throw new AppError('BAD_REQUEST', undefined, { message: 'groupname is required' });
    const where = { name: { contains: name } };
    const [total, rows] = await Promise.all([deps.db.userGroup.count({ where }), deps.db.userGroup.findMany({ where, orderBy: { id: 'asc' }, skip: (pg.page - 1) * pg.pageSize, take: pg.pageSize })]);
    setPageHeaders(req, res, total, pg);
    res.json(rows.map((g) => ({ id: g.id, group_name: g.name, group_type: g.groupType })));
  });

  r.post('/usergroups', async (req, res) => {
    requireSysadmin(res);
    const b = req.body ?? {};
    if (b.group_type !== undefined && b.group_type !== 1) throw new AppError('BAD_REQUEST', undefined, { message: 'only LDAP groups (group_type 1) are supported' });
    if (typeof b.ldap_group_dn !== 'string' || !b.ldap_group_dn.includes('=')) throw new AppError('BAD_REQUEST', undefined, { message: 'ldap_group_dn is required' });
    const dn = normalizeDn(b.ldap_group_dn);
    if (await deps.db.userGroup.findUnique({ where: { ldapDn: dn } })) throw new AppError('CONFLICT', undefined, { message: 'group already exists' });
    const g = await deps.db.userGroup.create({ data: { name: String(b.group_name || /^[^=]+=([^,]+)/.exec(b.ldap_group_dn)?.[1] || dn), ldapDn: dn, groupType: 1 } });
    deps.access.invalidate();
    res.setHeader('Location', `/api/v2.0/usergroups/${g.id}`);
    res.status(201).end();
  });

  r.get('/usergroups/:id', async (req, res) => {
    requireUser(res);
    const g = await deps.db.userGroup.findUnique({ where: { id: intParam(req.params.id, 'group_id') } });
    if (!g) throw new AppError('NOT_FOUND', undefined, { message: 'group not found' });
    res.json({ id: g.id, group_name: g.name, group_type: g.groupType, ldap_group_dn: g.ldapDn });
  });

  r.put('/usergroups/:id', async (req, res) => {
    requireSysadmin(res);
    const id = intParam(req.params.id, 'group_id');
    if (typeof req.body?.group_name !== 'string' || !req.body.group_name) throw new AppError('BAD_REQUEST', undefined, { message: 'group_name is required' });
    const n = await deps.db.userGroup.updateMany({ where: { id }, data: { name: req.body.group_name } });
    if (!n.count) throw new AppError('NOT_FOUND', undefined, { message: 'group not found' });
    res.status(200).end();
  });

  r.delete('/usergroups/:id', async (req, res) => {
    requireSysadmin(res);
    const n = await deps.db.userGroup.deleteMany({ where: { id: intParam(req.params.id, 'group_id') } });
    if (!n.count) throw new AppError('NOT_FOUND', undefined, { message: 'group not found' });
    deps.access.invalidate();
    res.status(200).end();
  });

  // ---- robots -------------------------------------------------------------------------------
  async function robotFor(res: express.Response, id: string, verb: 'read' | 'update' | 'delete'): Promise<RobotRecord> {
    const p = requireUser(res);
    const robot = await deps.robots.get(intParam(id, 'robot_id'));
    if (!robot || !(await deps.robots.mayManage(p, robot, verb === 'read' ? 'read' : verb))) throw new AppError('NOT_FOUND', undefined, { message: 'robot not found' });
    return robot;
  }

  r.get('/robots', async (req, res) => {
    const p = requireUser(res);
    const pg = paging(req);
    const q = parseQuery(req.query.q);
    let projectId: number | undefined;
    if (q.Level?.exact === 'project' && q.ProjectID?.exact) projectId = Number(q.ProjectID.exact);
    const result = await deps.robots.list(p, { projectId, ...pg });
    setPageHeaders(req, res, result.total, pg);
    res.json(result.items.map(robotDto));
  });

  r.post('/robots', async (req, res) => {
    const p = requireUser(res);
    const { robot, secret } = await deps.robots.create(p, req.body ?? {});
    res.setHeader('Location', `/api/v2.0/robots/${robot.id}`);
    res.status(201).json({ id: robot.id, name: robot.name, secret, creation_time: iso(robot.createdAt), expires_at: robot.expiresAt ? Math.floor(robot.expiresAt.getTime() / 1000) : -1 });
  });

  r.get('/robots/:id', async (req, res) => {
    res.json(robotDto(await robotFor(res, req.params.id, 'read')));
  });

  r.put('/robots/:id', async (req, res) => {
    const robot = await robotFor(res, req.params.id, 'update');
    await deps.robots.update(requireUser(res), robot, req.body ?? {});
    res.status(200).end();
  });

  r.patch('/robots/:id', async (req, res) => {
    const robot = await robotFor(res, req.params.id, 'update');
    const secret = await deps.robots.refreshSecret(requireUser(res), robot, req.body?.secret);
    res.json({ secret });
  });

  r.delete('/robots/:id', async (req, res) => {
    const robot = await robotFor(res, req.params.id, 'delete');
    await deps.robots.delete(requireUser(res), robot);
    res.status(200).end();
  });

  return r;
}
