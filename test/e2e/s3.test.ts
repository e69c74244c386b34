// Everything that needs a real S3 server, in one file: radosgw (test/helpers/rgw.ts) is started
// once, and only one can run per machine. The driver conformance suite against it; Berth as a
// process on BERTH_STORAGE=s3 with skopeo pushing and pulling images; kill -9 in the middle of
// uploads (no half blob visible, nothing committed lost, the session resumes after a restart,
// which re-reads the stored parts); the 307 redirect to presigned URLs; the bucket created at start;
// and the multi-node suite (test/e2e/cluster-suite.ts: two nodes on PostgreSQL and this radosgw).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { S3Driver } from '../../src/storage/driver/s3.ts';
import { ADMIN_PASSWORD, basic } from '../helpers/app.ts';
import { driverSuite } from '../helpers/driver-suite.ts';
import { largeLayerLayout, layoutBlobs, layoutTop, multiArchLayout, tempDir } from '../helpers/oci-layout.ts';
import { rgwUnavailable, startRgw, type Rgw } from '../helpers/rgw.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { missingTool } from '../helpers/tools.ts';
import { clusterSuite } from './cluster-suite.ts';
import { ok } from './exec.ts';

const MiB = 1024 * 1024;
const AUTH = basic('admin', ADMIN_PASSWORD);
const CREDS = `admin:${ADMIN_PASSWORD}`;
const unavailable = rgwUnavailable();
if (unavailable && (process.env.CI === 'true' || process.env.CI === '1')) throw new Error(`radosgw missing under CI: ${unavailable}`);
const skip = unavailable ? `skipped: ${unavailable}` : false;

let rgw: Rgw | undefined;
const drivers: S3Driver[] = [];

before(async () => {
  if (!skip) rgw = await startRgw();
});

after(async () => {
  for (const d of drivers) d.close();
  await rgw?.stop();
});

async function s3(bucket: string, prefix = ''): Promise<S3Driver> {
  const d = await S3Driver.create({ endpoint: rgw!.endpoint, region: 'us-east-1', forcePathStyle: true, accessKeyId: rgw!.accessKeyId, secretAccessKey: rgw!.secretAccessKey, bucket, prefix });
  drivers.push(d);
  return d;
}

function s3Env(bucket: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    BERTH_LOG_LEVEL: 'warn',
    BERTH_STORAGE: 's3',
    BERTH_S3_ENDPOINT: rgw!.endpoint,
    BERTH_S3_BUCKET: bucket,
    BERTH_S3_ACCESS_KEY_ID: rgw!.accessKeyId,
    BERTH_S3_SECRET_ACCESS_KEY: rgw!.secretAccessKey,
    ...extra,
  };
}

function sha256(b: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

/** Deterministic incompressible bytes. */
function randomBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16, 0)).update(Buffer.alloc(size, 0));
}

