#!/usr/bin/env node
// node bench/list-scale.mjs [--sizes=1000,20000] [--rounds=3] [--reps=200] [--root=DIR] [--base=DIR] [--tsx] [--keep] [--only=ROW,...] [--backend=pg]
//
// Server CPU per list request at two sizes (issue 17). For each size N it starts Berth once on a
// fresh data dir (to create the database), stops it, fills it straight through SQL (as bench/gc-scale.mjs
// does): one repository library/big with N manifests, each with its own tag and config, pushed a
// second apart (each with its audit entry, as a push records), and N/4 repositories (250 and 5,000 at the default sizes) with one tagged manifest
// each (config bytes as files, as pushes leave them). Then both instances run side by side and
// every row is measured in alternating rounds: `reps` requests in a row, CPU time of the server
// process (/proc) before and after, divided by reps; the median round is printed with the ratio
// LARGE / SMALL. The tag PUT rows run after the others (each PUT moves an artifact to page 1).
//
// Rows: the /v2 tag list's first page (n=100) alone, and after a tag PUT (the tag sorting after
// the first page, and on it); the Harbor API's artifact list (page 1 and a deep page, 15 a page,
// with_tag) and repository list (page 1 and a deep page, by name and in the moving orders; all
// repositories by creation; and deep pages in turn, as a client that jumps instead of following
// Link asks them); /statistics; a project's audit log (page 1 and a deep page) and
// the system's (page 1); the project's summary (its counts). --root measures another checkout (an
// older commit, for before/after figures); --base=DIR measures a second checkout in the same run,
// its instances interleaved with the first's (a loaded machine then slows both alike), and prints
// each row's CPU relative to it.
//
// --backend=pg: Berth on PostgreSQL (one throwaway server from bench/lib/engines.mjs, a database per
// instance; blobs on local disk as by default), filled through `pg` with the same rows (batched with
// unnest, then ANALYZE, as autovacuum would after such a load). On PostgreSQL the queries' CPU is
// spent in the database's backends, not in Berth: a second table adds the PostgreSQL server's CPU
// (all its processes; only one instance is measured at a time) to Berth's. With --keep the server
// stays up too (for EXPLAIN ANALYZE on databases lists_<root index>_<size>).
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { OCI_MANIFEST, bearer, makeTarget, request } from './lib/client.mjs';
import { createDatabase, pgUnavailable, startPostgres, treePids } from './lib/engines.mjs';
import { buildBerth, cpuMs, memMiB, startBerth } from './lib/servers.mjs';

const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const opt = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const ROOT = path.resolve(opt('root') ?? HERE);
const BASE = opt('base') ? path.resolve(opt('base')) : null;
const SIZES = (opt('sizes') ?? '1000,20000').split(',').map(Number);
const ROUNDS = Number(opt('rounds') ?? 3);
const REPS = Number(opt('reps') ?? 200);
const ONLY = opt('only')?.split(',');
const BACKEND = opt('backend') ?? 'sqlite';
if (!['sqlite', 'pg'].includes(BACKEND)) throw new Error(`--backend must be sqlite or pg, got ${BACKEND}`);
const PASSWORD = 'bench-admin-' + randomBytes(6).toString('hex');
const BASIC = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
const BIG = 'library/big';

const log = (...a) => console.error('[list-scale]', ...a);
const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sqlDate = (d) => d.toISOString().replace('Z', '+00:00');

