// One form for local and directory (LDAP/AD) users: Berth decides by the account, not the user.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, login } from '../api.ts';
import { ErrorNote } from '../components/ui.tsx';
import { navigate } from '../lib/router.ts';
import { signedIn } from '../session.ts';

export function Login({ expired, next }: { expired: boolean; next: string | null }) {
  const [principal, setPrincipal] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const userRef = useRef<HTMLInputElement>(null);
  useEffect(() => userRef.current?.focus(), []);

  async function submit(e: Event) {
    e.preventDefault();
    if (!principal || !password) return setError('Enter your username and password.');
    setBusy(true);
    setError(undefined);
    try {
      const user = await login(principal.trim(), password);
      await signedIn(user);
      // Only same-site paths: never bounce to another origin from a query parameter.
      const to = next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login') ? next : '/projects';
      navigate(to, { replace: true });
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'Berth did not answer. Check your connection and try again.');
      setBusy(false);
      setPassword('');
    }
  }

  return (
    <div class="login-wrap">
      <main class="login-card" id="main">
        <div class="login-brand">
          <svg viewBox="0 0 32 32" width="40" height="40" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="currentColor" />
            <path d="M7 20h18l-3 5H10z M10 11h12v7H10z" fill="var(--brand-ink)" />
          </svg>
          <h1>Berth</h1>
        </div>
        <p class="muted">Sign in with your Berth or company directory account.</p>
        {expired && (
          <div class="note note-warn" role="status">
            Your session has ended. Sign in again to continue where you were.
          </div>
        )}
        <form onSubmit={submit} class="stack" noValidate>
          <label class="field">
            <span>Username</span>
            <input ref={userRef} name="principal" autocomplete="username" value={principal} onInput={(e) => setPrincipal((e.target as HTMLInputElement).value)} required />
          </label>
          <label class="field">
            <span>Password</span>
            <input name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} required />
          </label>
          <ErrorNote error={error} />
          <button type="submit" class="btn btn-primary btn-block" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      </main>
    </div>
  );
}
