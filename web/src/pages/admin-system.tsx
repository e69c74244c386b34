// Administration: version, addresses, health of the parts, and registry-wide statistics.
import { get } from '../api.ts';
import { Badge, ErrorNote, Spinner } from '../components/ui.tsx';
import { bytes } from '../lib/format.ts';
import { useAsync } from '../lib/hooks.ts';
import type { Statistics, SystemInfo } from '../types.ts';
import { AdminPage } from './admin-users.tsx';

export function AdminSystem() {
  const data = useAsync(async (signal) => {
    const [info, health, stats] = await Promise.all([
      get<SystemInfo & Record<string, unknown>>('systeminfo', signal),
      get<{ status: string; components?: { name: string; status: string; error?: string }[] }>('health', signal).catch(() => null),
      get<Statistics>('statistics', signal).catch(() => null),
    ]);
    return { info, health, stats };
  }, []);
  return (
    <AdminPage current="system">
      <ErrorNote error={data.error} onRetry={data.reload} />
      {!data.data ? (
        !data.error && <Spinner />
      ) : (
        <div class="cards">
          <section class="card card-wide" aria-labelledby="sys-h">
            <h2 id="sys-h">Berth</h2>
            <ul class="kv">
              <li>
                <span>Version</span>
                <strong>{data.data.info.harbor_version ?? '—'}</strong>
              </li>
              <li>
                <span>Authentication</span>
                <strong>{data.data.info.auth_mode === 'ldap_auth' ? 'LDAP' : 'local accounts'}</strong>
              </li>
              <li>
                <span>Registry address</span>
                <strong>{data.data.info.registry_url || location.host}</strong>
              </li>
              <li>
                <span>External URL</span>
                <strong>{data.data.info.external_url || '—'}</strong>
              </li>
              <li>
                <span>Who may create projects</span>
                <strong>{data.data.info.project_creation_restriction === 'adminonly' ? 'administrators' : 'everyone'}</strong>
              </li>
              <li>
                <span>Read-only mode</span>
                <strong>{data.data.info.read_only ? 'on' : 'off'}</strong>
              </li>
            </ul>
          </section>
          {data.data.health && (
            <section class="card" aria-labelledby="health-h">
              <h2 id="health-h">
                Health <Badge kind={data.data.health.status === 'healthy' ? 'ok' : 'warn'}>{data.data.health.status}</Badge>
              </h2>
              <ul class="kv">
                {(data.data.health.components ?? []).map((c) => (
                  <li key={c.name}>
                    <span>{c.name}</span>
                    <Badge kind={c.status === 'healthy' ? 'ok' : 'warn'}>{c.status}</Badge>
                  </li>
                ))}
              </ul>
            </section>
          )}
          {data.data.stats && (
            <section class="card" aria-labelledby="stats-h">
              <h2 id="stats-h">Contents</h2>
              <ul class="kv">
                <li>
                  <span>Projects</span>
                  <strong>
                    {data.data.stats.total_project_count ?? 0} ({data.data.stats.public_project_count ?? 0} public)
                  </strong>
                </li>
                <li>
                  <span>Repositories</span>
                  <strong>{data.data.stats.total_repo_count ?? 0}</strong>
                </li>
                <li>
                  <span>Storage used</span>
                  <strong>{bytes(data.data.stats.total_storage_consumption ?? 0)}</strong>
                </li>
              </ul>
            </section>
          )}
        </div>
      )}
    </AdminPage>
  );
}
