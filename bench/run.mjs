#!/usr/bin/env node
// npm run bench [-- --quick] [-- --rounds=N] [-- --rows=a,b] [-- --no-distribution] [-- --tsx] [-- --cpu-prof] [-- --keep] [-- --mem]
//   [-- --berth-root=DIR]   Berth built from another copy of the tree (a patch applied, say) instead of this one
// npm run bench -- --scale [--sizes=1000,20000] [--tsx] [--backend=pg]   growth rows (issue 17): lists and GC at
//   two sizes (--backend=pg: on a throwaway PostgreSQL; results in list-scale-pg.json and gc-scale-pg.json)
// npm run bench -- --backend=pg-s3 [--quick] ...   the same rows with Berth on PostgreSQL + radosgw and
//   Distribution's S3 driver on the same radosgw (its own bucket); see bench/lib/engines.mjs
//
// Starts Berth (authentication on, Bearer tokens as docker uses them) and, when installed, CNCF
// Distribution 2.8.2 (Debian's docker-registry, no auth: its default) on loopback with fresh
// storage, runs the same workload against both, alternating which goes first each round, and
// prints throughput, the ratio Berth / Distribution, and each server's CPU time per unit (read
// from /proc/<pid>/stat before and after; the stable figure on a shared machine). Figures are the
// median over rounds. Results also go to bench/results/latest.json (latest-pg-s3.json with --backend=pg-s3).
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ACCEPT, OCI_MANIFEST, bearer, makeTarget, mount, percentile, pool, pullVerified, pushChunked, pushMonolithic, pushStreamed, putManifest, request, walk } from './lib/client.mjs';
import { buildBerth, cpuMs, distributionBinary, memMiB, peakMiB, resetPeak, startBerth, startDistribution } from './lib/servers.mjs';
import { createBucket, pgS3Unavailable, startPostgres, startRgw, treePids } from './lib/engines.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const opt = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const QUICK = flag('quick');
const BERTH_ROOT = opt('berth-root') ? path.resolve(opt('berth-root')) : ROOT;
const BACKEND = opt('backend') ?? 'embedded';
// --scale --backend=pg: the growth rows on PostgreSQL (bench/list-scale.mjs and bench/gc-scale.mjs take it).
if (BACKEND !== 'embedded' && BACKEND !== 'pg-s3' && !(flag('scale') && BACKEND === 'pg')) {
  console.error(`[bench] --backend must be embedded (SQLite + filesystem, the default) or pg-s3 (PostgreSQL + radosgw), got "${BACKEND}"`);
  process.exit(2);
}
const PG_S3 = BACKEND === 'pg-s3';
const MiB = 1024 * 1024;

const S = QUICK
  ? { rounds: 2, monoN: 8, monoSize: 8 * MiB, chunkedN: 1, chunkedSize: 32 * MiB, chunk: 8 * MiB, smallReqs: 3000, manifestPuts: 200, tags: 1000, repos: 200, walkMs: 1000, big: 256 * MiB }
  : { rounds: 3, monoN: 32, monoSize: 8 * MiB, chunkedN: 4, chunkedSize: 64 * MiB, chunk: 8 * MiB, smallReqs: 20000, manifestPuts: 1000, tags: 10000, repos: 1000, walkMs: 3000, big: 1024 * MiB };
if (opt('rounds')) S.rounds = Number(opt('rounds'));
if (opt('big')) S.big = Number(opt('big')) * MiB;
const ONLY = opt('rows')?.split(',');
const want = (row) => !ONLY || ONLY.includes(row);
const PASSWORD = 'bench-admin-' + randomBytes(6).toString('hex');
const BASIC = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;

const log = (...a) => console.error('[bench]', ...a);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Unique blobs sharing one random body: a fresh random head makes each digest new. */
function makeBlobs(n, size) {
  const base = randomBytes(size);
  return Array.from({ length: n }, () => {
    const b = Buffer.from(base);
    randomBytes(64).copy(b, 0);
    return { data: b, digest: sha(b), size };
  });
}

// ---- the workload ------------------------------------------------------------------------------

