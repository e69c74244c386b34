// Your profile, for every signed-in user: who you are (and whether Berth or the directory keeps
// your password), change your password, and personal access tokens (create, see once, revoke).
// A token is used as the password for docker/podman/skopeo login and for the API with Basic auth;
// it is the way for directory (LDAP) users to log in from scripts without their directory password.
import { useState } from 'preact/hooks';
import { ApiError, get, send, sendJson } from '../api.ts';
import { Badge, CodeLine, ConfirmDialog, Dialog, Empty, ErrorNote, FormActions, PagedTable, toast } from '../components/ui.tsx';
import { ago, dateTime } from '../lib/format.ts';
import { useAsync } from '../lib/hooks.ts';
import { useExpiry } from '../components/expiry.tsx';
import { registryHost, useSession } from '../session.ts';

interface Profile {
  user_id: number;
  username: string;
  email?: string;
  realname?: string;
  sysadmin_flag: boolean;
  creation_time?: string;
  /** 'local' or 'ldap' where the server says so. */
  source?: string;
}

interface PersonalToken {
  id: number;
  name: string;
  creation_time: string;
  expires_at: string | null;
  last_used_at: string | null;
}

export function ProfilePage() {
  const s = useSession();
  const me = useAsync((signal) => get<Profile>('users/current', signal), [s.user?.user_id]);
  // Where the server does not say, the authentication mode does when it is local accounts only;
  // with LDAP on, a refusal of the password change (412) tells that the directory keeps it.
  const [directory, setDirectory] = useState(false);
  const source = me.data?.source ?? (directory ? 'ldap' : s.info.auth_mode === 'db_auth' ? 'local' : undefined);
  const ldap = source === 'ldap';

  return (
    <div class="page">
      <div class="page-head">
        <div>
          <h1>Your profile</h1>
          <p class="muted">Your account, your password and the access tokens you log in with from the command line.</p>
        </div>
      </div>
      <ErrorNote error={me.error} onRetry={me.reload} />
      <div class="cards profile-cards">
        <section class="card card-wide" aria-labelledby="me-h">
          <h2 id="me-h">Account</h2>
          {me.data && (
            <ul class="kv">
              <li>
                <span>Username</span>
                <strong>{me.data.username}</strong>
              </li>
              <li>
                <span>Full name</span>
                <strong>{me.data.realname || '—'}</strong>
              </li>
              <li>
                <span>Email</span>
                <strong>{me.data.email || '—'}</strong>
              </li>
              <li>
                <span>Account kept by</span>
                <strong data-testid="account-source">{ldap ? 'the directory (LDAP)' : source === 'local' ? 'Berth (local account)' : '—'}</strong>
              </li>
              <li>
                <span>Role</span>
                <strong>{me.data.sysadmin_flag ? 'system administrator' : 'user'}</strong>
              </li>
              {me.data.creation_time && (
                <li>
                  <span>Since</span>
                  <strong title={dateTime(me.data.creation_time)}>{dateTime(me.data.creation_time)}</strong>
                </li>
              )}
            </ul>
          )}
        </section>
        <section class="card card-wide" aria-labelledby="pw-h">
          <h2 id="pw-h">Password</h2>
          {ldap ? (
            <p class="muted" data-testid="password-directory">
              Your password is kept by the company directory (LDAP): change it there. Berth never stores it. For scripts and <code>docker login</code>, create a
              personal access token below.
            </p>
          ) : (
            me.data && <ChangePassword userId={me.data.user_id} onDirectory={() => setDirectory(true)} />
          )}
        </section>
      </div>
      <Tokens username={me.data?.username ?? s.user?.username ?? ''} />
    </div>
  );
}

