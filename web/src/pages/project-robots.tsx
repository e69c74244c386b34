// Robot accounts of a project: create with permissions and an expiry, see the secret exactly once,
// disable/enable, refresh the secret (again shown once), delete.
import { useState } from 'preact/hooks';
import { getPage, send, sendJson } from '../api.ts';
import { Badge, CodeLine, ConfirmDialog, Dialog, Empty, ErrorNote, FormActions, PagedTable, Pager, toast } from '../components/ui.tsx';
import { ago } from '../lib/format.ts';
import { useAsync } from '../lib/hooks.ts';
import { useExpiry } from '../components/expiry.tsx';
import { registryHost } from '../session.ts';
import type { Robot, RobotAccess } from '../types.ts';
import type { ProjectCtx } from './project.tsx';

const PAGE_SIZE = 15;

const PERMS: { id: string; label: string; access: RobotAccess[]; help: string }[] = [
  { id: 'pull', label: 'Pull', access: [{ resource: 'repository', action: 'pull' }], help: 'download images' },
  { id: 'push', label: 'Push', access: [{ resource: 'repository', action: 'push' }], help: 'upload images (includes pull)' },
  { id: 'list', label: 'List', access: [{ resource: 'repository', action: 'list' }, { resource: 'artifact', action: 'list' }, { resource: 'artifact', action: 'read' }, { resource: 'tag', action: 'list' }], help: 'browse repositories, artifacts and tags' },
  { id: 'tag-create', label: 'Create tags', access: [{ resource: 'tag', action: 'create' }], help: 'add tags to existing artifacts' },
  { id: 'tag-delete', label: 'Delete tags', access: [{ resource: 'tag', action: 'delete' }], help: 'remove tags' },
  { id: 'artifact-delete', label: 'Delete artifacts', access: [{ resource: 'artifact', action: 'delete' }], help: 'remove artifacts' },
];

function summarize(r: Robot): string[] {
  const have = new Set((r.permissions ?? []).flatMap((p) => p.access.map((a) => `${a.resource}:${a.action}`)));
  return PERMS.filter((p) => p.access.every((a) => have.has(`${a.resource}:${a.action}`))).map((p) => p.label.toLowerCase());
}

function expiry(r: Robot): { text: string; expired: boolean } {
  if (r.expires_at === -1 || !r.expires_at) return { text: 'never', expired: false };
  const t = r.expires_at * 1000;
  return { text: ago(new Date(t).toISOString()), expired: t < Date.now() };
}

