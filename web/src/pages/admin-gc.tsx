// Administration: clean up (Harbor's garbage collection). Run it now or as a dry run, set the
// recurring schedule, and read the history of runs with what each one deleted and its log. The
// history refreshes itself while a run is pending or running.
import { useEffect, useState } from 'preact/hooks';
import { API, get, getPage, request, send } from '../api.ts';
import { Badge, Dialog, Empty, ErrorNote, PagedTable, Pager, Spinner, toast } from '../components/ui.tsx';
import { ago, bytes, dateTime, plural } from '../lib/format.ts';
import { useAsync } from '../lib/hooks.ts';
import type { GcHistory, GcSchedule, GcScheduleType } from '../types.ts';
import { AdminPage } from './admin-users.tsx';

const PAGE_SIZE = 10;
const POLL_MS = 2000;

/** The fixed schedules and their cron (six fields: second minute hour day month weekday). */
const SCHEDULES: { type: GcScheduleType; label: string; cron: string }[] = [
  { type: 'None', label: 'None', cron: '' },
  { type: 'Hourly', label: 'Hourly (at minute 0)', cron: '0 0 * * * *' },
  { type: 'Daily', label: 'Daily (at midnight)', cron: '0 0 0 * * *' },
  { type: 'Weekly', label: 'Weekly (Sunday at midnight)', cron: '0 0 0 * * 0' },
  { type: 'Custom', label: 'Custom', cron: '' },
];

/**
 * Berth's addition while a run is in progress: how far it has got (the counts columns grow as it
 * goes too, and the log has the same figures).
 */
interface GcProgress {
  phase?: string;
  scanned?: number;
  manifests?: number;
  blobs?: number;
  bytes?: number;
}
type Run = GcHistory & { progress?: GcProgress };

const active = (h: GcHistory) => h.job_status === 'Pending' || h.job_status === 'Running';

function params(p: string | Record<string, unknown> | undefined): Record<string, unknown> {
  if (!p) return {};
  if (typeof p !== 'string') return p;
  try {
    return (JSON.parse(p) as Record<string, unknown>) ?? {};
  } catch {
    return {};
  }
}

