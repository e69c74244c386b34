// The project's audit log: who pushed, pulled, deleted what, when.
import { useState } from 'preact/hooks';
import { enc, getPage } from '../api.ts';
import { Empty, PagedTable, Pager, SearchBox } from '../components/ui.tsx';
import { ago, dateTime } from '../lib/format.ts';
import { useAsync, useDebounced } from '../lib/hooks.ts';
import type { AuditLog } from '../types.ts';
import type { ProjectCtx } from './project.tsx';

const OPS = ['create', 'pull', 'delete', 'update'];

export function Logs({ ctx }: { ctx: ProjectCtx }) {
  const p = ctx.project;
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(25);
  const [op, setOp] = useState('');
  const [user, setUser] = useState('');
  const u = useDebounced(user.trim(), 300);
  const q = [op && `operation=${op}`, u && `username=~${u}`].filter(Boolean).join(',');
  const list = useAsync((signal) => getPage<AuditLog>(`projects/${enc(p.name)}/logs`, { page, page_size: pageSize, q: q || undefined }, signal), [p.name, page, pageSize, q]);
  return (
    <>
      <div class="toolbar">
        <SearchBox
          label="Filter by user"
          value={user}
          onInput={(v) => {
            setUser(v);
            setPage(1);
          }}
        />
        <label class="inline">
          <span>Operation</span>
          <select
            value={op}
            onChange={(e) => {
              setOp((e.target as HTMLSelectElement).value);
              setPage(1);
            }}
          >
            <option value="">all</option>
            {OPS.map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
        </label>
      </div>
      <PagedTable
        list={list}
        caption={<>Audit log of {p.name}</>}
        empty={<Empty>No log entries{q ? ' match' : ' yet'}.</Empty>}
        columns={['When', 'User', 'Operation', 'Resource', 'Type']}
        rows={(items) =>
          items.map((l) => (
            <tr key={l.id}>
              <td title={dateTime(l.op_time)}>{ago(l.op_time)}</td>
              <td>{l.username}</td>
              <td>
                <span class={`op op-${l.operation}`}>{l.operation}</span>
              </td>
              <td class="clip">
                <code class="small">{l.resource}</code>
              </td>
              <td>{l.resource_type}</td>
            </tr>
          ))
        }
        pager={(total) => (
          <Pager
          page={page}
          pageSize={pageSize}
          total={total}
          onPage={setPage}
          onPageSize={(n) => {
            setPageSize(n);
            setPage(1);
          }}
          label="Log pages"
        />
        )}
      />
    </>
  );
}
