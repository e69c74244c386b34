// The shell: header with navigation and search, the route table, and the login gate.
import { useEffect, useRef, useState } from 'preact/hooks';
import { enc, get } from './api.ts';
import { Link, Spinner, Toasts } from './components/ui.tsx';
import { useDebounced } from './lib/hooks.ts';
import { match, navigate, useLocation } from './lib/router.ts';
import { AdminGc } from './pages/admin-gc.tsx';
import { AdminGroups } from './pages/admin-groups.tsx';
import { AdminLdap } from './pages/admin-ldap.tsx';
import { AdminRegistries } from './pages/admin-registries.tsx';
import { AdminReplications } from './pages/admin-replications.tsx';
import { AdminSystem } from './pages/admin-system.tsx';
import { AdminUsers } from './pages/admin-users.tsx';
import { Login } from './pages/login.tsx';
import { ProjectPage } from './pages/project.tsx';
import { ProfilePage } from './pages/profile.tsx';
import { Projects } from './pages/projects.tsx';
import { RepositoryPage } from './pages/repository.tsx';
import { signOut, useSession } from './session.ts';

export function App() {
  const s = useSession();
  const loc = useLocation();

  useEffect(() => {
    if (s.user === null && loc.path !== '/login') {
      const back = loc.path === '/' ? '' : `?next=${encodeURIComponent(loc.path + location.search)}`;
      navigate(`/login${back}`, { replace: true });
    }
  }, [s.user, loc.path]);

  if (s.user === undefined) return <Spinner label="Starting" />;
  if (s.user === null || loc.path === '/login') {
    return (
      <>
        <Login expired={s.expired} next={loc.query.get('next')} />
        <Toasts />
      </>
    );
  }
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Header path={loc.path} />
      <main id="main" tabIndex={-1}>
        <Route path={loc.path} />
      </main>
      <Toasts />
    </>
  );
}

function Route({ path }: { path: string }) {
  const s = useSession();
  let m: Record<string, string> | null;
  if (path === '/' || path === '/projects') return <Projects />;
  if (path === '/profile') return <ProfilePage />;
  if ((m = match('/projects/:id/repositories/:repo*', path))) return <RepositoryPage projectId={m.id} repo={m.repo} />;
  if ((m = match('/projects/:id/:tab', path))) return <ProjectPage projectId={m.id} tab={m.tab} />;
  if ((m = match('/projects/:id', path))) return <ProjectPage projectId={m.id} tab="repositories" />;
  if (path.startsWith('/admin')) {
    if (!s.user?.sysadmin_flag) return <NotFound text="Administration is for system administrators." />;
    if (path === '/admin' || path === '/admin/users') return <AdminUsers />;
    if (path === '/admin/groups') return <AdminGroups />;
    if (path === '/admin/ldap') return <AdminLdap />;
    if (path === '/admin/system') return <AdminSystem />;
    if (path === '/admin/gc') return <AdminGc />;
    if (path === '/admin/registries') return <AdminRegistries />;
    if (path === '/admin/replications') return <AdminReplications />;
  }
  return <NotFound />;
}

function NotFound({ text = 'There is nothing at this address.' }: { text?: string }) {
  return (
    <div class="page">
      <h1>Not found</h1>
      <p>{text}</p>
      <p>
        <Link href="/projects">Go to projects</Link>
      </p>
    </div>
  );
}

