// Administration: replication (Harbor's /replication/policies and /replication/executions).
// Policies copy images between this Berth and a registry endpoint, push-based (Berth → endpoint)
// or pull-based (endpoint → Berth), by hand, on a schedule or on every push. Each run is an
// execution with one task per artifact; the list refreshes itself while one is in progress, and
// an execution's tasks and each task's log open in a dialog.
import { useEffect, useState } from 'preact/hooks';
import { API, getPage, request, send } from '../api.ts';
import { Badge, ConfirmDialog, Dialog, Empty, ErrorNote, Link, PagedTable, Pager, Spinner, toast } from '../components/ui.tsx';
import { ago, dateTime, plural } from '../lib/format.ts';
import { useAsync } from '../lib/hooks.ts';
import type { RegistryEndpoint, ReplicationExecution, ReplicationPolicy, ReplicationTask } from '../types.ts';
import { typeShort } from './admin-registries.tsx';
import { AdminPage } from './admin-users.tsx';

const PAGE_SIZE = 10;
const TASK_PAGE_SIZE = 15;
const POLL_MS = 2000;

const TRIGGERS: { type: string; label: string }[] = [
  { type: 'manual', label: 'Manual' },
  { type: 'scheduled', label: 'Scheduled' },
  { type: 'event_based', label: 'Event based (on every push and delete here)' },
];
const triggerText = (t?: string) => (t === 'scheduled' ? 'scheduled' : t === 'event_based' ? 'on push' : t === 'manual' ? 'manual' : (t ?? '—'));

/** What dest_namespace_replace_count does to team/tools/app with namespace "prod". */
const FLATTENING: { value: number; label: string }[] = [
  { value: 1, label: 'Replace 1 level (team/tools/app → prod/tools/app)' },
  { value: 0, label: 'No flattening (team/tools/app → prod/team/tools/app)' },
  { value: 2, label: 'Replace 2 levels (team/tools/app → prod/app)' },
  { value: -1, label: 'Flatten all levels (team/tools/app → prod/app)' },
];

/** A policy is push-based when its source is this Berth (registry id 0, or none). */
const isPush = (p: ReplicationPolicy) => !p.src_registry?.id;
const remoteOf = (p: ReplicationPolicy) => (isPush(p) ? p.dest_registry : p.src_registry);

const active = (e: ReplicationExecution) => e.status === 'InProgress';

function filterText(p: ReplicationPolicy): string {
  const parts = (p.filters ?? [])
    .filter((f) => f.value !== '' && f.type !== 'resource')
    .map((f) => `${f.type} ${f.decoration === 'excludes' ? 'not ' : ''}${f.value}`);
  return parts.length ? parts.join(', ') : 'everything';
}

export function StatusBadge({ status }: { status: string }) {
  const kind = status === 'Succeed' ? 'ok' : status === 'Failed' ? 'warn' : status === 'Stopped' ? 'plain' : status === 'Pending' ? 'muted' : 'info';
  const text = status === 'Succeed' ? 'Succeeded' : status === 'InProgress' ? 'In progress' : status;
  return <Badge kind={kind}>{text}</Badge>;
}

/** "3 of 5 done: 2 succeeded, 1 failed" with a bar, from an execution's counts. */
function ExecutionProgress({ e }: { e: ReplicationExecution }) {
  const total = e.total ?? 0;
  const done = (e.succeed ?? 0) + (e.failed ?? 0) + (e.stopped ?? 0);
  const words = [`${(e.succeed ?? 0).toLocaleString()} succeeded`, `${(e.failed ?? 0).toLocaleString()} failed`];
  if (e.stopped) words.push(`${e.stopped.toLocaleString()} stopped`);
  if (e.in_progress) words.push(`${e.in_progress.toLocaleString()} running`);
  return (
    <div class="stack tight">
      {total > 0 && <progress max={total} value={done} aria-label={`Progress of execution ${e.id}`} />}
      <small class="muted">{total === 0 ? (active(e) ? 'finding what to copy…' : 'nothing to copy') : `${done.toLocaleString()} of ${plural(total, 'task')} done: ${words.join(', ')}`}</small>
    </div>
  );
}