async function req(srv: ServerProcess, method: string, url: string, opts: { body?: Buffer; headers?: Record<string, string>; redirect?: 'manual' | 'follow' } = {}) {
  const r = await fetch(url.startsWith('http') ? url : srv.url + url, { method, headers: { Authorization: AUTH, ...opts.headers }, body: opts.body, redirect: opts.redirect });
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

async function pushBlob(srv: ServerProcess, repo: string, data: Buffer): Promise<string> {
  const d = sha256(data);
  const r = await req(srv, 'POST', `/v2/${repo}/blobs/uploads/?digest=${d}`, { body: data, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 201, r.body.toString());
  return d;
}

/** Every object under blobs/ is a complete blob whose bytes hash to its digest; returns the digests. */
async function checkBlobStore(d: S3Driver): Promise<Set<string>> {
  const found = new Set<string>();
  for await (const o of d.walk('blobs')) {
    const m = /^blobs\/sha256\/([0-9a-f]{2})\/([0-9a-f]{64})\/data$/.exec(o.path);
    assert.ok(m && m[2].startsWith(m[1]), `unexpected object in the blob store: ${o.path}`);
    const hash = createHash('sha256');
    for await (const c of await d.reader(o.path)) hash.update(c as Buffer);
    assert.equal(`sha256:${hash.digest('hex')}`, `sha256:${m[2]}`, `${o.path} does not match its digest (partial?)`);
    found.add(`sha256:${m[2]}`);
  }
  return found;
}

// ---- the driver contract on radosgw ------------------------------------------------------------

let suitePrefix = '';
driverSuite(
  {
    name: 's3 (radosgw)',
    async make() {
      suitePrefix = `suite-${randomUUID()}/`;
      const d = await s3('berth-suite', suitePrefix);
      await d.ensureBucket();
      return d;
    },
    sibling: () => s3('berth-suite', suitePrefix),
    features: { refusesSmallParts: true, redirect: true, local: false },
  },
  { skip },
);

describe('S3 bucket', { skip }, () => {
  test('created when absent, and two nodes creating it at once both succeed', async () => {
    const bucket = `berth-race-${randomUUID().slice(0, 8)}`;
    const [a, b] = [await s3(bucket), await s3(bucket)];
    const got = await Promise.all([a.ensureBucket(), b.ensureBucket()]);
    assert.ok(got.includes('created') || got.every((x) => x === 'exists'), JSON.stringify(got));
    assert.equal(await a.ensureBucket(), 'exists');
    await a.putContent('x', Buffer.from('y'));
    assert.deepEqual(await b.getContent('x'), Buffer.from('y'));
  });
});

// ---- Berth on BERTH_STORAGE=s3 -------------------------------------------------------------------

describe('Berth on S3 (radosgw)', { skip: skip || missingTool('skopeo') }, () => {
  const cleanup: string[] = [];
  after(() => {
    for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
  });

  test('skopeo copies a multi-arch image and a 48 MiB layer in and out, digest for digest; the blobs are objects in the bucket Berth created', async () => {
    const bucket = `berth-e2e-${randomUUID().slice(0, 8)}`;
    const work = tempDir('berth-s3-skopeo-');
    cleanup.push(work);
    const env = { REGISTRY_AUTH_FILE: path.join(work, 'auth.json') };
    fs.writeFileSync(env.REGISTRY_AUTH_FILE, '{"auths":{}}');
    const [srv, multi, large] = await Promise.all([
      startServer({ env: s3Env(bucket, { BERTH_S3_PREFIX: 'reg/' }) }),
      multiArchLayout({ dir: path.join(work, 'multi'), seed: `s3-${process.pid}` }),
      largeLayerLayout({ dir: path.join(work, 'large'), seed: `s3-large-${process.pid}`, largeBytes: 48 * MiB }),
    ]);
    cleanup.push(srv.dataDir);
    try {
      assert.equal(fs.existsSync(path.join(srv.dataDir, 'storage', 'blobs')), false, 'no blob on the local disk');
      const docker = (repo: string) => `docker://${srv.host}/${repo}`;
      for (const [layout, ref] of [[multi, 'library/multi:1'], [large, 'library/large:1']] as const) {
        await ok('skopeo', ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', CREDS, layout.ref, docker(ref)], { env });
        const out = tempDir('berth-s3-out-');
        cleanup.push(out);
        await ok('skopeo', ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--src-creds', CREDS, docker(ref), `oci:${out}:back`], { env });
        assert.equal(layoutTop(out, 'back').digest, layout.top.digest, `${ref}: top-level digest after the round trip`);
        assert.deepEqual(await layoutBlobs(out), layout.blobs, `${ref}: the same blobs, each matching its digest`);
      }
      const d = await s3(bucket, 'reg/');
      const stored = await checkBlobStore(d);
      const big = large.images[0].layers.find((l) => l.size >= 48 * MiB)!;
      assert.ok(stored.has(big.digest), 'the large layer is an object at its content address');
      assert.deepEqual([...(await d.list('uploads'))], [], 'no upload leftovers');
    } finally {
      await srv.stop();
    }
  });

  test('kill -9 in the middle of uploads: committed blobs survive, no half blob is visible, and the session resumes from its stored parts', async () => {
    const bucket = `berth-crash-${randomUUID().slice(0, 8)}`;
    let srv = await startServer({ env: s3Env(bucket) });
    const { dataDir, port } = srv;
    cleanup.push(dataDir);
    const d = await s3(bucket);
    try {
      const committed = randomBytes('s3-committed', 9 * MiB + 3);
      const committedDigest = await pushBlob(srv, 'library/crash', committed);
      // A chunked session: 12 MiB in one PATCH (a part and a tail), then a small Content-Range chunk.
      const big = randomBytes('s3-big', 20 * MiB + 11);
      const bigDigest = sha256(big);
      const s = await req(srv, 'POST', '/v2/library/crash/blobs/uploads/');
      assert.equal(s.status, 202);
      let loc = s.headers.get('location')!;
      let off = 0;
      for (const n of [12 * MiB, 3000]) {
        const p = await req(srv, 'PATCH', loc, { body: big.subarray(off, off + n), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${off}-${off + n - 1}` } });
        assert.equal(p.status, 202, p.body.toString());
        off += n;
        assert.equal(p.headers.get('range'), `0-${off - 1}`);
        loc = p.headers.get('location')!;
      }
      // Another PATCH that stalls half way, and a monolithic push that stalls: then kill -9.
      const ac = new AbortController();
      const stalled = (url: string, method: string, first: Buffer) =>
        fetch(url.startsWith('http') ? url : srv.url + url, {
          method,
          headers: { Authorization: AUTH, 'Content-Type': 'application/octet-stream' },
          body: new ReadableStream({ start: (c) => c.enqueue(first) }),
          duplex: 'half',
          signal: ac.signal,
        } as RequestInit).then((r) => r.status, () => null);
      const mono = randomBytes('s3-mono', 10 * MiB);
      const results = [stalled(loc, 'PATCH', big.subarray(off, off + 6 * MiB)), stalled(`/v2/library/crash/blobs/uploads/?digest=${sha256(mono)}`, 'POST', mono.subarray(0, 9 * MiB))];
      await sleep(1500); // the server has received (and part-uploaded) what was sent
      await srv.kill();
      ac.abort();
      assert.deepEqual(await Promise.all(results), [null, null], 'the stalled requests never got an answer');

      srv = await startServer({ dataDir, port, env: s3Env(bucket) });
      const g = await req(srv, 'GET', `/v2/library/crash/blobs/${committedDigest}`);
      assert.equal(g.status, 200);
      assert.ok(g.body.equals(committed), 'the committed blob is byte-identical');
      for (const digest of [bigDigest, sha256(mono)]) assert.equal((await req(srv, 'HEAD', `/v2/library/crash/blobs/${digest}`)).status, 404, 'no half blob is visible');
      assert.deepEqual(await checkBlobStore(d), new Set([committedDigest]), 'only complete blobs in the store');

      // The session resumes where its last answered request ended (the stalled PATCH was never acknowledged).
      const st = await req(srv, 'GET', loc);
      assert.equal(st.status, 204);
      assert.equal(st.headers.get('range'), `0-${off - 1}`);
      const rest = await req(srv, 'PATCH', loc, { body: big.subarray(off), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${off}-${big.length - 1}` } });
      assert.equal(rest.status, 202, rest.body.toString());
      const put = await req(srv, 'PUT', `${rest.headers.get('location')}${rest.headers.get('location')!.includes('?') ? '&' : '?'}digest=${bigDigest}`);
      assert.equal(put.status, 201, put.body.toString());
      const back = await req(srv, 'GET', `/v2/library/crash/blobs/${bigDigest}`);
      assert.equal(back.status, 200);
      assert.ok(back.body.equals(big), 'the resumed blob is byte-identical');
      assert.deepEqual(await checkBlobStore(d), new Set([committedDigest, bigDigest]));
    } finally {
      await srv.stop();
    }
  });

  test('garbage collection on S3: unlinked blobs and objects without a record are deleted from the bucket, linked ones kept', async () => {
    const bucket = `berth-gc-${randomUUID().slice(0, 8)}`;
    const srv = await startServer({ env: s3Env(bucket) });
    cleanup.push(srv.dataDir);
    const d = await s3(bucket);
    try {
      // Kept: the layer and config of a tagged image.
      const layer = randomBytes('s3-gc-kept', 6 * MiB);
      const kept = await pushBlob(srv, 'library/gc', layer);
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [kept] } }));
      const configDigest = await pushBlob(srv, 'library/gc', config);
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: kept, size: layer.length }],
      });
      const m = await req(srv, 'PUT', '/v2/library/gc/manifests/v1', { body: Buffer.from(manifest), headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(m.status, 201, m.body.toString());
      const unlinked = await pushBlob(srv, 'library/gc', randomBytes('s3-gc-unlinked', 200_000));
      assert.equal((await req(srv, 'DELETE', `/v2/library/gc/blobs/${unlinked}`)).status, 202);
      // A blob placed at its content address whose record never came (a crash between the two).
      const stray = randomBytes('s3-gc-stray', 1000);
      await d.putContent(`blobs/sha256/${sha256(stray).slice(7, 9)}/${sha256(stray).slice(7)}/data`, stray);
      assert.equal((await checkBlobStore(d)).size, 4);
      const api = (method: string, p: string, body?: object) =>
        req(srv, method, `/api/v2.0${p}`, { body: body ? Buffer.from(JSON.stringify(body)) : undefined, headers: body ? { 'Content-Type': 'application/json' } : {} });
      const started = await api('POST', '/system/gc/schedule', { schedule: { type: 'Manual' }, parameters: { time_window: 0 } });
      assert.equal(started.status, 201, started.body.toString());
      const id = /\/(\d+)$/.exec(started.headers.get('location')!)![1];
      let run: { job_status: string; blobs_deleted: number } = { job_status: 'Pending', blobs_deleted: 0 };
      for (let i = 0; i < 300 && !['Success', 'Error', 'Stopped'].includes(run.job_status); i++) {
        await sleep(100);
        run = JSON.parse((await api('GET', `/system/gc/${id}`)).body.toString());
      }
      assert.equal(run.job_status, 'Success', (await api('GET', `/system/gc/${id}/log`)).body.toString());
      assert.equal(run.blobs_deleted, 2);
      assert.deepEqual(await checkBlobStore(d), new Set([kept, configDigest]));
      assert.equal((await req(srv, 'HEAD', `/v2/library/gc/blobs/${kept}`)).status, 200);
    } finally {
      await srv.stop();
    }
  });

  test('BERTH_S3_REDIRECT: a blob GET answers 307 to a presigned URL that serves the bytes (Range too); small blobs and HEAD are answered directly', async () => {
    const bucket = `berth-redirect-${randomUUID().slice(0, 8)}`;
    const srv = await startServer({ env: s3Env(bucket, { BERTH_S3_REDIRECT: 'true' }) });
    cleanup.push(srv.dataDir);
    try {
      const blob = randomBytes('s3-redirect', 300_000);
      const digest = await pushBlob(srv, 'library/redir', blob);
      const r = await req(srv, 'GET', `/v2/library/redir/blobs/${digest}`, { redirect: 'manual' });
      assert.equal(r.status, 307);
      const url = new URL(r.headers.get('location')!);
      assert.equal(url.origin, rgw!.endpoint, 'the object store, not Berth');
      assert.match(url.search, /X-Amz-Signature=/);
      assert.match(url.search, /X-Amz-Expires=300/);
      assert.ok(!url.href.includes(rgw!.secretAccessKey), 'the secret is not in the URL');
      const direct = await fetch(url);
      assert.equal(direct.status, 200);
      assert.ok(Buffer.from(await direct.arrayBuffer()).equals(blob));
      // A client following the redirect with its Range header gets the range.
      const ranged = await req(srv, 'GET', `/v2/library/redir/blobs/${digest}`, { headers: { Range: 'bytes=10-19' } });
      assert.equal(ranged.status, 206);
      assert.ok(ranged.body.equals(blob.subarray(10, 20)));
      const head = await req(srv, 'HEAD', `/v2/library/redir/blobs/${digest}`, { redirect: 'manual' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(blob.length));
      const small = Buffer.from('a small config blob');
      const smallDigest = await pushBlob(srv, 'library/redir', small);
      const s = await req(srv, 'GET', `/v2/library/redir/blobs/${smallDigest}`, { redirect: 'manual' });
      assert.equal(s.status, 200);
      assert.ok(s.body.equals(small));
      // Not linked into this repository: no URL is handed out.
      assert.equal((await req(srv, 'GET', `/v2/library/other/blobs/${digest}`, { redirect: 'manual' })).status, 404);
    } finally {
      await srv.stop();
    }
  });
});

// ---- more than one node: two Berth processes on PostgreSQL and this radosgw behind haproxy -------

clusterSuite(() => rgw);
