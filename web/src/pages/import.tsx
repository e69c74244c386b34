// Import an image archive (`docker save` tar or OCI image-layout tar) into a repository and tag,
// with upload progress. XMLHttpRequest, because fetch has no upload progress.
import { useRef, useState } from 'preact/hooks';
import { API, csrfToken, enc, encRepo } from '../api.ts';
import { CodeLine, Dialog, ErrorNote, toast } from '../components/ui.tsx';
import { bytes } from '../lib/format.ts';
import { navigate } from '../lib/router.ts';
import { registryHost, session } from '../session.ts';
import type { Project } from '../types.ts';

type Phase = { kind: 'form' } | { kind: 'uploading'; sent: number; total: number } | { kind: 'processing' } | { kind: 'done'; digest: string };

const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function ImportDialog({ project, repo, onClose, onDone }: { project: Project; repo?: string; onClose: () => void; onDone?: () => void }) {
  const [name, setName] = useState(repo ?? '');
  const [tag, setTag] = useState('latest');
  const [file, setFile] = useState<File>();
  const [phase, setPhase] = useState<Phase>({ kind: 'form' });
  const [error, setError] = useState<string>();
  const xhr = useRef<XMLHttpRequest | null>(null);

  function start(e: Event) {
    e.preventDefault();
    setError(undefined);
    if (!REPO_RE.test(name)) return setError('Repository: lowercase letters, digits, separators . _ - and / between path parts.');
    if (!TAG_RE.test(tag)) return setError('Tag: up to 128 letters, digits, _ . - (not starting with . or -).');
    if (!file) return setError('Choose an archive file.');
    const url = `${API}/projects/${enc(project.name)}/repositories/${encRepo(name)}/import?tag=${enc(tag)}`;
    const form = new FormData();
    form.append('archive', file, file.name);
    const x = new XMLHttpRequest();
    xhr.current = x;
    x.open('POST', url);
    x.withCredentials = true;
    x.setRequestHeader('X-Harbor-CSRF-Token', csrfToken());
    x.setRequestHeader('Accept', 'application/json');
    x.upload.onprogress = (ev) => setPhase({ kind: 'uploading', sent: ev.loaded, total: ev.lengthComputable ? ev.total : file.size });
    x.upload.onload = () => setPhase({ kind: 'processing' });
    x.onerror = () => {
      setPhase({ kind: 'form' });
      setError('The upload failed: the connection to Berth was lost.');
    };
    x.onabort = () => setPhase({ kind: 'form' });
    x.onload = () => {
      if (x.status === 201 || x.status === 200) {
        let digest = '';
        try {
          digest = (JSON.parse(x.responseText) as { digest?: string }).digest ?? '';
        } catch {
          // no body
        }
        setPhase({ kind: 'done', digest });
        toast(`Imported ${project.name}/${name}:${tag}`);
        onDone?.();
        return;
      }
      setPhase({ kind: 'form' });
      if (x.status === 401) {
        setError('Your session has ended. Sign in again, then retry.');
        return;
      }
      let msg = `The import failed (${x.status}).`;
      try {
        const body = JSON.parse(x.responseText) as { errors?: { message?: string }[] };
        if (body.errors?.[0]?.message) msg = body.errors[0].message;
      } catch {
        // not JSON
      }
      if (x.status === 413) msg = 'The archive is larger than Berth accepts.';
      setError(msg);
    };
    setPhase({ kind: 'uploading', sent: 0, total: file.size });
    x.send(form);
  }

  const busy = phase.kind === 'uploading' || phase.kind === 'processing';
  const pct = phase.kind === 'uploading' && phase.total ? Math.floor((phase.sent / phase.total) * 100) : phase.kind === 'processing' ? 100 : 0;

  return (
    <Dialog title="Import an image archive" onClose={() => (busy ? xhr.current?.abort() : onClose())} wide dismissable={!busy}>
      {phase.kind === 'done' ? (
        <div class="stack">
          <div class="note note-ok" role="status">
            Imported <strong>{`${project.name}/${name}:${tag}`}</strong>
            {phase.digest && (
              <>
                {' '}
                as <code>{phase.digest}</code>
              </>
            )}
            .
          </div>
          <CodeLine text={`docker pull ${registryHost()}/${project.name}/${name}:${tag}`} what="pull command" />
          <div class="actions">
            <button type="button" class="btn" onClick={onClose}>
              Close
            </button>
            <button
              type="button"
              class="btn btn-primary"
              onClick={() => {
                onClose();
                navigate(`/projects/${project.project_id}/repositories/${name}`);
              }}
            >
              Open repository
            </button>
          </div>
        </div>
      ) : (
        <form class="stack" onSubmit={start}>
          <p class="muted">
            Upload the output of <code>docker save</code> / <code>podman save</code>, or an OCI image layout packed with <code>tar</code>. The image is stored in{' '}
            <strong>{project.name}</strong> under the repository and tag you choose.
          </p>
          <div class="grid2">
            <label class="field">
              <span>Repository</span>
              <div class="prefixed">
                <span class="prefix">{project.name}/</span>
                <input name="repository" value={name} disabled={busy || !!repo} required onInput={(e) => setName((e.target as HTMLInputElement).value.trim())} />
              </div>
            </label>
            <label class="field">
              <span>Tag</span>
              <input name="tag" value={tag} disabled={busy} required onInput={(e) => setTag((e.target as HTMLInputElement).value.trim())} />
            </label>
          </div>
          <label class="field">
            <span>Archive file (.tar)</span>
            <input
              name="archive"
              type="file"
              accept=".tar,.tar.gz,.tgz,application/x-tar,application/gzip"
              disabled={busy}
              required
              onChange={(e) => setFile((e.target as HTMLInputElement).files?.[0])}
            />
            {file && <small class="muted">{`${file.name}, ${bytes(file.size)}`}</small>}
          </label>
          {busy && (
            <div class="progress-wrap">
              <progress id="import-progress" max={100} value={phase.kind === 'processing' ? undefined : pct} aria-label="Upload progress">
                {pct}%
              </progress>
              <span class="small" aria-live="polite">
                {phase.kind === 'uploading' ? `Uploading… ${pct}% (${bytes(phase.sent)} of ${bytes(phase.total)})` : 'Uploaded. Importing the image…'}
              </span>
            </div>
          )}
          <ErrorNote error={error} />
          <div class="actions">
            <button type="button" class="btn" onClick={() => (busy ? xhr.current?.abort() : onClose())}>
              {busy ? 'Cancel upload' : 'Cancel'}
            </button>
            <button type="submit" class="btn btn-primary" disabled={busy}>
              {busy ? 'Importing…' : 'Import'}
            </button>
          </div>
          {!session().user && <p class="muted">Sign in first.</p>}
        </form>
      )}
    </Dialog>
  );
}