export function AdminReplications() {
  const policies = useAsync((signal) => getPage<ReplicationPolicy>('replication/policies', { page: 1, page_size: 100 }, signal), []);
  const registries = useAsync((signal) => getPage<RegistryEndpoint>('registries', { page: 1, page_size: 100 }, signal), []);
  const [editing, setEditing] = useState<ReplicationPolicy | 'new'>();
  const [deleting, setDeleting] = useState<ReplicationPolicy>();
  const [policyFilter, setPolicyFilter] = useState<number>();
  const [page, setPage] = useState(1);
  const loadExecutions = (signal: AbortSignal) => getPage<ReplicationExecution>('replication/executions', { page, page_size: PAGE_SIZE, policy_id: policyFilter }, signal);
  const executions = useAsync(loadExecutions, [page, policyFilter]);
  const [open, setOpen] = useState<number>();
  const [starting, setStarting] = useState<number>();

  // While an execution runs, refresh quietly every couple of seconds.
  const busy = executions.data?.items.some(active) ?? false;
  useEffect(() => {
    if (!busy) return;
    const ctl = new AbortController();
    const t = setTimeout(() => loadExecutions(ctl.signal).then(executions.set, (e: Error) => e.name !== 'AbortError' && executions.reload()), POLL_MS);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [executions.data, page, policyFilter]);

  async function runNow(p: ReplicationPolicy) {
    setStarting(p.id);
    try {
      await send('replication/executions', 'POST', { policy_id: p.id });
      toast(`Replication ${p.name} started`);
      if (page === 1) executions.reload();
      else setPage(1);
    } catch (e) {
      toast((e as Error).message, 'error');
    } finally {
      setStarting(undefined);
    }
  }

  async function stop(e: ReplicationExecution) {
    try {
      await send(`replication/executions/${e.id}`, 'PUT');
      toast(`Stopping execution ${e.id}`);
      executions.reload();
    } catch (err) {
      toast((err as Error).message, 'error');
    }
  }

  const policyName = (id: number) => policies.data?.items.find((p) => p.id === id)?.name ?? `policy ${id}`;
  const noEndpoints = registries.data && registries.data.items.length === 0;

  return (
    <AdminPage current="replications">
      <p class="muted">
        Replication copies images between this Berth and another registry, digest for digest (signatures and other referrers go along): push-based to a
        registry endpoint, or pull-based from one into a project here.
      </p>
      <section class="page-section" aria-labelledby="repl-policies-h">
        <div class="section-head">
          <h2 id="repl-policies-h">Policies</h2>
          <button type="button" class="btn btn-primary" disabled={!!noEndpoints} onClick={() => setEditing('new')}>
            New policy
          </button>
        </div>
        {noEndpoints && (
          <p class="note note-warn">
            <span>
              A policy copies to or from a registry endpoint: add one under <Link href="/admin/registries">Registries</Link> first.
            </span>
          </p>
        )}
        <PagedTable
          list={policies}
          caption="Replication policies"
          empty={<Empty>No replication policies yet.</Empty>}
          columns={['Name', 'Enabled', 'Direction', 'Filters', 'Destination namespace', 'Trigger', 'Updated']}
          actions
          rows={(items) =>
            items.map((p) => {
              const remote = remoteOf(p);
              return (
                <tr key={p.id}>
                  <td class="strong">
                    {p.name}
                    {p.description && (
                      <small class="muted" style={{ display: 'block', fontWeight: 'normal' }}>
                        {p.description}
                      </small>
                    )}
                  </td>
                  <td>{p.enabled === false ? <Badge kind="muted">disabled</Badge> : <Badge kind="ok">enabled</Badge>}</td>
                  <td>
                    {isPush(p) ? 'push to ' : 'pull from '}
                    <strong>{remote?.name || 'a deleted endpoint'}</strong>
                    {remote?.type && <small class="muted"> ({typeShort(remote.type)})</small>}
                  </td>
                  <td>
                    <code>{filterText(p)}</code>
                  </td>
                  <td>{p.dest_namespace ? <code>{p.dest_namespace}</code> : <span class="muted">same name</span>}</td>
                  <td>
                    {triggerText(p.trigger?.type)}
                    {p.trigger?.type === 'scheduled' && p.trigger.trigger_settings?.cron && (
                      <small class="muted" style={{ display: 'block' }}>
                        <code>{p.trigger.trigger_settings.cron}</code>
                      </small>
                    )}
                  </td>
                  <td title={dateTime(p.update_time)}>{ago(p.update_time)}</td>
                  <td class="row-actions">
                    <button type="button" class="btn btn-small" disabled={starting === p.id} onClick={() => void runNow(p)} aria-label={`Run policy ${p.name} now`}>
                      {starting === p.id ? 'Starting…' : 'Run now'}
                    </button>
                    <button type="button" class="btn btn-small btn-ghost" onClick={() => setEditing(p)} aria-label={`Edit policy ${p.name}`}>
                      Edit
                    </button>
                    <button type="button" class="btn btn-small btn-ghost danger" onClick={() => setDeleting(p)} aria-label={`Delete policy ${p.name}`}>
                      Delete
                    </button>
                  </td>
                </tr>
              );
            })
          }
        />
      </section>

      <section class="page-section" aria-labelledby="repl-exec-h">
        <div class="section-head">
          <h2 id="repl-exec-h">Executions</h2>
          <label class="inline">
            <span>Policy</span>
            <select
              value={policyFilter ? String(policyFilter) : ''}
              onChange={(e) => {
                setPolicyFilter(Number((e.target as HTMLSelectElement).value) || undefined);
                setPage(1);
              }}
            >
              <option value="">All policies</option>
              {(policies.data?.items ?? []).map((p) => (
                <option key={p.id} value={String(p.id)}>
                  {p.name}
                </option>
              ))}
            </select>
          </label>
        </div>
        <PagedTable
          list={executions}
          caption="Replication executions"
          empty={<Empty>No replication has run yet{policyFilter ? ' for this policy' : ''}.</Empty>}
          columns={['Execution', 'Policy', 'Status', 'Trigger', 'Progress', 'Started', 'Ended']}
          actions
          rows={(items) =>
            items.map((e) => (
              <tr key={e.id}>
                <td class="strong">{e.id}</td>
                <td>{policyName(e.policy_id)}</td>
                <td>
                  <StatusBadge status={e.status} />
                  {e.status_text && e.status === 'Failed' && (
                    <small class="muted" style={{ display: 'block' }}>
                      {e.status_text}
                    </small>
                  )}
                </td>
                <td>{triggerText(e.trigger)}</td>
                <td>
                  <ExecutionProgress e={e} />
                </td>
                <td title={dateTime(e.start_time)}>{ago(e.start_time)}</td>
                <td title={dateTime(e.end_time)}>{active(e) || !e.end_time ? '—' : ago(e.end_time)}</td>
                <td class="row-actions">
                  <button type="button" class="btn btn-small btn-ghost" onClick={() => setOpen(e.id)} aria-label={`Tasks of execution ${e.id}`}>
                    Tasks
                  </button>
                  {active(e) && (
                    <button type="button" class="btn btn-small btn-ghost danger" onClick={() => void stop(e)} aria-label={`Stop execution ${e.id}`}>
                      Stop
                    </button>
                  )}
                </td>
              </tr>
            ))
          }
          pagerAbove={PAGE_SIZE}
          pager={(total) => <Pager page={page} pageSize={PAGE_SIZE} total={total} onPage={setPage} label="Execution pages" />}
        />
      </section>

      {editing && (
        <PolicyForm
          policy={editing === 'new' ? undefined : editing}
          endpoints={registries.data?.items ?? []}
          onClose={() => setEditing(undefined)}
          onSaved={policies.reload}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title="Delete replication policy"
          confirm="Delete policy"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            await send(`replication/policies/${deleting.id}`, 'DELETE');
            toast(`Policy ${deleting.name} deleted`);
            policies.reload();
            executions.reload();
          }}
        >
          <p>
            Delete <strong>{deleting.name}</strong> with its executions and their logs? What it copied stays where it is.
          </p>
        </ConfirmDialog>
      )}
      {open !== undefined && <ExecutionDialog id={open} policyName={policyName} onClose={() => setOpen(undefined)} onChanged={executions.reload} />}
    </AdminPage>
  );
}