const rows = new Map(); // key -> { label, unit, cpuUnit, cpuScale, results: { berth: [], distribution: [] } }
const memTrail = []; // --mem: Berth's RSS after each row, the row's peak and the peak so far
let berthPid;
function record(key, label, unit, cpuUnit, cpuScale, target, r) {
  if (flag('mem') && target === 'berth') memTrail.push(`${key}: rss ${memMiB(berthPid).rss.toFixed(0)}, row peak ${r.peakRss?.toFixed(0) ?? '—'}, peak so far ${peakMiB(berthPid).toFixed(0)}`);
  if (!rows.has(key)) rows.set(key, { key, label, unit, cpuUnit, cpuScale, results: {} });
  (rows.get(key).results[target] ??= []).push(r);
}

/** --backend=pg-s3: the pids whose CPU is the storage engines' (radosgw, the OSD, PostgreSQL and its backends). */
let enginePids = null;
const engineCpuMs = () => {
  if (!enginePids) return 0;
  let sum = 0;
  for (const pid of enginePids()) {
    try {
      sum += cpuMs(pid);
    } catch {
      // a backend that ended meanwhile
    }
  }
  return sum;
};

/** Times fn on a target: wall time, the server's CPU time (and the engines'), and fn's count of units. */
async function measure(t, fn) {
  // --mem: each row's own peak RSS (a fresh VmHWM window), besides the peak over the run.
  const window = flag('mem') && resetPeak(t.pid);
  const c0 = cpuMs(t.pid);
  const e0 = engineCpuMs();
  const t0 = performance.now();
  const out = await fn();
  const ms = performance.now() - t0;
  const cpu = cpuMs(t.pid) - c0;
  const engineCpu = enginePids ? engineCpuMs() - e0 : undefined;
  return { ms, cpu, engineCpu, ...(window ? { peakRss: memMiB(t.pid).hwm } : {}), ...out };
}

const REPO = { mono: 'library/bench-mono', chunked: 'library/bench-chunked', man: 'library/bench-man', tags: 'library/bench-tags', cat: (i) => `library/bench-cat-${String(i).padStart(4, '0')}`, big: 'library/bench-big' };

async function authFor(t, scopes) {
  t.authz = t.name === 'berth' ? await bearer(t, scopes) : undefined;
}

const base = {}; // config and layer blobs and the base manifest, shared by the manifest rows

async function setup(t) {
  const opts = { auth: t.basic };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, bench: true }));
  const layer = randomBytes(1024);
  base.config ??= { data: config, digest: sha(config), size: config.length };
  base.layer ??= { data: layer, digest: sha(layer), size: layer.length };
  for (const b of [base.config, base.layer]) await pushMonolithic(t, REPO.man, b.data, b.digest, opts);
  base.manifest = (annotation) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: base.config.digest, size: base.config.size },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: base.layer.digest, size: base.layer.size }],
        ...(annotation ? { annotations: { 'org.example.bench': annotation } } : {}),
      }),
    );
  for (let i = 0; i < 16; i++) await putManifest(t, REPO.man, `latest-${i}`, base.manifest(`latest-${i}`), opts);
  if (want('tags')) {
    for (const b of [base.config, base.layer]) await mount(t, REPO.tags, REPO.man, b.digest, opts);
    const m = base.manifest('tags');
    await pool(S.tags, 16, (i) => putManifest(t, REPO.tags, `t${String(i).padStart(5, '0')}`, m, opts));
  }
  if (want('catalog')) {
    const m = base.manifest();
    await pool(S.repos, 16, async (i) => {
      for (const b of [base.config, base.layer]) await mount(t, REPO.cat(i), REPO.man, b.digest, opts);
      await putManifest(t, REPO.cat(i), 'v1', m, opts);
    });
  }
}

async function disk(dir, blobs, parallel) {
  await fsp.mkdir(dir, { recursive: true });
  const t0 = performance.now();
  await pool(blobs.length, parallel, async (i) => {
    const f = path.join(dir, `blob-${i}`);
    const fh = await fsp.open(f, 'w');
    await fh.writeFile(blobs[i].data);
    await fh.sync();
    await fh.close();
  });
  const ms = performance.now() - t0;
  await fsp.rm(dir, { recursive: true, force: true });
  return ms;
}

