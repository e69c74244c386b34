#!/usr/bin/env node
// node bench/gc-scale.mjs [--sizes=1000,20000] [--root=DIR] [--tsx] [--keep]
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
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ACCEPT, OCI_MANIFEST, bearer, makeTarget, percentile, request } from './lib/client.mjs';
import { buildBerth, memMiB, startBerth } from './lib/servers.mjs';

const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const opt = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const ROOT = path.resolve(opt('root') ?? HERE);
const SIZES = (opt('sizes') ?? '1000,20000').split(',').map(Number);
const SAMPLE_MS = 10;
const PASSWORD = 'bench-admin-' + randomBytes(6).toString('hex');
const BASIC = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
const BIG = 'library/gc-big';

const log = (...a) => console.error('[gc-scale]', ...a);
const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sqlDate = (d) => d.toISOString().replace('Z', '+00:00');

/** Writes N manifests as described above; returns a tagged reference to pull during the runs. */
function fill(dataDir, n) {
  const db = new Database(path.join(dataDir, 'berth.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const dayAgo = new Date(Date.now() - 24 * 3600_000);
  const old = sqlDate(dayAgo);
  const projectId = db.prepare(`SELECT "id" FROM "Project" WHERE "name" = 'library'`).pluck().get();
  const repo = db.prepare('INSERT INTO "Repository" ("name", "projectId", "createdAt", "updatedAt") VALUES (?, ?, ?, ?) RETURNING "id"').pluck();
  const blob = db.prepare('INSERT INTO "Blob" ("digest", "size", "createdAt") VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
  const link = db.prepare('INSERT INTO "BlobLink" ("repositoryId", "digest", "createdAt") VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
  const content = db.prepare('INSERT INTO "ManifestContent" ("digest", "content") VALUES (?, ?) ON CONFLICT DO NOTHING');
  const manifest = db.prepare('INSERT INTO "Manifest" ("repositoryId", "digest", "mediaType", "size", "refs", "pushedAt") VALUES (?, ?, ?, ?, ?, ?)');
  const tag = db.prepare('INSERT INTO "Tag" ("repositoryId", "name", "digest", "createdAt", "updatedAt") VALUES (?, ?, ?, ?, ?)');
  const blobs = path.join(dataDir, 'storage', 'blobs', 'sha256');
  const layerBase = randomBytes(512);
  let pull = null;
  db.transaction(() => {
    const big = repo.get(BIG, projectId, old, old);
    let small = 0;
    for (let i = 0; i < n; i++) {
      let repositoryId = big;
      if (i >= n / 2) {
        if ((i - n / 2) % 2 === 0) small = repo.get(`library/gc-r${String((i - n / 2) / 2).padStart(5, '0')}`, projectId, old, old);
        repositoryId = small;
      }
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
      for (const [d, b] of pieces) {
        blob.run(d, b.length, old);
        link.run(repositoryId, d, old);
        const dir = path.join(blobs, d.slice(7, 9), d.slice(7));
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, 'data'), b);
        fs.utimesSync(path.join(dir, 'data'), dayAgo, dayAgo);
      }
      blob.run(digest, raw.length, old);
      link.run(repositoryId, digest, old);
      content.run(digest, raw);
      if (i % 10 === 5) continue; // deleted: links, blobs and bytes left for GC
      manifest.run(repositoryId, digest, OCI_MANIFEST, raw.length, JSON.stringify(pieces.map((p) => p[0])), old);
      if (i % 10 === 0) continue; // untagged
      tag.run(repositoryId, `t${i}`, digest, old, old);
      if (repositoryId === big) pull ??= `t${i}`;
    }
  })();
  db.close();
  return pull;
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

async function gcRun(t, tagRef, parameters) {
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
  const text = (await request(t, 'GET', `/api/v2.0/system/gc/${id}/log`, { auth: BASIC })).body.toString('utf8');
  const ms = Number(/finished in (\d+) ms/.exec(text)?.[1] ?? wall);
  if (run.job_status !== 'Success') throw new Error(`gc ${id}: ${run.job_status}\n${text.slice(-2000)}`);
  return { ms, wall, status: run.job_status, manifests: run.manifests_deleted, blobs: run.blobs_deleted, bytes: run.freed_bytes, v2: lat.v2, manifest: lat.manifest };
}

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const stats = (xs) => (xs.length ? `p50 ${fmt(percentile(xs, 50))} p99 ${fmt(percentile(xs, 99))} max ${fmt(Math.max(...xs))} (${xs.length})` : 'no samples');

async function main() {
  const entry = flag('tsx') ? undefined : buildBerth(ROOT);
  const results = [];
  for (const n of SIZES) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-gc-${n}-`));
    try {
      log(`size ${n}: creating the database`);
      let b = await startBerth({ root: ROOT, dir, password: PASSWORD, entry });
      await b.stop();
      const f0 = performance.now();
      const tagRef = fill(path.join(dir, 'data'), n);
      log(`size ${n}: filled in ${((performance.now() - f0) / 1000).toFixed(1)} s`);
      b = await startBerth({ root: ROOT, dir, password: PASSWORD, entry });
      try {
        const t = makeTarget(b, { basic: BASIC });
        t.authz = await bearer(t, [`repository:${BIG}:pull`]);
        const row = { n };
        for (const [kind, parameters] of [
          ['dry', { delete_untagged: true, dry_run: true }],
          ['real', { delete_untagged: true }],
        ]) {
          const r = await gcRun(t, tagRef, parameters);
          row[kind] = r;
          log(`size ${n} ${kind} run: ${r.ms} ms, ${r.manifests} manifests, ${r.blobs} blobs, ${r.bytes} bytes; GET /v2/ ${stats(r.v2)}; manifest GET ${stats(r.manifest)}`);
        }
        row.rss = memMiB(b.pid);
        results.push(row);
      } finally {
        await b.stop();
      }
    } finally {
      if (!flag('keep')) fs.rmSync(dir, { recursive: true, force: true });
      else log(`kept ${dir}`);
    }
  }
  console.log(`\nGarbage collection (${ROOT === HERE ? 'this checkout' : ROOT}); latency in ms of requests sampled every ${SAMPLE_MS} ms during the run`);
  console.log('manifests  run   time ms  deleted (m/b)  GET /v2/ p50 / p99 / max   manifest GET p50 / p99 / max   peak RSS MiB');
  for (const r of results) {
    for (const kind of ['dry', 'real']) {
      const x = r[kind];
      const l = (xs) => (xs.length ? `${fmt(percentile(xs, 50))} / ${fmt(percentile(xs, 99))} / ${fmt(Math.max(...xs))}` : '-');
      console.log(
        `${String(r.n).padStart(9)}  ${kind.padEnd(4)} ${String(x.ms).padStart(8)}  ${`${x.manifests}/${x.blobs}`.padStart(13)}  ${l(x.v2).padStart(24)}   ${l(x.manifest).padStart(29)}   ${r.rss.hwm.toFixed(0).padStart(12)}`,
      );
    }
  }
  if (results.length >= 2) {
    const [a, z] = [results[0], results.at(-1)];
    console.log(`ratio ${z.n} / ${a.n} manifests: dry run ${(z.dry.ms / Math.max(1, a.dry.ms)).toFixed(1)}x, real run ${(z.real.ms / Math.max(1, a.real.ms)).toFixed(1)}x (size ${(z.n / a.n).toFixed(0)}x)`);
  }
  fs.mkdirSync(path.join(HERE, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(
    path.join(HERE, 'bench', 'results', 'gc-scale.json'),
    JSON.stringify(
      results.map((r) => ({ n: r.n, rss: r.rss, ...Object.fromEntries(['dry', 'real'].map((k) => [k, { ms: r[k].ms, manifests: r[k].manifests, blobs: r[k].blobs, bytes: r[k].bytes, v2p99: percentile(r[k].v2, 99), manifestP99: percentile(r[k].manifest, 99) }])) })),
      null,
      2,
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
