// Administration: users (local and directory), create, make/unmake administrator, reset password, delete.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { getPage, send } from '../api.ts';
import { Badge, ConfirmDialog, Dialog, Empty, ErrorNote, FormActions, PagedTable, Pager, SearchBox, Tabs, toast } from '../components/ui.tsx';
import { ago } from '../lib/format.ts';
import { useAsync, useDebounced } from '../lib/hooks.ts';
import { useSession } from '../session.ts';
import type { User } from '../types.ts';

export function AdminPage({ current, children }: { current: string; children: ComponentChildren }) {
  return (
    <div class="page">
      <div class="page-head">
        <h1>Administration</h1>
      </div>
      <Tabs
        label="Administration sections"
        current={current}
        tabs={[
          { id: 'users', label: 'Users', href: '/admin/users' },
          { id: 'groups', label: 'Groups', href: '/admin/groups' },
          { id: 'ldap', label: 'LDAP', href: '/admin/ldap' },
          { id: 'system', label: 'System', href: '/admin/system' },
          { id: 'registries', label: 'Registries', href: '/admin/registries' },
          { id: 'replications', label: 'Replications', href: '/admin/replications' },
          { id: 'gc', label: 'Clean up', href: '/admin/gc' },
        ]}
      />
      <section class="tab-panel">{children}</section>
    </div>
  );
}

const PAGE_SIZE = 15;

export function AdminUsers() {
  const s = useSession();
  const [page, setPage] = useState(1);
  const [name, setName] = useState('');
  const q = useDebounced(name.trim(), 250);
  const list = useAsync((signal) => getPage<User>('users', { page, page_size: PAGE_SIZE, q: q ? `username=~${q}` : undefined }, signal), [page, q]);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<User>();
  const [resetting, setResetting] = useState<User>();

  async function setAdmin(u: User, on: boolean) {
    try {
      await send(`users/${u.user_id}/sysadmin`, 'PUT', { sysadmin_flag: on });
      toast(`${u.username} ${on ? 'is now' : 'is no longer'} a system administrator`);
      list.reload();
    } catch (e) {
      toast((e as Error).message, 'error');
    }
  }

  return (
    <AdminPage current="users">
      <div class="toolbar">
        <SearchBox
          label="Filter users"
          value={name}
          onInput={(v) => {
            setName(v);
            setPage(1);
          }}
        />
        {s.info.auth_mode !== 'ldap_auth' && (
          <button type="button" class="btn btn-primary" onClick={() => setCreating(true)}>
            New user
          </button>
        )}
      </div>
      {s.info.auth_mode === 'ldap_auth' && <p class="muted small">Directory users appear here after their first sign-in or when added to a project.</p>}
      <PagedTable
        list={list}
        caption="Users"
        empty={<Empty>No users{q ? ` match “${q}”` : ''}.</Empty>}
        columns={['Username', 'Name', 'Email', 'Administrator', 'Created']}
        actions
        rows={(items) =>
          items.map((u) => {
            const self = u.user_id === s.user?.user_id;
            return (
              <tr key={u.user_id}>
                <td class="strong">
                  {u.username} {u.source === 'ldap' && <Badge kind="muted">directory</Badge>}
                </td>
                <td>{u.realname}</td>
                <td>{u.email}</td>
                <td>
                  <label class="switch">
                    <input type="checkbox" checked={u.sysadmin_flag} disabled={self} onChange={(e) => void setAdmin(u, (e.target as HTMLInputElement).checked)} />
                    <span class="sr-only">System administrator: {u.username}</span>
                    {u.sysadmin_flag ? <Badge kind="info">admin</Badge> : <span class="muted small">no</span>}
                  </label>
                </td>
                <td>{ago(u.creation_time)}</td>
                <td class="row-actions">
                  {u.source !== 'ldap' && (
                    <button type="button" class="btn btn-small btn-ghost" onClick={() => setResetting(u)} aria-label={`Set password of ${u.username}`}>
                      Set password
                    </button>
                  )}
                  {!self && (
                    <button type="button" class="btn btn-small btn-ghost danger" onClick={() => setDeleting(u)} aria-label={`Delete user ${u.username}`}>
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
          <Pager page={page} pageSize={PAGE_SIZE} total={total} onPage={setPage} label="User pages" />
        )}
      />
      {creating && <CreateUser onClose={() => setCreating(false)} onCreated={list.reload} />}
      {resetting && <SetPassword user={resetting} onClose={() => setResetting(undefined)} />}
      {deleting && (
        <ConfirmDialog
          title="Delete user"
          confirm="Delete user"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            await send(`users/${deleting.user_id}`, 'DELETE');
            toast(`${deleting.username} deleted`);
            list.reload();
          }}
        >
          <p>
            Delete <strong>{deleting.username}</strong>? Their memberships and personal tokens go too.
          </p>
        </ConfirmDialog>
      )}
    </AdminPage>
  );
}

function CreateUser({ onClose, onCreated }: { onClose: () => void; onCreated: () => void }) {
  const [f, setF] = useState({ username: '', realname: '', email: '', password: '' });
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const input = (k: keyof typeof f, label: string, type = 'text', auto = 'off') => (
    <label class="field">
      <span>{label}</span>
      <input name={k} type={type as 'text'} autocomplete={auto} value={f[k]} onInput={(e) => setF({ ...f, [k]: (e.target as HTMLInputElement).value })} />
    </label>
  );
  return (
    <Dialog title="New user" onClose={onClose}>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          try {
            await send('users', 'POST', f);
            toast(`User ${f.username} created`);
            onCreated();
            onClose();
          } catch (err) {
            setError((err as Error).message);
            setBusy(false);
          }
        }}
      >
        {input('username', 'Username')}
        {input('realname', 'Full name')}
        {input('email', 'Email', 'email')}
        {input('password', 'Password', 'password', 'new-password')}
        <small class="muted">At least 8 characters with upper and lower case letters and a digit.</small>
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} busy={busy} submit="Create user" />
      </form>
    </Dialog>
  );
}

function SetPassword({ user, onClose }: { user: User; onClose: () => void }) {
  const [pw, setPw] = useState('');
  const [error, setError] = useState<string>();
  return (
    <Dialog title={`Set password of ${user.username}`} onClose={onClose}>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await send(`users/${user.user_id}/password`, 'PUT', { new_password: pw });
            toast('Password set');
            onClose();
          } catch (err) {
            setError((err as Error).message);
          }
        }}
      >
        <label class="field">
          <span>New password</span>
          <input type="password" autocomplete="new-password" value={pw} autofocus onInput={(e) => setPw((e.target as HTMLInputElement).value)} />
        </label>
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} submit="Set password" />
      </form>
    </Dialog>
  );
}
