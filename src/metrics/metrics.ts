// Prometheus metrics (prom-client) on a listener of their own, BERTH_METRICS_ADDR, off the public
// port as Harbor keeps them. Built only when that variable is set: prom-client is loaded with a
// dynamic import, and without it the request path pays one null check.
//
// Per request: one 'close' listener that counts the answer by route group, method and status, times
// it and adds the socket's byte counters since the connection's previous answer. Everything else is
// counted through the hooks the app already has (pull, push, registry events, the password check)
// or read at scrape time (garbage collection history, process figures).
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as Prom from 'prom-client';
import type { PasswordCheck } from '../auth/authenticator.ts';
import type { Db } from '../db/client.ts';
import { AppError } from '../lib/errors.ts';

/** A fixed, small set: never the raw path (one series per repository or digest would explode). */
export type RouteGroup = 'v2_manifest' | 'v2_blob' | 'v2_upload' | 'v2_tags' | 'v2_catalog' | 'v2_other' | 'token' | 'api' | 'ui' | 'other';

/** The route group of a request URL, from a few string checks (no regular expression, no parse). */
export function routeGroup(url: string, status: number): RouteGroup {
  if (url.startsWith('/v2') && (url.length === 3 || url[3] === '/' || url[3] === '?')) {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path === '/v2/_catalog') return 'v2_catalog';
    if (path.endsWith('/tags/list')) return 'v2_tags';
    // A repository name may itself contain "manifests" or "blobs" as a component: the last marker wins.
    const m = path.lastIndexOf('/manifests/');
    const b = path.lastIndexOf('/blobs/');
    if (m > 3 && m > b) return 'v2_manifest';
    if (b > 3) return path.startsWith('uploads', b + 7) && (path.length === b + 14 || path[b + 14] === '/') ? 'v2_upload' : 'v2_blob';
    return 'v2_other';
  }
  if (url.startsWith('/service/token') && (url.length === 14 || url[14] === '?')) return 'token';
  if (url.startsWith('/api/') || url.startsWith('/c/')) return 'api';
  // The web UI's files and client-side routes; anything else (probes of unknown paths) is "other".
  return status < 400 ? 'ui' : 'other';
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Socket byte counters when the connection's previous answer closed. */
const MARK = Symbol('berth.metrics.bytes');
type Marked = { [MARK]?: [number, number] };

export interface MetricsDeps {
  db: Db;
  /** Where to listen; port 0 picks a free port (see `address`). */
  host: string;
  port: number;
}

export interface Metrics {
  /** Called at the start of every request on the main port. */
  observe(req: IncomingMessage, res: ServerResponse): void;
  pulled(): void;
  pushed(): void;
  /** A registry event (deletes are counted; pushes and pulls come from pulled/pushed). */
  registryEvent(type: string): void;
  /** Wraps the password check: counts failed and throttled logins. */
  wrapLogin(check: PasswordCheck): PasswordCheck;
  /** The bound address, host:port ([v6]:port), once listening. */
  readonly address: string | null;
  /** The text a scrape gets (Prometheus exposition format). */
  text(): Promise<string>;
  listen(): Promise<void>;
  close(): Promise<void>;
}

