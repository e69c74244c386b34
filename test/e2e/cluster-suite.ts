// More than one node (issue 14): two Berth processes on one PostgreSQL and one radosgw bucket,
// haproxy round robin in front (test/helpers/cluster.ts, configured from docs/examples/haproxy.cfg).
// Real clients and raw HTTP, each case aimed at one piece of state that must not live in a single
// process: images pushed on one node and pulled on the other, an upload continued across nodes, a
// token and a browser session used on the node that did not issue them, the other node's caches
// (tags, manifests, settings, credentials) correct within a second of a change, GC on one node
// during a push on the other, pushes and pulls through the balancer, and a node killed with -9.
// Not a test file of its own: test/e2e/s3.test.ts calls clusterSuite() so the cluster shares its
// radosgw (only one Ceph runs per machine).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_PASSWORD, basic } from '../helpers/app.ts';
import { startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.ts';
import { layoutBlobs, layoutTop, multiArchLayout, tempDir, type Layout } from '../helpers/oci-layout.ts';
import { missingPostgres } from '../helpers/pg.ts';
import { rgwUnavailable, type Rgw } from '../helpers/rgw.ts';
import { missingTool } from '../helpers/tools.ts';
import { ok } from './exec.ts';

const MiB = 1024 * 1024;
const AUTH = basic('admin', ADMIN_PASSWORD);
const CREDS = `admin:${ADMIN_PASSWORD}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** The GC runs' time window, in seconds. */
const GC_WINDOW_S = 10;

function sha256(b: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

/** Deterministic incompressible bytes. */
function noise(seed: string, size: number): Buffer {
  return createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16, 0)).update(Buffer.alloc(size, 0));
}

interface Res {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
}

/** One request to `base` (a node or the balancer); Basic admin unless headers say otherwise. */
async function call(base: string, method: string, url: string, opts: { body?: Buffer | string; headers?: Record<string, string> } = {}): Promise<Res> {
  const headers = { Authorization: AUTH, ...opts.headers };
  if (headers.Authorization === '') delete (headers as Record<string, string>).Authorization;
  const r = await fetch(url.startsWith('http') ? url : base + url, { method, headers, body: opts.body, signal: AbortSignal.timeout(60_000) });
  const body = Buffer.from(await r.arrayBuffer());
  return { status: r.status, headers: r.headers, body, text: body.toString() };
}

async function pushBlob(node: ClusterNode, repo: string, data: Buffer): Promise<string> {
  const d = sha256(data);
  const r = await call(node.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${d}`, { body: data, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 201, `${node.name}: ${r.text}`);
  return d;
}

