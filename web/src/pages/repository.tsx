// A repository: its artifacts, one server-side page at a time (so 10,000 tags open as fast as ten),
// with tags, digest, size, platforms, signatures/SBOMs, pull commands and deletes the role allows.
import { useState } from 'preact/hooks';
import { artifactPath, enc, getPage, getRepository, repoPath, send } from '../api.ts';
import { Badge, CodeLine, ConfirmDialog, CopyButton, Dialog, Empty, ErrorNote, FormActions, Link, Pager, SearchBox, Spinner, toast } from '../components/ui.tsx';
import { ago, bytes, dateTime, plural, shortDigest } from '../lib/format.ts';
import { useAsync, useDebounced } from '../lib/hooks.ts';
import { setQuery, useLocation } from '../lib/router.ts';
import { registryHost } from '../session.ts';
import type { Accessory, Artifact, Platform } from '../types.ts';
import { ImportDialog } from './import.tsx';
import { useProject, type ProjectCtx } from './project.tsx';

type Client = 'docker' | 'podman';
const CLIENT_KEY = 'berth.pullClient';

export function RepositoryPage({ projectId, repo }: { projectId: string; repo: string }) {
  const ctx = useProject(projectId);
  if (ctx.error) return <div class="page"><ErrorNote error={ctx.error} onRetry={ctx.reload} /></div>;
  if (!ctx.data) return <Spinner />;
  return <Artifacts ctx={ctx.data} repo={repo} />;
}

function Artifacts({ ctx, repo }: { ctx: ProjectCtx; repo: string }) {
  const p = ctx.project;
  const loc = useLocation();
  const page = Number(loc.query.get('page') ?? 1) || 1;
  const pageSize = Number(loc.query.get('page_size') ?? 15) || 15;
  const [tagFilter, setTagFilter] = useState(loc.query.get('tag') ?? '');
  const tq = useDebounced(tagFilter.trim(), 250);
  const [client, setClientState] = useState<Client>(() => (localStorage.getItem(CLIENT_KEY) === 'podman' ? 'podman' : 'docker'));
  const setClient = (c: Client) => {
    localStorage.setItem(CLIENT_KEY, c);
    setClientState(c);
  };
  const info = useAsync((signal) => getRepository(p.name, repo, signal), [p.name, repo]);
  const list = useAsync(
    (signal) =>
      getPage<Artifact>(`${repoPath(p.name, repo)}/artifacts`, { page, page_size: pageSize, with_tag: true, with_accessory: true, q: tq ? `tags=~${tq}` : undefined }, signal),
    [p.name, repo, page, pageSize, tq],
  );
  const [open, setOpen] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<Artifact>();
  const [importing, setImporting] = useState(false);
  const [editing, setEditing] = useState(false);
  const host = registryHost();
  const full = `${p.name}/${repo}`;

  return (
    <div class="page">
      <div class="page-head">
        <div>
          <nav aria-label="Breadcrumb" class="crumbs">
            <Link href="/projects">Projects</Link>
            <span aria-hidden="true">/</span>
            <Link href={`/projects/${p.project_id}/repositories`}>{p.name}</Link>
            <span aria-hidden="true">/</span>
          </nav>
          <h1 class="repo-title">{repo}</h1>
          <p class="muted small">
            {info.data?.description ? info.data.description : 'No description.'}{' '}
            {ctx.can('repository', 'update') && info.data && (
              <button type="button" class="btn-link" onClick={() => setEditing(true)}>
                Edit description
              </button>
            )}
          </p>
        </div>
        <div class="head-actions">
          {ctx.can('repository', 'push') && (
            <button type="button" class="btn" onClick={() => setImporting(true)}>
              Import image archive
            </button>
          )}
        </div>
      </div>

      <div class="toolbar">
        <SearchBox
          label="Filter artifacts by tag"
          placeholder="Filter by tag"
          value={tagFilter}
          onInput={(v) => {
            setTagFilter(v);
            setQuery({ tag: v || undefined, page: undefined });
          }}
        />
        <div class="segmented" role="radiogroup" aria-label="Pull command for">
          {(['docker', 'podman'] as const).map((c) => (
            <label key={c} class={client === c ? 'on' : ''}>
              <input type="radio" name="client" value={c} checked={client === c} onChange={() => setClient(c)} />
              {c}
            </label>
          ))}
        </div>
      </div>

      <ErrorNote error={list.error} onRetry={list.reload} />
      {list.data ? (
        list.data.items.length === 0 ? (
          <Empty>{tq ? `No tag matches “${tq}”.` : 'This repository has no artifacts.'}</Empty>
        ) : (
          <div class={`table-wrap${list.loading ? ' stale' : ''}`}>
            <table class="table artifacts">
              <caption class="sr-only">Artifacts of {full}</caption>
              <thead>
                <tr>
                  <th scope="col" class="col-expand">
                    <span class="sr-only">Details</span>
                  </th>
                  <th scope="col">Tags</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Platforms</th>
                  <th scope="col" class="num">
                    Size
                  </th>
                  <th scope="col">Attached</th>
                  <th scope="col">Pushed</th>
                  <th scope="col">Pull</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              {list.data.items.map((a) => (
                <ArtifactRows
                  key={a.digest}
                  a={a}
                  ctx={ctx}
                  repo={repo}
                  host={host}
                  client={client}
                  open={open === a.digest}
                  onToggle={() => setOpen(open === a.digest ? null : a.digest)}
                  onDelete={() => setDeleting(a)}
                  onChanged={list.reload}
                />
              ))}
            </table>
          </div>
        )
      ) : (
        !list.error && <Spinner />
      )}
      {list.data && list.data.total > 0 && (
        <Pager page={page} pageSize={pageSize} total={list.data.total} onPage={(n) => setQuery({ page: n })} onPageSize={(n) => setQuery({ page_size: n, page: undefined })} label="Artifact pages" />
      )}

      {deleting && (
        <ConfirmDialog
          title="Delete artifact"
          confirm="Delete artifact"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            await send(artifactPath(p.name, repo, deleting.digest), 'DELETE');
            toast(`Artifact ${shortDigest(deleting.digest)} deleted`);
            list.reload();
          }}
        >
          <p>
            Delete artifact <code>{shortDigest(deleting.digest)}</code>
            {deleting.tags?.length ? (
              <>
                {' '}
                and its {plural(deleting.tags.length, 'tag')} ({deleting.tags.slice(0, 5).map((t) => t.name).join(', ')}
                {deleting.tags.length > 5 ? ', …' : ''})
              </>
            ) : null}
            ? This cannot be undone.
          </p>
        </ConfirmDialog>
      )}
      {importing && <ImportDialog project={p} repo={repo} onClose={() => setImporting(false)} onDone={list.reload} />}
      {editing && info.data && (
        <EditDescription
          initial={info.data.description ?? ''}
          onClose={() => setEditing(false)}
          onSave={async (description) => {
            await send(repoPath(p.name, repo), 'PUT', { description });
            info.reload();
          }}
        />
      )}
    </div>
  );
}