async function round(r, targets, tmp, pullSet) {
  const order = r % 2 ? [...targets].reverse() : targets;
  const bytesRow = (key, label, blobs, t, m) => {
    const mib = blobs.reduce((a, b) => a + b.size, 0) / MiB;
    record(key, label, 'MB/s', 'ms CPU/MiB', 1, t.name, { value: mib / (m.ms / 1000), cpuPerUnit: m.cpu / mib, engineCpuPerUnit: m.engineCpu === undefined ? undefined : m.engineCpu / mib, ms: m.ms, peakRss: m.peakRss });
  };
  // The disk baseline says what the filesystem under the embedded setup can do; with pg-s3 the bytes go to radosgw.
  const diskRow = (key, label, blobs, parallel) => (PG_S3 ? undefined : disk(path.join(tmp, 'disk'), blobs, parallel).then((ms) => record(key, label, 'MB/s', '', 1, 'disk', { value: blobs.reduce((a, b) => a + b.size, 0) / MiB / (ms / 1000), ms })));

  if (want('push')) {
    const mono = makeBlobs(S.monoN, S.monoSize);
    await diskRow('disk-mono', `disk write+fsync, ${S.monoSize / MiB} MiB × ${S.monoN}, 4 parallel`, mono, 4);
    for (const t of order) {
      await authFor(t, [`repository:${REPO.mono}:pull,push`]);
      const m = await measure(t, () => pool(mono.length, 4, (i) => pushMonolithic(t, REPO.mono, mono[i].data, mono[i].digest)));
      bytesRow('push-mono', `blob push monolithic ${S.monoSize / MiB} MiB × ${S.monoN}, 4 parallel`, mono, t, m);
    }
    if (r === 0) pullSet.push(...mono.map((b) => ({ repo: REPO.mono, digest: b.digest, size: b.size })));

    // As docker pushes a layer: one PATCH streaming the blob with chunked transfer encoding.
    const streamed = makeBlobs(S.monoN, S.monoSize);
    for (const t of order) {
      await authFor(t, [`repository:${REPO.mono}:pull,push`]);
      const m = await measure(t, () => pool(streamed.length, 4, (i) => pushStreamed(t, REPO.mono, streamed[i].data, streamed[i].digest)));
      bytesRow('push-streamed', `blob push as docker (streamed PATCH) ${S.monoSize / MiB} MiB × ${S.monoN}, 4 parallel`, streamed, t, m);
    }

    const chunked = makeBlobs(S.chunkedN, S.chunkedSize);
    await diskRow('disk-chunked', `disk write+fsync, ${S.chunkedSize / MiB} MiB × ${S.chunkedN}, sequential`, chunked, 1);
    for (const t of order) {
      await authFor(t, [`repository:${REPO.chunked}:pull,push`]);
      const m = await measure(t, () => pool(chunked.length, 1, (i) => pushChunked(t, REPO.chunked, chunked[i].data, chunked[i].digest, S.chunk)));
      bytesRow('push-chunked', `blob push chunked ${S.chunkedSize / MiB} MiB in ${S.chunk / MiB} MiB PATCHes × ${S.chunkedN}`, chunked, t, m);
    }
    if (r === 0) pullSet.push(...chunked.map((b) => ({ repo: REPO.chunked, digest: b.digest, size: b.size })));
  }

  if (want('pull') && pullSet.length) {
    for (const t of order) {
      await authFor(t, [`repository:${REPO.mono}:pull`, `repository:${REPO.chunked}:pull`]);
      const m = await measure(t, () => pool(pullSet.length, 4, (i) => pullVerified(t, pullSet[i].repo, pullSet[i].digest, pullSet[i].size)));
      bytesRow('pull', `blob pull of both sets (${pullSet.length} blobs, verified), 4 parallel`, pullSet, t, m);
    }
  }

  if (want('manifest-put')) {
    for (const t of order) {
      await authFor(t, [`repository:${REPO.man}:pull,push`]);
      const bodies = Array.from({ length: S.manifestPuts }, (_, i) => base.manifest(`${r}-${t.name}-${i}`));
      const m = await measure(t, async () => {
        await pool(bodies.length, 8, (i) => putManifest(t, REPO.man, `put-${r}-${i}`, bodies[i]));
      });
      record('manifest-put', `manifest PUT + tag × ${S.manifestPuts}, 8 in flight`, 'req/s', 'µs CPU/req', 1000, t.name, { value: S.manifestPuts / (m.ms / 1000), cpuPerUnit: m.cpu / S.manifestPuts, engineCpuPerUnit: m.engineCpu === undefined ? undefined : m.engineCpu / S.manifestPuts, ms: m.ms, peakRss: m.peakRss });
    }
  }

  const small = async (key, label, t, fn) => {
    let bad = 0;
    const m = await measure(t, async () => ({
      lat: await pool(S.smallReqs, 32, async (i) => {
        if ((await fn(i)).status !== 200) bad++;
      }),
    }));
    if (bad) throw new Error(`${t.name} ${key}: ${bad} requests failed`);
    record(key, label, 'req/s', 'µs CPU/req', 1000, t.name, { value: S.smallReqs / (m.ms / 1000), cpuPerUnit: m.cpu / S.smallReqs, engineCpuPerUnit: m.engineCpu === undefined ? undefined : m.engineCpu / S.smallReqs, ms: m.ms, p50: percentile(m.lat, 50), p99: percentile(m.lat, 99), peakRss: m.peakRss });
  };
  if (want('manifest-get')) {
    for (const t of order) {
      await authFor(t, [`repository:${REPO.man}:pull`]);
      await small('manifest-get', `manifest GET by tag × ${S.smallReqs}, 32 in flight`, t, (i) => request(t, 'GET', `/v2/${REPO.man}/manifests/latest-${i % 16}`, { headers: { accept: ACCEPT }, sink: 'discard' }));
    }
  }
  if (want('blob-head')) {
    for (const t of order) {
      await authFor(t, [`repository:${REPO.man}:pull`]);
      await small('blob-head', `blob HEAD × ${S.smallReqs}, 32 in flight`, t, () => request(t, 'HEAD', `/v2/${REPO.man}/blobs/${base.layer.digest}`, { sink: 'discard' }));
    }
  }

  const walks = async (key, label, t, first, field, expectItems) => {
    const m = await measure(t, async () => {
      let n = 0;
      let pages = 0;
      const t0 = performance.now();
      while (n < 2 || performance.now() - t0 < S.walkMs) {
        const w = await walk(t, first, field);
        if (w.items < expectItems) throw new Error(`${t.name} ${key}: walk saw ${w.items} items, expected ${expectItems}`);
        n++;
        pages = w.pages;
      }
      return { n, pages };
    });
    record(key, label, 'walks/s', 'ms CPU/walk', 1, t.name, { value: m.n / (m.ms / 1000), cpuPerUnit: m.cpu / m.n, engineCpuPerUnit: m.engineCpu === undefined ? undefined : m.engineCpu / m.n, ms: m.ms, pages: m.pages, peakRss: m.peakRss });
  };
  if (want('tags')) {
    for (const t of order) {
      await authFor(t, [`repository:${REPO.tags}:pull`]);
      await walks('tags', `tag list of ${S.tags} tags, walked with n=100`, t, `/v2/${REPO.tags}/tags/list?n=100`, 'tags', S.tags);
    }
  }
  if (want('catalog')) {
    for (const t of order) {
      await authFor(t, ['registry:catalog:*']);
      await walks('catalog', `catalog of ${S.repos}+ repositories, walked with n=100`, t, `/v2/_catalog?n=100`, 'repositories', S.repos);
    }
  }
}

