// Administration: LDAP / Active Directory settings (/configurations) with "test connection" (/ldap/ping),
// which tries the values in the form before they are saved.
import { useEffect, useState } from 'preact/hooks';
import { get, send, sendJson } from '../api.ts';
import { ErrorNote, Spinner, toast } from '../components/ui.tsx';
import { useAsync } from '../lib/hooks.ts';
import { refreshInfo } from '../session.ts';
import { AdminPage } from './admin-users.tsx';

type Config = Record<string, { value: unknown; editable: boolean }>;

/**
 * `initial`: what the server uses while the key was never saved (it answers "" for every LDAP key
 * then), so the form shows what a save will store.
 */
const FIELDS: { key: string; label: string; kind: 'text' | 'password' | 'number' | 'bool' | 'scope'; help?: string; placeholder?: string; initial?: boolean }[] = [
  { key: 'ldap_url', label: 'Server URL', kind: 'text', placeholder: 'ldaps://ldap.example.com', help: 'ldap:// or ldaps://. Leave empty to use only local accounts.' },
  { key: 'ldap_search_dn', label: 'Search DN', kind: 'text', placeholder: 'cn=berth,ou=services,dc=example,dc=com', help: 'The account Berth binds as to find users.' },
  { key: 'ldap_search_password', label: 'Search password', kind: 'password', help: 'Leave empty to keep the saved password.' },
  { key: 'ldap_base_dn', label: 'Base DN', kind: 'text', placeholder: 'ou=people,dc=example,dc=com' },
  { key: 'ldap_uid', label: 'Username attribute', kind: 'text', placeholder: 'uid', help: 'uid for OpenLDAP, sAMAccountName for Active Directory.' },
  { key: 'ldap_filter', label: 'User filter', kind: 'text', placeholder: '(objectClass=person)' },
  { key: 'ldap_scope', label: 'Search scope', kind: 'scope' },
  { key: 'ldap_timeout', label: 'Timeout (seconds)', kind: 'number' },
  { key: 'ldap_verify_cert', label: 'Verify the server certificate', kind: 'bool', initial: true, help: 'For ldaps:// and StartTLS. Turn off only to try out a directory with a self-signed certificate.' },
  { key: 'ldap_group_base_dn', label: 'Group base DN', kind: 'text', placeholder: 'ou=groups,dc=example,dc=com' },
  { key: 'ldap_group_search_filter', label: 'Group filter', kind: 'text', placeholder: '(objectClass=groupOfNames)' },
  { key: 'ldap_group_attribute_name', label: 'Group name attribute', kind: 'text', placeholder: 'cn' },
  { key: 'ldap_group_membership_attribute', label: 'Membership attribute', kind: 'text', placeholder: 'memberOf' },
  { key: 'ldap_group_admin_dn', label: 'Administrators group DN', kind: 'text', help: 'Members of this group are system administrators in Berth.' },
  { key: 'ldap_nested_groups', label: 'Follow nested groups', kind: 'bool', initial: false },
];