const platformName = (pl?: Platform) => (pl ? [pl.os, pl.architecture, pl.variant].filter(Boolean).join('/') : '');

function platformsOf(a: Artifact): string[] {
  if (a.references?.length) return a.references.map((r) => platformName(r.platform)).filter(Boolean);
  const x = a.extra_attrs;
  return x?.os || x?.architecture ? [[x.os, x.architecture].filter(Boolean).join('/')] : [];
}

function accessoryLabel(x: Accessory): string {
  const t = (x.type ?? '').toLowerCase();
  if (t.includes('cosign')) return 'cosign signature';
  if (t.includes('notation')) return 'notation signature';
  if (t.startsWith('signature')) return 'signature';
  if (t.includes('sbom')) return 'SBOM';
  if (t.includes('attestation') || t.includes('provenance')) return 'attestation';
  return x.artifact_type ? x.artifact_type.replace(/^application\/(vnd\.)?/, '') : 'referrer';
}

function pullCommand(client: Client, host: string, project: string, repo: string, a: Artifact): string {
  const tag = a.tags?.[0]?.name;
  return `${client} pull ${host}/${project}/${repo}${tag ? `:${tag}` : `@${a.digest}`}`;
}

const TAGS_IN_ROW = 3;

function ArtifactRows(props: {
  a: Artifact;
  ctx: ProjectCtx;
  repo: string;
  host: string;
  client: Client;
  open: boolean;
  onToggle: () => void;
  onDelete: () => void;
  onChanged: () => void;
}) {
  const { a, ctx, repo, host, client } = props;
  const tags = a.tags ?? [];
  const platforms = platformsOf(a);
  const accessories = a.accessories ?? [];
  const isIndex = (a.references?.length ?? 0) > 0;
  const detailsId = `artifact-${a.digest.replace(/[^a-z0-9]/gi, '')}`;
  const cmd = pullCommand(client, host, ctx.project.name, repo, a);
  return (
    <tbody class={props.open ? 'expanded' : ''}>
      <tr>
        <td class="col-expand">
          <button type="button" class="btn btn-ghost btn-icon" aria-expanded={props.open} aria-controls={detailsId} aria-label={`Details of ${shortDigest(a.digest)}`} onClick={props.onToggle}>
            <span class="chev" aria-hidden="true">
              ›
            </span>
          </button>
        </td>
        <td>
          {tags.length === 0 ? (
            <span class="muted">untagged</span>
          ) : (
            <span class="tags">
              {tags.slice(0, TAGS_IN_ROW).map((t) => (
                <span key={t.name} class="tag" title={t.immutable ? 'immutable: cannot be overwritten or deleted' : undefined}>
                  {t.name}
                  {t.immutable && <span aria-label="immutable"> 🔒</span>}
                </span>
              ))}
              {tags.length > TAGS_IN_ROW && (
                <button type="button" class="btn-link small" onClick={props.onToggle}>
                  +{(tags.length - TAGS_IN_ROW).toLocaleString()} more
                </button>
              )}
            </span>
          )}
        </td>
        <td>
          <span class="digest">
            <code title={a.digest}>{shortDigest(a.digest)}</code>
            <CopyButton text={a.digest} what={`digest ${shortDigest(a.digest)}`} label="" />
          </span>
        </td>
        <td>
          {platforms.length ? (
            <span class="tags">
              {platforms.slice(0, 4).map((pl) => (
                <span key={pl} class="platform">
                  {pl}
                </span>
              ))}
              {platforms.length > 4 && <span class="muted small">+{platforms.length - 4}</span>}
            </span>
          ) : (
            <span class="muted">{a.type && a.type !== 'IMAGE' ? a.type.toLowerCase() : '—'}</span>
          )}
          {isIndex && <span class="sr-only"> (multi-platform index)</span>}
        </td>
        <td class="num">{bytes(a.size)}</td>
        <td>
          {accessories.length ? (
            <span class="tags">
              {[...new Set(accessories.map(accessoryLabel))].map((l) => (
                <Badge key={l} kind={l.includes('signature') ? 'ok' : 'info'}>
                  {l}
                </Badge>
              ))}
            </span>
          ) : (
            <span class="muted">—</span>
          )}
        </td>
        <td title={dateTime(a.push_time)}>{ago(a.push_time)}</td>
        <td>
          <CopyButton text={cmd} what={`pull command: ${cmd}`} label={client} />
        </td>
        <td class="row-actions">
          {ctx.can('artifact', 'delete') && (
            <button type="button" class="btn btn-small btn-ghost danger" aria-label={`Delete artifact ${shortDigest(a.digest)}`} onClick={props.onDelete}>
              Delete
            </button>
          )}
        </td>
      </tr>
      {props.open && (
        <tr class="details-row">
          <td colSpan={9} id={detailsId}>
            <ArtifactDetails {...props} />
          </td>
        </tr>
      )}
    </tbody>
  );
}

