// A tiny history router: the path is the state; links push, Back/Forward pop.
import { useEffect, useState } from 'preact/hooks';

const EVENT = 'berth:navigate';

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (to === location.pathname + location.search) return;
  if (opts.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new Event(EVENT));
  window.scrollTo(0, 0);
}

export interface Loc {
  path: string;
  query: URLSearchParams;
}

const read = (): Loc => ({ path: location.pathname, query: new URLSearchParams(location.search) });

export function useLocation(): Loc {
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const on = () => setLoc(read());
    window.addEventListener('popstate', on);
    window.addEventListener(EVENT, on);
    return () => {
      window.removeEventListener('popstate', on);
      window.removeEventListener(EVENT, on);
    };
  }, []);
  return loc;
}

/** Matches "/projects/:id/:tab" against a path; a trailing "*" param takes the rest (repository names have slashes). */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/').filter(Boolean);
  const s = path.split('/').filter(Boolean);
  const out: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    const seg = p[i];
    if (seg.endsWith('*')) {
      if (i >= s.length) return null;
      out[seg.slice(1, -1)] = s.slice(i).map(decodeURIComponent).join('/');
      return out;
    }
    if (i >= s.length) return null;
    if (seg.startsWith(':')) out[seg.slice(1)] = decodeURIComponent(s[i]);
    else if (seg !== s[i]) return null;
  }
  return p.length === s.length ? out : null;
}

/** Replaces query parameters of the current URL (for paging and filters that survive a reload). */
export function setQuery(params: Record<string, string | number | undefined>): void {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === '' || v === 1 && k === 'page') q.delete(k);
    else q.set(k, String(v));
  }
  const s = q.toString();
  navigate(location.pathname + (s ? `?${s}` : ''), { replace: true });
}
