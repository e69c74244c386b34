// The project at a glance: storage against quota (a system admin changes the quota here), counts,
// members by role, and push/pull activity over the last 30 days drawn from the project's audit log
// (plain SVG).
import { useState } from 'preact/hooks';
import { enc, get, getPage, send } from '../api.ts';
import { limitBytes, limitValue, StorageLimitField } from '../components/storage-limit.tsx';
import { CodeLine, Dialog, ErrorNote, FormActions, Spinner, toast } from '../components/ui.tsx';
import { bytes, plural } from '../lib/format.ts';
import { useAsync } from '../lib/hooks.ts';
import { registryHost, useSession } from '../session.ts';
import type { AuditLog, ProjectSummary, Repository } from '../types.ts';
import type { ProjectCtx } from './project.tsx';

const DAYS = 30;
const DAY = 86_400_000;

interface Activity {
  days: { date: Date; push: number; pull: number }[];
  truncated: boolean;
}

async function loadActivity(project: string, signal: AbortSignal): Promise<Activity> {
  const start = new Date();
  start.setHours(0, 0, 0, 0);
  const since = start.getTime() - (DAYS - 1) * DAY;
  const days = Array.from({ length: DAYS }, (_, i) => ({ date: new Date(since + i * DAY), push: 0, pull: 0 }));
  let truncated = false;
  // Newest first; stop at the first entry older than the window (at most 10 pages of 100).
  outer: for (let page = 1; page <= 10; page++) {
    const { items, total } = await getPage<AuditLog>(`projects/${enc(project)}/logs`, { page, page_size: 100 }, signal);
    for (const l of items) {
      const t = Date.parse(l.op_time);
      if (t < since) break outer;
      const i = Math.floor((t - since) / DAY);
      if (i < 0 || i >= DAYS) continue;
      const isArtifact = l.resource_type === 'artifact' || l.resource_type === 'tag' || l.resource.includes(':') || l.resource.includes('@');
      if (l.operation === 'pull') days[i].pull++;
      else if ((l.operation === 'create' || l.operation === 'push' || l.operation === 'import') && isArtifact) days[i].push++;
    }
    if (page * 100 >= total) break;
    if (page === 10) truncated = true;
  }
  return { days, truncated };
}