const TAG_PAGE = 50;

function ArtifactDetails({ a, ctx, repo, host, client, onChanged }: { a: Artifact; ctx: ProjectCtx; repo: string; host: string; client: Client; onChanged: () => void }) {
  const p = ctx.project;
  const tags = a.tags ?? [];
  const [shown, setShown] = useState(TAG_PAGE);
  const [filter, setFilter] = useState('');
  const [adding, setAdding] = useState(false);
  const [removing, setRemoving] = useState<string>();
  const visible = (filter ? tags.filter((t) => t.name.includes(filter)) : tags).slice(0, shown);
  const matching = filter ? tags.filter((t) => t.name.includes(filter)).length : tags.length;
  const ref = `${host}/${p.name}/${repo}`;
  return (
    <div class="details">
      <dl class="facts">
        <div>
          <dt>Digest</dt>
          <dd>
            <CodeLine text={a.digest} what="digest" />
          </dd>
        </div>
        <div>
          <dt>Pull by digest</dt>
          <dd>
            <CodeLine text={`${client} pull ${ref}@${a.digest}`} what="pull by digest command" />
          </dd>
        </div>
        <div>
          <dt>Media type</dt>
          <dd>
            <code>{a.manifest_media_type || a.media_type}</code>
          </dd>
        </div>
        <div>
          <dt>Size</dt>
          <dd>{bytes(a.size)}</dd>
        </div>
        <div>
          <dt>Pushed</dt>
          <dd>{dateTime(a.push_time) || '—'}</dd>
        </div>
        <div>
          <dt>Last pulled</dt>
          <dd>{dateTime(a.pull_time) || 'never'}</dd>
        </div>
      </dl>

      {(a.references?.length ?? 0) > 0 && (
        <section>
          <h3>Platforms</h3>
          <table class="table compact">
            <thead>
              <tr>
                <th scope="col">Platform</th>
                <th scope="col">Manifest digest</th>
                <th scope="col">Pull this platform</th>
              </tr>
            </thead>
            <tbody>
              {a.references!.map((r) => (
                <tr key={r.child_digest}>
                  <td>
                    <span class="platform">{platformName(r.platform) || 'unknown'}</span>
                  </td>
                  <td>
                    <span class="digest">
                      <code title={r.child_digest}>{shortDigest(r.child_digest)}</code>
                      <CopyButton text={r.child_digest} what={`digest of ${platformName(r.platform)}`} label="" />
                    </span>
                  </td>
                  <td>
                    <CopyButton text={`${client} pull ${ref}@${r.child_digest}`} what={`pull command for ${platformName(r.platform)}`} label={client} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}

      {(a.accessories?.length ?? 0) > 0 && (
        <section>
          <h3>Signatures, SBOMs and other attached artifacts</h3>
          <table class="table compact">
            <thead>
              <tr>
                <th scope="col">Kind</th>
                <th scope="col">Type</th>
                <th scope="col">Digest</th>
                <th scope="col" class="num">
                  Size
                </th>
              </tr>
            </thead>
            <tbody>
              {a.accessories!.map((x) => (
                <tr key={x.digest}>
                  <td>{accessoryLabel(x)}</td>
                  <td>
                    <code class="small">{x.artifact_type || x.type}</code>
                  </td>
                  <td>
                    <span class="digest">
                      <code title={x.digest}>{shortDigest(x.digest)}</code>
                      <CopyButton text={x.digest} what="accessory digest" label="" />
                    </span>
                  </td>
                  <td class="num">{x.size !== undefined ? bytes(x.size) : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}

      <section>
        <div class="section-head">
          <h3>Tags ({tags.length.toLocaleString()})</h3>
          {tags.length > 10 && <SearchBox label="Filter these tags" value={filter} onInput={(v) => { setFilter(v); setShown(TAG_PAGE); }} />}
          {ctx.can('tag', 'create') && (
            <button type="button" class="btn btn-small" onClick={() => setAdding(true)}>
              Add tag
            </button>
          )}
        </div>
        {tags.length === 0 ? (
          <p class="muted">No tags: pull it by digest.</p>
        ) : (
          <ul class="taglist">
            {visible.map((t) => (
              <li key={t.name}>
                <span class="tag">{t.name}</span>
                <span class="muted small" title={dateTime(t.push_time)}>
                  {ago(t.push_time)}
                </span>
                <CopyButton text={`${client} pull ${ref}:${t.name}`} what={`pull command for tag ${t.name}`} label={client} />
                {ctx.can('tag', 'delete') && (
                  <button type="button" class="btn btn-small btn-ghost danger" aria-label={`Delete tag ${t.name}`} onClick={() => setRemoving(t.name)}>
                    Delete tag
                  </button>
                )}
              </li>
            ))}
          </ul>
        )}
        {matching > visible.length && (
          <button type="button" class="btn btn-small" onClick={() => setShown(shown + TAG_PAGE * 4)}>
            Show more ({(matching - visible.length).toLocaleString()} left)
          </button>
        )}
      </section>

      {adding && (
        <AddTag
          onClose={() => setAdding(false)}
          onAdd={async (name) => {
            await send(`${artifactPath(p.name, repo, a.digest)}/tags`, 'POST', { name });
            toast(`Tagged ${name}`);
            onChanged();
          }}
        />
      )}
      {removing && (
        <ConfirmDialog
          title="Delete tag"
          confirm="Delete tag"
          onClose={() => setRemoving(undefined)}
          onConfirm={async () => {
            await send(`${artifactPath(p.name, repo, a.digest)}/tags/${enc(removing)}`, 'DELETE');
            toast(`Tag ${removing} deleted`);
            onChanged();
          }}
        >
          <p>
            Delete tag <strong>{removing}</strong>? The artifact stays, reachable by its digest{tags.length > 1 ? ' and its other tags' : ''}.
          </p>
        </ConfirmDialog>
      )}
    </div>
  );
}

function AddTag({ onClose, onAdd }: { onClose: () => void; onAdd: (name: string) => Promise<void> }) {
  const [name, setName] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  return (
    <Dialog title="Add tag" onClose={onClose}>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(name)) return setError('A tag is up to 128 letters, digits, _ . - (not starting with . or -).');
          setBusy(true);
          try {
            await onAdd(name);
            onClose();
          } catch (err) {
            setError((err as Error).message);
            setBusy(false);
          }
        }}
      >
        <label class="field">
          <span>Tag</span>
          <input value={name} autofocus onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} busy={busy} submit="Add tag" />
      </form>
    </Dialog>
  );
}

function EditDescription({ initial, onClose, onSave }: { initial: string; onClose: () => void; onSave: (d: string) => Promise<void> }) {
  const [text, setText] = useState(initial);
  const [error, setError] = useState<string>();
  return (
    <Dialog title="Repository description" onClose={onClose}>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await onSave(text);
            onClose();
          } catch (err) {
            setError((err as Error).message);
          }
        }}
      >
        <label class="field">
          <span>Description</span>
          <textarea rows={4} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
        </label>
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} submit="Save" />
      </form>
    </Dialog>
  );
}
