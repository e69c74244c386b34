// Projects: search, paging, create (public or private; a system admin may set a storage limit), delete.
import { useEffect, useState } from 'preact/hooks';
import { getPage, send, enc } from '../api.ts';
import { limitBytes, StorageLimitField, UNLIMITED } from '../components/storage-limit.tsx';
import { Badge, ConfirmDialog, Dialog, Empty, ErrorNote, FormActions, Link, PagedTable, Pager, SearchBox, toast } from '../components/ui.tsx';
import { ago } from '../lib/format.ts';
import { useAsync, useDebounced } from '../lib/hooks.ts';
import { navigate, setQuery, useLocation } from '../lib/router.ts';
import { registryHost, useSession } from '../session.ts';
import { roleName, type Project, type RegistryEndpoint } from '../types.ts';

export function Projects() {
  const loc = useLocation();
  const s = useSession();
  const page = Number(loc.query.get('page') ?? 1) || 1;
  const pageSize = Number(loc.query.get('page_size') ?? 15) || 15;
  const [name, setName] = useState(loc.query.get('name') ?? '');
  const q = useDebounced(name.trim(), 250);
  const list = useAsync((signal) => getPage<Project>('projects', { page, page_size: pageSize, name: q || undefined, with_detail: true }, signal), [page, pageSize, q]);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<Project>();
  const canCreate = s.user?.sysadmin_flag || s.info.project_creation_restriction !== 'adminonly';

  return (
    <div class="page">
      <div class="page-head">
        <h1>Projects</h1>
        {canCreate && (
          <button type="button" class="btn btn-primary" onClick={() => setCreating(true)}>
            New project
          </button>
        )}
      </div>
      <div class="toolbar">
        <SearchBox
          label="Filter projects by name"
          value={name}
          onInput={(v) => {
            setName(v);
            setQuery({ name: v || undefined, page: undefined });
          }}
        />
      </div>
      <PagedTable
        list={list}
        caption="Projects"
        empty={<Empty>{q ? `No project matches “${q}”.` : 'No projects yet. Create one to push images into it.'}</Empty>}
        columns={['Name', 'Access', 'Your role', { num: 'Repositories' }, 'Created']}
        actions
        rows={(items) =>
          items.map((p) => {
            const role = p.current_user_role_id ?? 0;
            const mayDelete = s.user?.sysadmin_flag || role === 1;
            return (
              <tr key={p.project_id}>
                <td>
                  <Link href={`/projects/${p.project_id}`} class="strong">
                    {p.name}
                  </Link>
                </td>
                <td>
                  {p.metadata?.public === 'true' ? <Badge kind="ok">public</Badge> : <Badge kind="muted">private</Badge>} {!!p.registry_id && <Badge kind="info">proxy cache</Badge>}
                </td>
                <td>{role ? roleName(role) : s.user?.sysadmin_flag ? 'System admin' : '—'}</td>
                <td class="num">{(p.repo_count ?? 0).toLocaleString()}</td>
                <td title={p.creation_time}>{ago(p.creation_time)}</td>
                <td class="row-actions">
                  {mayDelete && (
                    <button type="button" class="btn btn-small btn-ghost danger" aria-label={`Delete project ${p.name}`} onClick={() => setDeleting(p)}>
                      Delete
                    </button>
                  )}
                </td>
              </tr>
            );
          })
        }
        pager={(total) => (
          <Pager page={page} pageSize={pageSize} total={total} onPage={(p) => setQuery({ page: p })} onPageSize={(n) => setQuery({ page_size: n, page: undefined })} label="Project pages" />
        )}
      />
      {creating && <CreateProject onClose={() => setCreating(false)} />}
      {deleting && (
        <ConfirmDialog
          title="Delete project"
          confirm="Delete project"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            await send(`projects/${enc(deleting.name)}`, 'DELETE');
            toast(`Project ${deleting.name} deleted`);
            list.reload();
          }}
        >
          <p>
            Delete <strong>{deleting.name}</strong>? Its members and robot accounts go with it. A project that still holds repositories cannot be deleted: delete them first.
          </p>
        </ConfirmDialog>
      )}
    </div>
  );
}

