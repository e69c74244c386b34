// Tag retention of a project (Harbor's retention policy): the rules that say which artifacts to keep,
// a schedule, dry runs and real runs, and each run's repositories with their logs. Every artifact of
// a repository the rules cover that no rule keeps is deleted by a run (immutable tags stay).
import { useEffect, useState } from 'preact/hooks';
import { API, get, getPage, getProject, request, send } from '../api.ts';
import { Badge, ConfirmDialog, Dialog, Empty, ErrorNote, FormActions, PagedTable, Pager, Spinner, toast } from '../components/ui.tsx';
import { dateTime } from '../lib/format.ts';
import { useAsync } from '../lib/hooks.ts';
import { SelectorFields, type SelectorValues } from '../components/selector-fields.tsx';
import type { ProjectCtx } from './project.tsx';

interface Selector {
  kind: string;
  decoration: string;
  pattern: string;
  extras?: string;
}

interface Rule {
  id?: number;
  priority?: number;
  disabled: boolean;
  action: string;
  template: string;
  params: Record<string, number>;
  tag_selectors: Selector[];
  scope_selectors: { repository: Selector[] };
}

interface Policy {
  id: number;
  algorithm: string;
  rules: Rule[];
  trigger: { kind: string; settings: { cron?: string } };
  scope: { level: string; ref: number };
}

interface Execution {
  id: number;
  status: string;
  trigger: string;
  dry_run: boolean;
  start_time: string;
  end_time: string;
}

interface Task {
  id: number;
  repository: string;
  status: string;
  total: number;
  retained: number;
}

const MAX_RULES = 15;

const TEMPLATES: { value: string; label: (n: number | string) => string; unit?: string }[] = [
  { value: 'latestPushedK', label: (n) => `the ${n} most recently pushed`, unit: 'artifacts' },
  { value: 'latestPulledN', label: (n) => `the ${n} most recently pulled`, unit: 'artifacts' },
  { value: 'nDaysSinceLastPush', label: (n) => `pushed within the last ${n} days`, unit: 'days' },
  { value: 'nDaysSinceLastPull', label: (n) => `pulled within the last ${n} days`, unit: 'days' },
  { value: 'always', label: () => 'always' },
];

const SCHEDULES = [
  { value: '', label: 'None (run by hand)' },
  { value: '0 0 * * * *', label: 'Hourly' },
  { value: '0 0 0 * * *', label: 'Daily at midnight' },
  { value: '0 0 0 * * 0', label: 'Weekly on Sunday' },
];

function keeps(r: Rule): string {
  const t = TEMPLATES.find((x) => x.value === r.template);
  return t ? t.label(r.params[r.template] ?? '') : r.template;
}

function selectors(list: Selector[], all: string): string {
  return (
    list
      .map((s) => {
        const untagged = s.extras?.includes('"untagged":true') ? ' (and untagged)' : '';
        return `${/xcludes$/.test(s.decoration) ? 'excluding' : 'matching'} ${s.pattern}${untagged}`;
      })
      .join(', ') || all
  );
}

function statusBadge(s: string) {
  return <Badge kind={s === 'Succeed' ? 'ok' : s === 'InProgress' ? 'info' : s === 'Failed' ? 'warn' : 'muted'}>{s === 'Succeed' ? 'succeeded' : s === 'InProgress' ? 'running' : s.toLowerCase()}</Badge>;
}

