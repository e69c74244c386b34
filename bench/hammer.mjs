// Profiling aid: one Berth, a small fixture, then one request kind in a loop; prints server CPU per
// request. node bench/hammer.mjs <tags|manifest|head|small|put|mono|docker|pull|token> [count] [--cpu-prof]
// Env: HAMMER_CONC (requests in flight), HAMMER_THREADS=1 (CPU per thread), HAMMER_LOG=all (last
// 60 lines of the server log) or gc (collection counts, with BERTH_NODE_ARGS=--trace-gc),
// BERTH_NODE_ARGS (extra node flags), BERTH_ENV="K=V ..." (extra environment for Berth).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { bearer, makeTarget, pool, pushMonolithic, pushStreamed, putManifest, request, OCI_MANIFEST, ACCEPT } from './lib/client.mjs';
import { buildBerth, cpuMs, memMiB, startBerth } from './lib/servers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const kind = process.argv[2] ?? 'tags';
const count = Number(process.argv[3] ?? 5000);
const prof = process.argv.includes('--cpu-prof');
const password = 'hammer-' + randomBytes(4).toString('hex');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-hammer-'));
const entry = process.argv.includes('--tsx') ? undefined : buildBerth(ROOT);
const server = await startBerth({ root: ROOT, dir: tmp, password, entry, extraNodeArgs: prof ? ['--cpu-prof', `--cpu-prof-dir=${path.join(ROOT, 'bench/results/prof')}`] : [] });
const t = makeTarget(server, { basic: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` });
try {
  const repo = 'library/hammer';
  const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = randomBytes(1024);
  for (const b of [config, layer]) await pushMonolithic(t, repo, b, sha(b), { auth: t.basic });
  const manifest = (a) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }], annotations: { a: a } }));
  await pool(300, 8, (i) => putManifest(t, repo, `t${String(i).padStart(5, '0')}`, manifest('x'), { auth: t.basic }));
  t.authz = await bearer(t, [`repository:${repo}:pull,push`]);
  const MiB = 1024 * 1024;
  const monoBase = kind === 'mono' || kind === 'docker' ? randomBytes(8 * MiB) : null;
  const monoBlobs = kind === 'mono' || kind === 'docker' ? Array.from({ length: count }, (_, i) => { const b = Buffer.from(monoBase); randomBytes(64).copy(b, 0); return { b, d: sha(b) }; }) : [];
  if (kind === 'pull') {
    const b = randomBytes(8 * MiB);
    await pushMonolithic(t, repo, b, sha(b), { auth: t.basic });
    monoBlobs.push({ b, d: sha(b) });
  }
  const fns = {
    token: () => request(t, 'GET', `/service/token?service=berth-registry&scope=repository:${repo}:pull,push`, { auth: t.basic, sink: 'discard' }),
    pull: () => request(t, 'GET', `/v2/${repo}/blobs/${monoBlobs[0].d}`, { sink: 'discard' }),
    mono: (i) => pushMonolithic(t, repo, monoBlobs[i].b, monoBlobs[i].d),
    docker: (i) => pushStreamed(t, repo, monoBlobs[i].b, monoBlobs[i].d),
    tags: () => request(t, 'GET', `/v2/${repo}/tags/list?n=100&last=t00100`, { sink: 'discard' }),
    manifest: (i) => request(t, 'GET', `/v2/${repo}/manifests/t${String(i % 300).padStart(5, '0')}`, { headers: { accept: ACCEPT }, sink: 'discard' }),
    head: () => request(t, 'HEAD', `/v2/${repo}/blobs/${sha(layer)}`, { sink: 'discard' }),
    small: () => request(t, 'GET', `/v2/${repo}/blobs/${sha(layer)}`, { sink: 'discard' }),
    put: (i) => putManifest(t, repo, `p${i}`, manifest(`p${i}`)),
  };
  const mainCpu = () => fs.readFileSync(`/proc/${server.pid}/task/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ').slice(11, 13).map(Number);
  const threads = () => Object.fromEntries(fs.readdirSync(`/proc/${server.pid}/task`).map((tid) => { const st = fs.readFileSync(`/proc/${server.pid}/task/${tid}/stat`, 'utf8'); const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')); const f = st.split(') ')[1].split(' '); return [`${name}#${tid}`, Number(f[11]) + Number(f[12])]; }));
  const th0 = threads();
  const m0 = mainCpu();
  const c0 = cpuMs(server.pid);
  const t0 = performance.now();
  await pool(count, Number(process.env.HAMMER_CONC) || (kind === 'put' ? 8 : kind === 'mono' || kind === 'docker' || kind === 'pull' ? 4 : 32), fns[kind]);
  const ms = performance.now() - t0;
  const cpu = cpuMs(server.pid) - c0;
  const m1 = mainCpu();
  const tick = 1e6 / 100; // µs per clock tick (CLK_TCK 100)
  if (process.env.HAMMER_THREADS) {
    // Per thread: the main thread, libuv's pool (file I/O, fsync) and V8's platform workers (GC).
    const per = Object.entries(threads()).map(([k, v]) => [k, v - (th0[k] ?? 0)]);
    console.log(`CPU per request by thread: ${per.sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${((v * tick) / count).toFixed(0)}µs`).join(', ')}`);
  }
  console.log(`${kind}: ${(count / (ms / 1000)).toFixed(0)} req/s, ${((cpu * 1000) / count).toFixed(0)} µs CPU/req (main thread user ${(((m1[0] - m0[0]) * tick) / count).toFixed(0)} sys ${(((m1[1] - m0[1]) * tick) / count).toFixed(0)}), rss ${memMiB(server.pid).rss.toFixed(0)} MiB, peak ${memMiB(server.pid).hwm.toFixed(0)} MiB`);
} finally {
  await server.stop();
  const log = process.env.HAMMER_LOG ? fs.readFileSync(server.logFile, 'utf8') : '';
  if (process.env.HAMMER_LOG === 'gc') {
    // needs BERTH_NODE_ARGS=--trace-gc
    console.log(`server log: ${(log.match(/Mark-Compact/g) ?? []).length} mark-compacts, ${(log.match(/Scavenge/g) ?? []).length} scavenges`);
  } else if (process.env.HAMMER_LOG) console.log(log.split('\n').slice(-60).join('\n'));
  fs.rmSync(tmp, { recursive: true, force: true });
}