/** A one-layer image pushed by raw HTTP; returns the manifest's digest. */
async function pushImage(node: ClusterNode, repo: string, tag: string, seed: string): Promise<string> {
  const layer = noise(`${seed}-layer`, 4096);
  const layerDigest = await pushBlob(node, repo, layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] }, config: { Labels: { seed } } }));
  const configDigest = await pushBlob(node, repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  const r = await call(node.url, 'PUT', `/v2/${repo}/manifests/${tag}`, { body: manifest, headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal(r.status, 201, `${node.name}: ${r.text}`);
  return sha256(manifest);
}

/** Polls until `check` holds, for at most `ms`; returns whether it held and the time it took. */
async function within(ms: number, check: () => Promise<boolean>): Promise<{ held: boolean; after: number }> {
  const start = Date.now();
  for (;;) {
    if (await check()) return { held: true, after: Date.now() - start };
    if (Date.now() - start > ms) return { held: false, after: Date.now() - start };
    await sleep(50);
  }
}

/** A node's output without the AWS SDK's notice that later releases need Node 22. */
const quiet = (out: string) => out.replace(/\(node:\d+\) Warning: NodeVersionSupportWarning[\s\S]*?--trace-warnings[^\n]*\n/g, '');

export function clusterSuite(getRgw: () => Rgw | undefined): void {
  const unavailable = rgwUnavailable();
  const skip = unavailable ? `skipped: ${unavailable}` : missingTool('skopeo', 'haproxy') || missingPostgres();

  describe('More than one node: two Berth processes on PostgreSQL and radosgw behind haproxy', { skip, timeout: 300_000 }, () => {
    let cluster: Cluster;
    let n1: ClusterNode;
    let n2: ClusterNode;
    let work: string;
    let env: Record<string, string>;
    let garbageAt = 0;
    const layouts = new Map<string, Promise<Layout>>();
    /** A multi-arch OCI layout, built once per name (in the background while the cluster starts). */
    const layout = (name: string) => {
      if (!layouts.has(name)) layouts.set(name, multiArchLayout({ dir: path.join(work, `layout-${name}`), seed: `cluster-${name}-${process.pid}` }));
      return layouts.get(name)!;
    };
    const skopeo = (args: string[]) => ok('skopeo', args, { env, timeoutMs: 90_000 });
    const push = async (host: string, l: Layout, ref: string) =>
      skopeo(['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', CREDS, l.ref, `docker://${host}/${ref}`]);
    /** Pulls `ref` from `host` into a fresh layout and asserts it is `l`, digest for digest. */
    const pullSame = async (host: string, ref: string, l: Layout, what: string) => {
      const out = fs.mkdtempSync(path.join(work, 'pull-'));
      await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--src-creds', CREDS, `docker://${host}/${ref}`, `oci:${out}:back`]);
      assert.equal(layoutTop(out, 'back').digest, l.top.digest, `${what}: the top-level digest`);
      assert.deepEqual(await layoutBlobs(out), l.blobs, `${what}: the same blobs, each matching its digest`);
    };
    /** A test whose failure message ends with what the nodes logged (warnings and errors). */
    const it = (name: string, fn: () => Promise<void>) =>
      test(name, async () => {
        try {
          await fn();
        } catch (e) {
          if (e instanceof Error && cluster) e.message += '\n' + cluster.nodes.map((n) => `--- ${n.name} log (tail)\n${quiet(n.output()).slice(-3000)}`).join('\n');
          throw e;
        }
      });

    before(async () => {
      const rgw = getRgw();
      assert.ok(rgw, 'radosgw is running');
      work = tempDir('berth-cluster-e2e-');
      env = { REGISTRY_AUTH_FILE: path.join(work, 'auth.json') };
      fs.writeFileSync(env.REGISTRY_AUTH_FILE, '{"auths":{}}');
      const layoutsBuilt = Promise.all(['one', 'gc-a', 'gc-b', 'lb', 'survivor'].map(layout));
      cluster = await startCluster({ rgw });
      [n1, n2] = cluster.nodes;
      // Garbage for the GC case, made now so it is older than the runs' time window by then: an
      // image whose manifest is deleted.
      const doomed = await pushImage(n1, 'library/gc-doomed', 'x', 'gc-doomed');
      assert.equal((await call(n1.url, 'DELETE', `/v2/library/gc-doomed/manifests/${doomed}`)).status, 202);
      garbageAt = Date.now();
      await layoutsBuilt;
    });

    after(async () => {
      await cluster?.stop();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it('skopeo pushes a multi-arch image through node 1 and pulls it through node 2, digest for digest', async () => {
      const l = await layout('one');
      // Node 2 is asked first, while the image is not there: what it learns must not outlive the push.
      assert.equal((await call(n2.url, 'GET', '/v2/library/multi/manifests/1', { headers: { Accept: l.top.mediaType } })).status, 404);
      assert.equal((await call(n2.url, 'GET', '/v2/library/multi/tags/list')).status, 404);
      await push(n1.host, l, 'library/multi:1');
      await pullSame(n2.host, 'library/multi:1', l, 'pulled through node 2');
      assert.deepEqual(JSON.parse((await call(n2.url, 'GET', '/v2/library/multi/tags/list')).text).tags, ['1']);
      // And the other way round for a tag node 2 has not seen before the pull above.
      const idx = await call(n2.url, 'GET', `/v2/library/multi/manifests/${l.top.digest}`, { headers: { Accept: l.top.mediaType } });
      assert.equal(idx.status, 200);
      assert.equal(sha256(idx.body), l.top.digest);
    });

    it('a chunked upload started on node 1 continues on node 2, then node 1, and completes on node 2 to the exact blob', async () => {
      const blob = noise('cluster-chunked', 15 * MiB + 1011);
      const digest = sha256(blob);
      const repo = 'library/chunked';
      const start = await call(n1.url, 'POST', `/v2/${repo}/blobs/uploads/`);
      assert.equal(start.status, 202, start.text);
      let loc = start.headers.get('location')!;
      assert.ok(loc, 'a Location for the session');
      // 6 MiB (above S3's 5 MiB minimum part, below Berth's 8 MiB part) on node 2, 9 MiB on node 1
      // (a full part and a tail), the last 1000 bytes with the PUT on node 2.
      let off = 0;
      for (const [node, n] of [[n2, 6 * MiB + 11], [n1, 9 * MiB]] as const) {
        const p = await call(node.url, 'PATCH', loc, { body: blob.subarray(off, off + n), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${off}-${off + n - 1}` } });
        assert.equal(p.status, 202, `PATCH on ${node.name} at ${off}: ${p.text}`);
        off += n;
        assert.equal(p.headers.get('range'), `0-${off - 1}`, `${node.name} says how much it has`);
        loc = p.headers.get('location')!;
      }
      const status = await call(n2.url, 'GET', loc);
      assert.equal(status.status, 204, status.text);
      assert.equal(status.headers.get('range'), `0-${off - 1}`, 'node 2 knows the offset node 1 reached');
      const put = await call(n2.url, 'PUT', `${loc}${loc.includes('?') ? '&' : '?'}digest=${digest}`, { body: blob.subarray(off), headers: { 'Content-Type': 'application/octet-stream' } });
      assert.equal(put.status, 201, `PUT on node 2: ${put.text}`);
      assert.equal(put.headers.get('docker-content-digest'), digest);
      for (const node of [n1, n2]) {
        const g = await call(node.url, 'GET', `/v2/${repo}/blobs/${digest}`);
        assert.equal(g.status, 200, `${node.name}: ${g.text.slice(0, 200)}`);
        assert.equal(g.body.length, blob.length);
        assert.ok(g.body.equals(blob), `${node.name} serves the blob byte for byte`);
      }
    });

    it("a token from node 1's /service/token works on node 2's /v2", async () => {
      const repo = 'library/token';
      const t = await call(n1.url, 'GET', `/service/token?service=berth-registry&scope=repository:${repo}:pull,push`);
      assert.equal(t.status, 200, t.text);
      const token = JSON.parse(t.text).token as string;
      assert.ok(token, 'a token');
      const bearer = { Authorization: `Bearer ${token}` };
      assert.equal((await call(n2.url, 'GET', '/v2/', { headers: { Authorization: '' } })).status, 401, 'node 2 wants credentials');
      assert.equal((await call(n2.url, 'GET', '/v2/', { headers: { Authorization: 'Bearer not.a.token' } })).status, 401, 'and checks them');
      const v2 = await call(n2.url, 'GET', '/v2/', { headers: bearer });
      assert.equal(v2.status, 200, `node 2 accepts node 1's token: ${v2.text}`);
      const data = noise('cluster-token', 3000);
      const up = await call(n2.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, { body: data, headers: { ...bearer, 'Content-Type': 'application/octet-stream' } });
      assert.equal(up.status, 201, `a push on node 2 with node 1's token: ${up.text}`);
      const back = await call(n2.url, 'GET', `/v2/${repo}/blobs/${sha256(data)}`, { headers: bearer });
      assert.equal(back.status, 200);
      assert.ok(back.body.equals(data));
      // A token node 2 issued works on node 1 as well.
      const t2 = JSON.parse((await call(n2.url, 'GET', `/service/token?service=berth-registry&scope=repository:${repo}:pull`)).text).token as string;
      assert.equal((await call(n1.url, 'GET', `/v2/${repo}/blobs/${sha256(data)}`, { headers: { Authorization: `Bearer ${t2}` } })).status, 200);
    });

    it('a browser session from node 1 (cookie and CSRF token) works on node 2, and a log-out on node 2 ends it on node 1', async () => {
      const login = await call(n1.url, 'POST', '/c/login', { body: JSON.stringify({ principal: 'admin', password: ADMIN_PASSWORD }), headers: { Authorization: '', 'Content-Type': 'application/json' } });
      assert.equal(login.status, 200, login.text);
      const cookies = login.headers.getSetCookie();
      const cookie = cookies.map((c) => c.split(';')[0]).join('; ');
      const csrf = cookies.find((c) => c.startsWith('__csrf='))!.split(';')[0].slice('__csrf='.length);
      const browser = { Authorization: '', Cookie: cookie };
      const me = await call(n2.url, 'GET', '/api/v2.0/users/current', { headers: browser });
      assert.equal(me.status, 200, `node 2 knows node 1's session: ${me.text}`);
      assert.equal(JSON.parse(me.text).username, 'admin');
      const project = (name: string, headers: Record<string, string>) =>
        call(n2.url, 'POST', '/api/v2.0/projects', { body: JSON.stringify({ project_name: name, metadata: { public: 'false' } }), headers: { ...browser, 'Content-Type': 'application/json', ...headers } });
      assert.equal((await project('cluster-nocsrf', {})).status, 403, 'a change without the CSRF token is refused on node 2');
      const created = await project('cluster-csrf', { 'X-Harbor-CSRF-Token': csrf });
      assert.equal(created.status, 201, `a change with node 1's CSRF token on node 2: ${created.text}`);
      const out = await call(n2.url, 'GET', '/c/log_out', { headers: browser });
      assert.equal(out.status, 200);
      const gone = await within(1000, async () => (await call(n1.url, 'GET', '/api/v2.0/users/current', { headers: browser })).status === 401);
      assert.ok(gone.held, 'signed out on node 2, the session no longer works on node 1 (within 1 s)');
    });

    it('a tag moved and a manifest deleted on node 1 are seen on node 2 within 1 s', async () => {
      const repo = 'library/cache';
      const first = await pushImage(n1, repo, 'v1', 'cache-first');
      const manifest = (node: ClusterNode, ref: string) => call(node.url, 'GET', `/v2/${repo}/manifests/${ref}`, { headers: { Accept: OCI_MANIFEST } });
      // Node 2 reads (and caches) the tag, the manifest and the tag list.
      for (let i = 0; i < 2; i++) {
        assert.equal((await manifest(n2, 'v1')).headers.get('docker-content-digest'), first);
        assert.equal((await manifest(n2, first)).status, 200);
        assert.deepEqual(JSON.parse((await call(n2.url, 'GET', `/v2/${repo}/tags/list`)).text).tags, ['v1']);
      }
      const second = await pushImage(n1, repo, 'v1', 'cache-second');
      const moved = await within(1000, async () => (await manifest(n2, 'v1')).headers.get('docker-content-digest') === second);
      assert.ok(moved.held, `node 2 serves the tag's new manifest within 1 s (waited ${moved.after} ms)`);
      assert.equal((await manifest(n2, second)).status, 200);
      assert.equal((await manifest(n2, 'v1')).status, 200);
      const del = await call(n1.url, 'DELETE', `/v2/${repo}/manifests/${second}`);
      assert.equal(del.status, 202, del.text);
      const deleted = await within(1000, async () => (await manifest(n2, second)).status === 404 && (await manifest(n2, 'v1')).status === 404);
      assert.ok(deleted.held, `the deleted manifest and its tag are 404 on node 2 within 1 s (waited ${deleted.after} ms)`);
      const tags = await within(1000, async () => {
        const r = await call(n2.url, 'GET', `/v2/${repo}/tags/list`);
        return r.status === 404 || JSON.parse(r.text).tags?.length === 0;
      });
      assert.ok(tags.held, 'node 2 lists no tag');
    });

    it('a setting and a password changed on node 1 take effect on node 2 within 1 s', async () => {
      const PW = 'Cluster-Passw0rd-1';
      const NEW_PW = 'Cluster-Passw0rd-2';
      const user = await call(n1.url, 'POST', '/api/v2.0/users', { body: JSON.stringify({ username: 'dev', password: PW, email: 'dev@example.com', realname: 'Dev' }), headers: { 'Content-Type': 'application/json' } });
      assert.equal(user.status, 201, user.text);
      const id = user.headers.get('location')!.split('/').pop();
      let n = 0;
      const createProject = (password: string) =>
        call(n2.url, 'POST', '/api/v2.0/projects', { body: JSON.stringify({ project_name: `dev-${++n}`, metadata: { public: 'false' } }), headers: { Authorization: basic('dev', password), 'Content-Type': 'application/json' } });
      assert.equal((await createProject(PW)).status, 403, 'by default only admins create projects');
      const put = await call(n1.url, 'PUT', '/api/v2.0/configurations', { body: JSON.stringify({ project_creation_restriction: 'everyone' }), headers: { 'Content-Type': 'application/json' } });
      assert.equal(put.status, 200, put.text);
      const allowed = await within(1000, async () => (await createProject(PW)).status === 201);
      assert.ok(allowed.held, `node 2 lets everyone create projects within 1 s (waited ${allowed.after} ms)`);
      const conf = JSON.parse((await call(n2.url, 'GET', '/api/v2.0/configurations')).text);
      assert.equal(conf.project_creation_restriction.value, 'everyone');

      // Node 2 has verified dev's password (and may keep that for a while): an admin resets it on node 1.
      assert.equal((await call(n2.url, 'GET', '/api/v2.0/users/current', { headers: { Authorization: basic('dev', PW) } })).status, 200);
      const reset = await call(n1.url, 'PUT', `/api/v2.0/users/${id}/password`, { body: JSON.stringify({ new_password: NEW_PW }), headers: { 'Content-Type': 'application/json' } });
      assert.equal(reset.status, 200, reset.text);
      const refused = await within(1000, async () => (await call(n2.url, 'GET', '/api/v2.0/users/current', { headers: { Authorization: basic('dev', PW) } })).status === 401);
      assert.ok(refused.held, `node 2 refuses the old password within 1 s (waited ${refused.after} ms)`);
      assert.equal((await call(n2.url, 'GET', '/api/v2.0/users/current', { headers: { Authorization: basic('dev', NEW_PW) } })).status, 200, 'and takes the new one');
    });

    it('garbage collection on node 1 while node 2 takes a push keeps both images whole', async () => {
      const [a, b] = [await layout('gc-a'), await layout('gc-b')];
      await push(n1.host, a, 'library/gc-a:1');

      const gc = (body: object) => call(n1.url, 'POST', '/api/v2.0/system/gc/schedule', { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
      const runs: { id: string; status: string; deleted: number; log: string }[] = [];
      /**
       * One manual run, awaited. The time window (Harbor's: what is younger is kept) is a few
       * seconds, not hours: what the push on node 2 uploads before a run starts is inside it, and
       * what it uploads and links while a run is going is what the push/GC interlock must keep.
       */
      const runOnce = async () => {
        const started = await gc({ schedule: { type: 'Manual' }, parameters: { time_window: GC_WINDOW_S / 3600, delete_untagged: true } });
        if (started.status === 409) return; // one run at a time for the whole cluster
        assert.equal(started.status, 201, started.text);
        const id = /\/(\d+)$/.exec(started.headers.get('location')!)![1];
        let run = { job_status: 'Pending', blobs_deleted: 0 };
        for (let i = 0; i < 600 && !['Success', 'Error', 'Stopped'].includes(run.job_status); i++) {
          await sleep(50);
          run = JSON.parse((await call(n1.url, 'GET', `/api/v2.0/system/gc/${id}`)).text);
        }
        runs.push({ id, status: run.job_status, deleted: run.blobs_deleted, log: (await call(n1.url, 'GET', `/api/v2.0/system/gc/${id}/log`)).text });
      };
      let pushing = true;
      const pushed = push(n2.host, b, 'library/gc-b:1').finally(() => (pushing = false));
      const collecting = (async () => {
        do await runOnce();
        while (pushing);
      })();
      await Promise.all([pushed, collecting]);
      // Once more after the push, when the garbage made at the start is older than the window.
      await sleep(Math.max(0, garbageAt + (GC_WINDOW_S + 1) * 1000 - Date.now()));
      await runOnce();
      assert.ok(runs.length >= 2, `at least two runs (${runs.length})`);
      for (const r of runs) assert.equal(r.status, 'Success', `run ${r.id}: ${r.log}`);
      assert.ok(runs.some((r) => r.deleted > 0), 'the runs collected the deleted image');
      await pullSame(n2.host, 'library/gc-a:1', a, 'the image pushed before GC, through node 2');
      await pullSame(n1.host, 'library/gc-b:1', b, 'the image pushed during GC, through node 1');
    });

    it('a GC schedule set on node 1 is armed on node 2 too, and fires once per slot for the cluster, not once per node', async () => {
      const schedule = (node: ClusterNode) => call(node.url, 'GET', '/api/v2.0/system/gc/schedule').then((r) => JSON.parse(r.text) as { schedule: { type: string; cron: string; next_scheduled_time?: string } });
      const set = (body: object) => call(n1.url, 'PUT', '/api/v2.0/system/gc/schedule', { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
      const runs = async () => {
        const r = await call(n1.url, 'GET', '/api/v2.0/system/gc?page_size=100');
        assert.equal(r.status, 200, r.text);
        return (JSON.parse(r.text) as { id: number; job_kind: string; job_status: string; creation_time: string }[]).filter((x) => x.job_kind === 'SCHEDULE');
      };
      const before = new Set((await runs()).map((x) => x.id));
      // Every 3 s (a slot), keeping the default 2 h window: the runs find nothing to delete.
      const CRON = '*/3 * * * * *';
      const put = await set({ schedule: { type: 'Custom', cron: CRON }, parameters: { delete_untagged: false } });
      assert.equal(put.status, 200, put.text);
      try {
        const armed = await within(1000, async () => {
          const s = (await schedule(n2)).schedule;
          return s.type === 'Custom' && s.cron === CRON && !!s.next_scheduled_time;
        });
        assert.ok(armed.held, `node 2 has the schedule armed within 1 s: ${JSON.stringify(await schedule(n2))}`);
        await sleep(8_000);
      } finally {
        assert.equal((await set({ schedule: { type: 'None' } })).status, 200);
      }
      const disarmed = await within(1000, async () => {
        const s = (await schedule(n2)).schedule;
        return s.type === 'None' && !s.next_scheduled_time;
      });
      assert.ok(disarmed.held, 'node 2 dropped the schedule within 1 s');
      let fired: Awaited<ReturnType<typeof runs>> = [];
      const settled = await within(10_000, async () => {
        fired = (await runs()).filter((x) => !before.has(x.id));
        return fired.every((x) => ['Success', 'Error', 'Stopped'].includes(x.job_status));
      });
      assert.ok(settled.held, `the scheduled runs ended: ${JSON.stringify(fired)}`);
      assert.ok(fired.length >= 1, 'the schedule fired');
      for (const r of fired) assert.equal(r.job_status, 'Success', `scheduled run ${r.id}`);
      const slots = new Map<number, number[]>();
      for (const r of fired) {
        const slot = Math.floor(Date.parse(r.creation_time) / 3000);
        slots.set(slot, [...(slots.get(slot) ?? []), r.id]);
      }
      for (const [slot, ids] of slots) assert.equal(ids.length, 1, `one run for the slot at ${new Date(slot * 3000).toISOString()}, not one per node: runs ${ids.join(', ')}`);
    });

    it('skopeo pushes and pulls through haproxy, digest for digest; both nodes answer', async () => {
      const l = await layout('lb');
      await push(cluster.lb.host, l, 'library/balanced:1');
      await pullSame(cluster.lb.host, 'library/balanced:1', l, 'pulled through the balancer');
      const answered = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const r = await call(cluster.lb.url, 'GET', `/v2/library/balanced/manifests/${l.top.digest}`, { headers: { Accept: l.top.mediaType } });
        assert.equal(r.status, 200, r.text);
        answered.add(r.headers.get('x-berth-node')!);
      }
      assert.deepEqual([...answered].sort(), ['n1', 'n2'], 'round robin over both nodes');
    });

    // Last: the cluster is one node short afterwards.
    it('kill -9 of node 2: node 1 keeps serving through haproxy, continues an upload node 2 took chunks of, and reports itself healthy', async () => {
      const l = await layout('survivor');
      await push(n1.host, l, 'library/survivor:1');
      // An upload whose last acknowledged chunk went to node 2.
      const blob = noise('cluster-survivor-upload', 7 * MiB + 5);
      const start = await call(n1.url, 'POST', '/v2/library/survivor/blobs/uploads/');
      assert.equal(start.status, 202, start.text);
      const half = 6 * MiB;
      const first = await call(n2.url, 'PATCH', start.headers.get('location')!, { body: blob.subarray(0, half), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${half - 1}` } });
      assert.equal(first.status, 202, first.text);
      const loc = first.headers.get('location')!;

      await n2.kill();
      assert.equal(n2.running(), false);
      // Right after the kill, before haproxy's check marks node 2 down: retried on node 1.
      for (let i = 0; i < 8; i++) {
        const r = await call(cluster.lb.url, 'GET', `/v2/library/survivor/manifests/${l.top.digest}`, { headers: { Accept: l.top.mediaType } });
        assert.equal(r.status, 200, `request ${i} through the balancer: ${r.text}`);
        assert.equal(r.headers.get('x-berth-node'), 'n1');
      }
      await pullSame(cluster.lb.host, 'library/survivor:1', l, 'pulled through the balancer with node 2 dead');
      const rest = await call(cluster.lb.url, 'PATCH', loc, { body: blob.subarray(half), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${half}-${blob.length - 1}` } });
      assert.equal(rest.status, 202, `the upload continues through the balancer: ${rest.text}`);
      const rl = rest.headers.get('location')!;
      const done = await call(cluster.lb.url, 'PUT', `${rl}${rl.includes('?') ? '&' : '?'}digest=${sha256(blob)}`);
      assert.equal(done.status, 201, done.text);
      const got = await call(cluster.lb.url, 'GET', `/v2/library/survivor/blobs/${sha256(blob)}`);
      assert.ok(got.status === 200 && got.body.equals(blob), 'the upload node 2 took part of is complete and exact');
      const lbNode = { ...n1, url: cluster.lb.url, name: 'the balancer' };
      const pushed = await pushImage(lbNode, 'library/survivor', '2', 'survivor-2');
      const back = await call(cluster.lb.url, 'GET', '/v2/library/survivor/manifests/2', { headers: { Accept: OCI_MANIFEST } });
      assert.equal(back.status, 200, 'a push through the balancer with node 2 dead');
      assert.equal(sha256(back.body), pushed);
      const health = await call(n1.url, 'GET', '/api/v2.0/health', { headers: { Authorization: '' } });
      assert.equal(health.status, 200);
      assert.equal(JSON.parse(health.text).status, 'healthy');
      const lbHealth = await call(cluster.lb.url, 'GET', '/api/v2.0/health', { headers: { Authorization: '' } });
      assert.equal(lbHealth.status, 200);
      assert.equal(lbHealth.headers.get('x-berth-node'), 'n1');
    });
  });
}