function CreateProject({ onClose }: { onClose: () => void }) {
  const admin = !!useSession().user?.sysadmin_flag;
  const [name, setName] = useState('');
  const [pub, setPub] = useState(false);
  const [limit, setLimit] = useState(UNLIMITED);
  const [proxy, setProxy] = useState(false);
  const [registryId, setRegistryId] = useState<number>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const valid = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(name) && name.length <= 255;
  return (
    <Dialog title="New project" onClose={onClose}>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          if (!valid) return setError('Use lowercase letters, digits and . _ - (not at the start or end).');
          // Only a system admin's storage_limit counts; others' projects are unlimited.
          const quota = admin ? limitBytes(limit) : undefined;
          if (quota && 'error' in quota) return setError(quota.error);
          if (proxy && !registryId) return setError('Choose the registry endpoint the proxy cache pulls from.');
          setBusy(true);
          setError(undefined);
          try {
            const r = await send('projects', 'POST', {
              project_name: name,
              public: pub,
              metadata: { public: String(pub) },
              storage_limit: quota?.bytes,
              ...(proxy && registryId ? { registry_id: registryId } : {}),
            });
            const id = /\/projects\/(\d+)/.exec(r.headers.get('Location') ?? '')?.[1];
            toast(`Project ${name} created`);
            onClose();
            navigate(`/projects/${id ?? enc(name)}`);
          } catch (err) {
            setError((err as Error).message);
            setBusy(false);
          }
        }}
      >
        <label class="field">
          <span>Project name</span>
          <input name="project_name" value={name} autofocus required aria-describedby="project-name-help" onInput={(e) => setName((e.target as HTMLInputElement).value.toLowerCase())} />
          <small id="project-name-help" class="muted">
            Lowercase letters, digits, and . _ - between them. {proxy ? <>Images are pulled as <code>{name || 'name'}/image:tag</code>.</> : <>Images are pushed as <code>{name || 'name'}/image:tag</code>.</>}
          </small>
        </label>
        <fieldset class="field">
          <legend>Access</legend>
          <label class="choice">
            <input type="radio" name="access" checked={!pub} onChange={() => setPub(false)} />
            <span>
              <strong>Private</strong> — only members can pull
            </span>
          </label>
          <label class="choice">
            <input type="radio" name="access" checked={pub} onChange={() => setPub(true)} />
            <span>
              <strong>Public</strong> — anyone can pull, even without signing in
            </span>
          </label>
        </fieldset>
        {admin && <ProxyCacheField project={name} on={proxy} onToggle={setProxy} registryId={registryId} onRegistry={setRegistryId} />}
        {admin && <StorageLimitField id="new-project-limit" value={limit} onChange={setLimit} help="Pushes that would take the project past its limit are refused. You can change it later on the project's summary." />}
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} busy={busy} submit={busy ? 'Creating…' : 'Create project'} />
      </form>
    </Dialog>
  );
}

/**
 * "Proxy cache" (system admins, as in Harbor): the project pulls through a registry endpoint, and
 * the explanation shows the pull path with this Berth's host and the project's name.
 */
function ProxyCacheField(props: { project: string; on: boolean; onToggle: (on: boolean) => void; registryId?: number; onRegistry: (id: number | undefined) => void }) {
  const endpoints = useAsync((signal) => (props.on ? getPage<RegistryEndpoint>('registries', { page: 1, page_size: 100 }, signal) : Promise.resolve(undefined)), [props.on]);
  const items = endpoints.data?.items ?? [];
  // The first endpoint is chosen once the list arrives (most installations have one).
  useEffect(() => {
    if (props.on && !props.registryId && items.length) props.onRegistry(items[0].id);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.on, endpoints.data]);
  const chosen = items.find((r) => r.id === props.registryId);
  const host = registryHost();
  const project = props.project || 'name';
  return (
    <div class="stack tight">
      <label class="choice">
        <input type="checkbox" name="proxy_cache" checked={props.on} aria-describedby="proxy-cache-help" onChange={(e) => props.onToggle((e.target as HTMLInputElement).checked)} />
        <span>
          <strong>Proxy cache</strong> — pull images through from another registry and keep a copy here
        </span>
      </label>
      {!props.on && (
        <small id="proxy-cache-help" class="muted">
          For base images from Docker Hub, GitHub or Quay: builds pull from Berth, which fetches each image once and serves it even while the other registry is down or rate-limits.
        </small>
      )}
      {props.on && (
        <div class="stack tight" id="proxy-cache-help">
          <ErrorNote error={endpoints.error} onRetry={endpoints.reload} />
          {endpoints.data && items.length === 0 ? (
            <p class="note note-warn">
              <span>
                No registry endpoint yet. Add one under <Link href="/admin/registries">Administration → Registries</Link> first.
              </span>
            </p>
          ) : (
            <div class="field">
              <label for="proxy-registry">Registry endpoint</label>
              <select
                id="proxy-registry"
                name="registry_id"
                value={props.registryId ? String(props.registryId) : ''}
                disabled={!endpoints.data}
                onChange={(e) => props.onRegistry(Number((e.target as HTMLSelectElement).value) || undefined)}
              >
                {!endpoints.data && <option value="">Loading…</option>}
                {items.map((r) => (
                  <option key={r.id} value={String(r.id)}>
                    {r.name} ({r.url})
                  </option>
                ))}
              </select>
            </div>
          )}
          <div class="note" data-testid="proxy-cache-explanation">
            <span>
              Pull <code>{host}/{project}/library/alpine:3.20</code> and Berth fetches <code>library/alpine:3.20</code> from{' '}
              {chosen ? <strong>{chosen.url}</strong> : 'the endpoint'} the first time, stores it in this project, and serves its copy from then on (by tag it
              asks the other registry only whether the tag moved; while that registry is down it serves what it has). Nobody can push into a proxy-cache
              project.
            </span>
          </div>
        </div>
      )}
    </div>
  );
}