export function Retention({ ctx }: { ctx: ProjectCtx }) {
  const p = ctx.project;
  const [policyId, setPolicyId] = useState<number | null>(Number(p.metadata?.retention_id) || null);
  const policy = useAsync(async (signal) => {
    if (policyId) return get<Policy>(`retentions/${policyId}`, signal);
    // The project shown may have been read before a policy was made (here or elsewhere): ask again.
    const id = Number((await getProject(p.project_id, signal)).metadata?.retention_id) || null;
    if (id) setPolicyId(id);
    return id ? get<Policy>(`retentions/${id}`, signal) : null;
  }, [policyId]);
  const [adding, setAdding] = useState(false);
  const [deleting, setDeleting] = useState<number>();
  const [page, setPage] = useState(1);
  const runs = useAsync((signal) => (policyId ? getPage<Execution>(`retentions/${policyId}/executions`, { page, page_size: 10 }, signal) : Promise.resolve({ items: [], total: 0 })), [policyId, page]);
  const [open, setOpen] = useState<Execution>();
  // While a run is in progress, its status is asked again every second.
  const active = runs.data?.items.some((e) => e.status === 'InProgress');
  useEffect(() => {
    if (!active) return;
    const t = setTimeout(runs.reload, 1000);
    return () => clearTimeout(t);
  }, [active, runs.data]);
  const mayChange = ctx.can('tag-retention', 'update') || ctx.can('tag-retention', 'create');
  const mayRun = ctx.can('tag-retention', 'operate');
  const rules = policy.data?.rules ?? [];
  const cron = policy.data?.trigger.settings.cron ?? '';

  /** Saves the rules and schedule (creating the policy with the first rule). */
  async function save(next: Rule[], nextCron: string): Promise<void> {
    const body = { algorithm: 'or', rules: next, trigger: { kind: 'Schedule', settings: { cron: nextCron } }, scope: { level: 'project', ref: p.project_id } };
    if (policyId) await send(`retentions/${policyId}`, 'PUT', body);
    else {
      const r = await send('retentions', 'POST', body);
      const id = Number(/\/retentions\/(\d+)$/.exec(r.headers.get('Location') ?? '')?.[1]);
      if (id) setPolicyId(id);
    }
    policy.reload();
  }

  async function start(dryRun: boolean) {
    if (!policyId) return;
    try {
      await send(`retentions/${policyId}/executions`, 'POST', { dry_run: dryRun });
      toast(dryRun ? 'Dry run started: nothing is deleted' : 'Retention run started');
      setPage(1);
      runs.reload();
    } catch (e) {
      toast((e as Error).message, 'error');
    }
  }

  async function toggle(i: number) {
    try {
      await save(rules.map((r, k) => (k === i ? { ...r, disabled: !r.disabled } : r)), cron);
      toast(`Rule ${rules[i].disabled ? 'enabled' : 'disabled'}`);
    } catch (e) {
      toast((e as Error).message, 'error');
    }
  }

  if (policy.error) return <ErrorNote error={policy.error} onRetry={policy.reload} />;
  if (policyId && !policy.data) return <Spinner />;
  return (
    <div class="stack">
      <div class="toolbar">
        <span class="muted">Each run keeps the artifacts a rule keeps and deletes every other artifact of the repositories the rules cover. Immutable tags are never deleted.</span>
        {mayChange && (
          <button type="button" class="btn btn-primary" disabled={rules.length >= MAX_RULES} onClick={() => setAdding(true)}>
            Add rule
          </button>
        )}
      </div>
      <PagedTable
        list={{ data: { items: rules, total: rules.length }, loading: policy.loading, reload: policy.reload }}
        caption={<>Retention rules of {p.name}</>}
        empty={<Empty>No retention rules: nothing is ever deleted by retention.</Empty>}
        columns={['Repositories', 'Tags', 'Keep', 'Status']}
        actions
        rows={(items) =>
          items.map((r, i) => (
            <tr key={i} data-testid="retention-rule">
              <td>{selectors(r.scope_selectors.repository, 'all repositories')}</td>
              <td>{selectors(r.tag_selectors, 'all tags')}</td>
              <td>{keeps(r)}</td>
              <td>{r.disabled ? <Badge kind="muted">disabled</Badge> : <Badge kind="ok">enabled</Badge>}</td>
              <td class="row-actions">
                {mayChange && (
                  <>
                    <button type="button" class="btn btn-small btn-ghost" onClick={() => void toggle(i)} aria-label={`${r.disabled ? 'Enable' : 'Disable'} retention rule ${i + 1}`}>
                      {r.disabled ? 'Enable' : 'Disable'}
                    </button>
                    <button type="button" class="btn btn-small btn-ghost danger" onClick={() => setDeleting(i)} aria-label={`Delete retention rule ${i + 1}`}>
                      Delete
                    </button>
                  </>
                )}
              </td>
            </tr>
          ))
        }
      />
      {policyId && (
        <>
          <div class="toolbar">
            {mayChange ? <Schedule cron={cron} onSave={(c) => save(rules, c)} /> : <span class="muted">Schedule: {SCHEDULES.find((s) => s.value === cron)?.label ?? cron}</span>}
            {mayRun && (
              <>
                <button type="button" class="btn" disabled={!rules.length} onClick={() => void start(true)}>
                  Dry run
                </button>
                <button type="button" class="btn" disabled={!rules.length} onClick={() => void start(false)}>
                  Run now
                </button>
              </>
            )}
          </div>
          <h2>Runs</h2>
          <PagedTable
            list={runs}
            caption={<>Retention runs of {p.name}</>}
            empty={<Empty>No runs yet.</Empty>}
            columns={['Started', 'Status', 'Trigger', 'Kind']}
            actions
            rows={(items) =>
              items.map((e) => (
                <tr key={e.id} data-testid="retention-run">
                  <td>{dateTime(e.start_time)}</td>
                  <td>{statusBadge(e.status)}</td>
                  <td>{e.trigger === 'SCHEDULE' ? 'schedule' : 'by hand'}</td>
                  <td>{e.dry_run ? 'dry run' : 'deleting'}</td>
                  <td class="row-actions">
                    <button type="button" class="btn btn-small btn-ghost" onClick={() => setOpen(e)} aria-label={`Repositories of run ${e.id}`}>
                      Details
                    </button>
                  </td>
                </tr>
              ))
            }
            pager={(total) => <Pager page={page} pageSize={10} total={total} onPage={setPage} label="Run pages" />}
            pagerAbove={10}
          />
        </>
      )}
      {adding && (
        <AddRule
          onClose={() => setAdding(false)}
          onAdd={async (r) => {
            await save([...rules, r], cron);
            setAdding(false);
            toast('Rule added');
          }}
        />
      )}
      {deleting !== undefined && (
        <ConfirmDialog
          title="Delete retention rule"
          confirm="Delete"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            await save(
              rules.filter((_, k) => k !== deleting),
              cron,
            );
            toast('Rule deleted');
          }}
        >
          <p>Delete the rule that keeps {keeps(rules[deleting])}? With no rule left for a repository, retention leaves it alone.</p>
        </ConfirmDialog>
      )}
      {open && policyId && <RunDialog policyId={policyId} run={open} onClose={() => setOpen(undefined)} />}
    </div>
  );
}

