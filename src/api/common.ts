// Shared plumbing of the management API: the caller, paging in Harbor's style, small parsers.
import type { Request, Response } from 'express';
import type { Principal } from '../access/principal.ts';
import { AppError } from '../lib/errors.ts';

export function principalOf(res: Response): Principal | null {
  return (res.locals.principal as Principal | null) ?? null;
}

export function requireUser(res: Response): Principal {
  const p = principalOf(res);
  if (!p) throw new AppError('UNAUTHORIZED', undefined, { message: 'authentication required' });
  return p;
}

export function requireSysadmin(res: Response): Principal {
  const p = requireUser(res);
  if (!p.sysadmin) throw new AppError('FORBIDDEN', undefined, { message: 'system administrator only' });
  return p;
}

export interface Paging {
  page: number;
  pageSize: number;
}

/** Paging from a query its route's schema has parsed (page and page_size checked and defaulted there). */
export function paging(q: { page: number; page_size: number }): Paging {
  return { page: q.page, pageSize: q.page_size };
}

/** X-Total-Count and RFC 5988 Link headers, as Harbor sends them. */
export function setPageHeaders(req: Request, res: Response, total: number, p: Paging): void {
  res.setHeader('X-Total-Count', String(total));
  const links: string[] = [];
  const base = req.baseUrl + req.path;
  const mk = (page: number) => {
    const qs = new URLSearchParams(req.query as Record<string, string>);
    qs.set('page', String(page));
    qs.set('page_size', String(p.pageSize));
    return `<${base}?${qs.toString()}>`;
  };
  if (p.page > 1) links.push(`${mk(p.page - 1)}; rel="prev"`);
  if (p.page * p.pageSize < total) links.push(`${mk(p.page + 1)}; rel="next"`);
  if (links.length) res.setHeader('Link', links.join(' , '));
}

export type HarborQuery = Record<string, { exact?: string; fuzzy?: string }>;

/**
 * Harbor's `q` query: k=v,k=~v (fuzzy), k=[a~b] (range), k={a b c} (or-list). Only the forms Berth
 * uses. Values may be percent-encoded once more; a malformed escape is a BAD_REQUEST.
 */
export function parseQuery(q: string | undefined): HarborQuery {
  // No prototype: a key such as __proto__ or constructor is just a key.
  const out: HarborQuery = Object.create(null);
  if (typeof q !== 'string' || !q) return out;
  for (const part of q.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const key = part.slice(0, i).trim();
    let raw: string;
    try {
      raw = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      throw new AppError('BAD_REQUEST', undefined, { message: `q: malformed percent-encoding in ${key}` });
    }
    if (raw.startsWith('~')) out[key] = { fuzzy: raw.slice(1) };
    else out[key] = { exact: raw };
  }
  return out;
}

export function iso(d: Date | null | undefined): string {
  return d ? d.toISOString() : '';
}