export function AdminGc() {
  const [page, setPage] = useState(1);
  const load = (signal: AbortSignal) => getPage<GcHistory>('system/gc', { page, page_size: PAGE_SIZE }, signal);
  const list = useAsync(load, [page]);
  const [log, setLog] = useState<GcHistory>();

  // While a run is under way, refresh quietly (no dimmed table) every couple of seconds.
  const busy = list.data?.items.some(active) ?? false;
  useEffect(() => {
    if (!busy) return;
    const ctl = new AbortController();
    // A failed refresh falls back to an ordinary reload, which shows the error and a retry.
    const t = setTimeout(() => load(ctl.signal).then(list.set, (e: Error) => e.name !== 'AbortError' && list.reload()), POLL_MS);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [list.data, page]);

  async function stop(h: GcHistory) {
    try {
      await send(`system/gc/${h.id}`, 'PUT');
      toast(`Stopping run ${h.id}`);
      list.reload();
    } catch (e) {
      toast((e as Error).message, 'error');
    }
  }

  return (
    <AdminPage current="gc">
      <p class="muted">
        Deleting an image or a repository removes its records; clean up frees the storage of layers and manifests that nothing refers to any more. Anything
        younger than two hours is kept, so pushes in progress are safe, and pushes and pulls keep working while it runs.
      </p>
      <div class="cards">
        <RunNow
          running={busy}
          onStarted={() => {
            if (page === 1) list.reload();
            else setPage(1);
          }}
        />
        <ScheduleCard />
      </div>
      <section class="page-section" aria-labelledby="gc-history-h">
        <h2 id="gc-history-h">History</h2>
        <PagedTable
          list={list}
          caption="Garbage collection runs"
          empty={<Empty>No garbage collection has run yet.</Empty>}
          columns={['Run', 'Kind', 'Status', 'Dry run', 'Result', 'Started', 'Updated']}
          actions
          rows={(items) =>
            (items as Run[]).map((h) => {
              const dry = params(h.job_parameters).dry_run === true;
              return (
                <tr key={h.id}>
                  <td class="strong">{h.id}</td>
                  <td>{h.job_kind === 'SCHEDULE' ? 'scheduled' : 'manual'}</td>
                  <td>
                    <StatusBadge status={h.job_status} />
                    {active(h) && h.progress && <Progress p={h.progress} dry={dry} />}
                  </td>
                  <td>{dry ? 'yes' : 'no'}</td>
                  <td class="gc-result">{active(h) ? '—' : result(h, dry)}</td>
                  <td title={dateTime(h.creation_time)}>{ago(h.creation_time)}</td>
                  <td title={dateTime(h.update_time)}>{h.update_time ? ago(h.update_time) : '—'}</td>
                  <td class="row-actions">
                    <button type="button" class="btn btn-small btn-ghost" onClick={() => setLog(h)} aria-label={`Log of run ${h.id}`}>
                      Log
                    </button>
                    {active(h) && (
                      <button type="button" class="btn btn-small btn-ghost danger" onClick={() => void stop(h)} aria-label={`Stop run ${h.id}`}>
                        Stop
                      </button>
                    )}
                  </td>
                </tr>
              );
            })
          }
          pagerAbove={PAGE_SIZE}
          pager={(total) => <Pager page={page} pageSize={PAGE_SIZE} total={total} onPage={setPage} label="History pages" />}
        />
      </section>
      {log && <LogDialog run={log} onClose={() => setLog(undefined)} />}
    </AdminPage>
  );
}

/**
 * What a run deleted and freed, in words: "3 manifests and 2 blobs deleted, 1.20 MiB freed". The
 * freed bytes also count the stored bytes of manifests whose artifacts were deleted earlier (through
 * the API or the UI), which are neither untagged manifests nor blobs: with nothing else deleted,
 * say so, else "0 blobs deleted, 402 B freed" reads like a contradiction.
 */
export function result(h: Pick<GcHistory, 'manifests_deleted' | 'blobs_deleted' | 'freed_bytes' | 'job_status'>, dry: boolean): string {
  const m = h.manifests_deleted ?? 0;
  const b = h.blobs_deleted ?? 0;
  const freed = h.freed_bytes ?? 0;
  const partial = h.job_status === 'Stopped' || h.job_status === 'Error' ? ' before it ended' : '';
  if (!m && !b && !freed) return dry ? 'nothing to delete' : `nothing deleted${partial}`;
  const what = `${plural(m, 'manifest')} and ${plural(b, 'blob')}`;
  const leftovers = !m && !b ? ' (data of manifests whose artifacts were deleted earlier)' : '';
  return dry ? `would delete ${what}, freeing ${bytes(freed)}${leftovers}` : `${what} deleted${partial}, ${bytes(freed)} freed${leftovers}`;
}

function Progress({ p, dry }: { p: GcProgress; dry: boolean }) {
  return (
    <small class="muted" style={{ display: 'block' }} role="status">
      {p.phase ? `${p.phase}: ` : ''}
      {(p.scanned ?? 0).toLocaleString()} scanned; so far {plural(p.manifests ?? 0, 'manifest')} and {plural(p.blobs ?? 0, 'blob')}, {bytes(p.bytes ?? 0)}{' '}
      {dry ? 'to free' : 'freed'}
    </small>
  );
}

function StatusBadge({ status }: { status: string }) {
  const kind = status === 'Success' ? 'ok' : status === 'Error' ? 'warn' : status === 'Stopped' ? 'plain' : 'info';
  return <Badge kind={kind}>{status}</Badge>;
}

function RunNow({ running, onStarted }: { running: boolean; onStarted: () => void }) {
  const [untagged, setUntagged] = useState(false);
  const [starting, setStarting] = useState<'dry' | 'real'>();
  const [error, setError] = useState<string>();

  async function run(dry: boolean) {
    setStarting(dry ? 'dry' : 'real');
    setError(undefined);
    try {
      await send('system/gc/schedule', 'POST', { schedule: { type: 'Manual' }, parameters: { delete_untagged: untagged, dry_run: dry } });
      toast(dry ? 'Dry run started' : 'Garbage collection started');
      onStarted();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setStarting(undefined);
    }
  }

  return (
    <section class="card card-wide" aria-labelledby="gc-run-h">
      <h2 id="gc-run-h">Run now</h2>
      <div class="stack">
        <label class="choice">
          <input type="checkbox" name="delete_untagged" checked={untagged} onChange={(e) => setUntagged((e.target as HTMLInputElement).checked)} />
          <span>Delete untagged artifacts</span>
        </label>
        <small class="muted">A dry run only reports what would be deleted and how much space that would free.</small>
        <ErrorNote error={error} />
        <div class="actions actions-left">
          <button type="button" class="btn" disabled={!!starting || running} onClick={() => void run(true)}>
            {starting === 'dry' ? 'Starting…' : 'Dry run'}
          </button>
          <button type="button" class="btn btn-primary" disabled={!!starting || running} onClick={() => void run(false)}>
            {starting === 'real' ? 'Starting…' : 'Run garbage collection now'}
          </button>
        </div>
        {running && (
          <small class="muted" role="status">
            A run is in progress.
          </small>
        )}
      </div>
    </section>
  );
}

function ScheduleCard() {
  const sched = useAsync((signal) => get<GcSchedule | null>('system/gc/schedule', signal), []);
  const [type, setType] = useState<GcScheduleType>('None');
  const [cron, setCron] = useState('');
  const [untagged, setUntagged] = useState(false);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string>();

  const savedType = (sched.data?.schedule?.type ?? 'None') as GcScheduleType | 'Manual';
  const exists = savedType !== 'None' && savedType !== 'Manual';
  useEffect(() => {
    if (!sched.data) return;
    setType(exists ? (savedType as GcScheduleType) : 'None');
    setCron(sched.data.schedule?.cron ?? '');
    setUntagged(params(sched.data.job_parameters).delete_untagged === true);
  }, [sched.data]);

  async function save(e: Event) {
    e.preventDefault();
    setError(undefined);
    const c = type === 'Custom' ? cron.trim().replace(/\s+/g, ' ') : (SCHEDULES.find((s) => s.type === type)?.cron ?? '');
    if (type === 'Custom' && c.split(' ').length !== 6) {
      setError('A cron expression has six fields: second, minute, hour, day of month, month, day of week.');
      return;
    }
    setSaving(true);
    try {
      // Harbor creates a schedule with POST and changes (or removes, with type None) one with PUT.
      const schedule = type === 'None' ? { type } : { type, cron: c };
      await send('system/gc/schedule', exists ? 'PUT' : 'POST', { schedule, parameters: { delete_untagged: untagged } });
      toast(type === 'None' ? 'Schedule removed' : 'Schedule saved');
      sched.reload();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setSaving(false);
    }
  }

  const next = sched.data?.schedule?.next_scheduled_time;
  return (
    <section class="card card-wide" aria-labelledby="gc-sched-h">
      <h2 id="gc-sched-h">Schedule</h2>
      <ErrorNote error={sched.error} onRetry={sched.reload} />
      {!sched.data && !sched.error ? (
        <Spinner />
      ) : (
        <form class="stack" onSubmit={save}>
          <div class="field">
            <label for="gc-schedule">Run automatically</label>
            <select id="gc-schedule" name="schedule" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value as GcScheduleType)}>
              {SCHEDULES.map((s) => (
                <option key={s.type} value={s.type}>
                  {s.label}
                </option>
              ))}
            </select>
          </div>
          {type === 'Custom' && (
            <div class="field">
              <label for="gc-cron">Cron expression</label>
              <input
                id="gc-cron"
                name="cron"
                autocomplete="off"
                placeholder="0 0 3 * * *"
                value={cron}
                aria-describedby="gc-cron-help"
                onInput={(e) => setCron((e.target as HTMLInputElement).value)}
              />
              <small id="gc-cron-help" class="muted">
                Six fields: second minute hour day-of-month month day-of-week. <code>0 0 3 * * *</code> is every day at 03:00.
              </small>
            </div>
          )}
          {type !== 'None' && (
            <label class="choice">
              <input type="checkbox" name="schedule_delete_untagged" checked={untagged} onChange={(e) => setUntagged((e.target as HTMLInputElement).checked)} />
              <span>Scheduled runs delete untagged artifacts</span>
            </label>
          )}
          {exists && (
            <small class="muted">
              Next run: <strong>{next ? dateTime(next) : '—'}</strong>
            </small>
          )}
          <ErrorNote error={error} />
          <div class="actions actions-left">
            <button type="submit" class="btn btn-primary" disabled={saving}>
              {saving ? 'Saving…' : 'Save'}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}

function LogDialog({ run, onClose }: { run: GcHistory; onClose: () => void }) {
  const path = `system/gc/${run.id}/log`;
  const log = useAsync(async (signal) => (await request(path, { signal })).text(), [run.id]);
  return (
    <Dialog title={`Log of run ${run.id}`} onClose={onClose} wide>
      <div class="stack">
        <ErrorNote error={log.error} onRetry={log.reload} />
        {log.data === undefined ? (
          !log.error && <Spinner />
        ) : (
          <pre class="code log" tabIndex={0} aria-label={`Log of run ${run.id}`}>
            {log.data || '(empty)'}
          </pre>
        )}
        <div class="actions">
          <a class="btn" href={`${API}/${path}`} target="_blank" rel="noopener">
            Open as text
          </a>
          <button type="button" class="btn" onClick={log.reload} disabled={log.loading}>
            Refresh
          </button>
        </div>
      </div>
    </Dialog>
  );
}
