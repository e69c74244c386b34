// Tag immutability of a project (Harbor's immutable tag rules): list, add, enable/disable, delete.
// A tag a rule matches, in a repository its scope matches, can never be overwritten or deleted.
import { useState } from 'preact/hooks';
import { enc, getPage, send } from '../api.ts';
import { Badge, ConfirmDialog, Dialog, Empty, ErrorNote, FormActions, PagedTable, toast } from '../components/ui.tsx';
import { useAsync } from '../lib/hooks.ts';
import { SelectorFields, type SelectorValues } from '../components/selector-fields.tsx';
import type { ProjectCtx } from './project.tsx';

interface Selector {
  kind: string;
  decoration: string;
  pattern: string;
}

interface ImmutableRule {
  id: number;
  priority: number;
  disabled: boolean;
  action: string;
  template: string;
  tag_selectors: Selector[];
  scope_selectors: { repository?: Selector[] };
}

/** Harbor's limit of rules per project. */
const MAX_RULES = 15;

function describe(list: Selector[] | undefined, kind: 'tags' | 'repositories'): string {
  return (list ?? []).map((s) => `${/xcludes$/.test(s.decoration) ? 'excluding' : 'matching'} ${s.pattern}`).join(', ') || `all ${kind}`;
}

export function Immutability({ ctx }: { ctx: ProjectCtx }) {
  const p = ctx.project;
  const path = `projects/${enc(p.name)}/immutabletagrules`;
  const list = useAsync((signal) => getPage<ImmutableRule>(path, { page: 1, page_size: MAX_RULES }, signal), [path]);
  const [adding, setAdding] = useState(false);
  const [deleting, setDeleting] = useState<ImmutableRule>();
  const mayCreate = ctx.can('immutable-tag', 'create');
  const mayUpdate = ctx.can('immutable-tag', 'update');
  const mayDelete = ctx.can('immutable-tag', 'delete');
  const full = (list.data?.total ?? 0) >= MAX_RULES;

  async function toggle(r: ImmutableRule) {
    try {
      await send(`${path}/${r.id}`, 'PUT', { ...r, disabled: !r.disabled });
      toast(`Rule ${r.disabled ? 'enabled' : 'disabled'}`);
      list.reload();
    } catch (e) {
      toast((e as Error).message, 'error');
    }
  }

  return (
    <>
      <div class="toolbar">
        <span class="muted">Tags matched by an enabled rule can never be overwritten or deleted once pushed (at most {MAX_RULES} rules).</span>
        {mayCreate && (
          <button type="button" class="btn btn-primary" disabled={full} onClick={() => setAdding(true)}>
            Add rule
          </button>
        )}
      </div>
      <PagedTable
        list={list}
        caption={<>Tag immutability rules of {p.name}</>}
        empty={<Empty>No immutability rules: every tag can be overwritten and deleted.</Empty>}
        columns={['Repositories', 'Tags', 'Status']}
        actions
        rows={(items) =>
          items.map((r) => (
            <tr key={r.id} data-testid="immutable-rule">
              <td>{describe(r.scope_selectors.repository, 'repositories')}</td>
              <td>{describe(r.tag_selectors, 'tags')}</td>
              <td>{r.disabled ? <Badge kind="muted">disabled</Badge> : <Badge kind="ok">enabled</Badge>}</td>
              <td class="row-actions">
                {mayUpdate && (
                  <button type="button" class="btn btn-small btn-ghost" onClick={() => void toggle(r)} aria-label={`${r.disabled ? 'Enable' : 'Disable'} rule ${r.id}`}>
                    {r.disabled ? 'Enable' : 'Disable'}
                  </button>
                )}
                {mayDelete && (
                  <button type="button" class="btn btn-small btn-ghost danger" onClick={() => setDeleting(r)} aria-label={`Delete rule ${r.id}`}>
                    Delete
                  </button>
                )}
              </td>
            </tr>
          ))
        }
      />
      {adding && (
        <AddRule
          path={path}
          onClose={() => setAdding(false)}
          onAdded={() => {
            setAdding(false);
            toast('Rule added');
            list.reload();
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title="Delete rule"
          confirm="Delete"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            await send(`${path}/${deleting.id}`, 'DELETE');
            toast('Rule deleted');
            list.reload();
          }}
        >
          <p>
            Delete the rule for tags {describe(deleting.tag_selectors, 'tags')} in {describe(deleting.scope_selectors.repository, 'repositories')}? Those tags can be overwritten and deleted again.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

function AddRule({ path, onClose, onAdded }: { path: string; onClose: () => void; onAdded: () => void }) {
  const [sel, setSel] = useState<SelectorValues>({ repoDecoration: 'repoMatches', repoPattern: '**', tagDecoration: 'matches', tagPattern: '' });
  const { repoDecoration, repoPattern, tagDecoration, tagPattern } = sel;
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setError(undefined);
    if (!repoPattern.trim() || !tagPattern.trim()) return setError('Give a pattern for repositories and one for tags (** for all).');
    setBusy(true);
    try {
      await send(path, 'POST', {
        disabled: false,
        action: 'immutable',
        template: 'immutable_template',
        params: {},
        priority: 0,
        tag_selectors: [{ kind: 'doublestar', decoration: tagDecoration, pattern: tagPattern.trim() }],
        scope_selectors: { repository: [{ kind: 'doublestar', decoration: repoDecoration, pattern: repoPattern.trim() }] },
      });
      onAdded();
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }

  return (
    <Dialog title="Add tag immutability rule" onClose={onClose}>
      <form class="stack" onSubmit={submit}>
        <SelectorFields value={sel} onChange={setSel} tagPlaceholder="v*" focusTags />
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} busy={busy} submit={busy ? 'Adding…' : 'Add rule'} />
      </form>
    </Dialog>
  );
}
