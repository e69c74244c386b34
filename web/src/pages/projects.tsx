// Projects: search, paging, create (public or private; a system admin may set a storage limit), delete.
import { useState } from 'preact/hooks';
import { getPage, send, enc } from '../api.ts';
import { limitBytes, StorageLimitField, UNLIMITED } from '../components/storage-limit.tsx';
import { Badge, ConfirmDialog, Dialog, Empty, ErrorNote, FormActions, Link, PagedTable, Pager, SearchBox, toast } from '../components/ui.tsx';
import { ago } from '../lib/format.ts';
import { useAsync, useDebounced } from '../lib/hooks.ts';
import { navigate, setQuery, useLocation } from '../lib/router.ts';
import { useSession } from '../session.ts';
import { roleName, type Project } from '../types.ts';

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
                <td>{p.metadata?.public === 'true' ? <Badge kind="ok">public</Badge> : <Badge kind="muted">private</Badge>}</td>
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
          setBusy(true);
          setError(undefined);
          try {
            const r = await send('projects', 'POST', { project_name: name, public: pub, metadata: { public: String(pub) }, storage_limit: quota?.bytes });
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
            Lowercase letters, digits, and . _ - between them. Images are pushed as <code>{name || 'name'}/image:tag</code>.
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
        {admin && <StorageLimitField id="new-project-limit" value={limit} onChange={setLimit} help="Pushes that would take the project past its limit are refused. You can change it later on the project's summary." />}
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} busy={busy} submit={busy ? 'Creating…' : 'Create project'} />
      </form>
    </Dialog>
  );
}