interface Form {
  name: string;
  description: string;
  push: boolean;
  registryId: number | undefined;
  nameFilter: string;
  tagFilter: string;
  tagExcludes: boolean;
  namespace: string;
  flattening: number;
  trigger: string;
  cron: string;
  deletion: boolean;
  override: boolean;
  enabled: boolean;
  speed: string;
}

function formOf(p: ReplicationPolicy | undefined, endpoints: RegistryEndpoint[]): Form {
  const push = p ? isPush(p) : true;
  const f = (type: string) => p?.filters?.find((x) => x.type === type);
  return {
    name: p?.name ?? '',
    description: p?.description ?? '',
    push,
    registryId: (p ? remoteOf(p)?.id : endpoints[0]?.id) || undefined,
    nameFilter: f('name')?.value ?? '',
    tagFilter: f('tag')?.value ?? '',
    tagExcludes: f('tag')?.decoration === 'excludes',
    namespace: p?.dest_namespace ?? '',
    flattening: p?.dest_namespace_replace_count ?? 1,
    trigger: p?.trigger?.type ?? 'manual',
    cron: p?.trigger?.trigger_settings?.cron ?? '',
    deletion: p?.replicate_deletion ?? false,
    override: p?.override ?? true,
    enabled: p?.enabled ?? true,
    speed: p?.speed && p.speed > 0 ? String(p.speed) : '',
  };
}

