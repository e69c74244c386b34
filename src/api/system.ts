// /api/v2.0 system endpoints: LDAP tools, configurations, audit logs, system information, health,
// and the caller's permissions.
import express from 'express';
import fs from 'node:fs';
import type { Db } from '../db/client.ts';
import type { LdapConfig } from '../config/index.ts';
import { rolePermissions } from '../access/roles.ts';
import { AppError } from '../lib/errors.ts';
import type { AccessService } from '../services/access-service.ts';
import type { IdentityService } from '../services/identity.ts';
import type { SettingsService } from '../services/settings.ts';
import type { AuditService } from '../services/audit.ts';
import { auditLogDto, auditQuery } from './repositories.ts';
import { paging, principalOf, requireSysadmin, requireUser, setPageHeaders } from './common.ts';
import { MAX_ID } from './schemas.ts';
import { route } from './validate.ts';

export interface DirectoryTools {
  findUser(username: string): Promise<{ dn: string; username: string; email: string; realname: string; groups: string[]; admin: boolean } | null>;
  searchUsers(query: string, limit?: number): Promise<{ dn: string; username: string; email: string; realname: string }[]>;
  searchGroups(query: string, limit?: number): Promise<{ dn: string; name: string }[]>;
  ping(overrides?: Partial<LdapConfig>): Promise<{ ok: boolean; message: string }>;
}

export interface SystemRouteDeps {
  db: Db;
  settings: SettingsService;
  identity: IdentityService;
  access: AccessService;
  directory: () => DirectoryTools | null;
  /** A directory for a configuration that is not saved yet (the "test connection" button). */
  directoryFor: (cfg: LdapConfig) => Promise<DirectoryTools & { close(): Promise<void> }>;
  version: string;
  externalUrl?: string;
  /** The data directory, for the disk space report. */
  dataDir: string;
  audit: AuditService;
}

const PING_KEYS = {
  ldap_url: 'url',
  ldap_search_dn: 'searchDn',
  ldap_search_password: 'searchPassword',
  ldap_base_dn: 'baseDn',
  ldap_filter: 'filter',
  ldap_uid: 'uid',
  ldap_connection_timeout: 'timeoutSeconds',
  ldap_verify_cert: 'verifyCert',
} as const satisfies Record<string, keyof LdapConfig>;

