// /v2 handlers: parse the request, call one service method, shape the response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../auth/authenticator.ts';
import { parseDigest, type ParsedDigest } from '../lib/digest.ts';
import { AppError } from '../lib/errors.ts';
import { MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES, MediaTypes, baseMediaType } from '../lib/manifest.ts';
import { isValidName } from '../lib/reference.ts';
import { hasBody, readBody } from '../http/body.ts';
import { sendJson, sendJsonText, sendStream } from '../http/raw.ts';
import type { ChunkRange } from '../storage/uploads.ts';
import type { ProxyProject } from '../services/proxy-cache.ts';
import { CATALOG_SCOPE, mayDo, type RegistryRouterDeps } from './router.ts';

export interface Ctx {
  deps: RegistryRouterDeps;
  identity: Identity;
  name: string;
  arg: string;
  /** The request method (GET when node:http has none, which it always has). */
  method: string;
  /** The parsed query string, undefined when the URL has none. */
  query: URLSearchParams | undefined;
  req: IncomingMessage;
  res: ServerResponse;
  /** Set when the repository is in a proxy-cache project: pulls go through the proxy cache. */
  proxied?: ProxyProject | null;
}

function q(ctx: Ctx, key: string): string | undefined {
  return ctx.query?.get(key) ?? undefined;
}

/** A bodiless answer. */
function reply(res: ServerResponse, status: number): void {
  res.statusCode = status;
  res.end();
}

function digestParam(s: string | undefined): ParsedDigest {
  const d = s ? parseDigest(s) : null;
  if (!d) throw new AppError('DIGEST_INVALID', { digest: s ?? null }, { message: 'invalid or unsupported digest' });
  return d;
}

/** Who opens an upload session, for the cap per principal. */
function ownerOf(identity: Identity): string {
  const p = identity.principal;
  return p ? `${p.kind}:${p.id}` : 'anonymous';
}

function uploadLocation(ctx: Ctx, uuid: string): string {
  return `${ctx.deps.baseUrl}/v2/${ctx.name}/blobs/uploads/${uuid}`;
}

function blobLocation(ctx: Ctx, digest: string): string {
  return `${ctx.deps.baseUrl}/v2/${ctx.name}/blobs/${digest}`;
}

function rangeHeader(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}

/** Content-Range of an upload chunk: "<start>-<end>", optionally with a "bytes" unit. */
function chunkRange(req: IncomingMessage): ChunkRange | undefined {
  const h = req.headers['content-range'];
  if (h === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(h.trim());
  if (!m) throw new AppError('RANGE_INVALID', { contentRange: h });
  const range = { start: Number(m[1]), end: Number(m[2]) };
  if (range.end < range.start) throw new AppError('RANGE_INVALID', { contentRange: h });
  const len = req.headers['content-length'];
  if (len !== undefined && Number(len) !== range.end - range.start + 1) throw new AppError('RANGE_INVALID', { contentRange: h, contentLength: len });
  return range;
}

/**
 * A single-range Range header (RFC 9110 14.2) resolved against the blob size: the inclusive byte
 * positions, undefined when absent or not understood (the whole blob is sent), or 'unsatisfiable'.
 */
function byteRange(header: string | undefined, size: number): ChunkRange | undefined | 'unsatisfiable' {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(size - suffix, 0), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return undefined; // syntactically invalid: ignore it
  if (start >= size) return 'unsatisfiable';
  return { start, end: m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1) };
}

function pageSize(ctx: Ctx, fallback: number | undefined, max: number): number | undefined {
  const raw = q(ctx, 'n');
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new AppError('PAGINATION_NUMBER_INVALID', { n: raw });
  return Math.min(Number(raw), max);
}

function linkHeader(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}

/** A listing page, serialized once (tag pages are kept and reused by the registry service). */
interface ListPage {
  body: Buffer;
  link?: string;
  size: number;
}

