// Administration: registry endpoints (Harbor's /registries), the other registries Berth pulls from
// (proxy-cache projects) and replicates to and from. Add, test the connection (/registries/ping,
// with the values in the form before they are saved), edit and delete. The saved secret never
// reaches the page: the API answers "*****", and an empty secret field on edit keeps the saved one.
import { useEffect, useState } from 'preact/hooks';
import { get, getPage, send } from '../api.ts';
import { Badge, ConfirmDialog, Dialog, Empty, ErrorNote, PagedTable, Pager, SearchBox, toast } from '../components/ui.tsx';
import { ago, dateTime } from '../lib/format.ts';
import { useAsync, useDebounced } from '../lib/hooks.ts';
import type { AdapterInfos, RegistryEndpoint } from '../types.ts';
import { AdminPage } from './admin-users.tsx';

const PAGE_SIZE = 15;

/** What each registry type is, in words; types the server adds later show by their id. */
const TYPE_LABELS: Record<string, string> = {
  'docker-registry': 'Docker Registry (Distribution or any OCI registry)',
  harbor: 'Harbor (or another Berth)',
  'docker-hub': 'Docker Hub',
  'github-ghcr': 'GitHub Container Registry',
  quay: 'Quay',
};
export const typeLabel = (t: string) => TYPE_LABELS[t] ?? t;
const SHORT_LABELS: Record<string, string> = { 'docker-registry': 'Docker Registry', harbor: 'Harbor', 'docker-hub': 'Docker Hub', 'github-ghcr': 'GitHub', quay: 'Quay' };
export const typeShort = (t: string) => SHORT_LABELS[t] ?? t;

/** The address an endpoint type starts with when it has a usual one (Docker Hub, ghcr.io, quay.io). */
const DEFAULT_URLS: Record<string, string> = { 'docker-hub': 'https://hub.docker.com', 'github-ghcr': 'https://ghcr.io', quay: 'https://quay.io' };

/** "user" or "anonymous": who Berth is at the endpoint (never the secret). */
export function credentialText(r: RegistryEndpoint): string {
  return r.credential?.type === 'basic' && r.credential.access_key ? r.credential.access_key : 'anonymous';
}

export function StatusBadge({ status }: { status?: string }) {
  if (status === 'healthy') return <Badge kind="ok">healthy</Badge>;
  if (status === 'unhealthy') return <Badge kind="warn">unhealthy</Badge>;
  return <Badge kind="muted">not checked</Badge>;
}

interface PingResult {
  ok: boolean;
  message: string;
}

