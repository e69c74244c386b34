// A project: header, tabs (repositories, members, robot accounts, logs, summary).
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { getProject, permissions } from '../api.ts';
import { Badge, ErrorNote, Link, Spinner, Tabs } from '../components/ui.tsx';
import { useAsync } from '../lib/hooks.ts';
import { onUserChange, useSession } from '../session.ts';
import { roleName, type Permission, type Project } from '../types.ts';
import { ImportDialog } from './import.tsx';
import { Logs } from './project-logs.tsx';
import { Members } from './project-members.tsx';
import { Repositories } from './project-repositories.tsx';
import { Robots } from './project-robots.tsx';
import { Immutability } from './project-immutable.tsx';
import { Retention } from './project-retention.tsx';
import { Summary } from './project-summary.tsx';

export interface ProjectCtx {
  project: Project;
  perms: Permission[];
  can(resource: string, action: string): boolean;
}

// The last project and permissions seen, so moving between a project's pages renders at once
// (and starts the page's own requests at once) while a fresh copy loads behind.
const cache = new Map<string, ProjectCtx>();

export function useProject(projectId: string) {
  return useAsync(
    async (signal): Promise<ProjectCtx> => {
      const project = await getProject(projectId, signal);
      const perms = await permissions(project.project_id, signal).catch(() => [] as Permission[]);
      const set = new Set(perms.map((p) => `${p.resource}:${p.action}`));
      const can = (resource: string, action: string) => set.has('*:*') || set.has(`${resource}:${action}`) || set.has(`${resource}:*`);
      const ctx = { project, perms, can };
      cache.set(projectId, ctx);
      return ctx;
    },
    [projectId],
    () => cache.get(projectId),
  );
}

// Another user has other permissions.
onUserChange(() => cache.clear());

const TABS = [
  { id: 'repositories', label: 'Repositories' },
  { id: 'members', label: 'Members' },
  { id: 'robots', label: 'Robot accounts' },
  { id: 'logs', label: 'Logs' },
  { id: 'immutability', label: 'Tag immutability' },
  { id: 'retention', label: 'Tag retention' },
  { id: 'summary', label: 'Summary' },
];

export function ProjectHeader({ ctx, children }: { ctx: ProjectCtx; children?: ComponentChildren }) {
  const s = useSession();
  const p = ctx.project;
  const role = p.current_user_role_id ?? 0;
  return (
    <div class="page-head">
      <div>
        <nav aria-label="Breadcrumb" class="crumbs">
          <Link href="/projects">Projects</Link>
          <span aria-hidden="true">/</span>
        </nav>
        <h1>
          <Link href={`/projects/${p.project_id}`} class="plain">
            {p.name}
          </Link>{' '}
          {p.metadata?.public === 'true' ? <Badge kind="ok">public</Badge> : <Badge kind="muted">private</Badge>}{' '}
          {!!p.registry_id && <Badge kind="info">proxy cache</Badge>}
        </h1>
        <p class="muted small">
          {role ? `Your role: ${roleName(role)}` : s.user?.sysadmin_flag ? 'You are a system administrator' : 'Public project'}
        </p>
      </div>
      {children}
    </div>
  );
}

export function ProjectPage({ projectId, tab }: { projectId: string; tab: string }) {
  const ctx = useProject(projectId);
  const [importing, setImporting] = useState(false);
  if (ctx.error) return <div class="page"><ErrorNote error={ctx.error} onRetry={ctx.reload} /></div>;
  if (!ctx.data) return <Spinner />;
  const c = ctx.data;
  const visible = TABS.filter((t) => (t.id === 'logs' ? c.can('log', 'list') : t.id === 'robots' ? c.can('robot', 'list') : t.id === 'members' ? c.can('member', 'list') : t.id === 'immutability' ? c.can('immutable-tag', 'list') : t.id === 'retention' ? c.can('tag-retention', 'read') : true));
  const current = visible.some((t) => t.id === tab) ? tab : 'repositories';
  return (
    <div class="page">
      <ProjectHeader ctx={c}>
        {/* Nobody pushes into a proxy cache: it fills itself from its registry endpoint. */}
        {c.can('repository', 'push') && !c.project.registry_id && (
          <button type="button" class="btn" onClick={() => setImporting(true)}>
            Import image archive
          </button>
        )}
      </ProjectHeader>
      <Tabs label="Project sections" current={current} tabs={visible.map((t) => ({ ...t, href: `/projects/${c.project.project_id}/${t.id}` }))} />
      <section class="tab-panel" aria-label={visible.find((t) => t.id === current)?.label}>
        {current === 'repositories' && <Repositories ctx={c} />}
        {current === 'members' && <Members ctx={c} />}
        {current === 'robots' && <Robots ctx={c} />}
        {current === 'logs' && <Logs ctx={c} />}
        {current === 'immutability' && <Immutability ctx={c} />}
        {current === 'retention' && <Retention ctx={c} />}
        {current === 'summary' && <Summary ctx={c} />}
      </section>
      {importing && <ImportDialog project={c.project} onClose={() => setImporting(false)} />}
    </div>
  );
}
