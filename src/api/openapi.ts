// The OpenAPI document of Berth's management API, generated from the routes actually mounted and
// from the zod schemas of the route table (src/api/schemas.ts), so it cannot drift from either:
// path and query parameters and request bodies are the schemas that validate the input, answers
// are the schemas of src/api/responses.ts that type the DTOs (named ones become components).
import type express from 'express';
import { z } from 'zod';
import { Errors, type Reply } from './responses.ts';
import { ROUTES, type RouteSchema } from './schemas.ts';
import { ROUTE_KEY } from './validate.ts';

interface Layer {
  route?: { path: string; methods: Record<string, boolean>; stack?: Layer[] };
  handle?: { stack?: Layer[]; [ROUTE_KEY]?: string };
  name?: string;
}

export interface MountedRoute {
  method: string;
  path: string;
  /** The ROUTES key the route was mounted with through route(), if it was. */
  key?: string;
}

/** Every (method, path) of a router and the routers mounted in it without a path prefix. */
export function listRoutes(router: express.Router): MountedRoute[] {
  const out: MountedRoute[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const key = layer.route.stack?.map((l) => l.handle?.[ROUTE_KEY]).find((k) => k);
        for (const [m, on] of Object.entries(layer.route.methods)) if (on && m !== '_all') out.push({ method: m.toLowerCase(), path: layer.route.path, key });
      } else if (layer.name === 'router' && layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((router as unknown as { stack: Layer[] }).stack);
  return out;
}

type JsonSchema = { type?: string; properties?: Record<string, object>; required?: string[]; [k: string]: unknown };

const COMPONENTS = '#/components/schemas/';

/**
 * A schema in OpenAPI 3.0's dialect: what a client sends (io input: before defaults and
 * transforms) or what it receives (io output). Named schemas of responses.ts are left as $refs to
 * #/components/schemas and collected into `defs`.
 */
function jsonSchema(s: z.ZodType, io: 'input' | 'output' = 'input', defs?: Record<string, object>): JsonSchema {
  const out = z.toJSONSchema(s, { io, target: 'openapi-3.0', unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  const found = (out.definitions ?? {}) as Record<string, object>;
  delete out.definitions;
  if (defs) for (const [id, d] of Object.entries(found)) defs[id] ??= tidy(d) as object;
  return tidy(out) as JsonSchema;
}

/** #/definitions/X (zod's) to #/components/schemas/X; JavaScript's safe-integer bounds dropped (noise in every client). */
function tidy(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(tidy);
  if (!v || typeof v !== 'object') return v;
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === '$ref' && typeof x === 'string') o[k] = x.replace('#/definitions/', COMPONENTS);
    else if ((k === 'minimum' && x === Number.MIN_SAFE_INTEGER) || (k === 'maximum' && x === Number.MAX_SAFE_INTEGER)) continue;
    else o[k] = tidy(x);
  }
  return o;
}

const ERROR = { $ref: '#/components/responses/Error' };
const PAGE_HEADERS = {
  'X-Total-Count': { description: 'How many items there are in all pages', schema: { type: 'integer' } },
  Link: { description: 'RFC 5988 links to the previous and next pages (rel="prev", rel="next")', schema: { type: 'string' } },
};
const LOCATION = { Location: { description: 'The path of what was created (/api/v2.0/...)', schema: { type: 'string' } } };

/** The OpenAPI responses of a route: its reply, the other non-error answers, a 400 when it takes input, errors. */
function responses(def: RouteSchema, defs: Record<string, object>): Record<string, object> {
  const r = def.reply;
  const out: Record<string, object> = {};
  const content = (body: z.ZodType | undefined, text = false) => (body ? { content: { [text ? 'text/plain' : 'application/json']: { schema: jsonSchema(body, 'output', defs) } } } : {});
  if (!r) out['200'] = { description: 'OK (not described)' };
  else {
    const headers = { ...(r.paged ? PAGE_HEADERS : {}), ...(r.location ? LOCATION : {}) };
    out[String(r.status)] = { description: r.description, ...(Object.keys(headers).length ? { headers } : {}), ...content(r.body, r.text) };
    for (const a of r.also ?? ([] as NonNullable<Reply['also']>)) out[String(a.status)] = { description: a.description, ...content(a.body) };
  }
  if (def.params || def.query || def.body) out['400'] ??= { description: 'Input that does not fit the schema (the message names the field)', content: { 'application/json': { schema: { $ref: `${COMPONENTS}Errors` } } } };
  out.default = ERROR;
  return out;
}

/** OpenAPI parameters (in path or query) from an object schema. */
function parameters(s: z.ZodType | undefined, where: 'path' | 'query'): object[] {
  if (!s) return [];
  const js = jsonSchema(s);
  // Whole numbers arrive as URL text and are parsed by the schema: document them as the integers
  // they become, so generated clients take numbers.
  const parsed = jsonSchema(s, 'output');
  const whole = (x: JsonSchema) => x.type === 'string' && typeof x.pattern === 'string' && x.pattern.startsWith('^(0|[1-9]');
  return Object.entries(js.properties ?? {}).map(([name, schema]) => ({
    name,
    in: where,
    required: where === 'path' || (js.required ?? []).includes(name),
    schema: whole(schema as JsonSchema) && (parsed.properties?.[name] as JsonSchema | undefined)?.type === 'integer' ? parsed.properties![name] : schema,
  }));
}

export function openApiDocument(router: express.Router, version: string): object {
  const paths: Record<string, Record<string, object>> = {};
  const defs: Record<string, object> = {};
  jsonSchema(Errors, 'output', defs);
  for (const { method, path, key } of listRoutes(router)) {
    const oaPath = path.replace(/:([A-Za-z_]+)/g, '{$1}');
    const def: RouteSchema = (key && (ROUTES as Record<string, RouteSchema>)[key]) || {};
    const params = def.params ? parameters(def.params, 'path') : [...path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    paths[oaPath] ??= {};
    paths[oaPath][method] = {
      operationId: `${method}${oaPath.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      ...(def.summary ? { summary: def.summary } : {}),
      parameters: [...params, ...parameters(def.query, 'query')],
      ...(def.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(def.body) } } } } : {}),
      responses: responses(def, defs),
    };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'Berth management API', version, description: "Harbor v2.0-compatible management API of Berth. Shapes follow Harbor's swagger definitions; Berth's additions say so." },
    servers: [{ url: '/api/v2.0' }],
    components: {
      securitySchemes: { basic: { type: 'http', scheme: 'basic' }, session: { type: 'apiKey', in: 'cookie', name: 'berth_session' } },
      responses: {
        Error: { description: "An error in Harbor's shape (401, 403, 404, 409, 412, 413, 500, 503...)", content: { 'application/json': { schema: { $ref: `${COMPONENTS}Errors` } } } },
      },
      schemas: Object.fromEntries(Object.entries(defs).sort(([a], [b]) => a.localeCompare(b))),
    },
    security: [{ basic: [] }, { session: [] }],
    paths,
  };
}
