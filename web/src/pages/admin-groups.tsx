// Administration: LDAP groups known to Berth (added from the directory, renamed, removed).
import { useCallback, useState } from 'preact/hooks';
import { get, getPage, send, withQuery } from '../api.ts';
import { Autocomplete, type Option } from '../components/autocomplete.tsx';
import { ConfirmDialog, Dialog, Empty, ErrorNote, FormActions, PagedTable, Pager, toast } from '../components/ui.tsx';
import { useAsync } from '../lib/hooks.ts';
import type { UserGroup } from '../types.ts';
import { AdminPage } from './admin-users.tsx';

const PAGE_SIZE = 15;

export function AdminGroups() {
  const [page, setPage] = useState(1);
  const list = useAsync((signal) => getPage<UserGroup>('usergroups', { page, page_size: PAGE_SIZE }, signal), [page]);
  const [adding, setAdding] = useState(false);
  const [deleting, setDeleting] = useState<UserGroup>();
  return (
    <AdminPage current="groups">
      <div class="toolbar">
        <span class="muted">Groups from the directory. Add a group to a project as a member to give all its people a role.</span>
        <button type="button" class="btn btn-primary" onClick={() => setAdding(true)}>
          Add LDAP group
        </button>
      </div>
      <PagedTable
        list={list}
        caption="Groups"
        empty={<Empty>No groups yet.</Empty>}
        columns={['Name', 'Distinguished name']}
        actions
        rows={(items) =>
          items.map((g) => (
            <tr key={g.id}>
              <td class="strong">{g.group_name}</td>
              <td>
                <code class="small">{g.ldap_group_dn}</code>
              </td>
              <td class="row-actions">
                <button type="button" class="btn btn-small btn-ghost danger" onClick={() => setDeleting(g)} aria-label={`Delete group ${g.group_name}`}>
                  Delete
                </button>
              </td>
            </tr>
          ))
        }
        pagerAbove={PAGE_SIZE}
        pager={(total) => (
          <Pager page={page} pageSize={PAGE_SIZE} total={total} onPage={setPage} label="Group pages" />
        )}
      />
      {adding && <AddGroup onClose={() => setAdding(false)} onAdded={list.reload} />}
      {deleting && (
        <ConfirmDialog
          title="Delete group"
          confirm="Delete group"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            await send(`usergroups/${deleting.id}`, 'DELETE');
            toast(`${deleting.group_name} deleted`);
            list.reload();
          }}
        >
          <p>
            Delete <strong>{deleting.group_name}</strong>? It is removed from every project it is a member of.
          </p>
        </ConfirmDialog>
      )}
    </AdminPage>
  );
}

function AddGroup({ onClose, onAdded }: { onClose: () => void; onAdded: () => void }) {
  const [text, setText] = useState('');
  const [picked, setPicked] = useState<{ dn: string; name: string }>();
  const [error, setError] = useState<string>();
  const search = useCallback(
    async (q: string, signal: AbortSignal): Promise<Option<{ dn: string; name: string }>[]> =>
      ((await get<{ group_name: string; ldap_group_dn: string }[]>(withQuery('ldap/groups/search', { groupname: q }), signal)) ?? []).map((g) => ({
        key: g.ldap_group_dn,
        label: g.group_name,
        detail: g.ldap_group_dn,
        value: { dn: g.ldap_group_dn, name: g.group_name },
      })),
    [],
  );
  return (
    <Dialog title="Add LDAP group" onClose={onClose}>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          const dn = picked?.dn ?? text.trim();
          if (!dn.includes('=')) return setError('Pick a group from the list, or type its full DN.');
          try {
            await send('usergroups', 'POST', { group_name: picked?.name, ldap_group_dn: dn, group_type: 1 });
            toast(`Group ${picked?.name ?? dn} added`);
            onAdded();
            onClose();
          } catch (err) {
            setError((err as Error).message);
          }
        }}
      >
        <Autocomplete
          label="Group"
          placeholder="Start typing a group name"
          value={picked?.name ?? text}
          onInput={(t) => {
            setText(t);
            setPicked(undefined);
          }}
          onPick={(o) => setPicked(o.value)}
          search={search}
        />
        {picked && <p class="muted small">{picked.dn}</p>}
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} submit="Add group" />
      </form>
    </Dialog>
  );
}