/** One large blob streamed from a generator (never in memory), with the server's RSS sampled. */
async function bigPush(t) {
  const pattern = randomBytes(16 * MiB);
  const chunks = S.big / MiB;
  function* gen() {
    for (let i = 0; i < chunks; i++) yield pattern.subarray((i % 16) * MiB, ((i % 16) + 1) * MiB);
  }
  const h = createHash('sha256');
  for (const c of gen()) h.update(c);
  const digest = `sha256:${h.digest('hex')}`;
  await authFor(t, [`repository:${REPO.big}:pull,push`]);
  const before = memMiB(t.pid).rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, memMiB(t.pid).rss)), 20);
  const m = await measure(t, () => pushMonolithic(t, REPO.big, Readable.from(gen(), { objectMode: false }), digest, { size: S.big }));
  clearInterval(timer);
  peak = Math.max(peak, memMiB(t.pid).rss);
  return { mbps: S.big / MiB / (m.ms / 1000), cpuPerMiB: m.cpu / (S.big / MiB), engineCpuPerMiB: m.engineCpu === undefined ? undefined : m.engineCpu / (S.big / MiB), rssBefore: before, rssPeak: peak };
}

// ---- output ------------------------------------------------------------------------------------

const fmt = (v) => (v === undefined || Number.isNaN(v) ? '—' : v >= 1000 ? v.toFixed(0) : v >= 100 ? v.toFixed(1) : v >= 10 ? v.toFixed(2) : v.toFixed(3));