function Schedule({ cron, onSave }: { cron: string; onSave: (cron: string) => Promise<void> }) {
  const preset = SCHEDULES.some((s) => s.value === cron) ? cron : 'custom';
  const [choice, setChoice] = useState(preset);
  const [custom, setCustom] = useState(preset === 'custom' ? cron : '0 0 3 * * *');
  const wanted = choice === 'custom' ? custom.trim() : choice;
  return (
    <form
      class="inline"
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          await onSave(wanted);
          toast(wanted ? 'Schedule saved' : 'Schedule removed');
        } catch (err) {
          toast((err as Error).message, 'error');
        }
      }}
    >
      <label class="inline">
        <span>Schedule</span>
        <select name="schedule" value={choice} onChange={(e) => setChoice((e.target as HTMLSelectElement).value)}>
          {SCHEDULES.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
          <option value="custom">Custom (6-field cron)</option>
        </select>
      </label>
      {choice === 'custom' && <input name="cron" aria-label="Cron (seconds minutes hours day month weekday)" value={custom} onInput={(e) => setCustom((e.target as HTMLInputElement).value)} />}
      <button type="submit" class="btn" disabled={wanted === cron}>
        Save schedule
      </button>
    </form>
  );
}

function AddRule({ onClose, onAdd }: { onClose: () => void; onAdd: (r: Rule) => Promise<void> }) {
  const [template, setTemplate] = useState('latestPushedK');
  const [n, setN] = useState('10');
  const [sel, setSel] = useState<SelectorValues>({ repoDecoration: 'repoMatches', repoPattern: '**', tagDecoration: 'matches', tagPattern: '**' });
  const { repoDecoration, repoPattern, tagDecoration, tagPattern } = sel;
  const [untagged, setUntagged] = useState(true);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const unit = TEMPLATES.find((t) => t.value === template)?.unit;

  async function submit(e: Event) {
    e.preventDefault();
    setError(undefined);
    if (unit && !/^\d+$/.test(n.trim())) return setError(`Give the number of ${unit}.`);
    setBusy(true);
    try {
      await onAdd({
        disabled: false,
        action: 'retain',
        template,
        params: unit ? { [template]: Number(n.trim()) } : {},
        tag_selectors: [{ kind: 'doublestar', decoration: tagDecoration, pattern: tagPattern.trim(), extras: JSON.stringify({ untagged }) }],
        scope_selectors: { repository: [{ kind: 'doublestar', decoration: repoDecoration, pattern: repoPattern.trim() }] },
      });
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }

  return (
    <Dialog title="Add retention rule" onClose={onClose}>
      <form class="stack" onSubmit={submit}>
        <SelectorFields
          value={sel}
          onChange={setSel}
          between={
            <div class="grid2">
              <label class="field">
                <span>Keep</span>
                <select name="template" value={template} onChange={(e) => setTemplate((e.target as HTMLSelectElement).value)}>
                  {TEMPLATES.map((t) => (
                    <option key={t.value} value={t.value}>
                      {t.label('#')}
                    </option>
                  ))}
                </select>
              </label>
              {unit && (
                <label class="field">
                  <span>Number of {unit}</span>
                  <input name="count" inputMode="numeric" value={n} required onInput={(e) => setN((e.target as HTMLInputElement).value)} />
                </label>
              )}
            </div>
          }
        />
        <label class="choice">
          <input type="checkbox" name="untagged" checked={untagged} onChange={(e) => setUntagged((e.target as HTMLInputElement).checked)} />
          <span>Untagged artifacts count too</span>
        </label>
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} busy={busy} submit={busy ? 'Adding…' : 'Add rule'} />
      </form>
    </Dialog>
  );
}