/** Builds the metrics (loads prom-client) and their listener; call listen() to bind. */
export async function createMetrics(deps: MetricsDeps): Promise<Metrics> {
  const prom: typeof Prom = await import('prom-client');
  const register = new prom.Registry();
  prom.collectDefaultMetrics({ register });
  const registers = [register];

  const requests = new prom.Counter({ name: 'berth_http_requests_total', help: 'HTTP requests answered on the main port, by route group, method and status', labelNames: ['group', 'method', 'status'] as const, registers });
  const duration = new prom.Histogram({
    name: 'berth_http_request_duration_seconds',
    help: 'Time from a request\'s arrival to the end of its answer, by route group and method',
    labelNames: ['group', 'method'] as const,
    // The registry's hot paths answer in well under a millisecond; blob transfers take minutes.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers,
  });
  const received = new prom.Counter({ name: 'berth_http_received_bytes_total', help: 'Bytes received on the main port (headers and bodies), by route group', labelNames: ['group'] as const, registers });
  const sent = new prom.Counter({ name: 'berth_http_sent_bytes_total', help: 'Bytes sent on the main port (headers and bodies), by route group', labelNames: ['group'] as const, registers });
  const inFlight = new prom.Gauge({ name: 'berth_http_requests_in_flight', help: 'Requests being answered now, by route group (v2_upload: blob uploads moving data)', labelNames: ['group'] as const, registers });
  const pulls = new prom.Counter({ name: 'berth_registry_pulls_total', help: 'Manifests pulled (GET of a manifest answered 2xx)', registers });
  const pushes = new prom.Counter({ name: 'berth_registry_pushes_total', help: 'Manifests pushed (PUT of a manifest answered 2xx)', registers });
  const deletes = new prom.Counter({ name: 'berth_registry_deletes_total', help: 'Manifests, tags and blob links deleted through the registry API', registers });
  const loginFailures = new prom.Counter({ name: 'berth_login_failures_total', help: 'Password, robot secret or token checks that failed (throttled ones excluded)', registers });
  const loginThrottled = new prom.Counter({ name: 'berth_login_throttled_total', help: 'Logins refused with 429 because the name was locked after repeated failures', registers });

  // Garbage collection, from its run history at scrape time (survives restarts; dry runs free nothing).
  // One read serves every GC metric of a scrape (prom-client calls each metric's collect).
  let gcRead: Promise<void> | null = null;
  const readGc = () =>
    (gcRead ??= (async () => {
      try {
        const [byStatus, freed] = await Promise.all([
          deps.db.gcRun.groupBy({ by: ['status'], _count: { _all: true } }),
          deps.db.gcRun.aggregate({ where: { NOT: { parameters: { contains: '"dry_run":true' } } }, _sum: { bytesFreed: true, blobsDeleted: true, manifestsDeleted: true } }),
        ]);
        gcRuns.reset();
        let running = 0;
        for (const s of ['Success', 'Error', 'Stopped']) gcRuns.labels(s).inc(0);
        for (const row of byStatus) {
          if (row.status === 'Running' || row.status === 'Pending') running += row._count._all;
          else gcRuns.labels(row.status).inc(row._count._all);
        }
        gcRunning.set(running > 0 ? 1 : 0);
        const set = (c: Prom.Counter, v: bigint | number | null) => {
          c.reset();
          c.inc(Number(v ?? 0));
        };
        set(gcBytes, freed._sum.bytesFreed);
        set(gcBlobs, freed._sum.blobsDeleted);
        set(gcManifests, freed._sum.manifestsDeleted);
      } finally {
        gcRead = null;
      }
    })());
  const gcRuns = new prom.Counter({ name: 'berth_gc_runs_total', help: 'Garbage collection runs that ended, by final status', labelNames: ['status'] as const, registers, collect: readGc });
  const gcBytes = new prom.Counter({ name: 'berth_gc_freed_bytes_total', help: 'Bytes of blobs garbage collection deleted (dry runs excluded)', registers, collect: readGc });
  const gcBlobs = new prom.Counter({ name: 'berth_gc_deleted_blobs_total', help: 'Blobs garbage collection deleted (dry runs excluded)', registers, collect: readGc });
  const gcManifests = new prom.Counter({ name: 'berth_gc_deleted_manifests_total', help: 'Manifests garbage collection deleted (dry runs excluded)', registers, collect: readGc });
  const gcRunning = new prom.Gauge({ name: 'berth_gc_running', help: '1 while a garbage collection run is pending or running', registers, collect: readGc });

  // Label children cached by key: prom-client hashes the label object on every call otherwise.
  const requestChildren = new Map<string, Prom.Counter.Internal>();
  const durationChildren = new Map<string, Prom.Histogram.Internal<'group' | 'method'>>();
  const byGroup = <T>(make: (g: RouteGroup) => T) => {
    const m = new Map<RouteGroup, T>();
    return (g: RouteGroup) => {
      let c = m.get(g);
      if (c === undefined) m.set(g, (c = make(g)));
      return c;
    };
  };
  const receivedFor = byGroup((g) => received.labels(g));
  const sentFor = byGroup((g) => sent.labels(g));
  const inFlightFor = byGroup((g) => inFlight.labels(g));

  const observe = (req: IncomingMessage, res: ServerResponse) => {
    const start = process.hrtime.bigint();
    const url = req.url ?? '';
    // The group before the answer is known (for the in-flight gauge); only ui/other depend on it.
    const early = routeGroup(url, 200);
    const flying = inFlightFor(early);
    flying.inc();
    res.once('close', () => {
      flying.dec();
      const group = early === 'ui' ? routeGroup(url, res.statusCode) : early;
      const method = METHODS.has(req.method ?? '') ? req.method! : 'other';
      const status = res.statusCode;
      const rk = `${group} ${method} ${status}`;
      let rc = requestChildren.get(rk);
      if (!rc) requestChildren.set(rk, (rc = requests.labels(group, method, String(status))));
      rc.inc();
      const dk = `${group} ${method}`;
      let dc = durationChildren.get(dk);
      if (!dc) durationChildren.set(dk, (dc = duration.labels(group, method)));
      dc.observe(Number(process.hrtime.bigint() - start) / 1e9);
      const socket = req.socket;
      const [readBefore, writtenBefore] = (socket as Marked)[MARK] ?? [0, 0];
      const read = socket.bytesRead;
      const written = socket.bytesWritten;
      (socket as Marked)[MARK] = [read, written];
      if (read > readBefore) receivedFor(group).inc(read - readBefore);
      if (written > writtenBefore) sentFor(group).inc(written - writtenBefore);
    });
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(path === '/metrics' ? 405 : 404, { 'Content-Type': 'text/plain; charset=utf-8', ...(path === '/metrics' ? { Allow: 'GET, HEAD' } : {}) });
      res.end(path === '/metrics' ? 'method not allowed\n' : 'not found; metrics are at /metrics\n');
      return;
    }
    register.metrics().then(
      (body) => {
        res.writeHead(200, { 'Content-Type': register.contentType, 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`metrics collection failed: ${err instanceof Error ? err.message : 'error'}\n`);
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  let address: string | null = null;

  return {
    observe,
    pulled: () => pulls.inc(),
    pushed: () => pushes.inc(),
    registryEvent: (type) => {
      if (type === 'delete') deletes.inc();
    },
    wrapLogin: (check) => async (username, password, remoteAddress) => {
      let principal;
      try {
        principal = await check(username, password, remoteAddress);
      } catch (e) {
        if (e instanceof AppError && e.code === 'TOOMANYREQUESTS') loginThrottled.inc();
        throw e;
      }
      if (!principal) loginFailures.inc();
      return principal;
    },
    get address() {
      return address;
    },
    text: () => register.metrics(),
    async listen() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(deps.port, deps.host, () => {
          server.off('error', reject);
          resolve();
        });
      }).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`cannot listen for metrics on BERTH_METRICS_ADDR ${deps.host}:${deps.port}: ${err.code ?? err.message}`);
      });
      const a = server.address() as AddressInfo;
      address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    },
    async close() {
      if (!server.listening) return;
      // A scraper's keep-alive connection must not hold the shutdown up.
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