function summarize() {
  const out = [];
  for (const row of rows.values()) {
    const s = { key: row.key, label: row.label, unit: row.unit, cpuUnit: row.cpuUnit };
    for (const [name, rs] of Object.entries(row.results)) {
      s[name] = { value: median(rs.map((x) => x.value)), rounds: rs.map((x) => +x.value.toFixed(3)) };
      if (rs[0].cpuPerUnit !== undefined) s[name].cpuPerUnit = median(rs.map((x) => x.cpuPerUnit)) * row.cpuScale;
      if (rs[0].engineCpuPerUnit !== undefined) s[name].engineCpuPerUnit = median(rs.map((x) => x.engineCpuPerUnit)) * row.cpuScale;
      if (rs[0].p50 !== undefined) Object.assign(s[name], { p50: median(rs.map((x) => x.p50)), p99: median(rs.map((x) => x.p99)) });
      if (rs[0].pages !== undefined) s[name].pages = rs[0].pages;
      if (rs[0].peakRss !== undefined) s[name].peakRssMiB = Math.max(...rs.map((x) => x.peakRss));
    }
    if (s.berth && s.distribution) {
      s.ratio = s.berth.value / s.distribution.value;
      if (s.berth.cpuPerUnit !== undefined) s.cpuRatio = s.distribution.cpuPerUnit / s.berth.cpuPerUnit;
    }
    out.push(s);
  }
  return out;
}

function table(summary, extra) {
  const head = ['row', 'unit', 'Berth', 'Distribution', 'B/D', 'Berth CPU', 'Dist CPU', 'CPU D/B', 'latency p50/p99 ms (B | D)', ...(PG_S3 ? ['engines CPU (B | D)'] : [])];
  const lines = [head];
  for (const s of summary) {
    if (s.disk) {
      lines.push([s.label, s.unit, '', '', '', '', '', '', `disk: ${fmt(s.disk.value)}`]);
      continue;
    }
    const lat = s.berth?.p50 !== undefined ? `${fmt(s.berth.p50)}/${fmt(s.berth.p99)} | ${s.distribution ? `${fmt(s.distribution.p50)}/${fmt(s.distribution.p99)}` : '—'}` : '';
    lines.push([
      s.label,
      s.unit,
      fmt(s.berth?.value),
      fmt(s.distribution?.value),
      s.ratio ? `${s.ratio.toFixed(2)}×` : '—',
      s.berth?.cpuPerUnit !== undefined ? `${fmt(s.berth.cpuPerUnit)} ${s.cpuUnit}` : '',
      s.distribution?.cpuPerUnit !== undefined ? fmt(s.distribution.cpuPerUnit) : '—',
      s.cpuRatio ? `${s.cpuRatio.toFixed(2)}×` : '—',
      lat,
      ...(PG_S3 ? [s.berth?.engineCpuPerUnit !== undefined ? `${fmt(s.berth.engineCpuPerUnit)} | ${s.distribution?.engineCpuPerUnit !== undefined ? fmt(s.distribution.engineCpuPerUnit) : '—'}` : ''] : []),
    ]);
  }
  for (const e of extra) lines.push(e);
  const w = head.map((_, i) => Math.max(...lines.map((l) => String(l[i] ?? '').length)));
  return lines.map((l, j) => l.map((c, i) => String(c ?? '').padEnd(w[i])).join('  ').trimEnd() + (j === 0 ? '\n' + w.map((x) => '-'.repeat(x)).join('  ') : '')).join('\n');
}

