// Members: users and LDAP groups with a role; add (search as you type), change role, remove.
import { useCallback, useState } from 'preact/hooks';
import { enc, get, getPage, send, withQuery } from '../api.ts';
import { Autocomplete, type Option } from '../components/autocomplete.tsx';
import { Badge, ConfirmDialog, Dialog, Empty, ErrorNote, FormActions, PagedTable, Pager, toast } from '../components/ui.tsx';
import { useAsync } from '../lib/hooks.ts';
import { useSession } from '../session.ts';
import { ROLES, roleName, type Member } from '../types.ts';
import type { ProjectCtx } from './project.tsx';

const PAGE_SIZE = 25;

export function Members({ ctx }: { ctx: ProjectCtx }) {
  const p = ctx.project;
  const [page, setPage] = useState(1);
  const list = useAsync((signal) => getPage<Member>(`projects/${enc(p.name)}/members`, { page, page_size: PAGE_SIZE }, signal), [p.name, page]);
  const [adding, setAdding] = useState(false);
  const [removing, setRemoving] = useState<Member>();
  const mayAdd = ctx.can('member', 'create');
  const mayUpdate = ctx.can('member', 'update');
  const mayDelete = ctx.can('member', 'delete');
  const ldap = useSession().info.auth_mode === 'ldap_auth';

  async function changeRole(m: Member, roleId: number) {
    try {
      await send(`projects/${enc(p.name)}/members/${m.id}`, 'PUT', { role_id: roleId });
      toast(`${m.entity_name} is now ${roleName(roleId)}`);
      list.reload();
    } catch (e) {
      toast((e as Error).message, 'error');
      list.reload();
    }
  }

  return (
    <>
      <div class="toolbar">
        <span class="muted">Members get their role's rights in this project.{ldap ? ' LDAP groups give the role to everyone in the group.' : ''}</span>
        {mayAdd && (
          <button type="button" class="btn btn-primary" onClick={() => setAdding(true)}>
            Add member
          </button>
        )}
      </div>
      <PagedTable
        list={list}
        caption={<>Members of {p.name}</>}
        empty={<Empty>No members.</Empty>}
        columns={['Name', 'Type', 'Role']}
        actions
        rows={(items) =>
          items.map((m) => (
            <tr key={m.id}>
              <td class="strong">{m.entity_name}</td>
              <td>{m.entity_type === 'g' ? <Badge kind="info">LDAP group</Badge> : <Badge>user</Badge>}</td>
              <td>
                {mayUpdate ? (
                  <select aria-label={`Role of ${m.entity_name}`} value={String(m.role_id)} onChange={(e) => void changeRole(m, Number((e.target as HTMLSelectElement).value))}>
                    {ROLES.map((r) => (
                      <option key={r.id} value={String(r.id)}>
                        {r.name}
                      </option>
                    ))}
                  </select>
                ) : (
                  roleName(m.role_id)
                )}
              </td>
              <td class="row-actions">
                {mayDelete && (
                  <button type="button" class="btn btn-small btn-ghost danger" aria-label={`Remove ${m.entity_name}`} onClick={() => setRemoving(m)}>
                    Remove
                  </button>
                )}
              </td>
            </tr>
          ))
        }
        pagerAbove={PAGE_SIZE}
        pager={(total) => (
          <Pager page={page} pageSize={PAGE_SIZE} total={total} onPage={setPage} label="Member pages" />
        )}
      />
      {adding && <AddMember project={p.name} onClose={() => setAdding(false)} onAdded={list.reload} />}
      {removing && (
        <ConfirmDialog
          title="Remove member"
          confirm="Remove"
          onClose={() => setRemoving(undefined)}
          onConfirm={async () => {
            await send(`projects/${enc(p.name)}/members/${removing.id}`, 'DELETE');
            toast(`${removing.entity_name} removed`);
            list.reload();
          }}
        >
          <p>
            Remove <strong>{removing.entity_name}</strong> from {p.name}? {removing.entity_type === 'g' ? 'Its members lose this role' : 'They lose access'} at their next token.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

type Pick = { kind: 'user'; username: string } | { kind: 'group'; dn: string; name: string };

function AddMember({ project, onClose, onAdded }: { project: string; onClose: () => void; onAdded: () => void }) {
  const s = useSession();
  const ldap = s.info.auth_mode === 'ldap_auth';
  const [kind, setKind] = useState<'user' | 'group'>('user');
  const [text, setText] = useState('');
  const [picked, setPicked] = useState<Pick>();
  const [role, setRole] = useState(2);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const searchUsers = useCallback(
    async (q: string, signal: AbortSignal): Promise<Option<Pick>[]> => {
      const local = get<{ user_id: number; username: string }[]>(withQuery('users/search', { username: q, page_size: 10 }), signal).catch(() => []);
      // The directory search is for administrators; others find directory users who signed in once,
      // or type the exact name (Berth looks it up in the directory when the member is added).
      const dir =
        ldap && s.user?.sysadmin_flag
          ? get<{ username: string; realname?: string; email?: string }[]>(withQuery('ldap/users/search', { username: q }), signal).catch(() => [])
          : Promise.resolve([]);
      const [a, b] = await Promise.all([local, dir]);
      const seen = new Set<string>();
      const out: Option<Pick>[] = [];
      for (const u of a ?? []) if (!seen.has(u.username)) seen.add(u.username), out.push({ key: `u:${u.username}`, label: u.username, value: { kind: 'user', username: u.username } });
      for (const u of b ?? [])
        if (!seen.has(u.username))
          seen.add(u.username), out.push({ key: `d:${u.username}`, label: u.username, detail: [u.realname, u.email, '(directory)'].filter(Boolean).join(' · '), value: { kind: 'user', username: u.username } });
      return out.slice(0, 15);
    },
    [ldap, s.user?.sysadmin_flag],
  );

  const searchGroups = useCallback(async (q: string, signal: AbortSignal): Promise<Option<Pick>[]> => {
    const dir = await get<{ group_name: string; ldap_group_dn: string }[]>(withQuery('ldap/groups/search', { groupname: q }), signal).catch(async () =>
      ((await get<{ group_name: string; ldap_group_dn?: string }[]>(withQuery('usergroups', { group_name: q, page_size: 15 }), signal).catch(() => [])) ?? []).map((g) => ({
        group_name: g.group_name,
        ldap_group_dn: g.ldap_group_dn ?? '',
      })),
    );
    return (dir ?? []).slice(0, 15).map((g) => ({ key: g.ldap_group_dn, label: g.group_name, detail: g.ldap_group_dn, value: { kind: 'group', dn: g.ldap_group_dn, name: g.group_name } }));
  }, []);

  async function submit(e: Event) {
    e.preventDefault();
    setError(undefined);
    let body: unknown;
    if (kind === 'user') {
      const username = picked?.kind === 'user' && picked.username === text ? picked.username : text.trim();
      if (!username) return setError('Type a username and pick it from the list.');
      body = { role_id: role, member_user: { username } };
    } else {
      if (picked?.kind !== 'group') {
        if (!text.includes('=')) return setError('Pick a group from the list, or type its full DN (cn=…,ou=…).');
        body = { role_id: role, member_group: { ldap_group_dn: text.trim(), group_type: 1 } };
      } else body = { role_id: role, member_group: { ldap_group_dn: picked.dn, group_name: picked.name, group_type: 1 } };
    }
    setBusy(true);
    try {
      await send(`projects/${enc(project)}/members`, 'POST', body);
      toast(`${kind === 'user' ? text : picked?.kind === 'group' ? picked.name : text} added as ${roleName(role)}`);
      onAdded();
      onClose();
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }

  return (
    <Dialog title="Add member" onClose={onClose}>
      <form class="stack" onSubmit={submit}>
        {/* LDAP groups only mean something while LDAP is configured (systeminfo's auth_mode, which every user may read). */}
        {ldap && (
          <fieldset class="field">
            <legend>Member type</legend>
            <div class="row">
              <label class="choice">
                <input type="radio" name="kind" checked={kind === 'user'} onChange={() => (setKind('user'), setText(''), setPicked(undefined))} /> User
              </label>
              <label class="choice">
                <input type="radio" name="kind" checked={kind === 'group'} onChange={() => (setKind('group'), setText(''), setPicked(undefined))} /> LDAP group
              </label>
            </div>
          </fieldset>
        )}
        {kind === 'user' ? (
          <Autocomplete<Pick>
            key="user"
            name="member"
            label="Username"
            placeholder="Start typing a name"
            help={ldap ? 'Local users and directory users. A directory user who never signed in can be added by exact username.' : undefined}
            value={text}
            onInput={(t) => {
              setText(t);
              setPicked(undefined);
            }}
            onPick={(o) => {
              setPicked(o.value);
              setText(o.label);
            }}
            search={searchUsers}
          />
        ) : (
          <Autocomplete<Pick>
            key="group"
            name="group"
            label="Group"
            placeholder="Start typing a group name"
            help="Groups from the company directory."
            value={picked?.kind === 'group' ? picked.name : text}
            onInput={(t) => {
              setText(t);
              setPicked(undefined);
            }}
            onPick={(o) => {
              setPicked(o.value);
              setText(o.label);
            }}
            search={searchGroups}
          />
        )}
        {picked?.kind === 'group' && <p class="muted small">{picked.dn}</p>}
        <label class="field">
          <span>Role</span>
          <select name="role" value={String(role)} onChange={(e) => setRole(Number((e.target as HTMLSelectElement).value))}>
            {ROLES.map((r) => (
              <option key={r.id} value={String(r.id)}>
                {r.name}
              </option>
            ))}
          </select>
          <small class="muted">{ROLE_HELP[role]}</small>
        </label>
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} busy={busy} submit={busy ? 'Adding…' : 'Add member'} />
      </form>
    </Dialog>
  );
}

const ROLE_HELP: Record<number, string> = {
  1: 'Everything in the project, including members and robot accounts.',
  4: 'Push, pull, delete artifacts and tags; no member management.',
  2: 'Push and pull.',
  3: 'Pull only.',
  5: 'Pull only, and sees only the artifacts, not project settings.',
};
