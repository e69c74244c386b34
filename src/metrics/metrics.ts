// Prometheus metrics (prom-client) on a listener of their own, BERTH_METRICS_ADDR, off the public
// port as Harbor keeps them. Built only when that variable is set: prom-client is loaded with a
// dynamic import, and without it the request path pays one null check.
//
// Per request: one 'close' listener that counts the answer by route group, method and status, times
// it and adds the socket's byte counters since the connection's previous answer. Everything else is
// counted through the hooks the app already has (pull, push, registry events, the password check)
// or read at scrape time (garbage collection history, process figures).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
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

const GROUPS: readonly RouteGroup[] = ['v2_manifest', 'v2_blob', 'v2_upload', 'v2_tags', 'v2_catalog', 'v2_other', 'token', 'api', 'ui', 'other'];
const GROUP_INDEX = Object.fromEntries(GROUPS.map((g, i) => [g, i])) as Record<RouteGroup, number>;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Seconds. The registry's hot paths answer in well under a millisecond; blob transfers take minutes. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** A metric prom-client's registry can print: name, help, type, and its samples at scrape time. */
function customMetric(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => Sample[]) {
  return { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) };
}

/** A histogram in plain arrays: one Map lookup and a short bucket scan per observation. */
class PlainHistogram {
  private series = new Map<string, { labels: Record<string, string>; buckets: Float64Array; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, private readonly bounds: readonly number[]) {}

  /** `key` identifies the label set; `labels` builds it the first time only. */
  observe(key: string, labels: () => Record<string, string>, value: number): void {
    let d = this.series.get(key);
    if (!d) this.series.set(key, (d = { labels: labels(), buckets: new Float64Array(this.bounds.length), sum: 0, count: 0 }));
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    if (i < this.bounds.length) d.buckets[i]++;
    d.sum += value;
    d.count++;
  }

  metric() {
    return customMetric(this.name, this.help, 'histogram', () =>
      [...this.series.values()].flatMap((d) => {
        const out: Sample[] = [];
        let cumulative = 0;
        this.bounds.forEach((le, i) => {
          cumulative += d.buckets[i];
          out.push({ metricName: `${this.name}_bucket`, value: cumulative, labels: { ...d.labels, le } });
        });
        out.push({ metricName: `${this.name}_bucket`, value: d.count, labels: { ...d.labels, le: '+Inf' } });
        out.push({ metricName: `${this.name}_sum`, value: d.sum, labels: d.labels });
        out.push({ metricName: `${this.name}_count`, value: d.count, labels: d.labels });
        return out;
      }),
    );
  }
}

/** Requests, latency, bytes and requests in flight of the main port, in plain structures. */
class HttpStats {
  /** "group method status" -> count */
  private requests = new Map<string, { group: string; method: string; status: number; count: number }>();
  private durations = new PlainHistogram('berth_http_request_duration_seconds', "Time from a request's arrival to the end of its answer, by route group and method", BUCKETS);
  private received = new Float64Array(GROUPS.length);
  private sent = new Float64Array(GROUPS.length);
  readonly inFlight = new Int32Array(GROUPS.length);

  record(group: RouteGroup, rawMethod: string, status: number, seconds: number, bytesIn: number, bytesOut: number): void {
    const method = METHODS.has(rawMethod) ? rawMethod : 'other';
    const dk = group + ' ' + method;
    const rk = dk + ' ' + status;
    const r = this.requests.get(rk);
    if (r) r.count++;
    else this.requests.set(rk, { group, method, status, count: 1 });
    this.durations.observe(dk, () => ({ group, method }), seconds);
    const g = GROUP_INDEX[group];
    if (bytesIn > 0) this.received[g] += bytesIn;
    if (bytesOut > 0) this.sent[g] += bytesOut;
  }

