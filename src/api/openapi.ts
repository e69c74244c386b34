// The OpenAPI document of Berth's management API, generated from the routes actually mounted, so
// it cannot drift from them (a test checks every route appears and every documented path answers).
import type express from 'express';

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  name?: string;
}

/** Every (method, path) of a router and the routers mounted in it without a path prefix. */
export function listRoutes(router: express.Router): { method: string; path: string }[] {
  const out: { method: string; path: string }[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const [m, on] of Object.entries(layer.route.methods)) if (on && m !== '_all') out.push({ method: m.toLowerCase(), path: layer.route.path });
      } else if (layer.name === 'router' && layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((router as unknown as { stack: Layer[] }).stack);
  return out;
}

export function openApiDocument(router: express.Router, version: string): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const { method, path } of listRoutes(router)) {
    const oaPath = path.replace(/:([A-Za-z_]+)/g, '{$1}');
    const params = [...path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    paths[oaPath] ??= {};
    paths[oaPath][method] = {
      operationId: `${method}${oaPath.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      parameters: params,
      responses: { default: { description: 'Harbor-compatible response; errors as {"errors":[{"code","message"}]}' } },
    };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'Berth management API', version, description: "Harbor v2.0-compatible management API of Berth. Shapes follow Harbor's swagger definitions." },
    servers: [{ url: '/api/v2.0' }],
    components: { securitySchemes: { basic: { type: 'http', scheme: 'basic' }, session: { type: 'apiKey', in: 'cookie', name: 'berth_session' } } },
    security: [{ basic: [] }, { session: [] }],
    paths,
  };
}
