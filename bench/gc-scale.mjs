#!/usr/bin/env node
// node bench/gc-scale.mjs [--sizes=1000,20000] [--root=DIR] [--tsx] [--keep] [--backend=pg]
//
// Garbage collection at two sizes. For each size N it starts Berth once on a fresh data dir (to
// create the database), stops it, fills it straight through SQL (as pushes store things: blob
// rows, links, manifest rows with their bytes, tags, and a small file per blob; a day old), starts
// it again and runs a dry run, then a real run, both with delete_untagged. Meanwhile a client asks
// GET /v2/ and a manifest GET every 10 ms. Prints each run's time (from its log),
// the ratio between the sizes, and the latency of the sampled requests during the run (p50, p99,
// max; sent on a fixed schedule, so a stall counts once per request it held up). --root measures another checkout (e.g. an older commit, for before/after figures).
//
// Layout for N manifests, one config and one layer each: one repository with N/2 manifests and
// N/4 repositories with 2 each (N = 20,000: 10,000 tags in one repository and 5,000 repositories).
// Every tenth manifest is untagged (collected with delete_untagged); for another tenth the
// manifest row is gone as after a DELETE (its links, blobs and bytes are garbage).
//
// --backend=pg: Berth on a throwaway PostgreSQL (bench/lib/engines.mjs; one server, a database
// gc_<size> per size; blobs on local disk as by default), filled through `pg` with the same rows
// (batched with unnest, in the same order, then ANALYZE). Results go to gc-scale-pg.json instead
// of gc-scale.json, and each run also reports the CPU time the PostgreSQL server (all its
// processes) spent meanwhile. Berth's CPU during a run includes the sampled requests'.
// --pg-log-ms=N logs every statement that takes N ms or more in the server's log (with --keep, it
// stays in <server dir>/pg.log; N = 0 logs all of them, for counting statements per run).
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ACCEPT, OCI_MANIFEST, bearer, makeTarget, percentile, request } from './lib/client.mjs';
import { createDatabase, pgUnavailable, startPostgres, treePids } from './lib/engines.mjs';
import { buildBerth, cpuMs, memMiB, startBerth } from './lib/servers.mjs';

const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const opt = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const ROOT = path.resolve(opt('root') ?? HERE);
const SIZES = (opt('sizes') ?? '1000,20000').split(',').map(Number);
const BACKEND = opt('backend') ?? 'sqlite';
if (!['sqlite', 'pg'].includes(BACKEND)) throw new Error(`--backend must be sqlite or pg, got ${BACKEND}`);
const SAMPLE_MS = 10;
const PASSWORD = 'bench-admin-' + randomBytes(6).toString('hex');
const BASIC = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
const BIG = 'library/gc-big';

const log = (...a) => console.error('[gc-scale]', ...a);
const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const DAY_AGO = new Date(Date.now() - 24 * 3600_000);

/**
 * The rows of N manifests as described above (the same for both engines), and the blob files
 * (a day old) under dataDir. Returns { repos: [name], blobs, links, contents, manifests, tags, pull }
 * where each row names its repository by index into repos, in insertion order.
 */
