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

export function paging(req: Request, maxPageSize = 100): Paging {
  const page = req.query.page === undefined ? 1 : Number(req.query.page);
  const pageSize = req.query.page_size === undefined ? 10 : Number(req.query.page_size);
  if (!Number.isInteger(page) || page < 1) throw new AppError('BAD_REQUEST', undefined, { message: 'page must be a positive integer' });
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > maxPageSize) throw new AppError('BAD_REQUEST', undefined, { message: `page_size must be between 1 and ${maxPageSize}` });
  return { page, pageSize };
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

/** Harbor's `q` query: k=v,k=~v (fuzzy), k=[a~b] (range), k={a b c} (or-list). Only the forms Berth uses. */
export function parseQuery(q: unknown): Record<string, { exact?: string; fuzzy?: string }> {
  const out: Record<string, { exact?: string; fuzzy?: string }> = {};
  if (typeof q !== 'string' || !q) return out;
  for (const part of q.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const key = part.slice(0, i).trim();
    const raw = decodeURIComponent(part.slice(i + 1).trim());
    if (raw.startsWith('~')) out[key] = { fuzzy: raw.slice(1) };
    else out[key] = { exact: raw };
  }
  return out;
}

export function intParam(v: unknown, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new AppError('BAD_REQUEST', undefined, { message: `${name} must be a positive integer` });
  return n;
}

export function iso(d: Date | null | undefined): string {
  return d ? d.toISOString() : '';
}

/** Prisma filter for audit logs from Harbor's `q` (username, operation, resource, resource_type). */
export function auditFilter(qs: unknown): Record<string, unknown> {
  const q = parseQuery(qs);
  const f = (x: { exact?: string; fuzzy?: string } | undefined) => (x ? (x.exact !== undefined ? x.exact : { contains: x.fuzzy! }) : undefined);
  const where: Record<string, unknown> = {};
  if (q.username) where.username = f(q.username);
  if (q.operation) where.operation = f(q.operation);
  if (q.resource) where.resource = f(q.resource);
  if (q.resource_type) where.resourceType = f(q.resource_type);
  return where;
}