export function Summary({ ctx }: { ctx: ProjectCtx }) {
  const p = ctx.project;
  const admin = !!useSession().user?.sysadmin_flag;
  const [editing, setEditing] = useState(false);
  const data = useAsync(
    async (signal) => {
      const [summary, repos, activity] = await Promise.all([
        get<ProjectSummary>(`projects/${enc(p.name)}/summary`, signal),
        getPage<Repository>(`projects/${enc(p.name)}/repositories`, { page: 1, page_size: 100 }, signal).catch(() => ({ items: [] as Repository[], total: 0 })),
        ctx.can('log', 'list') ? loadActivity(p.name, signal).catch(() => null) : Promise.resolve(null),
      ]);
      // Berth's summary carries artifact_count; otherwise add up the repositories (first 100).
      const artifacts = summary.artifact_count ?? repos.items.reduce((n, r) => n + (r.artifact_count ?? 0), 0);
      return { summary, artifacts, approx: summary.artifact_count === undefined && repos.total > repos.items.length, activity };
    },
    [p.name],
  );
  if (data.error) return <ErrorNote error={data.error} onRetry={data.reload} />;
  if (!data.data) return <Spinner />;
  const { summary: s, artifacts, approx, activity } = data.data;
  const used = s.quota?.used?.storage ?? 0;
  const hard = s.quota?.hard?.storage ?? -1;
  // -1 is unlimited; a limit of 0 (possible through the API) is a full project.
  const limited = hard >= 0;
  const share = hard > 0 ? (used / hard) * 100 : limited ? 100 : 0;
  const pct = Math.min(100, share);
  const members = [
    ['Project admins', s.project_admin_count],
    ['Maintainers', s.maintainer_count],
    ['Developers', s.developer_count],
    ['Guests', s.guest_count],
    ['Limited guests', s.limited_guest_count],
  ] as const;
  return (
    <div class="cards">
      <section class="card card-wide" aria-labelledby="storage-h">
        <div class="card-head">
          <h2 id="storage-h">Storage</h2>
          {admin && (
            <button type="button" class="btn btn-small" onClick={() => setEditing(true)}>
              Edit quota
            </button>
          )}
        </div>
        <div class="quota">
          <div class="quota-numbers">
            <strong>{bytes(used)}</strong> <span class="muted">{limited ? `of ${bytes(hard)}` : 'used, unlimited'}</span>
          </div>
          <div
            class={`bar${pct > 90 ? ' bar-danger' : pct > 75 ? ' bar-warn' : ''}`}
            role="meter"
            aria-label="Storage used"
            aria-valuemin={0}
            aria-valuemax={limited ? Math.max(hard, 1) : used || 1}
            aria-valuenow={limited ? Math.min(used, Math.max(hard, 1)) : used}
            aria-valuetext={limited ? `${bytes(used)} of ${bytes(hard)} (${share.toFixed(0)}%)` : `${bytes(used)}, unlimited`}
          >
            <div class="bar-fill" style={{ width: `${limited ? Math.max(pct, used > 0 ? 1 : 0) : 0}%` }} />
          </div>
          <div class="muted small">
            {!limited
              ? `No limit is set${admin ? '' : '; a system administrator can set one'}.`
              : used >= hard
                ? 'The quota is used up: pushes that add storage are refused.'
                : `${share.toFixed(1)}% of the quota; ${bytes(hard - used)} free.`}
          </div>
        </div>
      </section>
      <section class="card stat" aria-label="Repositories">
        <div class="stat-num">{(s.repo_count ?? 0).toLocaleString()}</div>
        <div class="muted">repositories</div>
      </section>
      <section class="card stat" aria-label="Artifacts">
        <div class="stat-num">
          {artifacts.toLocaleString()}
          {approx ? '+' : ''}
        </div>
        <div class="muted">artifacts</div>
      </section>
      <section class="card card-wide" aria-labelledby="members-h">
        <h2 id="members-h">Members</h2>
        <ul class="kv">
          {members.map(([label, n]) => (
            <li key={label}>
              <span>{label}</span>
              <strong>{n ?? 0}</strong>
            </li>
          ))}
        </ul>
      </section>
      <section class="card card-wide" aria-labelledby="push-h">
        <h2 id="push-h">Push an image here</h2>
        <div class="stack tight">
          <CodeLine text={`docker login ${registryHost()}`} what="login command" />
          <CodeLine text={`docker tag my-image ${registryHost()}/${p.name}/my-image:1.0`} what="tag command" />
          <CodeLine text={`docker push ${registryHost()}/${p.name}/my-image:1.0`} what="push command" />
        </div>
        {ctx.can('repository', 'push') && <p class="muted small">Or import a saved image archive with the “Import image archive” button.</p>}
      </section>
      <section class="card card-full" aria-labelledby="activity-h">
        <h2 id="activity-h">Activity, last {DAYS} days</h2>
        {activity ? <ActivityChart a={activity} /> : <p class="muted">Activity comes from the project log, which your role cannot read.</p>}
      </section>
      {editing && <EditQuota projectId={p.project_id} project={p.name} hard={hard} used={used} onClose={() => setEditing(false)} onSaved={data.reload} />}
    </div>
  );
}

