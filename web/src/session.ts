// Who is signed in, shared by every screen. A 401 from any API call ends the session in the UI:
// the login form comes back, says why, and returns to the same page afterwards.
import { useEffect, useState } from 'preact/hooks';
import { currentUser, get, logout as apiLogout, onUnauthorized, type SessionUser } from './api.ts';
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

function set(patch: Partial<SessionState>): void {
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
  try {
    const user = await currentUser();
    set({ user });
    if (user) await loadInfo();
  } catch {
    set({ user: null });
  }
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