function RunDialog({ policyId, run, onClose }: { policyId: number; run: Execution; onClose: () => void }) {
  const base = `retentions/${policyId}/executions/${run.id}`;
  const tasks = useAsync((signal) => getPage<Task>(`${base}/tasks`, { page: 1, page_size: 100 }, signal), [base]);
  const [task, setTask] = useState<Task>();
  const log = useAsync(async (signal) => (task ? (await request(`${base}/tasks/${task.id}`, { signal })).text() : ''), [base, task?.id]);
  return (
    <Dialog title={`Retention run ${run.id}${run.dry_run ? ' (dry run)' : ''}`} onClose={onClose} wide>
      <div class="stack">
        <PagedTable
          list={tasks}
          caption={<>Repositories of run {run.id}</>}
          empty={<Empty>No repository is covered by the rules.</Empty>}
          columns={['Repository', { num: 'Artifacts' }, { num: 'Kept' }, 'Status']}
          actions
          rows={(items) =>
            items.map((x) => (
              <tr key={x.id}>
                <td>{x.repository}</td>
                <td class="num">{x.total}</td>
                <td class="num">{x.retained}</td>
                <td>{statusBadge(x.status)}</td>
                <td class="row-actions">
                  <button type="button" class="btn btn-small btn-ghost" onClick={() => setTask(x)} aria-label={`Log of ${x.repository}`}>
                    Log
                  </button>
                </td>
              </tr>
            ))
          }
        />
        {task && (
          <>
            <ErrorNote error={log.error} onRetry={log.reload} />
            {log.data === undefined ? (
              !log.error && <Spinner />
            ) : (
              <pre class="code log" tabIndex={0} aria-label={`Log of ${task.repository}`}>
                {log.data || '(empty)'}
              </pre>
            )}
            <div class="actions">
              <a class="btn" href={`${API}/${base}/tasks/${task.id}`} target="_blank" rel="noopener">
                Open as text
              </a>
            </div>
          </>
        )}
        <div class="actions">
          <button type="button" class="btn" onClick={tasks.reload} disabled={tasks.loading}>
            Refresh
          </button>
        </div>
      </div>
    </Dialog>
  );
}