async function ping(body: Record<string, unknown>): Promise<PingResult> {
  try {
    await send('registries/ping', 'POST', body);
    return { ok: true, message: 'The registry answers and accepts the credential.' };
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
}

function PingNote({ result, name }: { result: PingResult; name?: string }) {
  return (
    <div class={`note ${result.ok ? 'note-ok' : 'note-error'}`} role="status">
      {name ? `${name}: ` : ''}
      {result.ok ? 'Connection works. ' : 'Connection failed: '}
      {result.message}
    </div>
  );
}

export function AdminRegistries() {
  const [page, setPage] = useState(1);
  const [name, setName] = useState('');
  const q = useDebounced(name.trim(), 250);
  const list = useAsync((signal) => getPage<RegistryEndpoint>('registries', { page, page_size: PAGE_SIZE, q: q ? `name=~${q}` : undefined }, signal), [page, q]);
  const [editing, setEditing] = useState<RegistryEndpoint | 'new'>();
  const [deleting, setDeleting] = useState<RegistryEndpoint>();
  const [testing, setTesting] = useState<number>();
  const [tested, setTested] = useState<{ name: string; result: PingResult }>();

  async function test(r: RegistryEndpoint) {
    setTesting(r.id);
    setTested(undefined);
    // The saved endpoint as saved: the server records what the ping said as its status.
    const result = await ping({ id: r.id });
    setTested({ name: r.name, result });
    setTesting(undefined);
    list.reload();
  }

  return (
    <AdminPage current="registries">
      <p class="muted">
        Other registries Berth pulls from and replicates to: Docker Hub, GitHub, Quay, a Distribution registry, another Harbor or Berth. A proxy-cache project pulls
        through one of them; replication policies copy images to or from them. Credentials are stored encrypted and never shown again.
      </p>
      <div class="toolbar">
        <SearchBox
          label="Filter registry endpoints"
          value={name}
          onInput={(v) => {
            setName(v);
            setPage(1);
          }}
        />
        <button type="button" class="btn btn-primary" onClick={() => setEditing('new')}>
          New endpoint
        </button>
      </div>
      {tested && (
        <div style={{ marginBottom: '12px' }}>
          <PingNote result={tested.result} name={tested.name} />
        </div>
      )}
      <PagedTable
        list={list}
        caption="Registry endpoints"
        empty={<Empty>{q ? `No registry endpoint matches “${q}”.` : 'No registry endpoints yet. Add one to create proxy-cache projects or replicate images.'}</Empty>}
        columns={['Name', 'Status', 'Provider', 'Endpoint URL', 'Signed in as', 'Verify certificate', 'Created']}
        actions
        rows={(items) =>
          items.map((r) => (
            <tr key={r.id}>
              <td class="strong">
                {r.name}
                {r.description && (
                  <small class="muted" style={{ display: 'block', fontWeight: 'normal' }}>
                    {r.description}
                  </small>
                )}
              </td>
              <td>
                <StatusBadge status={r.status} />
              </td>
              <td title={typeLabel(r.type)}>{typeShort(r.type)}</td>
              <td class="clip">
                <code>{r.url}</code>
              </td>
              <td>{credentialText(r)}</td>
              <td>{r.insecure ? 'no' : 'yes'}</td>
              <td title={dateTime(r.creation_time)}>{ago(r.creation_time)}</td>
              <td class="row-actions">
                <button type="button" class="btn btn-small btn-ghost" disabled={testing === r.id} onClick={() => void test(r)} aria-label={`Test connection to ${r.name}`}>
                  {testing === r.id ? 'Testing…' : 'Test'}
                </button>
                <button type="button" class="btn btn-small btn-ghost" onClick={() => setEditing(r)} aria-label={`Edit registry endpoint ${r.name}`}>
                  Edit
                </button>
                <button type="button" class="btn btn-small btn-ghost danger" onClick={() => setDeleting(r)} aria-label={`Delete registry endpoint ${r.name}`}>
                  Delete
                </button>
              </td>
            </tr>
          ))
        }
        pagerAbove={PAGE_SIZE}
        pager={(total) => <Pager page={page} pageSize={PAGE_SIZE} total={total} onPage={setPage} label="Registry endpoint pages" />}
      />
      {editing && (
        <RegistryForm
          endpoint={editing === 'new' ? undefined : editing}
          onClose={() => setEditing(undefined)}
          onSaved={() => {
            setTested(undefined);
            list.reload();
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title="Delete registry endpoint"
          confirm="Delete endpoint"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            await send(`registries/${deleting.id}`, 'DELETE');
            toast(`Registry endpoint ${deleting.name} deleted`);
            setTested(undefined);
            list.reload();
          }}
        >
          <p>
            Delete <strong>{deleting.name}</strong> (<code>{deleting.url}</code>)? Its saved credential goes with it. An endpoint that a proxy-cache project uses
            cannot be deleted: delete the project first. Replication policies that copy to or from it stop working.
          </p>
        </ConfirmDialog>
      )}
    </AdminPage>
  );
}

interface Form {
  type: string;
  name: string;
  description: string;
  url: string;
  accessKey: string;
  /** Empty on edit: keep the saved secret. */
  secret: string;
  verify: boolean;
  ca: string;
}

function RegistryForm({ endpoint, onClose, onSaved }: { endpoint?: RegistryEndpoint; onClose: () => void; onSaved: () => void }) {
  const editing = !!endpoint;
  const types = useAsync((signal) => get<string[]>('replication/adapters', signal), []);
  const infos = useAsync((signal) => get<AdapterInfos>('replication/adapterinfos', signal).catch(() => ({}) as AdapterInfos), []);
  const hasSecret = !!endpoint?.credential?.access_secret;
  const [f, setF] = useState<Form>(() => ({
    type: endpoint?.type ?? 'docker-registry',
    name: endpoint?.name ?? '',
    description: endpoint?.description ?? '',
    url: endpoint?.url ?? '',
    accessKey: endpoint?.credential?.type === 'basic' ? (endpoint.credential.access_key ?? '') : '',
    secret: '',
    verify: !(endpoint?.insecure ?? false),
    ca: endpoint?.ca_certificate ?? '',
  }));
  const [busy, setBusy] = useState(false);
  const [testing, setTesting] = useState(false);
  const [result, setResult] = useState<PingResult>();
  const [error, setError] = useState<string>();
  const set = (patch: Partial<Form>) => {
    setF({ ...f, ...patch });
    setResult(undefined);
  };

  // A type with a usual address fills it in while the address is empty or still another type's usual one.
  const usual = (t: string) => infos.data?.[t]?.endpoint_pattern?.endpoints?.[0]?.value ?? DEFAULT_URLS[t] ?? '';
  useEffect(() => {
    if (!editing && !f.url && usual(f.type)) setF((x) => ({ ...x, url: usual(x.type) }));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [infos.data]);
  function chooseType(t: string) {
    const wasUsual = !f.url || Object.keys(TYPE_LABELS).some((k) => usual(k) === f.url);
    set({ type: t, url: wasUsual ? usual(t) : f.url });
  }

  const anonymous = !f.accessKey.trim();
  /** The credential fields as Harbor's RegistryUpdate/RegistryPing name them. */
  function credential(): Record<string, unknown> {
    if (anonymous) return { credential_type: '', access_key: '', access_secret: '' };
    // An empty secret on edit sends the placeholder back, which keeps the saved secret.
    return { credential_type: 'basic', access_key: f.accessKey.trim(), access_secret: f.secret || (hasSecret ? '*****' : '') };
  }

  /** On edit, only what changed (a ping of the endpoint as saved also records its status). */
  function changes(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (!endpoint) return out;
    if (f.name.trim() !== endpoint.name) out.name = f.name.trim();
    if (f.description !== (endpoint.description ?? '')) out.description = f.description;
    if (f.url.trim() !== endpoint.url) out.url = f.url.trim();
    const savedKey = endpoint.credential?.type === 'basic' ? (endpoint.credential.access_key ?? '') : '';
    if (f.accessKey.trim() !== savedKey || f.secret) Object.assign(out, credential());
    if (f.verify === !!endpoint.insecure) out.insecure = !f.verify;
    if (f.ca.trim() !== (endpoint.ca_certificate ?? '').trim()) out.ca_certificate = f.ca;
    return out;
  }

  function check(): string | undefined {
    if (!f.name.trim()) return 'Give the endpoint a name.';
    if (!f.url.trim() && !DEFAULT_URLS[f.type]) return 'Give the endpoint URL, e.g. https://registry.example.com.';
    if (!anonymous && !f.secret && !hasSecret) return 'Give the access secret (password or token) of the access ID, or leave both empty for anonymous access.';
    return undefined;
  }

  async function test() {
    const bad = check();
    if (bad) return setError(bad);
    setError(undefined);
    setTesting(true);
    setResult(undefined);
    const body = endpoint
      ? { id: endpoint.id, ...changes(), name: undefined, description: undefined }
      : { type: f.type, url: f.url.trim() || undefined, ...credential(), insecure: !f.verify, ca_certificate: f.ca.trim() || undefined };
    setResult(await ping(body));
    setTesting(false);
  }

  async function save(e: Event) {
    e.preventDefault();
    const bad = check();
    if (bad) return setError(bad);
    setBusy(true);
    setError(undefined);
    try {
      if (endpoint) {
        await send(`registries/${endpoint.id}`, 'PUT', changes());
        toast(`Registry endpoint ${f.name.trim()} saved`);
      } else {
        const c = credential();
        await send('registries', 'POST', {
          name: f.name.trim(),
          type: f.type,
          url: f.url.trim() || undefined,
          description: f.description,
          credential: { type: c.credential_type, access_key: c.access_key, access_secret: c.access_secret },
          insecure: !f.verify,
          ca_certificate: f.ca.trim() || undefined,
        });
        toast(`Registry endpoint ${f.name.trim()} added`);
      }
      onSaved();
      onClose();
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }

  const typeList = types.data ?? Object.keys(TYPE_LABELS);
  return (
    <Dialog title={editing ? 'Edit registry endpoint' : 'New registry endpoint'} onClose={onClose} wide>
      <form class="stack" onSubmit={save}>
        <ErrorNote error={types.error} onRetry={types.reload} />
        <div class="field">
          <label for="reg-type">Provider</label>
          <select id="reg-type" name="type" value={f.type} disabled={editing} aria-describedby="reg-type-help" onChange={(e) => chooseType((e.target as HTMLSelectElement).value)}>
            {typeList.map((t) => (
              <option key={t} value={t}>
                {typeLabel(t)}
              </option>
            ))}
          </select>
          <small id="reg-type-help" class="muted">
            {editing
              ? 'The provider of a saved endpoint cannot change; add another endpoint instead.'
              : f.type === 'docker-hub'
                ? 'Docker Hub keeps official images under library/: alpine is library/alpine.'
                : 'Any registry that speaks the OCI distribution protocol works as a Docker Registry.'}
          </small>
        </div>
        <div class="grid2">
          <label class="field">
            <span>Name</span>
            <input name="name" autocomplete="off" value={f.name} autofocus={!editing} onInput={(e) => set({ name: (e.target as HTMLInputElement).value })} />
          </label>
          <label class="field">
            <span>Description</span>
            <input name="description" autocomplete="off" value={f.description} onInput={(e) => set({ description: (e.target as HTMLInputElement).value })} />
          </label>
        </div>
        <div class="field">
          <label for="reg-url">Endpoint URL</label>
          <input
            id="reg-url"
            name="url"
            type="url"
            autocomplete="off"
            placeholder="https://registry.example.com"
            value={f.url}
            aria-describedby="reg-url-help"
            onInput={(e) => set({ url: (e.target as HTMLInputElement).value })}
          />
          <small id="reg-url-help" class="muted">
            The registry's address, with https:// (or http:// for a registry without TLS).
          </small>
        </div>
        <div class="grid2">
          <label class="field">
            <span>Access ID</span>
            <input name="access_key" autocomplete="off" value={f.accessKey} onInput={(e) => set({ accessKey: (e.target as HTMLInputElement).value })} />
          </label>
          <div class="field">
            <label for="reg-secret">Access secret</label>
            <input
              id="reg-secret"
              name="access_secret"
              type="password"
              autocomplete="new-password"
              value={f.secret}
              disabled={anonymous}
              placeholder={hasSecret && !anonymous ? 'unchanged' : ''}
              aria-describedby="reg-secret-help"
              onInput={(e) => set({ secret: (e.target as HTMLInputElement).value })}
            />
          </div>
        </div>
        <small id="reg-secret-help" class="muted">
          The user name and password (or access token) Berth signs in with. Leave both empty for anonymous access.
          {hasSecret && ' A secret is saved: leave the secret empty to keep it.'}
        </small>
        <label class="choice">
          <input type="checkbox" name="verify" checked={f.verify} onChange={(e) => set({ verify: (e.target as HTMLInputElement).checked })} />
          <span>Verify the remote certificate</span>
        </label>
        {f.verify && (
          <div class="field">
            <label for="reg-ca">CA certificate (optional)</label>
            <textarea
              id="reg-ca"
              name="ca_certificate"
              rows={3}
              placeholder="-----BEGIN CERTIFICATE-----"
              value={f.ca}
              aria-describedby="reg-ca-help"
              onInput={(e) => set({ ca: (e.target as HTMLTextAreaElement).value })}
            />
            <small id="reg-ca-help" class="muted">
              For a registry whose certificate a private CA signed: that CA in PEM.
            </small>
          </div>
        )}
        {!f.verify && <small class="muted">Turn verification off only to try out a registry with a self-signed certificate.</small>}
        {result && <PingNote result={result} />}
        <ErrorNote error={error} />
        <div class="actions">
          <button type="button" class="btn" style={{ marginRight: 'auto' }} onClick={() => void test()} disabled={testing}>
            {testing ? 'Testing…' : 'Test connection'}
          </button>
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={busy}>
            {busy ? 'Saving…' : editing ? 'Save' : 'Add endpoint'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