async function listPage(ctx: Ctx, key: 'tags' | 'repositories', fetch: (limit: number, last?: string) => Promise<string[]>, defaultN: number | undefined, path: string, extra: object): Promise<ListPage> {
  const n = pageSize(ctx, defaultN, 100_000);
  const last = q(ctx, 'last') || undefined;
  let items: string[];
  let link: string | undefined;
  if (n === undefined) {
    items = await fetch(1_000_000, last);
  } else if (n === 0) {
    items = [];
  } else {
    items = await fetch(n + 1, last);
    if (items.length > n) {
      items = items.slice(0, n);
      link = linkHeader(path, n, items[items.length - 1]);
    }
  }
  const body = Buffer.from(JSON.stringify({ ...extra, [key]: items }));
  return { body, link, size: body.length + (link?.length ?? 0) + 100 };
}

function sendPage(res: ServerResponse, page: ListPage): void {
  if (page.link) res.setHeader('Link', page.link);
  sendJsonText(res, 200, page.body);
}

export const handlers = {
  async base(ctx: Ctx) {
    sendJson(ctx.res, 200, {});
  },

  async catalog(ctx: Ctx) {
    const { registry, policy } = ctx.deps;
    const { identity } = ctx;
    if (identity.grants && !identity.catalog) {
      // As Distribution and Harbor answer: the token must carry the catalog scope (system admins get it).
      throw new AppError('UNAUTHORIZED', [{ Type: 'registry', Name: 'catalog', Action: '*' }], {
        message: 'token does not grant the catalog',
        headers: { 'WWW-Authenticate': ctx.deps.authn.challenge(ctx.req, CATALOG_SCOPE, 'insufficient_scope') },
      });
    }
    // Still filtered by what the principal may see: the policy says "everything" for system admins.
    const projects = await policy.visibleProjectIds(identity.principal);
    sendPage(ctx.res, await listPage(ctx, 'repositories', (limit, last) => registry.listRepositories(limit, last, projects ?? undefined), 100, `/v2/_catalog`, {}));
  },

  async tags(ctx: Ctx) {
    const { registry } = ctx.deps;
    const key = `${q(ctx, 'n') ?? ''}\u0000${q(ctx, 'last') ?? ''}`;
    const build = () => listPage(ctx, 'tags', (limit, last) => registry.listTags(ctx.name, limit, last), undefined, `/v2/${ctx.name}/tags/list`, { name: ctx.name });
    sendPage(ctx.res, await registry.tagPage(ctx.name, key, build));
  },

  async manifest(ctx: Ctx) {
    const { req, res, name, arg: reference } = ctx;
    const { registry } = ctx.deps;
    if (reference.includes(':') && !parseDigest(reference)) {
      throw new AppError(ctx.method === 'PUT' ? 'DIGEST_INVALID' : 'MANIFEST_UNKNOWN', { reference });
    }
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      const m = ctx.proxied ? await ctx.deps.proxy!.cache.manifest(ctx.proxied, name, reference) : await registry.getManifest(name, reference);
      checkAccept(req, m.mediaType);
      res.setHeader('Content-Type', m.mediaType);
      res.setHeader('Docker-Content-Digest', m.digest);
      res.setHeader('ETag', `"${m.digest}"`);
      res.setHeader('Content-Length', m.bytes.length);
      res.statusCode = 200;
      if (ctx.method === 'HEAD') res.end();
      else res.end(m.bytes);
      return;
    }
    if (ctx.method === 'PUT') {
      const body = await readBody(req, MAX_MANIFEST_BYTES);
      const { digest, subject } = await registry.putManifest(name, reference, req.headers['content-type'], body);
      res.setHeader('Location', `${ctx.deps.baseUrl}/v2/${name}/manifests/${digest}`);
      res.setHeader('Docker-Content-Digest', digest);
      if (subject) res.setHeader('OCI-Subject', subject);
      reply(res, 201);
      return;
    }
    await registry.deleteManifest(name, reference);
    reply(res, 202);
  },

  async blob(ctx: Ctx) {
    const { req, res, name } = ctx;
    const { registry } = ctx.deps;
    const d = parseDigest(ctx.arg);
    if (!d) throw new AppError(ctx.method === 'DELETE' ? 'DIGEST_INVALID' : 'BLOB_UNKNOWN', { digest: ctx.arg });
    if (ctx.method === 'DELETE') {
      await registry.deleteBlob(name, d);
      reply(res, 202);
      return;
    }
    if (ctx.proxied) {
      // A blob not cached yet: a plain GET streams it while it is stored; HEAD and ranges wait for it.
      const fresh = ctx.method === 'GET' && !req.headers.range ? await ctx.deps.proxy!.cache.openBlob(ctx.proxied, name, d.digest) : (await ctx.deps.proxy!.cache.blob(ctx.proxied, name, d.digest), null);
      if (fresh) {
        res.setHeader('Docker-Content-Digest', d.digest);
        res.setHeader('Content-Type', 'application/octet-stream');
        res.setHeader('Content-Length', fresh.size);
        res.statusCode = 200;
        try {
          await sendStream(fresh.stream, res);
        } catch {
          // the client went away, or the upstream's bytes did not match (the answer is cut short)
        }
        return;
      }
    }
    const size = await registry.statBlob(name, d);
    res.setHeader('Docker-Content-Digest', d.digest);
    res.setHeader('Accept-Ranges', 'bytes');
    // Parse the range before setting the body's headers: a 416 carries a JSON error body.
    const range = byteRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      throw new AppError('RANGE_INVALID', { range: req.headers.range, size }, { headers: { 'Content-Range': `bytes */${size}` } });
    }
    if (ctx.method === 'GET') {
      // BERTH_S3_REDIRECT: the bytes come straight from the object store (Range goes along).
      const url = await registry.blobRedirect(d, size);
      if (url) {
        res.setHeader('Location', url);
        reply(res, 307);
        return;
      }
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : size - 1;
    // Read or open before the body's headers are set, so a vanished file still gets a JSON error.
    const small = ctx.method === 'HEAD' || size === 0 ? null : await registry.smallBlob(d, size);
    const stream = ctx.method === 'HEAD' || size === 0 || small ? null : await registry.openBlob(d, start, end);
    res.setHeader('ETag', `"${d.digest}"`);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Cache-Control', 'max-age=31536000');
    if (range) {
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    } else {
      res.statusCode = 200;
    }
    res.setHeader('Content-Length', size === 0 ? 0 : end - start + 1);
    if (small) {
      res.end(small.subarray(start, end + 1));
      return;
    }
    if (!stream) {
      res.end();
      return;
    }
    try {
      await sendStream(stream, res);
    } catch {
      // the client went away; nothing to answer
    }
  },

  async uploads(ctx: Ctx) {
    const { req, res, name } = ctx;
    const { registry } = ctx.deps;
    const mount = q(ctx, 'mount');
    const from = q(ctx, 'from');
    if (mount !== undefined) {
      const d = parseDigest(mount);
      if (d && (from === undefined || isValidName(from))) {
        const size = await registry.mountBlob(name, d, from, (repo) => mayDo(ctx.deps, ctx.identity, repo, 'pull'));
        if (size !== null) {
          res.setHeader('Location', blobLocation(ctx, d.digest));
          res.setHeader('Docker-Content-Digest', d.digest);
          reply(res, 201);
          return;
        }
      }
      // Mount not possible: fall back to a normal upload session, as the spec asks.
    }
    const digest = q(ctx, 'digest');
    if (digest !== undefined) {
      const d = digestParam(digest);
      const session = await registry.startUpload(name, true, ownerOf(ctx.identity));
      try {
        await registry.completeUpload(name, session.uuid, d, req);
      } catch (e) {
        // Nobody else knows this session: don't leave it behind for the purge.
        await registry.cancelUpload(name, session.uuid).catch(() => undefined);
        throw e;
      }
      res.setHeader('Location', blobLocation(ctx, d.digest));
      res.setHeader('Docker-Content-Digest', d.digest);
      reply(res, 201);
      return;
    }
    if (hasBody(req)) req.resume();
    const session = await registry.startUpload(name, false, ownerOf(ctx.identity));
    res.setHeader('Location', uploadLocation(ctx, session.uuid));
    res.setHeader('Range', '0-0');
    res.setHeader('Docker-Upload-UUID', session.uuid);
    reply(res, 202);
  },

  async upload(ctx: Ctx) {
    const { req, res, name, arg: uuid } = ctx;
    const { registry } = ctx.deps;
    const sessionHeaders = (size: number) => {
      res.setHeader('Location', uploadLocation(ctx, uuid));
      res.setHeader('Range', rangeHeader(size));
      res.setHeader('Docker-Upload-UUID', uuid);
    };
    switch (ctx.method) {
      case 'GET': {
        const s = await registry.uploadStatus(name, uuid);
        sessionHeaders(s.size);
        reply(res, 204);
        return;
      }
      case 'PATCH': {
        const s = await withSessionHeaders(ctx, () => registry.appendUpload(name, uuid, req, chunkRange(req)));
        sessionHeaders(s.size);
        reply(res, 202);
        return;
      }
      case 'PUT': {
        const d = digestParam(q(ctx, 'digest'));
        await withSessionHeaders(ctx, () => registry.completeUpload(name, uuid, d, hasBody(req) ? req : undefined, chunkRange(req)));
        res.setHeader('Location', blobLocation(ctx, d.digest));
        res.setHeader('Docker-Content-Digest', d.digest);
        reply(res, 201);
        return;
      }
      default: {
        await registry.cancelUpload(name, uuid);
        reply(res, 204);
      }
    }
  },

  async referrers(ctx: Ctx) {
    const { req, res } = ctx;
    const d = parseDigest(ctx.arg);
    if (!d) throw new AppError('DIGEST_INVALID', { digest: ctx.arg });
    const artifactType = q(ctx, 'artifactType');
    // A proxy-cache project lists the upstream's referrers too (fetched and stored first).
    if (ctx.proxied) await ctx.deps.proxy!.cache.referrers(ctx.proxied, ctx.name, d.digest);
    const list = await ctx.deps.registry.referrers(ctx.name, d.digest, artifactType);
    if (artifactType) res.setHeader('OCI-Filters-Applied', 'artifactType');
    // A Buffer, not a string: res.send would append "; charset=utf-8" to the media type.
    res.setHeader('Content-Type', MediaTypes.ociIndex);
    res.statusCode = 200;
    res.end(
      Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociIndex,
        manifests: list.map((m) => ({
          mediaType: m.mediaType,
          digest: m.digest,
          size: m.size,
          ...(m.artifactType ? { artifactType: m.artifactType } : {}),
          ...(m.annotations ? { annotations: JSON.parse(m.annotations) } : {}),
        })),
      })),
    );
  },
};

