// Settings an admin may change at run time (GET/PUT /api/v2.0/configurations), in Harbor's key names.
// The environment gives the defaults; values saved through the API override them and persist.
// Secret values (kind 'secret') are sealed with the secret box before they reach the database and
// kept opened only in memory; see src/lib/secret-box.ts for the key. A change saved on one node is
// announced (topic 'settings' of src/db/changes.ts): every other node reads the settings again and
// runs its change listeners (the LDAP directory is rebuilt there too).
import { LocalChanges, type Changes } from '../db/changes.ts';
import type { SettingStore } from '../db/setting-store.ts';
import type { Config, LdapConfig } from '../config/index.ts';
import type { ServiceLog } from '../lib/log.ts';
import { AppError } from '../lib/errors.ts';
import { SecretBox } from '../lib/secret-box.ts';

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
  /** Secret keys whose stored value does not open with the current key (wrong BERTH_SECRET_KEY). */
  private unreadable = new Set<string>();
  private listeners: (() => void | Promise<void>)[] = [];
  private readonly changes: Changes;
  /** The reload after other nodes' changes: one at a time, and one more after it if asked meanwhile. */
  private reloading: Promise<void> | null = null;
  private reloadAgain = false;

  constructor(
    private readonly store: SettingStore,
    private readonly base: Config,
    private readonly secrets: { box: SecretBox; log?: ServiceLog },
    changes?: Changes,
  ) {
    this.changes = changes ?? new LocalChanges();
    // This node's own saves are in effect already (update()).
    this.changes.subscribe('settings', (_key, local) => {
      if (!local) this.reload();
    });
  }

  /** Reads the settings again after another node saved some, and tells the change listeners. */
  private reload(): void {
    if (this.reloading) {
      this.reloadAgain = true;
      return;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        try {
          await this.load();
          for (const l of this.listeners) await l();
        } catch (err) {
          this.secrets.log?.warn({ err: (err as Error).message }, 'settings reload failed; retrying');
          setTimeout(() => this.reload(), 1000).unref();
        }
      } while (this.reloadAgain);
      this.reloading = null;
    })();
  }

  /**
   * Reads the saved settings. Secrets saved in plain text by an older version are sealed in place
   * (and their old bytes wiped from the database file). A secret that does not open is left as it
   * is, logged once, and treated as unset: LDAP counts as not configured until the right key is
   * given or the password is saved again (never a bind with an empty password, which a directory
   * may take as an anonymous bind).
   */
  async load(): Promise<void> {
    const rows = await this.store.all();
    const overrides: Record<string, unknown> = {};
    const upgrade: { key: string; sealed: string }[] = [];
    this.unreadable.clear();
    for (const r of rows) {
      let v: unknown = JSON.parse(r.value);
      if (KEYS[r.key]?.kind === 'secret' && typeof v === 'string' && v !== '') {
        if (SecretBox.isSealed(v)) {
          try {
            v = this.secrets.box.open(v, r.key);
          } catch {
            this.unreadable.add(r.key);
            continue;
          }
        } else {
          upgrade.push({ key: r.key, sealed: this.secrets.box.seal(v, r.key) });
        }
      }
      overrides[r.key] = v;
    }
    this.overrides = overrides;
    if (upgrade.length) await this.sealInPlace(upgrade);
    if (this.unreadable.size) {
      this.secrets.log?.error(
        { settings: [...this.unreadable], hint: 'set BERTH_SECRET_KEY to the key they were saved with (or restore <data dir>/secret.key), or save them again; LDAP stays off until then' },
        'stored secrets cannot be decrypted with the current BERTH_SECRET_KEY or key file',
      );
    }
  }

  private async sealInPlace(values: { key: string; sealed: string }[]): Promise<void> {
    // The old plain-text bytes are scrubbed from the database file where the engine can (the store).
    await this.store.replaceScrubbed(values.map(({ key, sealed }) => ({ key, value: JSON.stringify(sealed) })));
    this.secrets.log?.info({ settings: values.map((v) => v.key) }, 'stored secrets encrypted');
  }

  onChange(fn: () => void | Promise<void>): void {
    this.listeners.push(fn);
  }

  /**
   * The effective LDAP configuration, or undefined when LDAP is off: no URL, or a saved bind
   * password that cannot be decrypted.
   */
  ldap(): LdapConfig | undefined {
    return this.unreadable.has('ldap_search_password') ? undefined : this.savedLdap();
  }

  /** The LDAP configuration as saved (env defaults and overrides), whether usable or not. */
  private savedLdap(): LdapConfig | undefined {
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
    // The saved values stay visible while a secret cannot be read, so saving the form again (with
    // the password) repairs it instead of wiping the rest; auth_mode tells what is in effect.
    const ldap = this.savedLdap();
    const out: Record<string, { value: unknown; editable: boolean }> = {
      auth_mode: { value: this.ldap() ? 'ldap_auth' : 'db_auth', editable: false },
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
    const stored = (key: string, v: unknown) => JSON.stringify(KEYS[key].kind === 'secret' && v !== '' ? this.secrets.box.seal(String(v), key) : v);
    await this.store.save(Object.entries(clean).map(([key, v]) => ({ key, value: stored(key, v) })));
    Object.assign(this.overrides, clean);
    for (const key of Object.keys(clean)) this.unreadable.delete(key);
    await this.changes.publish('settings');
    for (const l of this.listeners) await l();
  }
}