  metrics() {
    const perGroup = (a: Float64Array | Int32Array, all: boolean) => GROUPS.flatMap((group, i) => (all || a[i] ? [{ value: a[i], labels: { group } }] : []));
    return [
      customMetric('berth_http_requests_total', 'HTTP requests answered on the main port, by route group, method and status', 'counter', () =>
        [...this.requests.values()].map((r) => ({ value: r.count, labels: { group: r.group, method: r.method, status: r.status } })),
      ),
      this.durations.metric(),
      customMetric('berth_http_received_bytes_total', 'Bytes received on the main port (headers and bodies), by route group', 'counter', () => perGroup(this.received, false)),
      customMetric('berth_http_sent_bytes_total', 'Bytes sent on the main port (headers and bodies), by route group', 'counter', () => perGroup(this.sent, false)),
      customMetric('berth_http_requests_in_flight', 'Requests being answered now, by route group (v2_upload: blob uploads moving data)', 'gauge', () => perGroup(this.inFlight, true)),
    ];
  }
}

/** Socket byte counters when the connection's previous answer closed. */
const MARK = Symbol('berth.metrics.bytes');
type Marked = { [MARK]?: [number, number] };

/** Hit and miss counts of one in-memory cache, and its entries now. */
export interface CacheStats {
  hits: number;
  misses: number;
  entries: number;
}

export interface MetricsDeps {
  /** The database, read at scrape time (garbage collection history). */
  db: () => Db;
  /** Hot-path caches by name (read at scrape time); without it there are no cache metrics. */
  cacheStats?: () => Record<string, CacheStats>;
  /** Upload sessions open now (read at scrape time); without it there is no such gauge. */
  openUploads?: () => number;
  /** Where to listen; port 0 picks a free port (see `address`). */
  host: string;
  port: number;
  /** Berth's version, for berth_build_info. */
  version: string;
}

export interface Metrics {
  /** Called at the start of every request on the main port. */
  observe(req: IncomingMessage, res: ServerResponse): void;
  pulled(): void;
  pushed(): void;
  /** A registry event (deletes are counted; pushes and pulls come from pulled/pushed). */
  registryEvent(type: string): void;
  /**
   * One database query took `seconds` (for openDatabase's timing hook). `operation` is a Prisma
   * operation name (findMany, create, $queryRaw ...); the histogram appears with the first call.
   */
  dbQuery(operation: string, seconds: number): void;
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

  // The per-request figures are kept in plain maps and arrays (a few increments per request) and
  // turned into samples at scrape time: prom-client's own counters hash their label set on every
  // increment, ~1-2 µs each, five of them per request.
  const http = new HttpStats();
  for (const m of http.metrics()) register.registerMetric(m as unknown as Prom.Metric);
  const pulls = new prom.Counter({ name: 'berth_registry_pulls_total', help: 'Manifests pulled (GET of a manifest answered 2xx)', registers });
  const pushes = new prom.Counter({ name: 'berth_registry_pushes_total', help: 'Manifests pushed (PUT of a manifest answered 2xx)', registers });
  const deletes = new prom.Counter({ name: 'berth_registry_deletes_total', help: 'Manifests, tags and blob links deleted through the registry API', registers });
  const loginFailures = new prom.Counter({ name: 'berth_login_failures_total', help: 'Password, robot secret or token checks that failed (throttled ones excluded)', registers });
  const loginThrottled = new prom.Counter({ name: 'berth_login_throttled_total', help: 'Logins refused with 429 because the name was locked after repeated failures', registers });
  new prom.Gauge({ name: 'berth_build_info', help: 'Always 1; the version label says which Berth is running', labelNames: ['version'] as const, registers }).labels(deps.version).set(1);

