// Settings an admin may change at run time (GET/PUT /api/v2.0/configurations), in Harbor's key names.
// The environment gives the defaults; values saved through the API override them and persist.
import type { Db } from '../db/client.ts';
import type { Config, LdapConfig } from '../config/index.ts';
import { AppError } from '../lib/errors.ts';

type Kind = 'string' | 'bool' | 'int' | 'secret';
interface KeyDef {
  kind: Kind;
  ldap?: keyof LdapConfig;
  validate?: (v: unknown) => boolean;
}

const KEYS: Record<string, KeyDef> = {
  ldap_url: { kind: 'string', ldap: 'url', validate: (v) => v === '' || /^ldaps?:\/\/\S+$/.test(String(v)) },
  ldap_search_dn: { kind: 'string', ldap: 'searchDn' },
  ldap_search_password: { kind: 'secret', ldap: 'searchPassword' },
  ldap_base_dn: { kind: 'string', ldap: 'baseDn' },
  ldap_filter: { kind: 'string', ldap: 'filter' },
  ldap_uid: { kind: 'string', ldap: 'uid', validate: (v) => /^[A-Za-z][A-Za-z0-9-]*$/.test(String(v)) },
  ldap_scope: { kind: 'int', ldap: 'scope', validate: (v) => [0, 1, 2].includes(Number(v)) },
  ldap_timeout: { kind: 'int', ldap: 'timeoutSeconds', validate: (v) => Number(v) >= 1 && Number(v) <= 300 },
  ldap_verify_cert: { kind: 'bool', ldap: 'verifyCert' },
  ldap_group_base_dn: { kind: 'string', ldap: 'groupBaseDn' },
  ldap_group_search_filter: { kind: 'string', ldap: 'groupFilter' },
  ldap_group_attribute_name: { kind: 'string', ldap: 'groupAttributeName' },
  ldap_group_admin_dn: { kind: 'string', ldap: 'groupAdminDn' },
  ldap_group_membership_attribute: { kind: 'string', ldap: 'groupMembershipAttribute' },
  ldap_nested_groups: { kind: 'bool', ldap: 'nestedGroups' },
  project_creation_restriction: { kind: 'string', validate: (v) => v === 'adminonly' || v === 'everyone' },
  audit_log_retention_days: { kind: 'int', validate: (v) => Number(v) >= 1 && Number(v) <= 3650 },
};

const SCOPES: LdapConfig['scope'][] = ['base', 'one', 'sub'];

export class SettingsService {
  private overrides: Record<string, unknown> = {};
  private listeners: (() => void | Promise<void>)[] = [];

  constructor(private readonly db: Db, private readonly base: Config) {}

  async load(): Promise<void> {
    const rows = await this.db.setting.findMany();
    this.overrides = Object.fromEntries(rows.map((r) => [r.key, JSON.parse(r.value)]));
  }

  onChange(fn: () => void | Promise<void>): void {
    this.listeners.push(fn);
  }

  /** The effective LDAP configuration, or undefined when LDAP is off (no URL). */
  ldap(): LdapConfig | undefined {
    const env = this.base.ldap;
    const o = this.overrides;
    const url = (o.ldap_url as string | undefined) ?? env?.url ?? '';
    if (!url) return undefined;
    const cfg: LdapConfig = {
      url,
      searchDn: '',
      searchPassword: '',
      baseDn: '',
      filter: '',
      uid: 'uid',
      scope: 'sub',
      timeoutSeconds: 5,
      verifyCert: true,
      groupBaseDn: '',
      groupFilter: '',
      groupAttributeName: 'cn',
      groupAdminDn: '',
      groupMembershipAttribute: 'memberOf',
      nestedGroups: false,
      ...(env ?? {}),
    };
    for (const [key, def] of Object.entries(KEYS)) {
      if (!def.ldap || o[key] === undefined) continue;
      const v = o[key];
      (cfg as unknown as Record<string, unknown>)[def.ldap] = key === 'ldap_scope' ? SCOPES[Number(v)] : v;
    }
    cfg.url = url;
    return cfg;
  }

  projectCreationRestriction(): 'adminonly' | 'everyone' {
    return (this.overrides.project_creation_restriction as 'adminonly' | 'everyone' | undefined) ?? 'adminonly';
  }

  auditRetentionDays(): number {
    return Number(this.overrides.audit_log_retention_days ?? 90);
  }

  /** Harbor's ConfigurationsResponse shape: {key: {value, editable}}; secrets are never returned. */
  toHarbor(): Record<string, { value: unknown; editable: boolean }> {
    const ldap = this.ldap();
    const out: Record<string, { value: unknown; editable: boolean }> = {
      auth_mode: { value: ldap ? 'ldap_auth' : 'db_auth', editable: false },
      project_creation_restriction: { value: this.projectCreationRestriction(), editable: true },
      audit_log_retention_days: { value: this.auditRetentionDays(), editable: true },
    };
    for (const [key, def] of Object.entries(KEYS)) {
      if (!def.ldap || def.kind === 'secret') continue;
      let value: unknown = ldap ? (ldap as unknown as Record<string, unknown>)[def.ldap] : '';
      if (key === 'ldap_scope') value = ldap ? SCOPES.indexOf(ldap.scope) : 2;
      out[key] = { value: value ?? '', editable: true };
    }
    return out;
  }

  /** Validates and saves a partial update; unknown keys are refused with a clear message. */
  async update(patch: Record<string, unknown>): Promise<void> {
    if (!patch || typeof patch !== 'object' || Array.isArray(patch)) throw new AppError('BAD_REQUEST', undefined, { message: 'body must be a JSON object' });
    const clean: Record<string, unknown> = {};
    for (const [key, raw] of Object.entries(patch)) {
      const def = KEYS[key];
      if (!def) throw new AppError('BAD_REQUEST', undefined, { message: `unknown or read-only configuration key: ${key}` });
      let v: unknown = raw;
      if (def.kind === 'bool') {
        if (typeof v !== 'boolean') throw new AppError('BAD_REQUEST', undefined, { message: `${key} must be true or false` });
      } else if (def.kind === 'int') {
        v = Number(v);
        if (!Number.isInteger(v)) throw new AppError('BAD_REQUEST', undefined, { message: `${key} must be a whole number` });
      } else if (typeof v !== 'string') {
        throw new AppError('BAD_REQUEST', undefined, { message: `${key} must be a string` });
      }
      if (def.validate && !def.validate(v)) throw new AppError('BAD_REQUEST', undefined, { message: `invalid value for ${key}` });
      clean[key] = v;
    }
    await this.db.$transaction(Object.entries(clean).map(([key, v]) => this.db.setting.upsert({ where: { key }, create: { key, value: JSON.stringify(v) }, update: { value: JSON.stringify(v) } })));
    Object.assign(this.overrides, clean);
    for (const l of this.listeners) await l();
  }
}