/** A system admin sets the project's storage limit (the quota's id is the project's). */
function EditQuota(props: { projectId: number; project: string; hard: number; used: number; onClose: () => void; onSaved: () => void }) {
  const [value, setValue] = useState(() => limitValue(props.hard));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  return (
    <Dialog title="Edit quota" onClose={props.onClose}>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          const limit = limitBytes(value);
          if ('error' in limit) return setError(limit.error);
          setBusy(true);
          setError(undefined);
          try {
            await send(`quotas/${props.projectId}`, 'PUT', { hard: { storage: limit.bytes } });
            toast(`Quota of ${props.project}: ${limit.bytes < 0 ? 'unlimited' : bytes(limit.bytes)}`);
            props.onSaved();
            props.onClose();
          } catch (err) {
            setError((err as Error).message);
            setBusy(false);
          }
        }}
      >
        <p>
          <strong>{props.project}</strong> uses {bytes(props.used)} now. A lower limit than that keeps what is stored, but refuses pushes that add more.
        </p>
        <StorageLimitField
          id="quota"
          value={value}
          onChange={(v) => {
            setValue(v);
            setError(undefined);
          }}
        />
        <ErrorNote error={error} />
        <FormActions onCancel={props.onClose} busy={busy} submit={busy ? 'Saving…' : 'Save'} />
      </form>
    </Dialog>
  );
}

function ActivityChart({ a }: { a: Activity }) {
  const W = 1100;
  const H = 200;
  const pad = { l: 34, r: 8, t: 10, b: 24 };
  const max = Math.max(1, ...a.days.map((d) => Math.max(d.push, d.pull)));
  const ticks = niceTicks(max);
  const top = ticks[ticks.length - 1];
  const bw = (W - pad.l - pad.r) / a.days.length;
  const y = (v: number) => pad.t + (H - pad.t - pad.b) * (1 - v / top);
  const pushes = a.days.reduce((n, d) => n + d.push, 0);
  const pulls = a.days.reduce((n, d) => n + d.pull, 0);
  const fmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
  return (
    <figure class="chart">
      <figcaption class="legend">
        <span>
          <i class="swatch swatch-push" aria-hidden="true" /> {plural(pushes, 'push', 'pushes')}
        </span>
        <span>
          <i class="swatch swatch-pull" aria-hidden="true" /> {plural(pulls, 'pull')}
        </span>
        {a.truncated && <span class="muted small">(busiest days may be incomplete)</span>}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Pushes and pulls per day over the last ${a.days.length} days: ${plural(pushes, 'push', 'pushes')}, ${plural(pulls, 'pull')}`}>
        {ticks.map((t) => (
          <g key={t}>
            <line x1={pad.l} x2={W - pad.r} y1={y(t)} y2={y(t)} class="grid" />
            <text x={pad.l - 6} y={y(t) + 4} class="axis" text-anchor="end">
              {t}
            </text>
          </g>
        ))}
        {a.days.map((d, i) => {
          const x = pad.l + i * bw;
          const w = Math.max(1, bw / 2 - 1.5);
          return (
            <g key={i}>
              <title>{`${fmt.format(d.date)}: ${plural(d.push, 'push', 'pushes')}, ${plural(d.pull, 'pull')}`}</title>
              <rect x={x + 1} y={y(d.push)} width={w} height={Math.max(0, y(0) - y(d.push))} class="bar-push" rx={1.5} />
              <rect x={x + 1 + w + 1} y={y(d.pull)} width={w} height={Math.max(0, y(0) - y(d.pull))} class="bar-pull" rx={1.5} />
              {i % 7 === 0 && (
                <text x={x + bw / 2} y={H - 6} class="axis" text-anchor="middle">
                  {fmt.format(d.date)}
                </text>
              )}
            </g>
          );
        })}
        <line x1={pad.l} x2={W - pad.r} y1={y(0)} y2={y(0)} class="baseline" />
      </svg>
    </figure>
  );
}

function niceTicks(max: number): number[] {
  const step = max <= 4 ? 1 : max <= 10 ? 2 : max <= 25 ? 5 : Math.pow(10, Math.floor(Math.log10(max))) * (max / Math.pow(10, Math.floor(Math.log10(max))) > 5 ? 2 : 1);
  const out: number[] = [];
  for (let v = 0; v <= max + step - 1 && out.length < 8; v += step) out.push(v);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}
