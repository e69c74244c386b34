// Crash safety with a real process: SIGKILL Berth in the middle of uploads, restart it on the same
// data directory and port, and check that committed content survived byte for byte, that no half
// blob became visible or exists in the store, and that the interrupted session can be resumed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_PASSWORD, basic } from '../helpers/app.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';

const AUTH = basic('admin', ADMIN_PASSWORD);
const MiB = 1024 * 1024;

function sha256(b: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

/** Deterministic incompressible bytes. */
function randomBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16, 0)).update(Buffer.alloc(size, 0));
}

async function req(srv: ServerProcess, method: string, url: string, opts: { body?: Buffer; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const r = await fetch(url.startsWith('http') ? url : srv.url + url, { method, headers: { Authorization: AUTH, ...opts.headers }, body: opts.body });
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

async function pushBlob(srv: ServerProcess, repo: string, data: Buffer): Promise<string> {
  const d = sha256(data);
  const r = await req(srv, 'POST', `/v2/${repo}/blobs/uploads/?digest=${d}`, { body: data, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 201, r.body.toString());
  return d;
}

/** A chunked upload: POST, one PATCH per chunk, PUT ?digest. */
async function pushChunked(srv: ServerProcess, repo: string, data: Buffer, chunk: number): Promise<string> {
  const d = sha256(data);
  const s = await req(srv, 'POST', `/v2/${repo}/blobs/uploads/`);
  assert.equal(s.status, 202);
  let loc = s.headers.get('location')!;
  for (let off = 0; off < data.length; off += chunk) {
    const part = data.subarray(off, off + chunk);
    const p = await req(srv, 'PATCH', loc, { body: part, headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${off}-${off + part.length - 1}` } });
    assert.equal(p.status, 202, p.body.toString());
    loc = p.headers.get('location')!;
  }
  const done = await req(srv, 'PUT', `${loc}${loc.includes('?') ? '&' : '?'}digest=${d}`);
  assert.equal(done.status, 201, done.body.toString());
  return d;
}

/**
 * Starts a request whose body sends `first` and then stalls until the returned `abort` is called.
 * Resolves once the request is on its way; the response (or network error) is in `result`.
 */
function stalledRequest(srv: ServerProcess, method: string, url: string, first: Buffer, headers: Record<string, string> = {}) {
  const ac = new AbortController();
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      ctl = c;
      for (let off = 0; off < first.length; off += 256 * 1024) c.enqueue(first.subarray(off, off + 256 * 1024));
    },
  });
  const init = { method, headers: { Authorization: AUTH, 'Content-Type': 'application/octet-stream', ...headers }, body, duplex: 'half', signal: ac.signal };
  const result = fetch(srv.url + url, init as RequestInit).then(
    (r) => ({ status: r.status as number | null, error: null as unknown }),
    (error: unknown) => ({ status: null, error }),
  );
  return {
    result,
    abort() {
      try {
        ctl.close();
      } catch {
        // already closed
      }
      ac.abort();
    },
  };
}

/** Waits (bounded) until `cond` holds; the bound is a safety net, not an assertion about speed. */
async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function fileSize(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return -1;
  }
}

/** Every file under storage/blobs must be a complete blob: <alg>/<2 hex>/<hex>/data whose content hashes to <hex>. */
function checkBlobStore(dataDir: string): Set<string> {
  const root = path.join(dataDir, 'storage', 'blobs');
  const found = new Set<string>();
  if (!fs.existsSync(root)) return found;
  for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (e.isDirectory()) continue;
    const full = path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name); // parentPath: Node ≥ 20.12
    const rel = path.relative(root, full).split(path.sep);
    assert.equal(rel.length, 4, `unexpected file in the blob store: ${rel.join('/')}`);
    const [alg, prefix, hex, name] = rel;
    assert.equal(alg, 'sha256', rel.join('/'));
    assert.equal(name, 'data', `stray file in the blob store: ${rel.join('/')}`);
    assert.equal(prefix, hex.slice(0, 2), rel.join('/'));
    assert.equal(sha256(fs.readFileSync(full)), `sha256:${hex}`, `blob file ${rel.join('/')} does not match its digest (partial?)`);
    found.add(`sha256:${hex}`);
  }
  return found;
}

test('SIGKILL during uploads: committed content survives, no half blob, the session resumes', async () => {
  let srv = await startServer({ env: { BERTH_LOG_LEVEL: 'warn' } });
  const { dataDir, port } = srv;
  try {
    // ---- committed content --------------------------------------------------------------------
    const layerA = randomBytes('crash-layer-a', 3 * MiB + 17);
    const layerB = randomBytes('crash-layer-b', 2 * MiB + 5);
    const a = await pushBlob(srv, 'library/crash-app', layerA);
    const b = await pushChunked(srv, 'library/crash-app', layerB, MiB);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [a, b] } }));
    const c = await pushBlob(srv, 'library/crash-app', config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: c, size: config.length },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: a, size: layerA.length },
          { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: b, size: layerB.length },
        ],
      }),
    );
    const m = await req(srv, 'PUT', '/v2/library/crash-app/manifests/v1', { body: manifest, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(m.status, 201, m.body.toString());
    const md = sha256(manifest);
    assert.equal(m.headers.get('docker-content-digest'), md);

    // ---- interrupted uploads ------------------------------------------------------------------
    const big = randomBytes('crash-big', 16 * MiB);
    const bigDigest = sha256(big);
    // (1) chunked: one chunk committed, the second one stalls half way.
    const s = await req(srv, 'POST', '/v2/library/crash-app/blobs/uploads/');
    assert.equal(s.status, 202);
    const sessionUrl = s.headers.get('location')!;
    const uuid = s.headers.get('docker-upload-uuid')!;
    assert.ok(uuid, 'Docker-Upload-UUID');
    const first = await req(srv, 'PATCH', sessionUrl, { body: big.subarray(0, 4 * MiB), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${4 * MiB - 1}` } });
    assert.equal(first.status, 202, first.body.toString());
    assert.equal(first.headers.get('range'), `0-${4 * MiB - 1}`);
    const sessionData = path.join(dataDir, 'storage', 'uploads', uuid, 'data');
    const patch = stalledRequest(srv, 'PATCH', new URL(first.headers.get('location')!, srv.url).pathname, big.subarray(4 * MiB, 8 * MiB));
    // (2) monolithic POST ?digest= of another blob, also stalled half way.
    const mono = randomBytes('crash-mono', 8 * MiB);
    const monoDigest = sha256(mono);
    const uploadsDir = path.join(dataDir, 'storage', 'uploads');
    const sessionsBefore = new Set(fs.readdirSync(uploadsDir));
    const post = stalledRequest(srv, 'POST', `/v2/library/crash-app/blobs/uploads/?digest=${monoDigest}`, mono.subarray(0, 3 * MiB));

    // Wait until the server has written what was sent so far, then kill it without warning.
    await until('the stalled PATCH to reach the disk', () => fileSize(sessionData) === 8 * MiB);
    let monoSession = '';
    await until('the stalled POST to reach the disk', () => {
      const fresh = fs.readdirSync(uploadsDir).filter((u) => !sessionsBefore.has(u));
      if (fresh.length === 1) monoSession = fresh[0];
      return !!monoSession && fileSize(path.join(uploadsDir, monoSession, 'data')) === 3 * MiB;
    });
    await srv.kill();
    patch.abort();
    post.abort();
    assert.equal((await patch.result).status, null, 'the stalled PATCH never got an answer');
    assert.equal((await post.result).status, null, 'the stalled POST never got an answer');

    // ---- restart on the same data directory and port -------------------------------------------
    srv = await startServer({ dataDir, port, env: { BERTH_LOG_LEVEL: 'warn' } });

    // Committed blobs and the manifest are all there, byte-identical.
    for (const [d, bytes] of [[a, layerA], [b, layerB], [c, config]] as const) {
      const g = await req(srv, 'GET', `/v2/library/crash-app/blobs/${d}`);
      assert.equal(g.status, 200, `blob ${d}`);
      assert.ok(g.body.equals(bytes), `blob ${d} is byte-identical`);
    }
    for (const ref of ['v1', md]) {
      const g = await req(srv, 'GET', `/v2/library/crash-app/manifests/${ref}`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(g.status, 200, `manifest ${ref}`);
      assert.ok(g.body.equals(manifest), `manifest ${ref} is byte-identical`);
      assert.equal(g.headers.get('docker-content-digest'), md);
    }
    assert.deepEqual(JSON.parse((await req(srv, 'GET', '/v2/library/crash-app/tags/list')).body.toString()), { name: 'library/crash-app', tags: ['v1'] });

    // The half-uploaded blobs are not visible and not in the store, not even partially.
    for (const d of [bigDigest, monoDigest]) {
      assert.equal((await req(srv, 'HEAD', `/v2/library/crash-app/blobs/${d}`)).status, 404, `half blob ${d} must not be visible`);
      assert.equal(fs.existsSync(path.join(dataDir, 'storage', 'blobs', 'sha256', d.slice(7, 9), d.slice(7))), false, `no directory for half blob ${d}`);
    }
    // Manifest bytes live in the database (committed with the manifest), not as blob files.
    assert.deepEqual([...checkBlobStore(dataDir)].sort(), [a, b, c].sort(), 'the store holds exactly the committed blobs, each complete');
    const asBlob = await req(srv, 'GET', `/v2/library/crash-app/blobs/${md}`);
    assert.ok(asBlob.status === 200 && asBlob.body.equals(manifest), 'the manifest is readable as a blob too');

    // The interrupted chunked session resumes where the disk says it ended.
    const onDisk = fileSize(sessionData);
    assert.ok(onDisk >= 4 * MiB && onDisk <= 8 * MiB, `session data survived (${onDisk} bytes)`);
    const st = await req(srv, 'GET', sessionUrl);
    assert.equal(st.status, 204, st.body.toString());
    assert.equal(st.headers.get('range'), `0-${onDisk - 1}`);
    assert.equal(st.headers.get('docker-upload-uuid'), uuid);
    const resumeUrl = st.headers.get('location')!;

    // A fresh push of the same blob, in a new session, succeeds meanwhile.
    assert.equal(await pushBlob(srv, 'library/crash-app', big), bigDigest);
    const fresh = await req(srv, 'GET', `/v2/library/crash-app/blobs/${bigDigest}`);
    assert.equal(fresh.status, 200);
    assert.equal(sha256(fresh.body), bigDigest);

    // Completing the resumed session with the right digest succeeds too (the blob already exists).
    const rest = await req(srv, 'PATCH', resumeUrl, { body: big.subarray(onDisk), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${onDisk}-${big.length - 1}` } });
    assert.equal(rest.status, 202, rest.body.toString());
    assert.equal(rest.headers.get('range'), `0-${big.length - 1}`);
    const loc = rest.headers.get('location')!;
    const done = await req(srv, 'PUT', `${loc}${loc.includes('?') ? '&' : '?'}digest=${bigDigest}`);
    assert.equal(done.status, 201, done.body.toString());
    assert.equal(done.headers.get('docker-content-digest'), bigDigest);
    // The session is gone at once; its directory is removed right after the answer.
    assert.equal((await req(srv, 'GET', sessionUrl)).status, 404, 'the completed session no longer answers');
    await until('the session directory is removed', () => !fs.existsSync(path.join(uploadsDir, uuid)));

    // The interrupted monolithic blob can be pushed afresh; its orphaned session is not a blob.
    assert.equal(await pushBlob(srv, 'library/crash-other', mono), monoDigest);
    const g = await req(srv, 'GET', `/v2/library/crash-other/blobs/${monoDigest}`);
    assert.equal(sha256(g.body), monoDigest);

    assert.deepEqual([...checkBlobStore(dataDir)].sort(), [a, b, c, bigDigest, monoDigest].sort());
  } finally {
    await srv.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('resuming after a restart refuses a wrong digest; nothing enters the store', async () => {
  let srv = await startServer({ env: { BERTH_LOG_LEVEL: 'warn' } });
  const { dataDir, port } = srv;
  try {
    const data = randomBytes('crash-wrong-digest', 2 * MiB);
    const s = await req(srv, 'POST', '/v2/library/crash-wrong/blobs/uploads/');
    assert.equal(s.status, 202);
    const p = await req(srv, 'PATCH', s.headers.get('location')!, { body: data.subarray(0, MiB), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${MiB - 1}` } });
    assert.equal(p.status, 202);
    const url = p.headers.get('location')!;
    await srv.kill();
    srv = await startServer({ dataDir, port, env: { BERTH_LOG_LEVEL: 'warn' } });
    const st = await req(srv, 'GET', url);
    assert.equal(st.status, 204);
    assert.equal(st.headers.get('range'), `0-${MiB - 1}`);
    const wrong = sha256(Buffer.from('something else'));
    const bad = await req(srv, 'PUT', `${url}?digest=${wrong}`, { body: data.subarray(MiB), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${MiB}-${data.length - 1}` } });
    assert.equal(bad.status, 400, bad.body.toString());
    assert.equal((JSON.parse(bad.body.toString()) as { errors: { code: string }[] }).errors[0].code, 'DIGEST_INVALID');
    assert.equal((await req(srv, 'HEAD', `/v2/library/crash-wrong/blobs/${wrong}`)).status, 404);
    assert.equal((await req(srv, 'HEAD', `/v2/library/crash-wrong/blobs/${sha256(data)}`)).status, 404);
    assert.deepEqual([...checkBlobStore(dataDir)], [], 'nothing entered the store');
  } finally {
    await srv.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
