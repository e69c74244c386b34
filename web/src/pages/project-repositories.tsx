// The repositories of a project: filter, page, delete (where the role allows).
import { useState } from 'preact/hooks';
import { enc, getPage, repoInProject, repoPath, send } from '../api.ts';
import { ConfirmDialog, Empty, Link, PagedTable, Pager, SearchBox, toast } from '../components/ui.tsx';
import { ago, plural } from '../lib/format.ts';
import { useAsync, useDebounced } from '../lib/hooks.ts';
import { setQuery, useLocation } from '../lib/router.ts';
import { registryHost } from '../session.ts';
import type { Repository } from '../types.ts';
import type { ProjectCtx } from './project.tsx';

/** The orders the list offers (Harbor's `sort`; each pages by index on the server, at any depth). */
const SORTS = [
  { value: 'name', label: 'Name' },
  { value: '-update_time', label: 'Recently updated' },
  { value: '-pull_count', label: 'Most pulled' },
  { value: '-creation_time', label: 'Newest' },
];

export function Repositories({ ctx }: { ctx: ProjectCtx }) {
  const p = ctx.project;
  const loc = useLocation();
  const page = Number(loc.query.get('page') ?? 1) || 1;
  const pageSize = Number(loc.query.get('page_size') ?? 15) || 15;
  const sort = SORTS.find((s) => s.value === loc.query.get('sort'))?.value ?? 'name';
  const [name, setName] = useState(loc.query.get('q') ?? '');
  const q = useDebounced(name.trim(), 250);
  const list = useAsync(
    (signal) => getPage<Repository>(`projects/${enc(p.name)}/repositories`, { page, page_size: pageSize, q: q ? `name=~${q}` : undefined, sort }, signal),
    [p.name, page, pageSize, q, sort],
  );
  const [deleting, setDeleting] = useState<Repository>();
  const mayDelete = ctx.can('repository', 'delete');

  return (
    <>
      <div class="toolbar">
        <SearchBox
          label="Filter repositories by name"
          value={name}
          onInput={(v) => {
            setName(v);
            setQuery({ q: v || undefined, page: undefined });
          }}
        />
        <label class="inline">
          <span>Sort by</span>
          <select value={sort} onChange={(e) => setQuery({ sort: (e.target as HTMLSelectElement).value === 'name' ? undefined : (e.target as HTMLSelectElement).value, page: undefined })}>
            {SORTS.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <PagedTable
        list={list}
        caption={<>Repositories of {p.name}</>}
        empty={
          q ? (
            <Empty>No repository matches “{q}”.</Empty>
          ) : p.registry_id ? (
            <Empty>
              <p>Nothing cached yet. This project is a proxy cache: pull through it, and Berth fetches the image from its registry endpoint once and keeps a copy.</p>
              <pre class="code">{`docker login ${registryHost()}\ndocker pull ${registryHost()}/${p.name}/library/alpine:3.20`}</pre>
            </Empty>
          ) : (
            <Empty>
              <p>No repositories yet. Push one:</p>
              <pre class="code">{`docker login ${registryHost()}\ndocker tag my-image ${registryHost()}/${p.name}/my-image:1.0\ndocker push ${registryHost()}/${p.name}/my-image:1.0`}</pre>
            </Empty>
          )
        }
        columns={['Name', { num: 'Artifacts' }, { num: 'Pulls' }, 'Last modified']}
        actions
        rows={(items) =>
          items.map((r) => {
            const short = repoInProject(r.name, p.name);
            return (
              <tr key={r.id ?? r.name}>
                <td>
                  <Link href={`/projects/${p.project_id}/repositories/${short}`} class="strong">
                    {r.name}
                  </Link>
                  {r.description && <div class="muted small clip">{r.description}</div>}
                </td>
                <td class="num">{(r.artifact_count ?? 0).toLocaleString()}</td>
                <td class="num">{(r.pull_count ?? 0).toLocaleString()}</td>
                <td title={r.update_time}>{ago(r.update_time)}</td>
                <td class="row-actions">
                  {mayDelete && (
                    <button type="button" class="btn btn-small btn-ghost danger" aria-label={`Delete repository ${r.name}`} onClick={() => setDeleting(r)}>
                      Delete
                    </button>
                  )}
                </td>
              </tr>
            );
          })
        }
        pager={(total) => (
          <Pager page={page} pageSize={pageSize} total={total} onPage={(n) => setQuery({ page: n })} onPageSize={(n) => setQuery({ page_size: n, page: undefined })} label="Repository pages" />
        )}
      />
      {deleting && (
        <ConfirmDialog
          title="Delete repository"
          confirm="Delete repository"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            await send(repoPath(p.name, repoInProject(deleting.name, p.name)), 'DELETE');
            toast(`Repository ${deleting.name} deleted`);
            list.reload();
          }}
        >
          <p>
            Delete <strong>{deleting.name}</strong> {contents(deleting.artifact_count)}? Anyone pulling from it will get “not found”.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

/** "with its 1 artifact and its tags", "with all 3 artifacts and their tags" (the delete dialog). */
export function contents(artifacts: number | undefined): string {
  if (artifacts === undefined) return 'with all its artifacts and tags';
  if (artifacts === 0) return '(it holds no artifacts)';
  if (artifacts === 1) return 'with its 1 artifact and its tags';
  return `with all ${plural(artifacts, 'artifact')} and their tags`;
}