// ---- main --------------------------------------------------------------------------------------

/** --scale: the growth rows (CPU per list page at two sizes, then GC at two sizes), each its own script. */
async function scale() {
  const { spawnSync } = await import('node:child_process');
  const pass = args.filter((a) => a !== '--scale');
  for (const script of ['list-scale.mjs', 'gc-scale.mjs']) {
    log(`--scale: node bench/${script} ${pass.join(' ')}`);
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bench', script), ...pass], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}

async function main() {
  if (flag('scale')) return scale();
  const tmp = fs.mkdtempSync(path.join(opt('tmp') ?? os.tmpdir(), 'berth-bench-'));
  const servers = [];
  const engines = []; // stopped after the servers
  const cleanup = async () => {
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    await Promise.all(engines.map((s) => s.stop().catch(() => undefined)));
    if (!flag('keep')) fs.rmSync(tmp, { recursive: true, force: true });
  };
  process.on('SIGINT', () => cleanup().finally(() => process.exit(130)));
  try {
    const profDir = path.join(ROOT, 'bench', 'results', 'prof');
    const extraNodeArgs = flag('cpu-prof') ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
    let entry;
    if (!flag('tsx')) {
      log('compiling berth (tsc, as npm run build) into bench/results/dist');
      entry = buildBerth(BERTH_ROOT);
    }
    let berthEnv = {};
    let distS3;
    let engineInfo;
    if (PG_S3) {
      const why = pgS3Unavailable();
      if (why) throw new Error(`--backend=pg-s3: ${why}`);
      // memstore keeps every object in RAM: room for all the bytes the run pushes, twice.
      const pushed = S.rounds * 2 * (2 * S.monoN * S.monoSize + S.chunkedN * S.chunkedSize) + (want('big') ? 2 * S.big : 0);
      const memstoreBytes = Math.max(2 * 1024 * MiB, 2 * pushed);
      log(`--backend=pg-s3: starting PostgreSQL and a single-node Ceph with radosgw (memstore OSD of ${(memstoreBytes / 1024 / MiB).toFixed(1)} GiB, RAM as it fills)`);
      // One after the other: Ceph's OSD start is the step that fails on a busy machine.
      const pgdb = await startPostgres();
      engines.push(pgdb);
      const rgw = await startRgw({ memstoreBytes, waitSeconds: Number(opt('rgw-wait') ?? 900) });
      engines.push(rgw);
      await createBucket(rgw, 'distribution');
      berthEnv = {
        BERTH_DATABASE_URL: pgdb.url,
        BERTH_STORAGE: 's3',
        BERTH_S3_ENDPOINT: rgw.endpoint,
        BERTH_S3_BUCKET: 'berth',
        BERTH_S3_ACCESS_KEY_ID: rgw.accessKeyId,
        BERTH_S3_SECRET_ACCESS_KEY: rgw.secretAccessKey,
        BERTH_SECRET_KEY: 'bench-secret-key-' + randomBytes(16).toString('hex'),
      };
      distS3 = { endpoint: rgw.endpoint, bucket: 'distribution', accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
      enginePids = () => [rgw.pid, rgw.osdPid, ...treePids(pgdb.pid)];
      engineInfo = { postgres: pgdb.url.replace(/\/\/[^@]*@/, '//'), radosgw: rgw.endpoint, memstoreBytes, buckets: { berth: 'berth', distribution: 'distribution' } };
      log(`PostgreSQL ${pgdb.url}, radosgw ${rgw.endpoint} (buckets berth and distribution)`);
    }
    const berth = await startBerth({ root: BERTH_ROOT, dir: path.join(tmp, 'berth'), password: PASSWORD, entry, extraNodeArgs, env: berthEnv });
    servers.push(berth);
    berthPid = berth.pid;
    const targets = [makeTarget(berth, { basic: BASIC })];
    const bin = flag('no-distribution') ? null : distributionBinary();
    let note = '';
    if (bin) {
      const dist = await startDistribution({ bin, dir: path.join(tmp, 'distribution'), s3: distS3 });
      servers.push(dist);
      targets.push(makeTarget(dist));
    } else {
      note = flag('no-distribution') ? 'Distribution skipped (--no-distribution).' : 'Distribution skipped: docker-registry is not installed (apt-get install -y docker-registry).';
      log(note);
    }
    log(`${QUICK ? 'quick' : 'full'} run, ${S.rounds} rounds; berth pid ${berth.pid}${targets[1] ? `, distribution pid ${targets[1].pid}` : ''}; data under ${tmp}`);
    log('setup: base manifests, tags, catalog repositories');
    const st = performance.now();
    await Promise.all(targets.map((t) => setup(t)));
    log(`setup done in ${((performance.now() - st) / 1000).toFixed(1)} s${flag('mem') ? `; RSS now (MiB) ${targets.map((t) => `${t.name} ${memMiB(t.pid).rss.toFixed(0)}`).join(', ')}` : ''}`);

    const pullSet = [];
    for (let r = 0; r < S.rounds; r++) {
      log(`round ${r + 1}/${S.rounds} (${r % 2 ? 'distribution' : 'berth'} first)`);
      await round(r, targets, tmp, pullSet);
    }
    const peakRun = Object.fromEntries(targets.map((t) => [t.name, peakMiB(t.pid)]));
    const big = {};
    if (want('big')) {
      for (const t of targets) {
        log(`big push ${S.big / MiB} MiB to ${t.name}`);
        big[t.name] = await bigPush(t);
      }
    }
    const peakAll = Object.fromEntries(targets.map((t) => [t.name, peakMiB(t.pid)]));

    if (flag('mem')) {
      log(`Berth memory after each row:\n  ${memTrail.join('\n  ')}`);
      // Resident memory by mapping (smaps): anonymous memory is the V8 heap, malloc arenas and WebAssembly.
      const by = new Map();
      let name = '';
      for (const line of fs.readFileSync(`/proc/${berth.pid}/smaps`, 'utf8').split('\n')) {
        const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
        if (m) name = m[1] ? path.basename(m[1]) : '(anon)';
        else if (line.startsWith('Rss:')) by.set(name, (by.get(name) ?? 0) + Number(line.split(/\s+/)[1]) / 1024);
      }
      log(`Berth resident memory by mapping (MiB): ${[...by].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
    }
    const summary = summarize();
    const dn = targets[1]?.name;
    if (flag('mem')) {
      const per = summary.filter((x) => x.berth?.peakRssMiB !== undefined).map((x) => `${x.key}: ${x.berth.peakRssMiB.toFixed(0)}${dn ? ` | ${x[dn]?.peakRssMiB?.toFixed(0) ?? '—'}` : ''}`);
      log(`peak RSS per row, MiB, highest over the rounds (Berth${dn ? ' | Distribution' : ''}):\n  ${per.join('\n  ')}`);
    }
    const diskMono = summary.find((s) => s.key === 'disk-mono')?.disk?.value;
    const diskChunked = summary.find((s) => s.key === 'disk-chunked')?.disk?.value;
    const extra = [];
    const pm = summary.find((s) => s.key === 'push-mono');
    const ps = summary.find((s) => s.key === 'push-streamed');
    const pc = summary.find((s) => s.key === 'push-chunked');
    const pct = (row, who, disk) => (row?.[who] && disk ? `${((row[who].value / disk) * 100).toFixed(0)}%` : '—');
    if (pm && diskMono) extra.push(['push vs disk (monolithic / streamed / chunked)', '%', ['berth', 'distribution'].map((w) => `${pct(pm, w, diskMono)} / ${pct(ps, w, diskMono)} / ${pct(pc, w, diskChunked)}`)].flat());
    extra.push(['peak RSS over the rounds (VmHWM)', 'MiB', fmt(peakRun.berth), dn ? fmt(peakRun[dn]) : '—', dn ? `${(peakRun.berth / peakRun[dn]).toFixed(2)}×` : '—']);
    if (big.berth) {
      extra.push([`push of one ${S.big / MiB} MiB blob (streamed)`, 'MB/s', fmt(big.berth.mbps), dn ? fmt(big[dn].mbps) : '—', dn ? `${(big.berth.mbps / big[dn].mbps).toFixed(2)}×` : '—', `${fmt(big.berth.cpuPerMiB)} ms CPU/MiB`, dn ? fmt(big[dn].cpuPerMiB) : '—', dn ? `${(big[dn].cpuPerMiB / big.berth.cpuPerMiB).toFixed(2)}×` : '—']);
      extra.push([`RSS before → peak during that push`, 'MiB', `${fmt(big.berth.rssBefore)} → ${fmt(big.berth.rssPeak)}`, dn ? `${fmt(big[dn].rssBefore)} → ${fmt(big[dn].rssPeak)}` : '—']);
      extra.push(['peak RSS over the whole run (VmHWM)', 'MiB', fmt(peakAll.berth), dn ? fmt(peakAll[dn]) : '—', dn ? `${(peakAll.berth / peakAll[dn]).toFixed(2)}×` : '—']);
    }
    const text = table(summary, extra);
    const backendText = PG_S3
      ? ' Backend pg-s3: Berth on PostgreSQL + radosgw (bucket berth), Distribution with its S3 driver on the same radosgw (bucket distribution, redirect off); "engines CPU" = radosgw + OSD + PostgreSQL CPU per unit while each server ran the row.'
      : '';
    console.log(`\nBerth (token auth, Bearer) vs ${dn ? `CNCF Distribution 2.8.2 (no auth)` : '—'}; ${QUICK ? 'quick' : 'full'} run, median of ${S.rounds} alternating rounds; CPU = server process user+system time per unit (lower is better; CPU D/B > 1 means Berth uses less). Walks follow Link headers on one raw keep-alive connection (bench/lib/raw-client.mjs).${backendText}\n`);
    console.log(text);
    if (note) console.log(`\n${note}`);
    const load = os.loadavg();
    console.log(`\nmachine: ${os.cpus().length} CPUs, load average ${load.map((x) => x.toFixed(2)).join(' ')} at the end (other work on the machine adds noise to wall-clock rows; CPU per unit is steadier).`);

    const resultsDir = path.join(ROOT, 'bench', 'results');
    fs.mkdirSync(resultsDir, { recursive: true });
    const json = { date: new Date().toISOString(), backend: BACKEND, engines: engineInfo, quick: QUICK, sizes: S, node: process.version, cpus: os.cpus().length, loadavg: load, berth: { source: flag('tsx') ? 'src (tsx)' : 'compiled (tsc)', ...(BERTH_ROOT !== ROOT ? { root: BERTH_ROOT } : {}) }, distribution: dn ? { binary: bin, version: '2.8.2 (Debian docker-registry)' } : null, rows: summary, peakRssMiB: { rounds: peakRun, all: peakAll }, bigPush: big, note };
    const resultsFile = PG_S3 ? 'latest-pg-s3.json' : 'latest.json';
    fs.writeFileSync(path.join(resultsDir, resultsFile), JSON.stringify(json, null, 2) + '\n');
    log(`results written to bench/results/${resultsFile}`);
  } finally {
    await cleanup();
  }
}

main().catch((e) => {
  console.error('[bench] failed:', e);
  process.exit(1);
});
