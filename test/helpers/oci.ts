// Small helpers for /v2 integration tests: digests, pushing blobs and manifests, reading binary
// bodies and checking OCI error bodies.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type supertest from 'supertest';
import type { AppOverrides } from '../../src/app.ts';
import { adminOnlyPolicy } from '../../src/access/principal.ts';

type Agent = ReturnType<typeof supertest>;
type Res = { status: number; headers: Record<string, string>; body: unknown; text?: string };

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const EMPTY_JSON = 'application/vnd.oci.empty.v1+json';

/** The error codes the OCI distribution spec allows (plus the legacy ones it mentions). */
export const OCI_CODES = [
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS',
  'TAG_INVALID', 'RANGE_INVALID', 'PAGINATION_NUMBER_INVALID',
];

/** makeApp's defaults (Basic auth, admin may do anything, no projects needed), plus `extra`. */
export function registryOverrides(extra: AppOverrides = {}): AppOverrides {
  return { auth: 'basic', policy: adminOnlyPolicy, ...extra };
}

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export function sha512(data: Buffer | string): string {
  return 'sha512:' + createHash('sha512').update(data).digest('hex');
}

/** Deterministic pseudo-random bytes (no Math.random: tests stay reproducible). */
export function bytes(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** supertest parser that keeps the body as a Buffer whatever the content type. */
// superagent types the raw response as its own Response; at run time it is the IncomingMessage.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function binary(res: any, cb: (err: Error | null, body: Buffer) => void): void {
  const stream = res as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d));
  stream.on('end', () => cb(null, Buffer.concat(chunks)));
}

/** Asserts an OCI error response: the status, a JSON body {errors:[{code,message,...}]} with the code. */
export function assertOciError(res: Res, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.body as { errors?: { code: string; message: string; detail?: unknown }[] };
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0, `no errors array in ${JSON.stringify(body)}`);
  const e = body.errors[0];
  assert.equal(e.code, code, JSON.stringify(body));
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.ok(OCI_CODES.includes(e.code), `${e.code} is not an OCI error code`);
  for (const k of Object.keys(e)) assert.ok(['code', 'message', 'detail'].includes(k), `unexpected key ${k}`);
}

export class Oci {
  constructor(readonly r: Agent, readonly auth: string) {}

  get(path: string) {
    return this.r.get(path).set('Authorization', this.auth);
  }
  head(path: string) {
    return this.r.head(path).set('Authorization', this.auth);
  }
  post(path: string) {
    return this.r.post(path).set('Authorization', this.auth);
  }
  put(path: string) {
    return this.r.put(path).set('Authorization', this.auth);
  }
  patch(path: string) {
    return this.r.patch(path).set('Authorization', this.auth);
  }
  delete(path: string) {
    return this.r.delete(path).set('Authorization', this.auth);
  }

  /** GET with the body as a Buffer. */
  getBytes(path: string) {
    return this.get(path).buffer(true).parse(binary);
  }

  /** Monolithic single-POST push; returns the digest. */
  async pushBlob(repo: string, data: Buffer | string): Promise<string> {
    const buf = Buffer.from(data);
    const digest = sha256(buf);
    const res = await this.post(`/v2/${repo}/blobs/uploads/?digest=${digest}`).set('Content-Type', 'application/octet-stream').send(buf);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return digest;
  }

  async startUpload(repo: string): Promise<string> {
    const res = await this.post(`/v2/${repo}/blobs/uploads/`);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.ok(res.headers.location);
    return res.headers.location;
  }

  async putManifest(repo: string, reference: string, manifest: object | string | Buffer, contentType?: string) {
    const body = Buffer.isBuffer(manifest) ? manifest : Buffer.from(typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
    const type = contentType ?? (typeof manifest === 'object' && !Buffer.isBuffer(manifest) ? ((manifest as { mediaType?: string }).mediaType ?? OCI_MANIFEST) : OCI_MANIFEST);
    // As a string: superagent JSON-serialises a Buffer when the Content-Type ends in +json.
    return this.put(`/v2/${repo}/manifests/${reference}`).set('Content-Type', type).send(body.toString('utf8'));
  }

  /** Pushes config + one layer and an OCI image manifest under `tag`; returns the pieces. */
  async pushImage(repo: string, tag: string, seed = 1, extra: Record<string, unknown> = {}) {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
    const layer = bytes(1000 + seed, seed);
    const configDigest = await this.pushBlob(repo, config);
    const layerDigest = await this.pushBlob(repo, layer);
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
      layers: [{ mediaType: OCI_LAYER, digest: layerDigest, size: layer.length }],
      ...extra,
    };
    const raw = Buffer.from(JSON.stringify(manifest));
    const res = await this.putManifest(repo, tag, raw, OCI_MANIFEST);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { config, configDigest, layer, layerDigest, manifest, raw, digest: sha256(raw) };
  }
}