export function Robots({ ctx }: { ctx: ProjectCtx }) {
  const p = ctx.project;
  const [page, setPage] = useState(1);
  const list = useAsync((signal) => getPage<Robot>('robots', { page, page_size: PAGE_SIZE, q: `Level=project,ProjectID=${p.project_id}` }, signal), [p.project_id, page]);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<{ name: string; secret: string; fresh: boolean }>();
  const [deleting, setDeleting] = useState<Robot>();
  const [refreshing, setRefreshing] = useState<Robot>();
  const mayCreate = ctx.can('robot', 'create');
  const mayUpdate = ctx.can('robot', 'update');
  const mayDelete = ctx.can('robot', 'delete');

  async function toggle(r: Robot) {
    try {
      await send(`robots/${r.id}`, 'PUT', { id: r.id, name: r.name, description: r.description, level: r.level, duration: r.duration, disable: !r.disable, permissions: r.permissions });
      toast(`${r.name} ${r.disable ? 'enabled' : 'disabled'}`);
      list.reload();
    } catch (e) {
      toast((e as Error).message, 'error');
    }
  }

  return (
    <>
      <div class="toolbar">
        <span class="muted">Robot accounts let CI systems push and pull without a person's password.</span>
        {mayCreate && (
          <button type="button" class="btn btn-primary" onClick={() => setCreating(true)}>
            New robot account
          </button>
        )}
      </div>
      <PagedTable
        list={list}
        caption={<>Robot accounts of {p.name}</>}
        empty={<Empty>No robot accounts in this project.</Empty>}
        columns={['Name', 'Status', 'Permissions', 'Expires', 'Created']}
        actions
        rows={(items) =>
          items.map((r) => {
            const ex = expiry(r);
            return (
              <tr key={r.id}>
                <td>
                  <code class="strong">{r.name}</code>
                  {r.description && <div class="muted small clip">{r.description}</div>}
                </td>
                <td>{r.disable ? <Badge kind="muted">disabled</Badge> : ex.expired ? <Badge kind="warn">expired</Badge> : <Badge kind="ok">enabled</Badge>}</td>
                <td class="small">{summarize(r).join(', ') || 'custom'}</td>
                <td>{ex.text}</td>
                <td>{ago(r.creation_time)}</td>
                <td class="row-actions">
                  {mayUpdate && (
                    <>
                      <button type="button" class="btn btn-small btn-ghost" onClick={() => void toggle(r)} aria-label={`${r.disable ? 'Enable' : 'Disable'} ${r.name}`}>
                        {r.disable ? 'Enable' : 'Disable'}
                      </button>
                      <button type="button" class="btn btn-small btn-ghost" onClick={() => setRefreshing(r)} aria-label={`New secret for ${r.name}`}>
                        New secret
                      </button>
                    </>
                  )}
                  {mayDelete && (
                    <button type="button" class="btn btn-small btn-ghost danger" onClick={() => setDeleting(r)} aria-label={`Delete ${r.name}`}>
                      Delete
                    </button>
                  )}
                </td>
              </tr>
            );
          })
        }
        pagerAbove={PAGE_SIZE}
        pager={(total) => (
          <Pager page={page} pageSize={PAGE_SIZE} total={total} onPage={setPage} label="Robot pages" />
        )}
      />
      {creating && (
        <CreateRobot
          project={p.name}
          onClose={() => setCreating(false)}
          onCreated={(name, s) => {
            setCreating(false);
            setSecret({ name, secret: s, fresh: true });
            list.reload();
          }}
        />
      )}
      {secret && <SecretOnce {...secret} onClose={() => setSecret(undefined)} />}
      {refreshing && (
        <ConfirmDialog
          title="New secret"
          confirm="Make a new secret"
          onClose={() => setRefreshing(undefined)}
          onConfirm={async () => {
            const r = await sendJson<{ secret: string }>(`robots/${refreshing.id}`, 'PATCH', {});
            setSecret({ name: refreshing.name, secret: r.secret, fresh: false });
          }}
        >
          <p>
            Make a new secret for <code>{refreshing.name}</code>? The current secret stops working at once.
          </p>
        </ConfirmDialog>
      )}
      {deleting && (
        <ConfirmDialog
          title="Delete robot account"
          confirm="Delete"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            await send(`robots/${deleting.id}`, 'DELETE');
            toast(`${deleting.name} deleted`);
            list.reload();
          }}
        >
          <p>
            Delete <code>{deleting.name}</code>? Anything logging in with it fails from now on.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

function CreateRobot({ project, onClose, onCreated }: { project: string; onClose: () => void; onCreated: (name: string, secret: string) => void }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const lifetime = useExpiry('30');
  const [perms, setPerms] = useState<Set<string>>(new Set(['pull', 'list']));
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  function toggle(id: string, on: boolean) {
    const next = new Set(perms);
    if (on) next.add(id);
    else next.delete(id);
    if (id === 'push' && on) next.add('pull');
    if (id === 'pull' && !on) next.delete('push');
    setPerms(next);
  }

  async function submit(e: Event) {
    e.preventDefault();
    setError(undefined);
    if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(name)) return setError('Name: lowercase letters, digits and . _ - between them.');
    if (!perms.size) return setError('Give the robot at least one permission.');
    const duration = lifetime.days();
    if (!Number.isInteger(duration) || (duration !== -1 && duration < 1)) return setError('Expiry: a whole number of days.');
    const access = PERMS.filter((p) => perms.has(p.id)).flatMap((p) => p.access);
    setBusy(true);
    try {
      const r = await sendJson<{ name: string; secret: string }>('robots', 'POST', {
        name,
        description,
        duration,
        level: 'project',
        disable: false,
        permissions: [{ kind: 'project', namespace: project, access }],
      });
      onCreated(r.name, r.secret);
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }

  return (
    <Dialog title="New robot account" onClose={onClose}>
      <form class="stack" onSubmit={submit}>
        <label class="field">
          <span>Name</span>
          <div class="prefixed">
            <span class="prefix">robot${project}+</span>
            <input name="robot_name" value={name} autofocus required onInput={(e) => setName((e.target as HTMLInputElement).value.toLowerCase())} />
          </div>
        </label>
        <label class="field">
          <span>Description (optional)</span>
          <input name="description" value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
        </label>
        <div class="grid2">
          {lifetime.field}
        </div>
        <fieldset class="field">
          <legend>Permissions in {project}</legend>
          <div class="checks">
            {PERMS.map((p) => (
              <label key={p.id} class="choice">
                <input type="checkbox" name={`perm-${p.id}`} checked={perms.has(p.id)} onChange={(e) => toggle(p.id, (e.target as HTMLInputElement).checked)} />
                <span>
                  <strong>{p.label}</strong> <span class="muted small">— {p.help}</span>
                </span>
              </label>
            ))}
          </div>
        </fieldset>
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} busy={busy} submit={busy ? 'Creating…' : 'Create robot account'} />
      </form>
    </Dialog>
  );
}

/** The secret, once: Berth stores only a hash, so closing this is the last chance to copy it. */
function SecretOnce({ name, secret, fresh, onClose }: { name: string; secret: string; fresh: boolean; onClose: () => void }) {
  const host = registryHost();
  return (
    <Dialog title={fresh ? 'Robot account created' : 'New secret'} onClose={onClose} wide dismissable={false}>
      <div class="stack">
        <div class="note note-warn" role="alert">
          Copy the secret now. It is shown only this once; Berth keeps no readable copy.
        </div>
        <div class="field">
          <span class="label">Name</span>
          <CodeLine text={name} what="robot name" />
        </div>
        <div class="field">
          <span class="label">Secret</span>
          <div class="secret" data-testid="robot-secret">
            <CodeLine text={secret} what="robot secret" />
          </div>
        </div>
        <div class="field">
          <span class="label">Log in with it</span>
          <CodeLine text={`docker login ${host} -u '${name}'`} what="login command" />
        </div>
        <div class="actions">
          <button type="button" class="btn btn-primary" onClick={onClose}>
            I have copied the secret
          </button>
        </div>
      </div>
    </Dialog>
  );
}