  // Garbage collection, from its run history at scrape time (survives restarts; dry runs free nothing).
  // One read serves every GC metric of a scrape (prom-client calls each metric's collect).
  let gcRead: Promise<void> | null = null;
  const readGc = () =>
    (gcRead ??= (async () => {
      try {
        const [byStatus, freed] = await Promise.all([
          deps.db().gcRun.groupBy({ by: ['status'], _count: { _all: true } }),
          deps.db().gcRun.aggregate({ where: { NOT: { parameters: { contains: '"dry_run":true' } } }, _sum: { bytesFreed: true, blobsDeleted: true, manifestsDeleted: true } }),
        ]);
        gcRuns.reset();
        let running = 0;
        for (const s of ['Success', 'Error', 'Stopped']) gcRuns.labels(s).inc(0);
        for (const row of byStatus) {
          if (row.status === 'Running' || row.status === 'Pending' || row.status === 'Stopping') running += row._count._all;
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

  // Optional sources, read at scrape time: present only when the app can hand them over.
  const { cacheStats, openUploads } = deps;
  if (cacheStats) {
    const per = (field: keyof CacheStats) => () => Object.entries(cacheStats()).map(([cache, s]) => ({ value: s[field], labels: { cache } }));
    register.registerMetric(customMetric('berth_cache_hits_total', 'Lookups answered from a hot-path in-memory cache, by cache', 'counter', per('hits')) as unknown as Prom.Metric);
    register.registerMetric(customMetric('berth_cache_misses_total', 'Lookups a hot-path in-memory cache could not answer, by cache', 'counter', per('misses')) as unknown as Prom.Metric);
    register.registerMetric(customMetric('berth_cache_entries', 'Entries held by a hot-path in-memory cache, by cache', 'gauge', per('entries')) as unknown as Prom.Metric);
  }
  if (openUploads) register.registerMetric(customMetric('berth_uploads_open', 'Blob upload sessions open (started, neither completed, cancelled nor expired)', 'gauge', () => [{ value: openUploads(), labels: {} }]) as unknown as Prom.Metric);

  // Database query latency, fed by openDatabase's timing hook when it has one.
  const DB_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
  let dbHistogram: PlainHistogram | null = null;
  const dbOperations = new Set<string>();
  const dbQuery = (operation: string, seconds: number) => {
    if (!dbHistogram) {
      dbHistogram = new PlainHistogram('berth_db_query_duration_seconds', 'Database query latency, by Prisma operation', DB_BUCKETS);
      register.registerMetric(dbHistogram.metric() as unknown as Prom.Metric);
    }
    // Operation names are a small fixed vocabulary; anything else (or past 40 of them) is "other".
    let op = operation;
    if (!dbOperations.has(op)) {
      if (dbOperations.size >= 40 || !/^\$?[A-Za-z]{1,40}$/.test(op)) op = 'other';
      else dbOperations.add(op);
    }
    dbHistogram.observe(op, () => ({ operation: op }), seconds);
  };

  const observe = (req: IncomingMessage, res: ServerResponse) => {
    const start = process.hrtime.bigint();
    const url = req.url ?? '';
    // The group before the answer is known (for the in-flight gauge); only ui/other depend on it.
    const early = routeGroup(url, 200);
    http.inFlight[GROUP_INDEX[early]]++;
    res.once('close', () => {
      http.inFlight[GROUP_INDEX[early]]--;
      // An answer that never completed (the client went away mid-upload or mid-download) is
      // counted as 499, nginx's "client closed request", not as the status it was about to send.
      const status = res.writableFinished ? res.statusCode : 499;
      const group = early === 'ui' && status >= 400 ? 'other' : early;
      const socket = req.socket;
      const [readBefore, writtenBefore] = (socket as Marked)[MARK] ?? [0, 0];
      const read = socket.bytesRead;
      const written = socket.bytesWritten;
      (socket as Marked)[MARK] = [read, written];
      http.record(group, req.method ?? '', status, Number(process.hrtime.bigint() - start) / 1e9, read - readBefore, written - writtenBefore);
    });
  };

  const server = createServer((req, res) => {
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
    dbQuery,
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
