// Input checking of the management API: every route's path, query and body go through one zod
// schema (src/api/schemas.ts) before its handler runs, and a mismatch is a 400 in Harbor's shape
// whose message names the field ("page_size: Too big: expected number to be <=100").
import type express from 'express';
import { z } from 'zod';
import { AppError } from '../lib/errors.ts';
import { ROUTES, type RouteKey, type RouteSchema } from './schemas.ts';

/** The value, parsed by `schema`, or BAD_REQUEST naming the first field that does not fit. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new AppError('BAD_REQUEST', undefined, { message: describe(r.error, what) });
}

function describe(err: z.ZodError, what: string): string {
  const issue = err.issues[0];
  const field = issue.path.length ? issue.path.map(String).join('.') : what;
  // Unions report "Invalid input"; the first branch's own issue says more.
  if (issue.code === 'invalid_union' && issue.errors[0]?.[0]) {
    const inner = issue.errors[0][0];
    return `${[...issue.path, ...inner.path].map(String).join('.') || what}: ${inner.message}`;
  }
  return `${field}: ${issue.message}`;
}

type Out<T> = T extends z.ZodType ? z.output<T> : Record<string, never>;
type Def<K extends RouteKey> = (typeof ROUTES)[K];

/** What a handler receives: its path parameters, query and body, parsed and typed. */
export interface Input<K extends RouteKey> {
  params: Def<K> extends { params: infer P } ? Out<P> : Record<string, never>;
  query: Def<K> extends { query: infer Q } ? Out<Q> : Record<string, never>;
  body: Def<K> extends { body: infer B } ? Out<B> : undefined;
}

/** Marks a handler mounted by route(), with its ROUTES key (read by openapi.ts and the router's check). */
export const ROUTE_KEY = Symbol('berth.routeKey');

export type Handler<K extends RouteKey> = (req: express.Request, res: express.Response, input: Input<K>) => unknown;

/**
 * Mounts a route of the table on `r`: `key` is "<method> <express path>" as listed in ROUTES, and
 * the handler only runs once path, query and body have passed their schemas (a route without a
 * body schema takes no JSON body; a route without a query schema ignores its query).
 */
export function route<K extends RouteKey>(r: express.Router, key: K, handler: Handler<K>): void {
  const [method, path] = key.split(' ') as ['get' | 'post' | 'put' | 'patch' | 'delete' | 'head', string];
  const s = ROUTES[key] as RouteSchema;
  const validated = async (req: express.Request, res: express.Response) => {
    const input = {
      params: s.params ? validate(s.params, req.params, 'path') : {},
      query: s.query ? validate(s.query, req.query, 'query') : {},
      body: s.body ? validate(s.body, req.body ?? {}, 'body') : undefined,
    } as Input<K>;
    await handler(req, res, input);
  };
  r[method](path, Object.assign(validated, { [ROUTE_KEY]: key }));
}