export function AdminLdap() {
  const cfg = useAsync((signal) => get<Config>('configurations', signal), []);
  const [form, setForm] = useState<Record<string, unknown>>({});
  const [saving, setSaving] = useState(false);
  const [testing, setTesting] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; message: string }>();
  const [error, setError] = useState<string>();

  useEffect(() => {
    if (!cfg.data) return;
    const f: Record<string, unknown> = {};
    for (const x of FIELDS) {
      const v = cfg.data[x.key]?.value;
      if (x.kind === 'password') f[x.key] = '';
      else if (x.kind === 'bool') f[x.key] = typeof v === 'boolean' ? v : (x.initial ?? false);
      else f[x.key] = v ?? '';
    }
    setForm(f);
  }, [cfg.data]);

  const present = (f: Record<string, unknown>) => {
    const out: Record<string, unknown> = {};
    for (const x of FIELDS) {
      const v = f[x.key];
      if (x.kind === 'password' && !v) continue;
      if (x.kind === 'number' || x.kind === 'scope') {
        if (v === '' || v === undefined) continue;
        out[x.key] = Number(v);
      } else out[x.key] = v;
    }
    return out;
  };

  async function save(e: Event) {
    e.preventDefault();
    setSaving(true);
    setError(undefined);
    try {
      const changed: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(present(form))) if (JSON.stringify(cfg.data?.[k]?.value) !== JSON.stringify(v)) changed[k] = v;
      await send('configurations', 'PUT', changed);
      toast('LDAP settings saved');
      cfg.reload();
      void refreshInfo();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setSaving(false);
    }
  }

  async function test() {
    setTesting(true);
    setResult(undefined);
    try {
      const r = await sendJson<{ success: boolean; message: string }>('ldap/ping', 'POST', present(form));
      setResult({ ok: r.success, message: r.message });
    } catch (err) {
      setResult({ ok: false, message: (err as Error).message });
    } finally {
      setTesting(false);
    }
  }

  return (
    <AdminPage current="ldap">
      <ErrorNote error={cfg.error} onRetry={cfg.reload} />
      {/* The form shows once it holds the saved values (no flash of unsaved defaults). */}
      {!cfg.data || !('ldap_url' in form) ? (
        !cfg.error && <Spinner />
      ) : (
        <form class="stack form-narrow" onSubmit={save}>
          <p class="muted">
            Authentication mode: <strong>{String(cfg.data.auth_mode?.value ?? 'db_auth') === 'ldap_auth' ? 'LDAP (local administrator accounts still work)' : 'local accounts only'}</strong>
          </p>
          {FIELDS.map((x) => {
            const id = `cfg-${x.key}`;
            const set = (v: unknown) => setForm({ ...form, [x.key]: v });
            if (x.kind === 'bool')
              return (
                <div key={x.key} class="stack tight">
                  <label class="choice">
                    <input
                      id={id}
                      name={x.key}
                      type="checkbox"
                      checked={!!form[x.key]}
                      aria-describedby={x.help ? `${id}-help` : undefined}
                      onChange={(e) => set((e.target as HTMLInputElement).checked)}
                    />
                    <span>{x.label}</span>
                  </label>
                  {x.help && (
                    <small id={`${id}-help`} class="muted">
                      {x.help}
                    </small>
                  )}
                </div>
              );
            return (
              <div key={x.key} class="field">
                <label for={id}>{x.label}</label>
                {x.kind === 'scope' ? (
                  <select id={id} name={x.key} value={String(form[x.key] ?? 2)} onChange={(e) => set(Number((e.target as HTMLSelectElement).value))}>
                    <option value="0">Base (the base DN only)</option>
                    <option value="1">One level</option>
                    <option value="2">Subtree</option>
                  </select>
                ) : (
                  <input
                    id={id}
                    name={x.key}
                    type={x.kind as 'text'}
                    autocomplete={x.kind === 'password' ? 'new-password' : 'off'}
                    placeholder={x.placeholder}
                    value={String(form[x.key] ?? '')}
                    aria-describedby={x.help ? `${id}-help` : undefined}
                    onInput={(e) => set((e.target as HTMLInputElement).value)}
                  />
                )}
                {x.help && (
                  <small id={`${id}-help`} class="muted">
                    {x.help}
                  </small>
                )}
              </div>
            );
          })}
          {result && (
            <div class={`note ${result.ok ? 'note-ok' : 'note-error'}`} role="status">
              {result.ok ? 'Connection works. ' : 'Connection failed: '}
              {result.message}
            </div>
          )}
          <ErrorNote error={error} />
          <div class="actions actions-left">
            <button type="button" class="btn" onClick={() => void test()} disabled={testing}>
              {testing ? 'Testing…' : 'Test connection'}
            </button>
            <button type="submit" class="btn btn-primary" disabled={saving}>
              {saving ? 'Saving…' : 'Save'}
            </button>
          </div>
        </form>
      )}
    </AdminPage>
  );
}