export function systemRouter(deps: SystemRouteDeps): express.Router {
  const r = express.Router();

  function needDirectory(): DirectoryTools {
    const d = deps.directory();
    if (!d) throw new AppError('PRECONDITION', undefined, { message: 'LDAP is not configured' });
    return d;
  }

  route(r, 'post /ldap/ping', async (_req, res, { body }) => {
    requireSysadmin(res);
    const current = deps.settings.ldap();
    const overrides: Partial<LdapConfig> = {};
    for (const [k, key] of Object.entries(PING_KEYS) as [keyof typeof PING_KEYS, keyof LdapConfig][]) if (body[k] !== undefined && body[k] !== '') (overrides as Record<string, unknown>)[key] = body[k];
    if (body.ldap_scope !== undefined) overrides.scope = (['base', 'one', 'sub'] as const)[body.ldap_scope] ?? 'sub';
    const cfg = { ...(current ?? {}), ...overrides } as LdapConfig;
    if (!cfg.url) throw new AppError('BAD_REQUEST', undefined, { message: 'ldap_url is required' });
    // The saved bind password is only ever sent to the saved server, for the saved bind DN: a ping
    // of another server or DN must bring its own password (else an admin session, or a forged
    // request, could send the secret anywhere).
    if (overrides.searchPassword === undefined && current?.searchPassword && (cfg.url !== current.url || cfg.searchDn !== current.searchDn)) {
      if (cfg.searchDn) throw new AppError('BAD_REQUEST', undefined, { message: 'ldap_search_password: required to test another server or bind DN than the saved ones' });
      cfg.searchPassword = '';
    }
    const d = await deps.directoryFor(cfg);
    try {
      const result = await d.ping();
      res.json({ success: result.ok, message: result.message });
    } finally {
      await d.close();
    }
  });

  route(r, 'get /ldap/users/search', async (_req, res, { query }) => {
    requireSysadmin(res);
    const users = await needDirectory().searchUsers(query.username ?? '', 100);
    res.json(users.map((u) => ({ username: u.username, realname: u.realname, email: u.email })));
  });

  route(r, 'post /ldap/users/import', async (_req, res, { body }) => {
    requireSysadmin(res);
    const d = needDirectory();
    const failed: { uid: string; error: string }[] = [];
    for (const uid of body.ldap_uid_list) {
      const u = await d.findUser(uid);
      if (!u) failed.push({ uid, error: 'not found' });
      else {
        try {
          await deps.identity.upsertDirectoryUser(u);
        } catch (e) {
          failed.push({ uid, error: (e as Error).message });
        }
      }
    }
    deps.access.invalidate();
    if (failed.length) res.status(404).json(failed);
    else res.status(200).end();
  });

  route(r, 'get /ldap/groups/search', async (_req, res, { query }) => {
    requireUser(res);
    const q = query.groupdn ?? query.groupname ?? '';
    const groups = await needDirectory().searchGroups(q, 100);
    res.json(groups.map((g) => ({ group_name: g.name, ldap_group_dn: g.dn, group_type: 1 })));
  });

  route(r, 'get /configurations', async (_req, res) => {
    requireSysadmin(res);
    res.json(deps.settings.toHarbor());
  });

  route(r, 'put /configurations', async (_req, res, { body }) => {
    requireSysadmin(res);
    await deps.settings.update(body);
    deps.identity.forget();
    deps.access.invalidate();
    res.status(200).end();
  });

  route(r, 'get /audit-logs', async (req, res, { query }) => {
    requireSysadmin(res);
    const pg = paging(query);
    // The audit store pages by id with a kept count (the log only grows; issue 17).
    const result = await deps.audit.list(auditQuery(query.q), pg.page, pg.pageSize);
    setPageHeaders(req, res, result.total, pg);
    res.json(result.items.map(auditLogDto));
  });

  route(r, 'get /systeminfo/volumes', async (_req, res) => {
    requireSysadmin(res);
    const st = await fs.promises.statfs(deps.dataDir);
    res.json({ storage: [{ total: st.blocks * st.bsize, free: st.bavail * st.bsize }] });
  });

  route(r, 'get /systeminfo', async (_req, res) => {
    const p = principalOf(res);
    const base = { auth_mode: deps.settings.ldap() ? 'ldap_auth' : 'db_auth', harbor_version: `berth-${deps.version}`, self_registration: false, has_ca_root: false, primary_auth_mode: false, banner_message: '' };
    if (!p) {
      res.json(base);
      return;
    }
    res.json({ ...base, registry_url: deps.externalUrl ? new URL(deps.externalUrl).host : '', external_url: deps.externalUrl ?? '', project_creation_restriction: deps.settings.projectCreationRestriction(), read_only: false, with_chartmuseum: false, notification_enable: false });
  });

  route(r, 'get /users/current/permissions', async (_req, res, { query }) => {
    const p = requireUser(res);
    const m = /^\/project\/(\d+)$/.exec(query.scope ?? '');
    if (!m) {
      res.json(p.sysadmin ? [{ resource: '*', action: '*' }] : []);
      return;
    }
    // A project the caller may not see answers exactly like a missing one.
    const id = Number(m[1]);
    const project = id >= 1 && id <= MAX_ID ? await deps.access.project(id) : null;
    if (!project || !(await deps.access.can(p, project, 'project', 'read'))) throw new AppError('NOT_FOUND', undefined, { message: 'project not found' });
    const grant = await deps.access.grant(p, project);
    if (grant.sysadmin) {
      res.json(rolePermissions(1));
      return;
    }
    const perms = new Map<string, { resource: string; action: string }>();
    for (const role of grant.roles) for (const x of rolePermissions(role)) perms.set(`${x.resource}:${x.action}`, x);
    for (const x of grant.robot ?? []) perms.set(`${x.resource}:${x.action}`, x);
    res.json([...perms.values()]);
  });

  return r;
}