function PolicyForm({ policy, endpoints, onClose, onSaved }: { policy?: ReplicationPolicy; endpoints: RegistryEndpoint[]; onClose: () => void; onSaved: () => void }) {
  const [f, setF] = useState<Form>(() => formOf(policy, endpoints));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const set = (patch: Partial<Form>) => setF({ ...f, ...patch });
  const remote = endpoints.find((r) => r.id === f.registryId);

  async function save(e: Event) {
    e.preventDefault();
    if (!f.name.trim()) return setError('Give the policy a name.');
    if (!f.registryId) return setError(f.push ? 'Choose the destination registry.' : 'Choose the source registry.');
    const cron = f.cron.trim().replace(/\s+/g, ' ');
    if (f.trigger === 'scheduled' && cron.split(' ').length !== 6) return setError('A cron expression has six fields: second, minute, hour, day of month, month, day of week.');
    const speed = f.speed.trim() ? Number(f.speed) : -1;
    if (!Number.isInteger(speed) || speed < -1) return setError('The bandwidth limit is a whole number of KB/s (empty: no limit).');
    setBusy(true);
    setError(undefined);
    const body = {
      name: f.name.trim(),
      description: f.description,
      src_registry: f.push ? { id: 0 } : { id: f.registryId },
      dest_registry: f.push ? { id: f.registryId } : { id: 0 },
      dest_namespace: f.namespace.trim(),
      dest_namespace_replace_count: f.flattening,
      trigger: { type: f.trigger, trigger_settings: { cron: f.trigger === 'scheduled' ? cron : '' } },
      filters: [
        { type: 'name', value: f.nameFilter.trim(), decoration: 'matches' },
        { type: 'tag', value: f.tagFilter.trim(), decoration: f.tagExcludes ? 'excludes' : 'matches' },
      ].filter((x) => x.value !== ''),
      replicate_deletion: f.push && f.deletion,
      override: f.override,
      enabled: f.enabled,
      speed,
    };
    try {
      if (policy) await send(`replication/policies/${policy.id}`, 'PUT', body);
      else await send('replication/policies', 'POST', body);
      toast(`Policy ${body.name} ${policy ? 'saved' : 'created'}`);
      onSaved();
      onClose();
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }

  return (
    <Dialog title={policy ? 'Edit replication policy' : 'New replication policy'} onClose={onClose} wide>
      <form class="stack" onSubmit={save}>
        <div class="grid2">
          <label class="field">
            <span>Name</span>
            <input name="name" autocomplete="off" value={f.name} autofocus onInput={(e) => set({ name: (e.target as HTMLInputElement).value })} />
          </label>
          <label class="field">
            <span>Description</span>
            <input name="description" autocomplete="off" value={f.description} onInput={(e) => set({ description: (e.target as HTMLInputElement).value })} />
          </label>
        </div>
        <fieldset class="field">
          <legend>Replication mode</legend>
          <label class="choice">
            <input type="radio" name="mode" checked={f.push} onChange={() => set({ push: true })} />
            <span>
              <strong>Push-based</strong> — copy images from this Berth to another registry
            </span>
          </label>
          <label class="choice">
            <input
              type="radio"
              name="mode"
              checked={!f.push}
              onChange={() => set({ push: false, trigger: f.trigger === 'event_based' ? 'manual' : f.trigger, deletion: false })}
            />
            <span>
              <strong>Pull-based</strong> — copy images from another registry into this Berth
            </span>
          </label>
        </fieldset>
        <div class="field">
          <label for="repl-registry">{f.push ? 'Destination registry' : 'Source registry'}</label>
          <select id="repl-registry" name="registry" value={f.registryId ? String(f.registryId) : ''} onChange={(e) => set({ registryId: Number((e.target as HTMLSelectElement).value) || undefined })}>
            {!f.registryId && <option value="">Choose a registry endpoint</option>}
            {endpoints.map((r) => (
              <option key={r.id} value={String(r.id)}>
                {r.name} ({r.url})
              </option>
            ))}
          </select>
        </div>
        <div class="grid2">
          <div class="field">
            <label for="repl-name-filter">Name filter</label>
            <input
              id="repl-name-filter"
              name="name_filter"
              autocomplete="off"
              placeholder={f.push ? 'myproject/**' : 'library/**'}
              value={f.nameFilter}
              aria-describedby="repl-name-filter-help"
              onInput={(e) => set({ nameFilter: (e.target as HTMLInputElement).value })}
            />
            <small id="repl-name-filter-help" class="muted">
              Repositories by full name: <code>*</code> within one level, <code>**</code> across levels, <code>{'{a,b}'}</code> either. Empty: all
              {f.push ? ' repositories here' : ` repositories of ${remote?.name ?? 'the registry'}`}.
            </small>
          </div>
          <div class="field">
            <label for="repl-tag-filter">Tag filter</label>
            <div class="row tight">
              <select aria-label="Tag filter mode" value={f.tagExcludes ? 'excludes' : 'matches'} onChange={(e) => set({ tagExcludes: (e.target as HTMLSelectElement).value === 'excludes' })}>
                <option value="matches">matching</option>
                <option value="excludes">excluding</option>
              </select>
              <input
                id="repl-tag-filter"
                name="tag_filter"
                autocomplete="off"
                placeholder="v*"
                value={f.tagFilter}
                aria-describedby="repl-tag-filter-help"
                onInput={(e) => set({ tagFilter: (e.target as HTMLInputElement).value })}
              />
            </div>
            <small id="repl-tag-filter-help" class="muted">
              <code>v*</code>, <code>{'{1.0,latest}'}</code>. Empty: every tag, and untagged artifacts too.
            </small>
          </div>
        </div>
        <div class="grid2">
          <div class="field">
            <label for="repl-namespace">Destination namespace</label>
            <input
              id="repl-namespace"
              name="dest_namespace"
              autocomplete="off"
              placeholder="keep the names"
              value={f.namespace}
              onInput={(e) => set({ namespace: (e.target as HTMLInputElement).value })}
            />
          </div>
          <div class="field">
            <label for="repl-flattening">Flattening</label>
            <select id="repl-flattening" name="flattening" value={String(f.flattening)} disabled={!f.namespace.trim()} onChange={(e) => set({ flattening: Number((e.target as HTMLSelectElement).value) })}>
              {[...FLATTENING, ...(FLATTENING.some((x) => x.value === f.flattening) ? [] : [{ value: f.flattening, label: `Replace ${f.flattening} levels` }])].map((x) => (
                <option key={x.value} value={String(x.value)}>
                  {x.label.replace(/prod/g, f.namespace.trim() || 'prod')}
                </option>
              ))}
            </select>
          </div>
        </div>
        {!f.push && <small class="muted">Pull-based copies land in the project named by the first part of the destination name; a missing project is created.</small>}
        <div class="grid2">
          <div class="field">
            <label for="repl-trigger">Trigger</label>
            <select id="repl-trigger" name="trigger" value={f.trigger} onChange={(e) => set({ trigger: (e.target as HTMLSelectElement).value })}>
              {TRIGGERS.filter((t) => f.push || t.type !== 'event_based').map((t) => (
                <option key={t.type} value={t.type}>
                  {t.label}
                </option>
              ))}
            </select>
          </div>
          {f.trigger === 'scheduled' && (
            <div class="field">
              <label for="repl-cron">Cron expression</label>
              <input id="repl-cron" name="cron" autocomplete="off" placeholder="0 0 3 * * *" value={f.cron} aria-describedby="repl-cron-help" onInput={(e) => set({ cron: (e.target as HTMLInputElement).value })} />
              <small id="repl-cron-help" class="muted">
                Six fields: second minute hour day-of-month month day-of-week. <code>0 0 3 * * *</code> is every day at 03:00.
              </small>
            </div>
          )}
        </div>
        <div class="field">
          <label for="repl-speed">Bandwidth limit (KB/s)</label>
          <input id="repl-speed" name="speed" type="number" min="0" placeholder="no limit" value={f.speed} style={{ maxWidth: '12em' }} onInput={(e) => set({ speed: (e.target as HTMLInputElement).value })} />
        </div>
        <div class="checks">
          {f.push && (
            <label class="choice">
              <input type="checkbox" name="replicate_deletion" checked={f.deletion} onChange={(e) => set({ deletion: (e.target as HTMLInputElement).checked })} />
              <span>Delete at the destination what is deleted here</span>
            </label>
          )}
          <label class="choice">
            <input type="checkbox" name="override" checked={f.override} onChange={(e) => set({ override: (e.target as HTMLInputElement).checked })} />
            <span>Overwrite tags that already exist at the destination</span>
          </label>
          <label class="choice">
            <input type="checkbox" name="enabled" checked={f.enabled} onChange={(e) => set({ enabled: (e.target as HTMLInputElement).checked })} />
            <span>Enabled (scheduled and event-based runs happen)</span>
          </label>
        </div>
        <ErrorNote error={error} />
        <div class="actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={busy}>
            {busy ? 'Saving…' : policy ? 'Save' : 'Create policy'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function ExecutionDialog({ id, policyName, onClose, onChanged }: { id: number; policyName: (id: number) => string; onClose: () => void; onChanged: () => void }) {
  const [page, setPage] = useState(1);
  const load = async (signal: AbortSignal) => {
    const [execution, tasks] = await Promise.all([
      request(`replication/executions/${id}`, { signal }).then((r) => r.json() as Promise<ReplicationExecution>),
      getPage<ReplicationTask>(`replication/executions/${id}/tasks`, { page, page_size: TASK_PAGE_SIZE }, signal),
    ]);
    return { execution, tasks };
  };
  const data = useAsync(load, [id, page]);
  const [log, setLog] = useState<ReplicationTask>();
  const running = data.data ? active(data.data.execution) : false;
  useEffect(() => {
    if (!running) return;
    const ctl = new AbortController();
    const t = setTimeout(() => load(ctl.signal).then(data.set, (e: Error) => e.name !== 'AbortError' && data.reload()), POLL_MS);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [data.data, page]);
  // The list behind catches up when this execution ends.
  useEffect(() => {
    if (data.data && !running) onChanged();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [running]);

  const e = data.data?.execution;
  const tasks = { data: data.data?.tasks, error: data.error, loading: data.loading, reload: data.reload };
  return (
    <Dialog title={`Execution ${id}`} onClose={onClose} wide>
      <div class="stack">
        {!e ? (
          data.error ? <ErrorNote error={data.error} onRetry={data.reload} /> : <Spinner />
        ) : (
          <>
            <p>
              <strong>{policyName(e.policy_id)}</strong>, {triggerText(e.trigger)}, started {ago(e.start_time)}: <StatusBadge status={e.status} />
            </p>
            {e.status_text && <p class="muted small">{e.status_text}</p>}
            <ExecutionProgress e={e} />
            <PagedTable
              list={tasks}
              caption={`Tasks of execution ${id}`}
              empty={<Empty>No tasks{running ? ' yet' : ''}.</Empty>}
              columns={['Task', 'Artifact', 'Operation', 'Status', 'Started', 'Ended']}
              actions
              rows={(items) =>
                items.map((t) => (
                  <tr key={t.id}>
                    <td>{t.id}</td>
                    <td>
                      <code>{t.src_resource}</code>
                      {t.dst_resource && t.dst_resource !== t.src_resource && (
                        <>
                          {' → '}
                          <code>{t.dst_resource}</code>
                        </>
                      )}
                    </td>
                    <td>{t.operation}</td>
                    <td>
                      <StatusBadge status={t.status} />
                    </td>
                    <td title={dateTime(t.start_time)}>{t.start_time ? ago(t.start_time) : '—'}</td>
                    <td title={dateTime(t.end_time)}>{t.end_time ? ago(t.end_time) : '—'}</td>
                    <td class="row-actions">
                      <button type="button" class="btn btn-small btn-ghost" aria-pressed={log?.id === t.id} onClick={() => setLog(log?.id === t.id ? undefined : t)} aria-label={`Log of task ${t.id}`}>
                        Log
                      </button>
                    </td>
                  </tr>
                ))
              }
              pagerAbove={TASK_PAGE_SIZE}
              pager={(total) => <Pager page={page} pageSize={TASK_PAGE_SIZE} total={total} onPage={setPage} label="Task pages" />}
            />
            {log && <TaskLog executionId={id} task={log} running={running} />}
          </>
        )}
        <div class="actions">
          <button type="button" class="btn" onClick={onClose}>
            Close
          </button>
        </div>
      </div>
    </Dialog>
  );
}

function TaskLog({ executionId, task, running }: { executionId: number; task: ReplicationTask; running: boolean }) {
  const path = `replication/executions/${executionId}/tasks/${task.id}/log`;
  const log = useAsync(async (signal) => (await request(path, { signal })).text(), [executionId, task.id]);
  // A running task's log grows: read it again while the execution runs.
  useEffect(() => {
    if (!running || log.loading) return;
    const t = setTimeout(log.reload, POLL_MS);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [running, log.data, log.loading]);
  return (
    <section class="stack tight" aria-labelledby="task-log-h">
      <div class="section-head">
        <h3 id="task-log-h">
          Log of task {task.id} <small class="muted">({task.src_resource})</small>
        </h3>
        <a class="btn btn-small" href={`${API}/${path}`} target="_blank" rel="noopener">
          Open as text
        </a>
      </div>
      <ErrorNote error={log.error} onRetry={log.reload} />
      {log.data === undefined ? (
        !log.error && <Spinner />
      ) : (
        <pre class="code log" tabIndex={0} aria-label={`Log of task ${task.id}`}>
          {log.data || '(empty)'}
        </pre>
      )}
    </section>
  );
}