function layout(dataDir, n) {
  const repos = [BIG];
  const rows = { blobs: [], links: [], contents: [], manifests: [], tags: [] };
  const blobs = path.join(dataDir, 'storage', 'blobs', 'sha256');
  const layerBase = randomBytes(512);
  const seen = new Set();
  let pull = null;
  let repo = 0;
  for (let i = 0; i < n; i++) {
    if (i >= n / 2 && (i - n / 2) % 2 === 0) repo = repos.push(`library/gc-r${String((i - n / 2) / 2).padStart(5, '0')}`) - 1;
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { i: String(i) } } }));
    const layer = Buffer.from(layerBase);
    layer.writeUInt32BE(i, 0);
    const pieces = [
      [sha(config), config],
      [sha(layer), layer],
    ];
    const raw = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: CONFIG_TYPE, digest: pieces[0][0], size: config.length }, layers: [{ mediaType: LAYER_TYPE, digest: pieces[1][0], size: layer.length }] }),
    );
    const digest = sha(raw);
    // ON CONFLICT DO NOTHING, as the SQLite fill had it: a digest seen before is not a new row
    const blob = (d, size) => {
      if (!seen.has(d)) rows.blobs.push([d, size]);
      if (!seen.has(`${repo}|${d}`)) rows.links.push([repo, d]);
      seen.add(d).add(`${repo}|${d}`);
    };
    for (const [d, b] of pieces) {
      blob(d, b.length);
      const dir = path.join(blobs, d.slice(7, 9), d.slice(7));
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'data'), b);
      fs.utimesSync(path.join(dir, 'data'), DAY_AGO, DAY_AGO);
    }
    blob(digest, raw.length);
    if (!seen.has(`content|${digest}`)) rows.contents.push([digest, raw]);
    seen.add(`content|${digest}`);
    if (i % 10 === 5) continue; // deleted: links, blobs and bytes left for GC
    rows.manifests.push([repo, digest, raw.length, JSON.stringify(pieces.map((p) => p[0]))]);
    if (i % 10 === 0) continue; // untagged
    rows.tags.push([repo, `t${i}`, digest]);
    if (repo === 0) pull ??= `t${i}`;
  }
  return { repos, ...rows, pull };
}