/** A 416 on an upload carries the session's Location and current Range so the client can resume. */
async function withSessionHeaders<T>(ctx: Ctx, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof AppError) || e.code !== 'RANGE_INVALID') throw e;
    let range = e.headers?.Range;
    if (range === undefined) {
      const size = await ctx.deps.registry.uploadStatus(ctx.name, ctx.arg).then((st) => st.size, () => 0);
      range = rangeHeader(size);
    }
    throw new AppError('RANGE_INVALID', e.detail, { headers: { ...e.headers, Range: range, Location: uploadLocation(ctx, ctx.arg), 'Docker-Upload-UUID': ctx.arg } });
  }
}

/**
 * Content negotiation: a client that lists only manifest types, none of them the stored one, gets
 * MANIFEST_UNKNOWN (as Distribution does); anything else (no Accept, wildcards) gets the manifest as stored.
 */
function checkAccept(req: IncomingMessage, stored: string): void {
  const accept = req.headers.accept;
  if (!accept) return;
  const types = accept.split(',').map((t) => baseMediaType(t));
  if (types.includes(stored) || types.some((t) => t === '*/*' || t === 'application/*' || !MANIFEST_MEDIA_TYPES.includes(t))) return;
  throw new AppError('MANIFEST_UNKNOWN', { reason: `manifest is ${stored}, which the Accept header does not allow` });
}
