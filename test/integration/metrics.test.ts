// Prometheus metrics (issue 15 item 1): off unless BERTH_METRICS_ADDR is set, then on a listener of
// their own serving GET /metrics only; the main port's /metrics is a 404. A small image is pushed,
// pulled and deleted through /v2, logins fail and get throttled, garbage collection frees bytes, and
// one scrape must show each of those moved, in a text format a Prometheus parser accepts, with label
// values from small fixed sets (never a repository name or a digest).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { routeGroup } from '../../src/metrics/metrics.ts';
import { basic, makeApp, type TestApp } from '../helpers/app.ts';
import { Oci } from '../helpers/oci.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format strictly enough to catch a malformed line. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      assert.ok(m, `comment line: ${line}`);
      if (m[1] === 'TYPE') {
        assert.match(m[3], /^(counter|gauge|histogram|summary|untyped)$/, line);
        assert.ok(!types.has(m[2]), `one TYPE line per metric: ${m[2]}`);
        types.set(m[2], m[3]);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    assert.ok(m, `sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let pos = 0;
      while (pos < m[2].length) {
        re.lastIndex = pos;
        const l = re.exec(m[2]);
        assert.ok(l, `labels: ${line}`);
        labels[l[1]] = l[2];
        pos = re.lastIndex;
      }
    }
    // Go's ParseFloat (Prometheus) takes NaN in any case; prom-client writes "Nan".
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : /^nan$/i.test(m[3]) ? NaN : Number(m[3]);
    assert.ok(/^nan$/i.test(m[3]) || !Number.isNaN(value), `value: ${line}`);
    samples.push({ name: m[1], labels, value });
  }
  return { samples, types };
}

/** Sum of the samples of one metric whose labels include `match`. */
function sum(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** The listening servers of this process (supertest's come and go, but none starts during makeApp). */
function listeningServers(): Set<net.Server> {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return new Set(handles.filter((h): h is net.Server => h instanceof net.Server && h.listening));
}

/** Servers that started listening since `before`. */
function newServers(before: Set<net.Server>): net.Server[] {
  return [...listeningServers()].filter((s) => !before.has(s));
}

async function scrape(address: string) {
  const res = await fetch(`http://${address}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4; charset=utf-8$/);
  const text = await res.text();
  return { text, ...parse(text) };
}

describe('BERTH_METRICS_ADDR', () => {
  test('host:port is accepted (name, IPv4, bracketed IPv6, port 0); unset means no metrics', () => {
    const cfg = (v?: string) => loadConfig({ BERTH_DATA_DIR: '/tmp/x', ...(v === undefined ? {} : { BERTH_METRICS_ADDR: v }) }).metrics;
    assert.equal(cfg(), undefined);
    assert.equal(cfg(''), undefined);
    assert.deepEqual(cfg('127.0.0.1:9090'), { host: '127.0.0.1', port: 9090 });
    assert.deepEqual(cfg('localhost:0'), { host: 'localhost', port: 0 });
    assert.deepEqual(cfg('[::1]:9090'), { host: '::1', port: 9090 });
    assert.deepEqual(cfg('0.0.0.0:9100'), { host: '0.0.0.0', port: 9100 });
  });

  test('anything else is a configuration error naming the variable', () => {
    for (const bad of ['9090', ':9090', '127.0.0.1', '127.0.0.1:', '127.0.0.1:70000', 'http://127.0.0.1:9090', '::1:9090', '[nothex]:9090', 'a b:1', '127.0.0.1:9090/metrics']) {
      assert.throws(
        () => loadConfig({ BERTH_DATA_DIR: '/tmp/x', BERTH_METRICS_ADDR: bad }),
        (e: unknown) => e instanceof ConfigError && e.variable === 'BERTH_METRICS_ADDR' && /host:port/.test(e.message),
        bad,
      );
    }
  });
});

describe('route groups', () => {
  test('a request URL maps to one of a few fixed groups, never to its path', () => {
    const cases: [string, number, string][] = [
      ['/v2/', 200, 'v2_other'],
      ['/v2', 401, 'v2_other'],
      ['/v2/_catalog?n=10', 200, 'v2_catalog'],
      ['/v2/library/app/manifests/1.0', 200, 'v2_manifest'],
      ['/v2/library/app/manifests/sha256:' + 'a'.repeat(64), 404, 'v2_manifest'],
      ['/v2/a/blobs/b/manifests/latest', 200, 'v2_manifest'],
      ['/v2/a/manifests/b/blobs/sha256:' + 'b'.repeat(64), 200, 'v2_blob'],
      ['/v2/library/app/blobs/uploads/', 202, 'v2_upload'],
      ['/v2/library/app/blobs/uploads/?digest=sha256:00&mount=x', 201, 'v2_upload'],
      ['/v2/library/app/blobs/uploads/8f2c-uuid', 204, 'v2_upload'],
      ['/v2/library/uploadsx/blobs/uploadsx', 404, 'v2_blob'],
      ['/v2/library/app/tags/list?n=100', 200, 'v2_tags'],
      ['/v2/library/app/referrers/sha256:' + 'c'.repeat(64), 200, 'v2_other'],
      ['/v2x/whatever', 404, 'other'],
      ['/service/token?scope=repository:a:pull', 200, 'token'],
      ['/service/tokenx', 404, 'other'],
      ['/api/v2.0/projects', 200, 'api'],
      ['/c/login', 200, 'api'],
      ['/assets/index-abc.js', 200, 'ui'],
      ['/harbor/projects', 200, 'ui'],
      ['/metrics', 404, 'other'],
    ];
    for (const [url, status, group] of cases) assert.equal(routeGroup(url, status), group, url);
  });
});

describe('metrics off (BERTH_METRICS_ADDR unset)', () => {
  let t: TestApp;
  let opened: net.Server[] = [];
  before(async () => {
    const servers = listeningServers();
    t = await makeApp();
    opened = newServers(servers);
  });
  after(() => t.close());

  test('no metrics object and no listener', () => {
    assert.equal(t.berth.metrics, null);
    assert.deepEqual(opened, [], 'createApp opened no server');
  });

  test('the main port answers /metrics with a 404, for a scraper and for a browser alike', async () => {
    for (const accept of ['text/plain', '*/*', 'application/openmetrics-text; version=1.0.0']) {
      const res = await t.request.get('/metrics').set('Accept', accept);
      assert.equal(res.status, 404, accept);
      assert.doesNotMatch(res.text, /berth_http_requests_total/);
    }
  });
});

describe('metrics on (BERTH_METRICS_ADDR=127.0.0.1:0)', () => {
  let t: TestApp;
  let oci: Oci;
  let opened: net.Server[] = [];
  const REPO = 'metrics/app-xyzzy';

  before(async () => {
    const servers = listeningServers();
    t = await makeApp({ BERTH_METRICS_ADDR: '127.0.0.1:0' });
    opened = newServers(servers);
    oci = new Oci(t.request, t.adminAuth);
  });
  after(() => t?.close());

  test('one listener of its own, on the configured host and a port of its own', async () => {
    const address = t.berth.metrics?.address;
    assert.ok(address, 'the bound address is exposed');
    assert.match(address, /^127\.0\.0\.1:\d+$/);
    assert.notEqual(Number(address.split(':')[1]), 0);
    assert.equal(opened.length, 1, 'one server opened');
    const a = opened[0].address() as net.AddressInfo;
    assert.equal(`${a.address}:${a.port}`, address);
  });

  test('it serves GET /metrics and nothing else; the main port still answers /metrics with a 404', async () => {
    const address = t.berth.metrics!.address!;
    for (const p of ['/', '/metricsx', '/api/v2.0/health', '/v2/']) assert.equal((await fetch(`http://${address}${p}`)).status, 404, p);
    const post = await fetch(`http://${address}/metrics`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    assert.equal((await fetch(`http://${address}/metrics?x=1`)).status, 200);
    assert.equal((await t.request.get('/metrics').set('Accept', 'text/plain')).status, 404);
  });

  test('a push, a pull and a delete through /v2 move the registry and HTTP counters', async () => {
    const address = t.berth.metrics!.address!;
    const before = await scrape(address);
    const img = await oci.pushImage(REPO, '1.0', 7);
    const pulled = await oci.get(`/v2/${REPO}/manifests/1.0`).set('Accept', 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(pulled.status, 200);
    const blob = await oci.getBytes(`/v2/${REPO}/blobs/${img.layerDigest}`);
    assert.equal(blob.status, 200);
    assert.equal((await oci.head(`/v2/${REPO}/blobs/${img.configDigest}`)).status, 200);
    assert.equal((await oci.get(`/v2/${REPO}/tags/list`)).status, 200);
    assert.equal((await oci.get('/v2/_catalog')).status, 200);
    assert.equal((await oci.get(`/v2/${REPO}/manifests/nope`)).status, 404);
    assert.equal((await oci.delete(`/v2/${REPO}/manifests/${img.digest}`)).status, 202);
    assert.equal((await t.request.get('/api/v2.0/health')).status, 200);
    assert.equal((await t.request.get('/no/such/page').set('Accept', 'text/plain')).status, 404);

    const { samples, types, text } = await scrape(address);
    const d = (name: string, labels: Record<string, string> = {}) => sum(samples, name, labels) - sum(before.samples, name, labels);
    assert.equal(d('berth_registry_pushes_total'), 1);
    assert.equal(d('berth_registry_pulls_total'), 1);
    assert.equal(d('berth_registry_deletes_total'), 1);
    assert.equal(types.get('berth_registry_pushes_total'), 'counter');

    const req = (group: string, method: string, status: string) => d('berth_http_requests_total', { group, method, status });
    assert.equal(req('v2_upload', 'POST', '201'), 2, 'config and layer, each one monolithic POST');
    assert.equal(req('v2_manifest', 'PUT', '201'), 1);
    assert.equal(req('v2_manifest', 'GET', '200'), 1);
    assert.equal(req('v2_manifest', 'GET', '404'), 1);
    assert.equal(req('v2_manifest', 'DELETE', '202'), 1);
    assert.equal(req('v2_blob', 'GET', '200'), 1);
    assert.equal(req('v2_blob', 'HEAD', '200'), 1);
    assert.equal(req('v2_tags', 'GET', '200'), 1);
    assert.equal(req('v2_catalog', 'GET', '200'), 1);
    assert.equal(req('api', 'GET', '200'), 1);
    assert.equal(req('other', 'GET', '404'), 1);
    assert.equal(types.get('berth_http_request_duration_seconds'), 'histogram');
    assert.equal(d('berth_http_request_duration_seconds_count', { group: 'v2_manifest', method: 'GET' }), 2);
    assert.equal(d('berth_http_request_duration_seconds_bucket', { group: 'v2_manifest', method: 'GET', le: '+Inf' }), 2);
    assert.ok(d('berth_http_request_duration_seconds_sum', { group: 'v2_manifest', method: 'GET' }) > 0);

    // Bytes on the wire, headers included: at least the bodies that went each way.
    assert.ok(d('berth_http_received_bytes_total', { group: 'v2_upload' }) >= img.layer.length + img.config.length);
    assert.ok(d('berth_http_received_bytes_total', { group: 'v2_manifest' }) >= img.raw.length);
    assert.ok(d('berth_http_sent_bytes_total', { group: 'v2_blob' }) >= img.layer.length);
    assert.ok(d('berth_http_sent_bytes_total', { group: 'v2_manifest' }) >= img.raw.length);
    assert.equal(sum(samples, 'berth_http_requests_in_flight'), 0, 'every request answered has left the gauge');
    assert.equal(types.get('berth_http_requests_in_flight'), 'gauge');
    for (const s of samples.filter((x) => x.name.startsWith('berth_http_request_duration_seconds_bucket'))) assert.ok(s.labels.le, 'every bucket has le');

    // Cardinality: label values come from fixed sets, never from the path.
    assert.doesNotMatch(text, /xyzzy|sha256:/);
    const groups = new Set(samples.filter((s) => s.name === 'berth_http_requests_total').map((s) => s.labels.group));
    for (const g of groups) assert.match(g, /^(v2_manifest|v2_blob|v2_upload|v2_tags|v2_catalog|v2_other|token|api|ui|other)$/);
  });

  test('an upload moving data counts in berth_http_requests_in_flight{group="v2_upload"} until it is answered', async () => {
    const address = t.berth.metrics!.address!;
    const location = await oci.startUpload(REPO);
    const server = http.createServer(t.berth.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const answered = new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'PATCH', path: location, headers: { Authorization: t.adminAuth, 'Content-Type': 'application/octet-stream' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.write(Buffer.alloc(1000, 1));
        // The body stays open until the gauge has been seen at 1.
        (async () => {
          for (let i = 0; i < 100; i++) {
            const { samples } = await scrape(address);
            if (sum(samples, 'berth_http_requests_in_flight', { group: 'v2_upload' }) === 1) break;
            await new Promise((r) => setTimeout(r, 20));
          }
          const { samples } = await scrape(address);
          assert.equal(sum(samples, 'berth_http_requests_in_flight', { group: 'v2_upload' }), 1);
          req.end(Buffer.alloc(1000, 2));
        })().catch(reject);
      });
      assert.equal(await answered, 202);
      const { samples } = await scrape(address);
      assert.equal(sum(samples, 'berth_http_requests_in_flight', { group: 'v2_upload' }), 0);
    } finally {
      server.close();
    }
  });

  test('an upload the client abandons midway leaves the in-flight gauge and is counted as 499, not as a success', async () => {
    const address = t.berth.metrics!.address!;
    const before = await scrape(address);
    const location = await oci.startUpload(REPO);
    const server = http.createServer(t.berth.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const req = http.request({ host: '127.0.0.1', port, method: 'PATCH', path: location, headers: { Authorization: t.adminAuth, 'Content-Type': 'application/octet-stream' } });
      req.on('error', () => undefined);
      req.write(Buffer.alloc(1000, 1));
      const inFlight = async () => sum((await scrape(address)).samples, 'berth_http_requests_in_flight', { group: 'v2_upload' });
      for (let i = 0; i < 100 && (await inFlight()) !== 1; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await inFlight(), 1);
      req.destroy();
      for (let i = 0; i < 100 && (await inFlight()) !== 0; i++) await new Promise((r) => setTimeout(r, 20));
      const { samples } = await scrape(address);
      assert.equal(sum(samples, 'berth_http_requests_in_flight', { group: 'v2_upload' }), 0);
      const d = (labels: Record<string, string>) => sum(samples, 'berth_http_requests_total', labels) - sum(before.samples, 'berth_http_requests_total', labels);
      assert.equal(d({ group: 'v2_upload', method: 'PATCH', status: '499' }), 1);
      assert.equal(d({ group: 'v2_upload', method: 'PATCH', status: '202' }), 0);
    } finally {
      server.close();
    }
  });

  test('failed and throttled logins are counted', async () => {
    const address = t.berth.metrics!.address!;
    const before = await scrape(address);
    const token = (pw: string) => t.request.get('/service/token?service=berth-registry').set('Authorization', basic('admin', pw)).set('X-Forwarded-For', '198.51.100.77');
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await token('wrong-password')).status);
    assert.ok(statuses.includes(401) && statuses.includes(429), statuses.join(' '));
    const { samples } = await scrape(address);
    const d = (name: string, labels: Record<string, string> = {}) => sum(samples, name, labels) - sum(before.samples, name, labels);
    assert.equal(d('berth_login_failures_total'), statuses.filter((s) => s === 401).length);
    assert.equal(d('berth_login_throttled_total'), statuses.filter((s) => s === 429).length);
    assert.equal(d('berth_http_requests_total', { group: 'token', method: 'GET', status: '429' }), statuses.filter((s) => s === 429).length);
    // The right password from elsewhere is neither.
    assert.equal((await t.request.get('/service/token?service=berth-registry').set('Authorization', t.adminAuth).set('X-Forwarded-For', '198.51.100.78')).status, 200);
    const after = await scrape(address);
    assert.equal(sum(after.samples, 'berth_login_failures_total'), sum(samples, 'berth_login_failures_total'));
  });

  test('garbage collection runs and the bytes they freed are read from the run history at scrape time', async () => {
    const address = t.berth.metrics!.address!;
    const before = await scrape(address);
    assert.equal(sum(before.samples, 'berth_gc_running'), 0);
    const gc = async (parameters: Record<string, unknown>) => {
      const res = await t.request.post('/api/v2.0/system/gc/schedule').set('Authorization', t.adminAuth).send({ schedule: { type: 'Manual' }, parameters });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      await t.berth.gc.idle();
    };
    const img = await oci.pushImage('metrics/gc', 'gone', 9);
    assert.equal((await oci.delete(`/v2/metrics/gc/manifests/${img.digest}`)).status, 202);
    await gc({ dry_run: true, time_window: 0 });
    const dry = await scrape(address);
    assert.equal(sum(dry.samples, 'berth_gc_runs_total', { status: 'Success' }) - sum(before.samples, 'berth_gc_runs_total', { status: 'Success' }), 1);
    assert.equal(sum(dry.samples, 'berth_gc_freed_bytes_total'), sum(before.samples, 'berth_gc_freed_bytes_total'), 'a dry run frees nothing');
    await gc({ time_window: 0 });
    const { samples, types } = await scrape(address);
    const d = (name: string, labels: Record<string, string> = {}) => sum(samples, name, labels) - sum(before.samples, name, labels);
    assert.equal(d('berth_gc_runs_total', { status: 'Success' }), 2);
    assert.equal(types.get('berth_gc_runs_total'), 'counter');
    // This image's layer and config (and the blobs of the image deleted in the test before).
    assert.ok(d('berth_gc_freed_bytes_total') >= img.layer.length + img.config.length, String(d('berth_gc_freed_bytes_total')));
    assert.ok(d('berth_gc_deleted_blobs_total') >= 2);
  });

  test('process metrics and the running version are there', async () => {
    const { samples, types } = await scrape(t.berth.metrics!.address!);
    assert.ok(sum(samples, 'process_cpu_user_seconds_total') > 0);
    assert.ok(sum(samples, 'process_resident_memory_bytes') > 0);
    assert.ok(sum(samples, 'nodejs_heap_size_used_bytes') > 0);
    assert.equal(types.get('nodejs_eventloop_lag_seconds'), 'gauge');
    const version = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    assert.equal(sum(samples, 'berth_build_info', { version }), 1);
  });

  test('close() closes the metrics listener, also with a scraper connection kept alive', { timeout: 20_000 }, async () => {
    const address = t.berth.metrics!.address!;
    const [host, port] = [address.split(':')[0], Number(address.split(':')[1])];
    // A keep-alive connection that has had an answer and stays open.
    const sock = net.connect(port, host);
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    const answered = new Promise<void>((resolve) => sock.once('data', () => resolve()));
    sock.write(`GET /metrics HTTP/1.1\r\nHost: ${address}\r\nConnection: keep-alive\r\n\r\n`);
    await answered;
    // Would hang (and the test time out) if the open scraper connection held close() up.
    await t.close();
    sock.destroy();
    await assert.rejects(fetch(`http://${address}/metrics`));
    t = undefined as unknown as TestApp;
  });
});

