// Who is signed in, shared by every screen. A 401 from any API call ends the session in the UI:
// the login form comes back, says why, and returns to the same page afterwards.
import { useEffect, useState } from 'preact/hooks';
import { currentUser, get, logout as apiLogout, onDenied, onUnauthorized, type SessionUser } from './api.ts';
import type { SystemInfo } from './types.ts';
import { navigate } from './lib/router.ts';

export interface SessionState {
  /** undefined while the first check runs. */
  user: SessionUser | null | undefined;
  expired: boolean;
  info: SystemInfo;
}

let state: SessionState = { user: undefined, expired: false, info: {} };
const listeners = new Set<(s: SessionState) => void>();

const resetHooks = new Set<() => void>();
/** Run on every sign-in/out (caches of per-user data register here). */
export const onUserChange = (f: () => void) => void resetHooks.add(f);

function set(patch: Partial<SessionState>): void {
  if ('user' in patch && patch.user?.user_id !== state.user?.user_id) for (const f of resetHooks) f();
  state = { ...state, ...patch };
  for (const l of listeners) l(state);
}

export function useSession(): SessionState {
  const [s, setS] = useState(state);
  useEffect(() => {
    listeners.add(setS);
    setS(state);
    return () => void listeners.delete(setS);
  }, []);
  return s;
}

export const session = () => state;

/** Reads systeminfo again (after the LDAP settings change: auth_mode decides what the UI offers). */
export const refreshInfo = (): Promise<void> => loadInfo();

async function loadInfo(): Promise<void> {
  try {
    set({ info: (await get<SystemInfo>('systeminfo')) ?? {} });
  } catch {
    // the UI works without it (pull commands fall back to the page's host)
  }
}

export async function startSession(): Promise<void> {
  onUnauthorized(() => {
    if (state.user) {
      const back = location.pathname + location.search;
      set({ user: null, expired: true });
      navigate(`/login?next=${encodeURIComponent(back)}`, { replace: true });
    }
  });
  onDenied(() => void recheck(true));
  try {
    const user = await currentUser();
    set({ user });
    if (user) await loadInfo();
  } catch {
    set({ user: null });
  }
}

/**
 * The server treats an expired session cookie as "anonymous", which on public pages does not fail;
 * so the UI also asks who it is when the tab comes back into view and once a minute.
 */
let lastCheck = 0;
let checking = false;
async function recheck(force = false): Promise<void> {
  if (!state.user || checking || (!force && Date.now() - lastCheck < 15_000)) return;
  lastCheck = Date.now();
  checking = true;
  try {
    // currentUser() answers null on 401; the 401 listener above has then already ended the session.
    const user = await currentUser();
    if (!user && state.user) {
      const back = location.pathname + location.search;
      set({ user: null, expired: true });
      navigate(`/login?next=${encodeURIComponent(back)}`, { replace: true });
    }
  } catch {
    // offline: try again later
  } finally {
    checking = false;
  }
}
if (typeof window !== 'undefined') {
  document.addEventListener('visibilitychange', () => document.visibilityState === 'visible' && void recheck());
  window.addEventListener('focus', () => void recheck());
  setInterval(() => void recheck(), 60_000);
}

export async function signedIn(user: SessionUser): Promise<void> {
  // The login answer is enough to proceed; the full profile follows.
  set({ user, expired: false });
  void loadInfo();
  try {
    const full = await currentUser();
    if (full) set({ user: full });
  } catch {
    // keep the login answer
  }
}

export async function signOut(): Promise<void> {
  await apiLogout();
  set({ user: null, expired: false });
  navigate('/login', { replace: true });
}

/** The host people pull from: the configured registry URL, else the host serving this page. */
export function registryHost(): string {
  return state.info.registry_url || (state.info.external_url ? new URL(state.info.external_url).host : '') || location.host;
}