function ChangePassword({ userId, onDirectory }: { userId: number; onDirectory: () => void }) {
  const [old, setOld] = useState('');
  const [pw, setPw] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  async function submit(e: Event) {
    e.preventDefault();
    setError(undefined);
    if (pw !== again) return setError('The new passwords differ.');
    if (pw.length < 8 || !/[a-z]/.test(pw) || !/[A-Z]/.test(pw) || !/\d/.test(pw)) return setError('The new password needs at least 8 characters with upper and lower case letters and a digit.');
    setBusy(true);
    try {
      await send(`users/${userId}/password`, 'PUT', { old_password: old, new_password: pw });
      setOld('');
      setPw('');
      setAgain('');
      toast('Password changed. Your other browser sessions have been signed out.');
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) onDirectory();
      else setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const field = (id: string, label: string, value: string, set: (v: string) => void, autocomplete: string) => (
    <label class="field">
      <span>{label}</span>
      <input id={id} name={id} type="password" autocomplete={autocomplete} required value={value} onInput={(e) => set((e.target as HTMLInputElement).value)} />
    </label>
  );
  return (
    <form class="stack" onSubmit={submit} aria-label="Change password">
      {field('old_password', 'Current password', old, setOld, 'current-password')}
      {field('new_password', 'New password', pw, setPw, 'new-password')}
      {field('new_password_again', 'New password again', again, setAgain, 'new-password')}
      <small class="muted">At least 8 characters with upper and lower case letters and a digit. Your other browser sessions are signed out; this one stays.</small>
      <ErrorNote error={error} />
      <div class="actions actions-left">
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {busy ? 'Changing…' : 'Change password'}
        </button>
      </div>
    </form>
  );
}

function Tokens({ username }: { username: string }) {
  const list = useAsync(async (signal) => {
    const items = (await get<PersonalToken[]>('users/current/tokens', signal)) ?? [];
    return { items, total: items.length };
  }, []);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<{ name: string; token: string; expires_at: string | null }>();
  const [revoking, setRevoking] = useState<PersonalToken>();

  return (
    <section class="page-section" aria-labelledby="tokens-h">
      <div class="toolbar">
        <div>
          <h2 id="tokens-h">Personal access tokens</h2>
          <p class="muted small">
            Use a token instead of your password: <code>docker login {registryHost()} -u {username || 'you'}</code>, then paste the token as the password. It has your
            rights, and you can revoke it at any time.
          </p>
        </div>
        <button type="button" class="btn btn-primary" onClick={() => setCreating(true)}>
          New token
        </button>
      </div>
      <PagedTable
        list={list}
        caption="Your personal access tokens"
        empty={<Empty>No tokens yet.</Empty>}
        columns={['Name', 'Created', 'Expires', 'Last used']}
        actions
        rows={(items) =>
          items.map((t) => {
            const expired = t.expires_at !== null && Date.parse(t.expires_at) < Date.now();
            return (
              <tr key={t.id}>
                <td class="strong">{t.name}</td>
                <td title={dateTime(t.creation_time)}>{ago(t.creation_time)}</td>
                <td title={dateTime(t.expires_at)}>{t.expires_at === null ? 'never' : expired ? <Badge kind="warn">expired</Badge> : dateTime(t.expires_at)}</td>
                <td title={dateTime(t.last_used_at)}>{ago(t.last_used_at)}</td>
                <td class="row-actions">
                  <button type="button" class="btn btn-small btn-ghost danger" aria-label={`Revoke token ${t.name}`} onClick={() => setRevoking(t)}>
                    Revoke
                  </button>
                </td>
              </tr>
            );
          })
        }
      />
      {creating && (
        <CreateToken
          onClose={() => setCreating(false)}
          onCreated={(t) => {
            setCreating(false);
            setCreated(t);
            list.reload();
          }}
        />
      )}
      {created && <TokenOnce {...created} username={username} onClose={() => setCreated(undefined)} />}
      {revoking && (
        <ConfirmDialog
          title="Revoke token"
          confirm="Revoke"
          onClose={() => setRevoking(undefined)}
          onConfirm={async () => {
            await send(`users/current/tokens/${revoking.id}`, 'DELETE');
            toast(`Token ${revoking.name} revoked`);
            list.reload();
          }}
        >
          <p>
            Revoke <strong>{revoking.name}</strong>? Anything logging in with it fails from now on.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function CreateToken({ onClose, onCreated }: { onClose: () => void; onCreated: (t: { name: string; token: string; expires_at: string | null }) => void }) {
  const [name, setName] = useState('');
  const expiry = useExpiry('90');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  async function submit(e: Event) {
    e.preventDefault();
    setError(undefined);
    const n = name.trim();
    if (!n) return setError('Give the token a name, e.g. the machine or script that uses it.');
    const days = expiry.days();
    if (!Number.isInteger(days) || (days !== -1 && days < 1)) return setError('Expiry: a whole number of days.');
    setBusy(true);
    try {
      onCreated(await sendJson<{ name: string; token: string; expires_at: string | null }>('users/current/tokens', 'POST', { name: n, duration_days: days }));
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }

  return (
    <Dialog title="New personal access token" onClose={onClose}>
      <form class="stack" onSubmit={submit}>
        <label class="field">
          <span>Name</span>
          <input name="token_name" maxLength={100} value={name} autofocus required placeholder="laptop, ci-runner…" onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <div class="grid2">
          {expiry.field}
        </div>
        <ErrorNote error={error} />
        <FormActions onCancel={onClose} busy={busy} submit={busy ? 'Creating…' : 'Create token'} />
      </form>
    </Dialog>
  );
}

/** The token, once: Berth stores only a hash, so closing this is the last chance to copy it. */
function TokenOnce({ name, token, expires_at, username, onClose }: { name: string; token: string; expires_at: string | null; username: string; onClose: () => void }) {
  return (
    <Dialog title="Token created" onClose={onClose} wide dismissable={false}>
      <div class="stack">
        <div class="note note-warn" role="alert">
          Copy the token now. It will not be shown again; Berth keeps no readable copy.
        </div>
        <div class="field">
          <span class="label">Token “{name}”</span>
          <div class="secret" data-testid="personal-token">
            <CodeLine text={token} what="token" />
          </div>
          <small class="muted">{expires_at ? `Expires ${dateTime(expires_at)}.` : 'Never expires; revoke it when it is no longer needed.'}</small>
        </div>
        <div class="field">
          <span class="label">Log in with it</span>
          <CodeLine text={`docker login ${registryHost()} -u '${username}'`} what="login command" />
        </div>
        <div class="actions">
          <button type="button" class="btn btn-primary" onClick={onClose}>
            I have copied the token
          </button>
        </div>
      </div>
    </Dialog>
  );
}