/** Fills the database as described above; returns a manifest of library/big (bytes) to tag again. */
function fill(dataDir, n) {
  const db = new Database(path.join(dataDir, 'berth.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const t0 = Date.now() - 2 * 24 * 3600_000;
  const projectId = db.prepare(`SELECT "id" FROM "Project" WHERE "name" = 'library'`).pluck().get();
  const repo = db.prepare('INSERT INTO "Repository" ("name", "projectId", "createdAt", "updatedAt") VALUES (?, ?, ?, ?) RETURNING "id"').pluck();
  const blob = db.prepare('INSERT INTO "Blob" ("digest", "size", "createdAt") VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
  const link = db.prepare('INSERT INTO "BlobLink" ("repositoryId", "digest", "createdAt") VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
  const content = db.prepare('INSERT INTO "ManifestContent" ("digest", "content") VALUES (?, ?) ON CONFLICT DO NOTHING');
  const manifest = db.prepare('INSERT INTO "Manifest" ("repositoryId", "digest", "mediaType", "configType", "size", "refs", "pushedAt") VALUES (?, ?, ?, ?, ?, ?, ?)');
  const tag = db.prepare('INSERT INTO "Tag" ("repositoryId", "name", "digest", "createdAt", "updatedAt") VALUES (?, ?, ?, ?, ?)');
  const audit = db.prepare('INSERT INTO "AuditLog" ("username", "operation", "resource", "resourceType", "createdAt") VALUES (?, ?, ?, ?, ?)');
  const layer = randomBytes(512);
  const layerDigest = sha(layer);
  let sample = null;
  let big = 0;
  db.transaction(() => {
    const put = (repositoryId, i, tagName) => {
      const when = sqlDate(new Date(t0 + i * 1000));
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { i: String(i) } } }));
      const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: CONFIG_TYPE, digest: sha(config), size: config.length }, layers: [{ mediaType: LAYER_TYPE, digest: layerDigest, size: layer.length }] }));
      const digest = sha(raw);
      for (const [d, size] of [[sha(config), config.length], [layerDigest, layer.length], [digest, raw.length]]) {
        blob.run(d, size, when);
        link.run(repositoryId, d, when);
      }
      content.run(digest, raw);
      // the config's bytes, as a push leaves them (the artifact list shows facts from it)
      const dir = path.join(dataDir, 'storage', 'blobs', 'sha256', sha(config).slice(7, 9), sha(config).slice(7));
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'data'), config);
      manifest.run(repositoryId, digest, OCI_MANIFEST, CONFIG_TYPE, raw.length, JSON.stringify([sha(config), layerDigest]), when);
      tag.run(repositoryId, tagName, digest, when, when);
      audit.run('admin', 'create', `${repositoryId === big ? BIG : `library/r${i}`}:${tagName}`, 'artifact', when);
      return raw;
    };
    big = repo.get(BIG, projectId, sqlDate(new Date(t0)), sqlDate(new Date(t0)));
    for (let i = 0; i < n; i++) {
      const raw = put(big, i, `t${String(i).padStart(6, '0')}`);
      if (i === 0) sample = raw;
    }
    for (let r = 0; r < n / 4; r++) {
      const id = repo.get(`library/r${String(r).padStart(5, '0')}`, projectId, sqlDate(new Date(t0 + r)), sqlDate(new Date(t0 + r)));
      put(id, n + r, 'latest');
    }
  })();
  db.close();
  return sample;
}

