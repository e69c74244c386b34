// The OpenAPI document of Berth's management API, generated from the routes actually mounted and
// from the zod schemas those routes validate their input with (src/api/schemas.ts), so it cannot
// drift from either: path and query parameters and request bodies are the schemas themselves.
import type express from 'express';
import { z } from 'zod';
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

/** A request's view of a schema: what a client sends (before defaults and transforms). */
function jsonSchema(s: z.ZodType): JsonSchema {
  const out = z.toJSONSchema(s, { io: 'input', target: 'openapi-3.0', unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}

/** OpenAPI parameters (in path or query) from an object schema. */
function parameters(s: z.ZodType | undefined, where: 'path' | 'query'): object[] {
  if (!s) return [];
  const js = jsonSchema(s);
  return Object.entries(js.properties ?? {}).map(([name, schema]) => ({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema }));
}

export function openApiDocument(router: express.Router, version: string): object {
  const paths: Record<string, Record<string, object>> = {};
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
      responses: {
        default: { description: 'Harbor-compatible response' },
        ...(def.params || def.query || def.body ? { '400': { description: 'Input that does not fit the schema', content: { 'application/json': { schema: { $ref: '#/components/schemas/Errors' } } } } } : {}),
      },
    };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'Berth management API', version, description: "Harbor v2.0-compatible management API of Berth. Shapes follow Harbor's swagger definitions." },
    servers: [{ url: '/api/v2.0' }],
    components: {
      securitySchemes: { basic: { type: 'http', scheme: 'basic' }, session: { type: 'apiKey', in: 'cookie', name: 'berth_session' } },
      schemas: {
        Errors: {
          type: 'object',
          description: 'Harbor\'s error shape; a 400 names the field: "<field>: <problem>"',
          properties: { errors: { type: 'array', items: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } } },
        },
      },
    },
    security: [{ basic: [] }, { session: [] }],
    paths,
  };
}
