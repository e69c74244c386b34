// The load generator's HTTP side: keep-alive agents, a small request helper, the registry calls
// the workload needs (upload flows, manifests, paged listings), and Berth's token login.
import http from 'node:http';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { RawConnection } from './raw-client.mjs';

export function makeTarget(server, { basic } = {}) {
  return {
    ...server,
    agent: new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 }),
    /** Authorization for timed requests (Bearer for Berth, none for Distribution). */
    authz: undefined,
    /** Authorization for setup requests (Basic admin for Berth). */
    basic,
  };
}

/**
 * One request. sink: 'buffer' (default) collects the body, 'hash' returns its sha256 and size,
 * 'discard' drops it. body: Buffer, string, Readable or undefined.
 */
export function request(t, method, path, { headers = {}, body, sink = 'buffer', auth = t.authz } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (auth) h.authorization = auth;
    if (body === undefined && (method === 'PUT' || method === 'POST' || method === 'PATCH') && h['content-length'] === undefined) h['content-length'] = '0';
    else if ((Buffer.isBuffer(body) || typeof body === 'string') && h['content-length'] === undefined) h['content-length'] = String(Buffer.byteLength(body));
    const r = http.request({ host: '127.0.0.1', port: t.port, method, path, headers: h, agent: t.agent }, (res) => {
      const out = { status: res.statusCode, headers: res.headers };
      if (sink === 'hash') {
        const hash = createHash('sha256');
        let size = 0;
        res.on('data', (c) => {
          hash.update(c);
          size += c.length;
        });
        res.on('end', () => resolve({ ...out, digest: `sha256:${hash.digest('hex')}`, size }));
      } else if (sink === 'discard') {
        res.on('end', () => resolve(out));
        res.resume();
      } else {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ ...out, body: Buffer.concat(chunks) }));
      }
      res.on('error', reject);
    });
    r.on('error', reject);
    if (body instanceof Readable) body.pipe(r);
    else r.end(body);
  });
}

function expect(res, status, what) {
  if (res.status !== status) {
    const body = res.body ? res.body.toString('utf8').slice(0, 300) : '';
    throw new Error(`${what}: expected ${status}, got ${res.status} ${body}`);
  }
  return res;
}

/** A Location header as a request path (Berth answers with paths, Distribution with full URLs). */
function locPath(res) {
  const u = new URL(res.headers.location, 'http://x');
  return u.pathname + u.search;
}

function withDigest(loc, digest) {
  return `${loc}${loc.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

/** POST, then PUT ?digest= with the whole body ("monolithic" in the OCI spec's two-request form). */
export async function pushMonolithic(t, repo, data, digest, opts = {}) {
  const start = expect(await request(t, 'POST', `/v2/${repo}/blobs/uploads/`, opts), 202, 'start upload');
  const headers = { 'content-type': 'application/octet-stream' };
  if (!Buffer.isBuffer(data)) headers['content-length'] = String(opts.size);
  expect(await request(t, 'PUT', withDigest(locPath(start), digest), { ...opts, headers, body: data }), 201, 'put blob');
}

/**
 * As docker pushes a layer: POST, one PATCH streaming the whole blob with chunked transfer
 * encoding (32 KiB writes, as Go's io.Copy), then PUT ?digest= without a body.
 */
export async function pushStreamed(t, repo, data, digest) {
  const start = expect(await request(t, 'POST', `/v2/${repo}/blobs/uploads/`), 202, 'start upload');
  function* pieces() {
    for (let off = 0; off < data.length; off += 32 * 1024) yield data.subarray(off, off + 32 * 1024);
  }
  const body = Readable.from(pieces(), { objectMode: false });
  const patched = expect(await request(t, 'PATCH', locPath(start), { headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' }, body }), 202, 'patch stream');
  expect(await request(t, 'PUT', withDigest(locPath(patched), digest)), 201, 'complete upload');
}

/** POST, PATCH per chunk with Content-Range, then PUT ?digest= without a body. */
export async function pushChunked(t, repo, data, digest, chunkSize) {
  let loc = locPath(expect(await request(t, 'POST', `/v2/${repo}/blobs/uploads/`), 202, 'start upload'));
  for (let off = 0; off < data.length; off += chunkSize) {
    const chunk = data.subarray(off, Math.min(off + chunkSize, data.length));
    const res = expect(
      await request(t, 'PATCH', loc, { headers: { 'content-type': 'application/octet-stream', 'content-range': `${off}-${off + chunk.length - 1}` }, body: chunk }),
      202,
      'patch chunk',
    );
    loc = locPath(res);
  }
  expect(await request(t, 'PUT', withDigest(loc, digest)), 201, 'complete upload');
}

export async function pullVerified(t, repo, digest, size) {
  const res = await request(t, 'GET', `/v2/${repo}/blobs/${digest}`, { sink: 'hash' });
  if (res.status !== 200 || res.digest !== digest || res.size !== size) throw new Error(`pull ${repo}@${digest}: status ${res.status}, got ${res.digest} (${res.size} bytes)`);
  return size;
}

export async function mount(t, repo, from, digest, opts = {}) {
  const res = await request(t, 'POST', `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, opts);
  if (res.status === 201) return;
  throw new Error(`mount ${digest} into ${repo}: ${res.status}`);
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const ACCEPT = [OCI_MANIFEST, 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ');

export async function putManifest(t, repo, ref, bytes, opts = {}) {
  expect(await request(t, 'PUT', `/v2/${repo}/manifests/${ref}`, { ...opts, headers: { 'content-type': OCI_MANIFEST }, body: bytes }), 201, `put manifest ${repo}:${ref}`);
}

/**
 * Follows Link headers from the first page to the last on one raw keep-alive connection (see
 * raw-client.mjs: node:http's client would add about 100 µs to every page); returns the number of
 * items and pages.
 */
export async function walk(t, firstPath, key) {
  t.raw ??= new RawConnection(t.port);
  let path = firstPath;
  let items = 0;
  let pages = 0;
  while (path) {
    const res = expect(await t.raw.get(path, { authorization: t.authz }), 200, `list ${path}`);
    items += JSON.parse(res.body.toString('utf8'))[key]?.length ?? 0;
    pages++;
    const link = res.headers.link;
    const m = link && /<([^>]+)>;\s*rel="next"/.exec(link);
    path = m ? (m[1].startsWith('/') ? m[1] : new URL(m[1]).pathname + new URL(m[1]).search) : null;
  }
  return { items, pages };
}

/**
 * A Bearer token for the scopes, the way docker gets one: read the challenge from /v2/, then ask
 * the realm with Basic credentials.
 */
export async function bearer(t, scopes) {
  const ch = await request(t, 'GET', '/v2/', { auth: null });
  const www = ch.headers['www-authenticate'];
  if (ch.status !== 401 || !www || !/^bearer /i.test(www)) throw new Error(`expected a Bearer challenge from ${t.name}, got ${ch.status} ${www}`);
  const params = Object.fromEntries([...www.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  const realm = new URL(params.realm);
  const q = new URLSearchParams({ service: params.service });
  for (const s of scopes) q.append('scope', s);
  const res = expect(await request(t, 'GET', `${realm.pathname}?${q}`, { auth: t.basic }), 200, 'token');
  return `Bearer ${JSON.parse(res.body.toString('utf8')).token}`;
}

/** Runs fn(i) for i in [0, n) with at most `concurrency` in flight; returns per-call latencies (ms). */
export async function pool(n, concurrency, fn) {
  const lat = new Float64Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const t0 = performance.now();
      await fn(i);
      lat[i] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return lat;
}

export function percentile(lat, p) {
  const s = Float64Array.from(lat).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