/** fill() on PostgreSQL: the same rows through `pg`, inserted in batches (unnest), then ANALYZE. */
async function fillPg(url, dataDir, n) {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const t0 = Date.now() - 2 * 24 * 3600_000;
    // TIMESTAMP(3) without time zone, UTC as Prisma writes it (the literal's zone is ignored)
    const at = (ms) => new Date(ms).toISOString();
    const projectId = (await c.query(`SELECT "id" FROM "Project" WHERE "name" = 'library'`)).rows[0].id;
    await c.query('BEGIN');
    const big = (await c.query('INSERT INTO "Repository" ("name", "projectId", "createdAt", "updatedAt") VALUES ($1, $2, $3, $3) RETURNING "id"', [BIG, projectId, at(t0)])).rows[0].id;
    const repoNames = Array.from({ length: n / 4 }, (_, r) => `library/r${String(r).padStart(5, '0')}`);
    const ids = new Map(
      (
        await c.query(
          'INSERT INTO "Repository" ("name", "projectId", "createdAt", "updatedAt") SELECT u.n, $2, u.d, u.d FROM unnest($1::text[], $3::timestamp[]) WITH ORDINALITY AS u(n, d, o) ORDER BY u.o RETURNING "id", "name"',
          [repoNames, projectId, repoNames.map((_, r) => at(t0 + r))],
        )
      ).rows.map((r) => [r.name, r.id]),
    );
    const cols = (k) => Array.from({ length: k }, () => []);
    const T = { blob: cols(3), link: cols(3), content: cols(2), manifest: cols(7), tag: cols(5), audit: cols(5) };
    const add = (t, ...v) => v.forEach((x, j) => T[t][j].push(x));
    const layer = randomBytes(512);
    const layerDigest = sha(layer);
    const seen = new Set();
    let sample = null;
    const put = (repositoryId, i, tagName) => {
      const when = at(t0 + i * 1000);
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { i: String(i) } } }));
      const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: CONFIG_TYPE, digest: sha(config), size: config.length }, layers: [{ mediaType: LAYER_TYPE, digest: layerDigest, size: layer.length }] }));
      const digest = sha(raw);
      for (const [d, size] of [[sha(config), config.length], [layerDigest, layer.length], [digest, raw.length]]) {
        if (!seen.has(d)) add('blob', d, size, when);
        if (!seen.has(`${repositoryId}|${d}`)) add('link', repositoryId, d, when);
        seen.add(d).add(`${repositoryId}|${d}`);
      }
      add('content', digest, raw);
      const dir = path.join(dataDir, 'storage', 'blobs', 'sha256', sha(config).slice(7, 9), sha(config).slice(7));
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'data'), config);
      add('manifest', repositoryId, digest, OCI_MANIFEST, CONFIG_TYPE, raw.length, JSON.stringify([sha(config), layerDigest]), when);
      add('tag', repositoryId, tagName, digest, when, when);
      add('audit', 'admin', 'create', `${repositoryId === big ? BIG : `library/r${i}`}:${tagName}`, 'artifact', when);
      return raw;
    };
    for (let i = 0; i < n; i++) {
      const raw = put(big, i, `t${String(i).padStart(6, '0')}`);
      if (i === 0) sample = raw;
    }
    for (let r = 0; r < n / 4; r++) put(ids.get(repoNames[r]), n + r, 'latest');
    const sql = {
      blob: 'INSERT INTO "Blob" ("digest", "size", "createdAt") SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamp[]) ON CONFLICT DO NOTHING',
      link: 'INSERT INTO "BlobLink" ("repositoryId", "digest", "createdAt") SELECT * FROM unnest($1::int[], $2::text[], $3::timestamp[]) ON CONFLICT DO NOTHING',
      content: 'INSERT INTO "ManifestContent" ("digest", "content") SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT DO NOTHING',
      manifest: 'INSERT INTO "Manifest" ("repositoryId", "digest", "mediaType", "configType", "size", "refs", "pushedAt") SELECT a, b, c, d, e, f, g FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::timestamp[]) WITH ORDINALITY AS u(a, b, c, d, e, f, g, o) ORDER BY o',
      tag: 'INSERT INTO "Tag" ("repositoryId", "name", "digest", "createdAt", "updatedAt") SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::timestamp[], $5::timestamp[])',
      audit: 'INSERT INTO "AuditLog" ("username", "operation", "resource", "resourceType", "createdAt") SELECT a, b, c, d, e FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamp[]) WITH ORDINALITY AS u(a, b, c, d, e, o) ORDER BY o',
    };
    for (const [t, q] of Object.entries(sql)) {
      for (let k = 0; k < T[t][0].length; k += 2000) await c.query(q, T[t].map((col) => col.slice(k, k + 2000)));
    }
    await c.query('COMMIT');
    await c.query('ANALYZE');
    return sample;
  } finally {
    await c.end();
  }
}