describe('sources the app hands over when it has them', () => {
  test('cache statistics, open uploads and database query timings appear only when given, with bounded labels', async () => {
    const t = await makeApp();
    const { createMetrics } = await import('../../src/metrics/metrics.ts');
    const bare = await createMetrics({ db: () => t.berth.db, host: '127.0.0.1', port: 0, version: '0' });
    const stats = { manifests: { hits: 5, misses: 2, entries: 3 }, tags: { hits: 0, misses: 1, entries: 1 } };
    let open = 4;
    const full = await createMetrics({ db: () => t.berth.db, host: '127.0.0.1', port: 0, version: '0', cacheStats: () => stats, openUploads: () => open });
    try {
      const plain = parse(await bare.text());
      for (const name of ['berth_cache_hits_total', 'berth_cache_misses_total', 'berth_cache_entries', 'berth_uploads_open', 'berth_db_query_duration_seconds']) {
        assert.ok(!plain.types.has(name), `${name} is absent without its source`);
      }
      stats.manifests.hits = 9;
      open = 1;
      full.dbQuery('findMany', 0.0003);
      full.dbQuery('findMany', 0.002);
      full.dbQuery('$queryRaw', 0.04);
      for (let i = 0; i < 100; i++) full.dbQuery(`made up ${i}`, 0.001);
      const { samples, types } = parse(await full.text());
      assert.equal(sum(samples, 'berth_cache_hits_total', { cache: 'manifests' }), 9, 'read at scrape time');
      assert.equal(sum(samples, 'berth_cache_misses_total', { cache: 'tags' }), 1);
      assert.equal(sum(samples, 'berth_cache_entries', { cache: 'manifests' }), 3);
      assert.equal(types.get('berth_cache_hits_total'), 'counter');
      assert.equal(sum(samples, 'berth_uploads_open'), 1);
      assert.equal(types.get('berth_db_query_duration_seconds'), 'histogram');
      assert.equal(sum(samples, 'berth_db_query_duration_seconds_count', { operation: 'findMany' }), 2);
      assert.equal(sum(samples, 'berth_db_query_duration_seconds_bucket', { operation: 'findMany', le: '0.001' }), 1);
      assert.equal(sum(samples, 'berth_db_query_duration_seconds_count', { operation: '$queryRaw' }), 1);
      assert.equal(sum(samples, 'berth_db_query_duration_seconds_count', { operation: 'other' }), 100, 'odd operation names fold into "other"');
    } finally {
      await bare.close();
      await full.close();
      await t.close();
    }
  });
});

describe('a metrics address that cannot be bound', () => {
  test('fails the start with an error naming BERTH_METRICS_ADDR', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await assert.rejects(makeApp({ BERTH_METRICS_ADDR: `127.0.0.1:${port}` }), /BERTH_METRICS_ADDR 127\.0\.0\.1:\d+: EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });
});