function Header({ path }: { path: string }) {
  const s = useSession();
  const user = s.user!;
  const nav = [{ href: '/projects', label: 'Projects', active: path === '/' || path.startsWith('/projects') }];
  if (user.sysadmin_flag) nav.push({ href: '/admin/users', label: 'Administration', active: path.startsWith('/admin') });
  return (
    <header class="topbar">
      <Link href="/projects" class="brand" aria-label="Berth home">
        <svg viewBox="0 0 32 32" width="26" height="26" aria-hidden="true">
          <rect width="32" height="32" rx="7" fill="currentColor" />
          <path d="M7 20h18l-3 5H10z M10 11h12v7H10z" fill="var(--brand-ink)" />
        </svg>
        <span>Berth</span>
      </Link>
      <nav class="mainnav" aria-label="Main">
        {nav.map((n) => (
          <Link key={n.href} href={n.href} class={n.active ? 'active' : ''} aria-current={n.active ? 'page' : undefined}>
            {n.label}
          </Link>
        ))}
      </nav>
      <GlobalSearch />
      <div class="userbox">
        <Link
          href="/profile"
          class={`username${path === '/profile' ? ' active' : ''}`}
          aria-current={path === '/profile' ? 'page' : undefined}
          aria-label={`Your profile (${user.username})`}
          title={`Your profile, password and access tokens${user.sysadmin_flag ? ' (system administrator)' : ''}`}
        >
          <span class="username-name">{user.username}</span>
          {user.sysadmin_flag && <span class="badge badge-info">admin</span>}
        </Link>
        <button type="button" class="btn btn-small" onClick={() => void signOut()}>
          Log out
        </button>
      </div>
    </header>
  );
}

interface SearchResult {
  project?: { project_id: number; name: string }[];
  repository?: { project_id: number; project_name: string; repository_name: string; artifact_count?: number }[];
}

/** Projects and repositories by name, as you type (GET /api/v2.0/search). */
function GlobalSearch() {
  const [q, setQ] = useState('');
  const [open, setOpen] = useState(false);
  const [res, setRes] = useState<SearchResult>({});
  const dq = useDebounced(q.trim(), 200);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!dq) return setRes({});
    const ctl = new AbortController();
    get<SearchResult>(`search?q=${enc(dq)}`, ctl.signal).then(
      (r) => setRes(r ?? {}),
      () => undefined,
    );
    return () => ctl.abort();
  }, [dq]);
  const items = [
    ...(res.project ?? []).slice(0, 5).map((p) => ({ key: `p${p.project_id}`, href: `/projects/${p.project_id}`, label: p.name, kind: 'project' })),
    ...(res.repository ?? []).slice(0, 8).map((r) => ({
      key: `r${r.repository_name}`,
      href: `/projects/${r.project_id}/repositories/${r.repository_name.slice(r.project_name.length + 1)}`,
      label: r.repository_name,
      kind: 'repository',
    })),
  ];
  const go = (href: string) => {
    setOpen(false);
    setQ('');
    navigate(href);
  };
  return (
    <div
      class="globalsearch"
      ref={box}
      onFocusOut={(e) => {
        if (!box.current?.contains(e.relatedTarget as Node)) setOpen(false);
      }}
    >
      <label>
        <span class="sr-only">Search projects and repositories</span>
        <input
          type="search"
          placeholder="Search projects and repositories"
          value={q}
          role="combobox"
          list={undefined}
          aria-expanded={open && !!dq}
          aria-controls="globalsearch-results"
          aria-autocomplete="list"
          onInput={(e) => {
            setQ((e.target as HTMLInputElement).value);
            setOpen(true);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Escape') setOpen(false);
            if (e.key === 'Enter' && items[0]) go(items[0].href);
            if (e.key === 'ArrowDown') {
              e.preventDefault();
              (box.current?.querySelector('#globalsearch-results a') as HTMLElement | null)?.focus();
            }
          }}
        />
      </label>
      {open && dq && (
        <ul id="globalsearch-results" class="popover" role="listbox">
          {items.length === 0 && <li class="muted pad">No matches</li>}
          {items.map((it) => (
            <li key={it.key} role="option">
              <Link
                href={it.href}
                onClick={() => {
                  setOpen(false);
                  setQ('');
                }}
                onKeyDown={(e: KeyboardEvent) => {
                  const a = e.currentTarget as HTMLElement;
                  const li = a.parentElement!;
                  if (e.key === 'ArrowDown') {
                    e.preventDefault();
                    (li.nextElementSibling?.querySelector('a') as HTMLElement | null)?.focus();
                  } else if (e.key === 'ArrowUp') {
                    e.preventDefault();
                    const prev = li.previousElementSibling?.querySelector('a') as HTMLElement | null;
                    (prev ?? (box.current?.querySelector('input') as HTMLElement)).focus();
                  } else if (e.key === 'Escape') setOpen(false);
                }}
              >
                <span class={`kind kind-${it.kind}`}>{it.kind}</span> {it.label}
              </Link>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