/** Writes the layout into SQLite; returns a tagged reference to pull during the runs. */
function fill(dataDir, n) {
  const L = layout(dataDir, n);
  const db = new Database(path.join(dataDir, 'berth.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const old = DAY_AGO.toISOString().replace('Z', '+00:00');
  const projectId = db.prepare(`SELECT "id" FROM "Project" WHERE "name" = 'library'`).pluck().get();
  const repo = db.prepare('INSERT INTO "Repository" ("name", "projectId", "createdAt", "updatedAt") VALUES (?, ?, ?, ?) RETURNING "id"').pluck();
  const blob = db.prepare('INSERT INTO "Blob" ("digest", "size", "createdAt") VALUES (?, ?, ?)');
  const link = db.prepare('INSERT INTO "BlobLink" ("repositoryId", "digest", "createdAt") VALUES (?, ?, ?)');
  const content = db.prepare('INSERT INTO "ManifestContent" ("digest", "content") VALUES (?, ?)');
  const manifest = db.prepare('INSERT INTO "Manifest" ("repositoryId", "digest", "mediaType", "size", "refs", "pushedAt") VALUES (?, ?, ?, ?, ?, ?)');
  const tag = db.prepare('INSERT INTO "Tag" ("repositoryId", "name", "digest", "createdAt", "updatedAt") VALUES (?, ?, ?, ?, ?)');
  db.transaction(() => {
    const ids = L.repos.map((name) => repo.get(name, projectId, old, old));
    for (const [d, size] of L.blobs) blob.run(d, size, old);
    for (const [r, d] of L.links) link.run(ids[r], d, old);
    for (const [d, raw] of L.contents) content.run(d, raw);
    for (const [r, d, size, refs] of L.manifests) manifest.run(ids[r], d, OCI_MANIFEST, size, refs, old);
    for (const [r, name, d] of L.tags) tag.run(ids[r], name, d, old, old);
  })();
  db.close();
  return L.pull;
}

/** The same rows on PostgreSQL through `pg`, in batches (unnest, in the same order), then ANALYZE. */
async function fillPg(url, dataDir, n) {
  const L = layout(dataDir, n);
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // TIMESTAMP(3) without time zone, UTC as Prisma writes it
    const old = DAY_AGO.toISOString();
    const projectId = (await c.query(`SELECT "id" FROM "Project" WHERE "name" = 'library'`)).rows[0].id;
    await c.query('BEGIN');
    const byName = new Map(
      (
        await c.query('INSERT INTO "Repository" ("name", "projectId", "createdAt", "updatedAt") SELECT u.n, $2, $3, $3 FROM unnest($1::text[]) WITH ORDINALITY AS u(n, o) ORDER BY u.o RETURNING "id", "name"', [
          L.repos,
          projectId,
          old,
        ])
      ).rows.map((r) => [r.name, r.id]),
    );
    const ids = L.repos.map((name) => byName.get(name));
    const col = (rows, j, f = (x) => x) => rows.map((r) => f(r[j]));
    const id = (r) => ids[r];
    const batches = [
      ['INSERT INTO "Blob" ("digest", "size", "createdAt") SELECT d, s, $3 FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u(d, s, o) ORDER BY o', L.blobs, (b) => [col(b, 0), col(b, 1), old]],
      ['INSERT INTO "BlobLink" ("repositoryId", "digest", "createdAt") SELECT r, d, $3 FROM unnest($1::int[], $2::text[]) WITH ORDINALITY AS u(r, d, o) ORDER BY o', L.links, (b) => [col(b, 0, id), col(b, 1), old]],
      ['INSERT INTO "ManifestContent" ("digest", "content") SELECT d, c FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS u(d, c, o) ORDER BY o', L.contents, (b) => [col(b, 0), col(b, 1)]],
      [
        'INSERT INTO "Manifest" ("repositoryId", "digest", "mediaType", "size", "refs", "pushedAt") SELECT r, d, $3, s, f, $6 FROM unnest($1::int[], $2::text[], $4::int[], $5::text[]) WITH ORDINALITY AS u(r, d, s, f, o) ORDER BY o',
        L.manifests,
        (b) => [col(b, 0, id), col(b, 1), OCI_MANIFEST, col(b, 2), col(b, 3), old],
      ],
      ['INSERT INTO "Tag" ("repositoryId", "name", "digest", "createdAt", "updatedAt") SELECT r, t, d, $4, $4 FROM unnest($1::int[], $2::text[], $3::text[]) WITH ORDINALITY AS u(r, t, d, o) ORDER BY o', L.tags, (b) => [col(b, 0, id), col(b, 1), col(b, 2), old]],
    ];
    for (const [sql, rows, args] of batches) {
      for (let k = 0; k < rows.length; k += 2000) await c.query(sql, args(rows.slice(k, k + 2000)));
    }
    await c.query('COMMIT');
    await c.query('ANALYZE'); // as autovacuum would after such a load
    return L.pull;
  } finally {
    await c.end();
  }
}

/**
 * GET /v2/ and a manifest GET started every SAMPLE_MS whether or not the previous ones have been
 * answered (open loop: a server that stops answering for a second shows as a hundred slow
 * requests, not one); returns the latencies (ms) per kind once stopped.
 */
function sampler(t, tagRef) {
  const lat = { v2: [], manifest: [] };
  const inflight = new Set();
  const one = (kind, path, headers) => {
    const t0 = performance.now();
    const p = request(t, 'GET', path, { headers, sink: 'discard' }).then((r) => {
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`);
      lat[kind].push(performance.now() - t0);
    });
    inflight.add(p);
    p.finally(() => inflight.delete(p)).catch(() => undefined);
  };
  const timer = setInterval(() => {
    one('v2', '/v2/', {});
    one('manifest', `/v2/${BIG}/manifests/${tagRef}`, { accept: ACCEPT });
  }, SAMPLE_MS);
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all(inflight);
      return lat;
    },
  };
}

/** user+system CPU ms of a process and its live descendants (PostgreSQL's backends); 0 when pid is absent. */
const treeCpuMs = (pid) =>
  pid
    ? treePids(pid).reduce((sum, p) => {
        try {
          return sum + cpuMs(p);
        } catch {
          return sum; // gone meanwhile
        }
      }, 0)
    : 0;

/** One run with the sampler going; pids: { berth, pg } whose CPU time during the run is read from /proc. */
async function gcRun(t, tagRef, parameters, pids) {
  const c0 = [cpuMs(pids.berth), treeCpuMs(pids.pg)];
  const t0 = performance.now();
  const res = await request(t, 'POST', '/api/v2.0/system/gc/schedule', { auth: BASIC, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ schedule: { type: 'Manual' }, parameters }) });
  if (res.status !== 201) throw new Error(`gc: ${res.status} ${res.body}`);
  const s = sampler(t, tagRef); // from the moment the run is recorded (it starts right after)
  const id = /(\d+)$/.exec(res.headers.location)[1];
  let run;
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    run = JSON.parse((await request(t, 'GET', `/api/v2.0/system/gc/${id}`, { auth: BASIC })).body.toString('utf8'));
    if (run.job_status !== 'Pending' && run.job_status !== 'Running') break;
  }
  const wall = performance.now() - t0;
  const lat = await s.stop();
  // CPU of the run plus the sampled requests (about 200 a second) and the status polls
  const cpu = { berth: cpuMs(pids.berth) - c0[0], ...(pids.pg ? { pg: treeCpuMs(pids.pg) - c0[1] } : {}) };
  const text = (await request(t, 'GET', `/api/v2.0/system/gc/${id}/log`, { auth: BASIC })).body.toString('utf8');
  const ms = Number(/finished in (\d+) ms/.exec(text)?.[1] ?? wall);
  if (run.job_status !== 'Success') throw new Error(`gc ${id}: ${run.job_status}\n${text.slice(-2000)}`);
  return { ms, wall, cpu, status: run.job_status, manifests: run.manifests_deleted, blobs: run.blobs_deleted, bytes: run.freed_bytes, v2: lat.v2, manifest: lat.manifest };
}

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const stats = (xs) => (xs.length ? `p50 ${fmt(percentile(xs, 50))} p99 ${fmt(percentile(xs, 99))} max ${fmt(Math.max(...xs))} (${xs.length})` : 'no samples');
const loadavg = () => os.loadavg().map((x) => Number(x.toFixed(2)));

async function main() {
  const entry = flag('tsx') ? undefined : buildBerth(ROOT);
  const results = [];
  let pgServer = null;
  if (BACKEND === 'pg') {
    const why = pgUnavailable();
    if (why) throw new Error(`--backend=pg: ${why}`);
    pgServer = await startPostgres();
    log(`PostgreSQL on ${pgServer.url.replace(/\/[^/]*$/, '')} (pid ${pgServer.pid})`);
    if (opt('pg-log-ms')) {
      // Every statement slower than this goes to the server's log (kept with --keep: <dir>/pg.log).
      const { default: pg } = await import('pg');
      const c = new pg.Client({ connectionString: pgServer.url });
      await c.connect();
      await c.query(`ALTER SYSTEM SET log_min_duration_statement = ${Number(opt('pg-log-ms'))}`);
      await c.query('SELECT pg_reload_conf()');
      await c.end();
    }
  }
  try {
    for (const n of SIZES) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-gc-${n}-`));
      const env = pgServer ? { BERTH_DATABASE_URL: await createDatabase(pgServer, `gc_${n}`), BERTH_SECRET_KEY: randomBytes(32).toString('base64') } : {};
      try {
        log(`size ${n}: creating the database`);
        let b = await startBerth({ root: ROOT, dir, password: PASSWORD, entry, env });
        await b.stop();
        const f0 = performance.now();
        const tagRef = pgServer ? await fillPg(env.BERTH_DATABASE_URL, path.join(dir, 'data'), n) : fill(path.join(dir, 'data'), n);
        log(`size ${n}: filled in ${((performance.now() - f0) / 1000).toFixed(1)} s`);
        b = await startBerth({ root: ROOT, dir, password: PASSWORD, entry, env });
        try {
          const t = makeTarget(b, { basic: BASIC });
          t.authz = await bearer(t, [`repository:${BIG}:pull`]);
          const row = { n, load: loadavg() };
          for (const [kind, parameters] of [
            ['dry', { delete_untagged: true, dry_run: true }],
            ['real', { delete_untagged: true }],
          ]) {
            const r = await gcRun(t, tagRef, parameters, { berth: b.pid, pg: pgServer?.pid });
            row[kind] = r;
            const cpu = `CPU Berth ${r.cpu.berth.toFixed(0)} ms${r.cpu.pg !== undefined ? `, PostgreSQL ${r.cpu.pg.toFixed(0)} ms` : ''}`;
            log(`size ${n} ${kind} run: ${r.ms} ms (${cpu}), ${r.manifests} manifests, ${r.blobs} blobs, ${r.bytes} bytes; GET /v2/ ${stats(r.v2)}; manifest GET ${stats(r.manifest)}`);
          }
          row.rss = memMiB(b.pid);
          row.loadAfter = loadavg();
          results.push(row);
        } finally {
          await b.stop();
        }
      } finally {
        if (!flag('keep')) fs.rmSync(dir, { recursive: true, force: true });
        else log(`kept ${dir}`);
      }
    }
  } finally {
    if (pgServer && !flag('keep')) await pgServer.stop();
    else if (pgServer) log(`kept PostgreSQL ${pgServer.url.replace(/\/[^/]*$/, '')} (databases gc_<size>, after the real run; stop: pg_ctl -D ${pgServer.dir}/data stop, then rm -r ${pgServer.dir})`);
  }
  const on = pgServer ? ', on PostgreSQL' : '';
  console.log(`\nGarbage collection (${ROOT === HERE ? 'this checkout' : ROOT}${on}); latency in ms of requests sampled every ${SAMPLE_MS} ms during the run; CPU ms during the run`);
  console.log(`manifests  run   time ms  deleted (m/b)  GET /v2/ p50 / p99 / max   manifest GET p50 / p99 / max   CPU Berth${pgServer ? ' / PG' : ''}   peak RSS MiB`);
  for (const r of results) {
    for (const kind of ['dry', 'real']) {
      const x = r[kind];
      const l = (xs) => (xs.length ? `${fmt(percentile(xs, 50))} / ${fmt(percentile(xs, 99))} / ${fmt(Math.max(...xs))}` : '-');
      const cpu = `${x.cpu.berth.toFixed(0)}${x.cpu.pg !== undefined ? ` / ${x.cpu.pg.toFixed(0)}` : ''}`;
      console.log(
        `${String(r.n).padStart(9)}  ${kind.padEnd(4)} ${String(x.ms).padStart(8)}  ${`${x.manifests}/${x.blobs}`.padStart(13)}  ${l(x.v2).padStart(24)}   ${l(x.manifest).padStart(29)}   ${cpu.padStart(pgServer ? 14 : 9)}   ${r.rss.hwm.toFixed(0).padStart(12)}`,
      );
    }
  }
  if (results.length >= 2) {
    const [a, z] = [results[0], results.at(-1)];
    console.log(`ratio ${z.n} / ${a.n} manifests: dry run ${(z.dry.ms / Math.max(1, a.dry.ms)).toFixed(1)}x, real run ${(z.real.ms / Math.max(1, a.real.ms)).toFixed(1)}x (size ${(z.n / a.n).toFixed(0)}x)`);
  }
  console.log(`load average (1/5/15 min) at each size's start: ${results.map((r) => `${r.n}: ${r.load.join(' ')}`).join('; ')}`);
  fs.mkdirSync(path.join(HERE, 'bench', 'results'), { recursive: true });
  const p = (xs, q) => (xs.length ? percentile(xs, q) : null);
  fs.writeFileSync(
    path.join(HERE, 'bench', 'results', pgServer ? 'gc-scale-pg.json' : 'gc-scale.json'),
    JSON.stringify(
      results.map((r) => ({
        backend: BACKEND,
        n: r.n,
        rss: r.rss,
        load: r.load,
        loadAfter: r.loadAfter,
        ...Object.fromEntries(
          ['dry', 'real'].map((k) => [
            k,
            {
              ms: r[k].ms,
              wall: Math.round(r[k].wall),
              cpu: r[k].cpu,
              manifests: r[k].manifests,
              blobs: r[k].blobs,
              bytes: r[k].bytes,
              samples: r[k].v2.length,
              v2p50: p(r[k].v2, 50),
              v2p99: p(r[k].v2, 99),
              v2max: r[k].v2.length ? Math.max(...r[k].v2) : null,
              manifestP50: p(r[k].manifest, 50),
              manifestP99: p(r[k].manifest, 99),
              manifestMax: r[k].manifest.length ? Math.max(...r[k].manifest) : null,
            },
          ]),
        ),
        ...(results.length >= 2 && r === results.at(-1) ? { ratio: { dry: r.dry.ms / Math.max(1, results[0].dry.ms), real: r.real.ms / Math.max(1, results[0].real.ms) } } : {}),
      })),
      null,
      2,
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