const expect = (res, status, what) => {
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${res.body?.toString('utf8').slice(0, 300)}`);
  return res;
};

/** The rows: each a function (instance, i) => Promise that makes one measured request (or a pair). */
function rows(inst) {
  const { t, n, sample } = inst;
  const api = (p) => async () => expect(await request(t, 'GET', `/api/v2.0${p}`, { auth: BASIC, sink: 'discard' }), 200, p);
  const firstPage = async () => expect(await request(t, 'GET', `/v2/${BIG}/tags/list?n=100`, { sink: 'discard' }), 200, 'tags');
  const putTag = async (tag) => expect(await request(t, 'PUT', `/v2/${BIG}/manifests/${tag}`, { headers: { 'content-type': OCI_MANIFEST }, body: sample }), 201, `put ${tag}`);
  const deep = Math.floor(n / 15 / 2);
  const deepRepos = Math.floor(n / 4 / 15 / 2);
  return {
    'api baseline (GET project)': api('/projects/library'),
    'tags page 1 (n=100)': firstPage,
    'tag PUT (after page 1) + page 1': async () => {
      await putTag(`z${inst.seq++}`);
      await firstPage();
    },
    'tag PUT (on page 1) + page 1': async () => {
      await putTag(`a${inst.seq++}`);
      await firstPage();
    },
    'artifacts page 1 (15, with_tag)': api(`/projects/library/repositories/big/artifacts?page=1&page_size=15&with_tag=true`),
    [`artifacts deep page`]: api(`/projects/library/repositories/big/artifacts?page=${deep}&page_size=15&with_tag=true`),
    'repositories page 1 (15)': api(`/projects/library/repositories?page=1&page_size=15`),
    'repositories deep page': api(`/projects/library/repositories?page=${deepRepos}&page_size=15`),
    'repositories deep page (-update_time)': api(`/projects/library/repositories?page=${deepRepos}&page_size=15&sort=-update_time`),
    'repositories deep page (-pull_count)': api(`/projects/library/repositories?page=${deepRepos}&page_size=15&sort=-pull_count`),
    'all repositories deep page (-creation_time)': api(`/repositories?page=${deepRepos}&page_size=15&sort=-creation_time`),
    statistics: api('/statistics'),
    'project logs page 1 (15)': api(`/projects/library/logs?page=1&page_size=15`),
    'project logs deep page': api(`/projects/library/logs?page=${deep}&page_size=15`),
    'audit logs page 1 (15)': api(`/audit-logs?page=1&page_size=15`),
    'project summary': api('/projects/library/summary'),
    // A client that jumps (no Link followed): deep pages in turn, every other one (so none is the
    // page after the last), 15 and 4 of them, all within the small size's pages (the described
    // artifacts then fit the same caches at both sizes).
    'artifacts deep pages, jumping': async () => api(`/projects/library/repositories/big/artifacts?page=${deep + 2 * (inst.seq++ % 15)}&page_size=15&with_tag=true`)(),
    'repositories deep pages, jumping': async () => api(`/projects/library/repositories?page=${deepRepos + 2 * (inst.seq++ % 4)}&page_size=15`)(),
  };
}

const treeCpuMs = (pid) => treePids(pid).reduce((sum, p) => {
  try {
    return sum + cpuMs(p);
  } catch {
    return sum; // gone meanwhile
  }
}, 0);

/** CPU ms per request: [Berth's, Berth's + the PostgreSQL server's (with --backend=pg)]. */
async function measure(inst, fn, reps) {
  for (let i = 0; i < 5; i++) await fn(); // warm: caches and JIT
  const c0 = cpuMs(inst.b.pid);
  const p0 = inst.pgPid ? treeCpuMs(inst.pgPid) : 0;
  for (let i = 0; i < reps; i++) await fn();
  const berth = (cpuMs(inst.b.pid) - c0) / reps;
  return [berth, berth + (inst.pgPid ? (treeCpuMs(inst.pgPid) - p0) / reps : 0)];
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const roots = BASE ? [ROOT, BASE] : [ROOT];
  const entries = new Map(roots.map((r) => [r, flag('tsx') ? undefined : buildBerth(r)]));
  const insts = [];
  let pgServer = null;
  try {
    if (BACKEND === 'pg') {
      const why = pgUnavailable();
      if (why) throw new Error(`--backend=pg: ${why}`);
      pgServer = await startPostgres();
      log(`PostgreSQL on ${pgServer.url.replace(/\/[^/]*$/, '')} (pid ${pgServer.pid})`);
    }
    for (const [r, root] of roots.entries())
    for (const n of SIZES) {
      const entry = entries.get(root);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-lists-${n}-`));
      const env = pgServer ? { BERTH_DATABASE_URL: await createDatabase(pgServer, `lists_${r}_${n}`), BERTH_SECRET_KEY: randomBytes(32).toString('base64') } : {};
      log(`size ${n}: creating the database`);
      let b = await startBerth({ root, dir, password: PASSWORD, entry, env });
      await b.stop();
      const f0 = performance.now();
      const sample = pgServer ? await fillPg(env.BERTH_DATABASE_URL, path.join(dir, 'data'), n) : fill(path.join(dir, 'data'), n);
      log(`size ${n}: filled in ${((performance.now() - f0) / 1000).toFixed(1)} s`);
      b = await startBerth({ root, dir, password: PASSWORD, entry, env });
      const t = makeTarget(b, { basic: BASIC });
      t.authz = await bearer(t, [`repository:${BIG}:pull,push`]);
      insts.push({ root, n, dir, b, t, sample, seq: 0, pgPid: pgServer?.pid });
    }
    const names = Object.keys(rows(insts[0])).filter((r) => !ONLY || ONLY.some((o) => r.startsWith(o)));
    const results = new Map(names.map((r) => [r, insts.map(() => [])]));
    const withPg = new Map(names.map((r) => [r, insts.map(() => [])]));
    // The tag PUTs last: each moves the tagged manifest to the top of the artifact list with one
    // more tag, which would change what the artifact rows measure.
    for (const phase of [names.filter((r) => !r.startsWith('tag PUT')), names.filter((r) => r.startsWith('tag PUT'))]) {
      for (let round = 0; round < ROUNDS; round++) {
        for (const name of phase) {
          for (const [k, inst] of insts.entries()) {
            const [berth, total] = await measure(inst, rows(inst)[name], REPS);
            results.get(name)[k].push(berth);
            withPg.get(name)[k].push(total);
          }
        }
        log(`round ${round + 1}/${ROUNDS} done`);
      }
    }
    const out = [];
    const medians = new Map();
    const metrics = pgServer ? [['Berth', results], ['Berth + PostgreSQL', withPg]] : [['Server', results]];
    for (const [metric, res] of metrics)
    for (const root of roots) {
      const mine = insts.map((inst, k) => [inst, k]).filter(([inst]) => inst.root === root);
      console.log(`\n${metric} CPU ms per request (${root === HERE ? 'this checkout' : root}${pgServer ? ', on PostgreSQL' : ''}), median of ${ROUNDS} rounds of ${REPS}`);
      console.log(`${'request'.padEnd(36)}${mine.map(([i]) => String(i.n).padStart(10)).join('')}   growth${root === BASE ? '' : BASE ? '   vs base' : ''}`);
      for (const name of names) {
        const m = mine.map(([, k]) => median(res.get(name)[k]));
        medians.set(`${metric}|${root}|${name}`, m);
        const base = BASE && root !== BASE ? medians.get(`${metric}|${BASE}|${name}`) ?? mine.map(([inst]) => median(res.get(name)[insts.findIndex((j) => j.root === BASE && j.n === inst.n)])) : null;
        const vs = base ? '   ' + m.map((x, j) => `${(x / Math.max(0.001, base[j])).toFixed(2)}x`).join(' ') : '';
        console.log(`${name.padEnd(36)}${m.map((x) => x.toFixed(3).padStart(10)).join('')}   ${(m.at(-1) / Math.max(0.001, m[0])).toFixed(2)}x${vs}`);
        out.push({ backend: BACKEND, metric, root, name, sizes: mine.map(([i]) => i.n), ms: m, rounds: mine.map(([, k]) => res.get(name)[k]) });
      }
    }
    for (const inst of insts) log(`${inst.root === ROOT ? '' : 'base '}size ${inst.n}: RSS ${memMiB(inst.b.pid).rss.toFixed(0)} MiB`);
    fs.mkdirSync(path.join(HERE, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(path.join(HERE, 'bench', 'results', pgServer ? 'list-scale-pg.json' : 'list-scale.json'), JSON.stringify(out, null, 2));
  } finally {
    for (const inst of insts) {
      await inst.b.stop();
      if (!flag('keep')) fs.rmSync(inst.dir, { recursive: true, force: true });
      else log(`kept ${inst.dir}`);
    }
    if (pgServer && !flag('keep')) await pgServer.stop();
    else if (pgServer) log(`kept PostgreSQL ${pgServer.url.replace(/\/[^/]*$/, '')} (databases lists_<root>_<size>; stop: pg_ctl -D ${pgServer.dir}/data stop, then rm -r ${pgServer.dir})`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
