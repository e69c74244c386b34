// A client of another registry's OCI distribution API (/v2), for proxy-cache fetches and
// replication: ping, manifests, blobs (as verified streams), uploads (monolithic, chunked,
// cross-repository mount), tags, referrers, deletes. Authentication as Docker clients do it: the
// registry's challenge on GET /v2/ decides between Basic and a bearer token fetched from the
// challenge's realm for each scope (with Basic credentials when configured, anonymously otherwise);
// tokens are cached per scope until shortly before they expire.
//
// Everything downloaded is checked against its digest: manifests are hashed whole (they are small),
// blobs come as a stream that errors at its end on a mismatch. Credentials and tokens never appear in
// an error message or a log line. Knows no Express and no database: services build one per registry.
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { digestOf, parseDigest } from '../lib/digest.ts';
import { MAX_MANIFEST_BYTES, MediaTypes, baseMediaType, type Descriptor } from '../lib/manifest.ts';
import { isValidName, isValidTag } from '../lib/reference.ts';
import { UpstreamError, safeUrl } from './errors.ts';
import { Transport, drain, readBody, type Exchange, type TransportOptions } from './http.ts';
import { VerifyingStream } from './verify.ts';

export const REGISTRY_TYPES = ['docker-registry', 'harbor', 'docker-hub', 'github-ghcr', 'quay'] as const;
export type RegistryType = (typeof REGISTRY_TYPES)[number];

/** Where Docker Hub's registry API lives (hub.docker.com is the web site). */
export const DOCKER_HUB_REGISTRY = 'https://registry-1.docker.io';
const DOCKER_HUB_ALIASES = new Set(['hub.docker.com', 'docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** The Accept list of a manifest request: every manifest format Berth stores. */
export const MANIFEST_ACCEPT = [MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerList, MediaTypes.dockerManifest].join(', ');

export interface UpstreamCredential {
  username: string;
  password: string;
}

export interface UpstreamClientOptions extends TransportOptions {
  /** The registry's base URL (scheme and host, optionally a path prefix). */
  url: string;
  type?: RegistryType;
  /** Basic credentials (also used at the token service); none for anonymous access. */
  credential?: UpstreamCredential | null;
}

export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

export interface Manifest extends ManifestHead {
  /** The exact bytes (their hash is `digest`). */
  body: Buffer;
}

export interface BlobDownload {
  /** From Content-Length, when the registry sent it. */
  size: number | null;
  /** The bytes; errors at the end unless they hash to the digest asked for. */
  stream: Readable;
}

export type BlobSource = () => Readable | Promise<Readable>;

type Challenge = { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service?: string } | null;

interface RequestOptions {
  scopes?: string[];
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  followRedirects?: boolean;
  /** A full URL (an upload's Location) instead of a path under the base URL. */
  url?: URL;
}

/** Parses a WWW-Authenticate value: the scheme and its parameters (quoted values may hold commas). */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return { scheme: '', params: {} };
  const params: Record<string, string> = {};
  const re = /([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  re.lastIndex = 0;
  const rest = m[2];
  let p: RegExpExecArray | null;
  while ((p = re.exec(rest))) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  return { scheme: m[1].toLowerCase(), params };
}

/** Tokens kept per client (one per scope), least recently used dropped first. */
const MAX_TOKENS = 512;

/** The scope a token for repository work asks for. */
export const repoScope = (repo: string, actions: 'pull' | 'pull,push' | 'delete' | '*') => `repository:${repo}:${actions}`;

export class UpstreamClient {
  readonly base: URL;
  readonly type: RegistryType;
  private readonly transport: Transport;
  private readonly credential: UpstreamCredential | null;
  private challenge: Challenge | undefined;
  private discovering: Promise<void> | null = null;
  private readonly tokens = new Map<string, { token: string; expires: number }>();
  private readonly fetching = new Map<string, Promise<string>>();

  constructor(opts: UpstreamClientOptions) {
    this.type = opts.type ?? 'docker-registry';
    this.base = UpstreamClient.baseUrl(opts.url, this.type);
    this.credential = opts.credential?.username ? opts.credential : null;
    this.transport = new Transport(opts);
  }

  /**
   * The base URL of a registry's API: `url` without a trailing slash; for docker-hub, Docker Hub's
   * registry host whatever alias of Docker Hub was given (another URL is kept, e.g. a mirror).
   * Throws BAD input as an UpstreamError('protocol') when the URL is not http(s) or has user info.
   */
  static baseUrl(url: string, type: RegistryType = 'docker-registry'): URL {
    let u: URL;
    try {
      u = new URL(type === 'docker-hub' && !url ? DOCKER_HUB_REGISTRY : url);
    } catch {
      throw new UpstreamError('protocol', 'the registry URL is not a valid URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UpstreamError('protocol', 'the registry URL must start with http:// or https://');
    if (u.username || u.password) throw new UpstreamError('protocol', 'the registry URL must not contain credentials (give them as the credential)');
    if (type === 'docker-hub' && DOCKER_HUB_ALIASES.has(u.hostname)) return new URL(DOCKER_HUB_REGISTRY);
    u.search = '';
    u.hash = '';
    u.pathname = u.pathname.replace(/\/+$/, '');
    return u;
  }

  close(): void {
    this.transport.close();
  }

  /**
   * The repository's name on this registry: Docker Hub keeps official images under library/, so
   * "alpine" there is "library/alpine". Refuses names outside the distribution grammar (they
   * would become other paths).
   */
  repository(name: string): string {
    if (!isValidName(name)) throw new UpstreamError('protocol', `invalid repository name "${name.slice(0, 100)}"`);
    return this.type === 'docker-hub' && !name.includes('/') ? `library/${name}` : name;
  }

  // ---- authentication ----------------------------------------------------------------------------

  /**
   * Checks that the registry answers the distribution API and accepts the credentials (or allows
   * anonymous access). Resolves when it does; throws an UpstreamError naming the cause otherwise.
   */
  async ping(): Promise<void> {
    this.challenge = undefined;
    this.tokens.clear();
    const res = await this.transport.send({ method: 'GET', url: this.url('/v2/') });
    await drain(res);
    if (res.status === 200) {
      this.challenge = null;
      return;
    }
    if (res.status !== 401) throw this.notRegistry(res);
    this.challenge = this.challengeOf(res);
    const auth = await this.authorization([]);
    if (!auth) throw new UpstreamError('unauthorized', `${safeUrl(this.base)} requires credentials`, 401);
    const again = await this.transport.send({ method: 'GET', url: this.url('/v2/'), headers: { authorization: auth } });
    await drain(again);
    if (again.status === 200) return;
    // An anonymous token may not open /v2/ itself; it still pulls public repositories.
    if (again.status === 401 && !this.credential && this.challenge?.scheme === 'bearer') return;
    if (again.status === 401) throw new UpstreamError('unauthorized', `${safeUrl(this.base)} refused the credentials of user "${this.credential?.username ?? ''}"`, 401);
    throw this.notRegistry(again);
  }

  private notRegistry(res: Exchange): UpstreamError {
    if (res.status === 404) return new UpstreamError('not-found', `${safeUrl(this.base)} has no registry API (GET /v2/ answered 404)`, 404);
    if (res.status === 429) return new UpstreamError('rate-limited', `${safeUrl(this.base)} rate-limits this client (429)`, 429);
    return new UpstreamError('protocol', `${safeUrl(this.base)} does not answer as a registry (GET /v2/ answered ${res.status})`, res.status);
  }

  private challengeOf(res: Exchange): Challenge {
    const header = res.headers['www-authenticate'];
    const { scheme, params } = parseChallenge(Array.isArray(header) ? header[0] : (header ?? ''));
    if (scheme === 'basic') return { scheme: 'basic' };
    if (scheme === 'bearer') {
      if (!params.realm) throw new UpstreamError('protocol', `${safeUrl(this.base)} sent a bearer challenge without a realm`, 401);
      let realm: URL;
      try {
        realm = new URL(params.realm, this.base);
      } catch {
        throw new UpstreamError('protocol', `${safeUrl(this.base)} sent a malformed token realm`, 401);
      }
      if (realm.protocol !== 'http:' && realm.protocol !== 'https:') throw new UpstreamError('protocol', `${safeUrl(this.base)} sent a token realm that is not http(s)`, 401);
      return { scheme: 'bearer', realm: realm.toString(), service: params.service };
    }
    throw new UpstreamError('protocol', `${safeUrl(this.base)} asks for an unsupported authentication scheme "${scheme.slice(0, 40)}"`, 401);
  }

  /** Learns how the registry wants to be authenticated (GET /v2/ once). */
  private async discover(): Promise<void> {
    this.discovering ??= (async () => {
      const res = await this.transport.send({ method: 'GET', url: this.url('/v2/') });
      await drain(res);
      if (res.status === 401) this.challenge = this.challengeOf(res);
      else if (res.status === 200) this.challenge = null;
      else throw this.notRegistry(res);
    })().finally(() => {
      this.discovering = null;
    });
    await this.discovering;
  }

  private basicHeader(): string | undefined {
    return this.credential ? 'Basic ' + Buffer.from(`${this.credential.username}:${this.credential.password}`).toString('base64') : undefined;
  }

  /** The Authorization value for work in `scopes`, or undefined when none is needed or available. */
  private async authorization(scopes: string[]): Promise<string | undefined> {
    if (this.challenge === undefined) await this.discover();
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') return this.basicHeader();
    try {
      return `Bearer ${await this.token(c, scopes)}`;
    } catch (err) {
      // A challenge whose token service fails or refuses (a registry that sent a broken one once) is
      // learnt again at the next request, instead of failing every request until the endpoint is edited.
      if (this.challenge === c) this.challenge = undefined;
      throw err;
    }
  }

  private async token(c: { realm: string; service?: string }, scopes: string[]): Promise<string> {
    const key = [...scopes].sort().join(' ');
    const cached = this.tokens.get(key);
    if (cached && cached.expires > Date.now()) {
      // Most recently used last: the bound below drops the least recently used.
      this.tokens.delete(key);
      this.tokens.set(key, cached);
      return cached.token;
    }
    let pending = this.fetching.get(key);
    if (!pending) {
      pending = this.fetchToken(c, scopes)
        .then(({ token, expires }) => {
          this.tokens.delete(key);
          this.tokens.set(key, { token, expires });
          // One token per repository scope: pulls of ever new names (anonymous ones, through a
          // public proxy-cache project) must not grow the cache without bound.
          if (this.tokens.size > MAX_TOKENS) {
            const now = Date.now();
            for (const [k, v] of this.tokens) if (v.expires <= now) this.tokens.delete(k);
            for (const k of this.tokens.keys()) {
              if (this.tokens.size <= MAX_TOKENS) break;
              this.tokens.delete(k);
            }
          }
          return token;
        })
        .finally(() => this.fetching.delete(key));
      this.fetching.set(key, pending);
    }
    return pending;
  }

  private async fetchToken(c: { realm: string; service?: string }, scopes: string[]): Promise<{ token: string; expires: number }> {
    const url = new URL(c.realm);
    if (c.service) url.searchParams.set('service', c.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const basic = this.basicHeader();
    const res = await this.transport.send({ method: 'GET', url, headers: basic ? { authorization: basic } : {}, followRedirects: true });
    if (res.status === 401 || res.status === 403) {
      await drain(res);
      throw new UpstreamError(
        'unauthorized',
        this.credential ? `the token service ${safeUrl(url)} refused the credentials of user "${this.credential.username}" (${res.status})` : `the token service ${safeUrl(url)} refused anonymous access (${res.status})`,
        401,
      );
    }
    if (res.status !== 200) {
      await drain(res);
      throw new UpstreamError(res.status === 429 ? 'rate-limited' : 'protocol', `the token service ${safeUrl(url)} answered ${res.status}`, res.status);
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      body = JSON.parse((await readBody(res, 1024 * 1024)).toString('utf8')) as typeof body;
    } catch (err) {
      if (err instanceof UpstreamError) throw err;
      throw new UpstreamError('protocol', `the token service ${safeUrl(url)} sent a body that is not JSON`, res.status);
    }
    const token = typeof body?.token === 'string' && body.token ? body.token : typeof body?.access_token === 'string' ? body.access_token : '';
    if (!token) throw new UpstreamError('protocol', `the token service ${safeUrl(url)} sent no token`, res.status);
    // The spec's default lifetime is 60 s; renew a little early (at most 30 s, at most half).
    const life = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    const issued = typeof body.issued_at === 'string' ? Date.parse(body.issued_at) : NaN;
    const start = Number.isFinite(issued) && Math.abs(issued - Date.now()) < 300_000 ? issued : Date.now();
    return { token, expires: start + life * 1000 - Math.min(30_000, life * 500) };
  }

  // ---- requests -----------------------------------------------------------------------------------

  /** A URL below the base URL; `path` (with its query) is built from validated names only. */
  private url(path: string): URL {
    return new URL(this.base.origin + this.base.pathname.replace(/\/+$/, '') + path);
  }

  /** One request with this registry's authentication; a 401 is answered once (new challenge or fresh token), when the body can be sent again. */
  private async request(method: string, path: string, opts: RequestOptions = {}): Promise<Exchange> {
    const scopes = opts.scopes ?? [];
    const url = opts.url ?? this.url(path);
    const send = async () => {
      const auth = await this.authorization(scopes);
      return this.transport.send({ method, url, headers: { ...(opts.headers ?? {}), ...(auth ? { authorization: auth } : {}) }, body: opts.body, followRedirects: opts.followRedirects });
    };
    const res = await send();
    if (res.status !== 401 || (opts.body && !Buffer.isBuffer(opts.body))) return res;
    // The registry's challenge may have changed (or /v2/ was open while repositories are not);
    // the token may have been revoked. Learn again and retry once.
    let challenge: Challenge;
    try {
      challenge = this.challengeOf(res);
    } catch {
      return res;
    }
    if (challenge?.scheme === 'basic' && !this.credential) return res;
    await drain(res);
    this.challenge = challenge;
    this.tokens.delete([...scopes].sort().join(' '));
    return send();
  }

  /** The error for an unexpected answer: the registry's own error code and message when it sent them. */
  private async fail(res: Exchange, what: string): Promise<UpstreamError> {
    const text = (await drain(res)).toString('utf8');
    let detail = '';
    try {
      const e = (JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] }).errors?.[0];
      if (e) detail = `: ${String(e.code ?? '')}${e.message ? ` ${String(e.message)}` : ''}`.slice(0, 300);
    } catch {
      // not an OCI error body
    }
    const s = res.status;
    const where = `${what} at ${safeUrl(this.base)}`;
    if (s === 401) return new UpstreamError('unauthorized', `${where}: ${this.credential ? `the credentials of user "${this.credential.username}" were refused` : 'credentials are required'} (401${detail})`, s);
    if (s === 403) return new UpstreamError('denied', `${where}: access denied (403${detail})`, s);
    if (s === 404) return new UpstreamError('not-found', `${where}: not found (404${detail})`, s);
    if (s === 429) return new UpstreamError('rate-limited', `${where}: rate limited (429${detail})`, s);
    return new UpstreamError('protocol', `${where}: unexpected answer ${s}${detail}`, s);
  }

  private static checkReference(ref: string): void {
    if (!isValidTag(ref) && !parseDigest(ref)) throw new UpstreamError('protocol', `invalid tag or digest "${ref.slice(0, 100)}"`);
  }

  private static checkDigest(digest: string): void {
    if (!parseDigest(digest)) throw new UpstreamError('protocol', `invalid digest "${digest.slice(0, 100)}"`);
  }

  // ---- manifests ----------------------------------------------------------------------------------

  /** HEAD of a manifest by tag or digest: its digest, media type and size; null when there is none. */
  async headManifest(name: string, ref: string): Promise<ManifestHead | null> {
    const repo = this.repository(name);
    UpstreamClient.checkReference(ref);
    const res = await this.request('HEAD', `/v2/${repo}/manifests/${ref}`, { scopes: [repoScope(repo, 'pull')], headers: { accept: MANIFEST_ACCEPT } });
    res.body.resume();
    if (res.status === 404) return null;
    if (res.status !== 200) throw await this.fail(res, `HEAD manifest ${repo}:${ref}`);
    const digest = String(res.headers['docker-content-digest'] ?? '');
    if (!parseDigest(digest)) {
      // Not every registry sends the digest on HEAD: the GET says (and costs one more request).
      const m = await this.getManifest(name, ref);
      return m && { digest: m.digest, mediaType: m.mediaType, size: m.size };
    }
    if (parseDigest(ref) && digest !== ref) throw new UpstreamError('digest-mismatch', `${safeUrl(this.base)} answered HEAD ${repo}@${ref} with digest ${digest}`);
    return { digest, mediaType: baseMediaType(res.headers['content-type']), size: Number(res.headers['content-length'] ?? 0) };
  }

  /**
   * GET of a manifest by tag or digest (at most 4 MiB), null when there is none. Its bytes are
   * hashed: by digest they must hash to it; by tag they must hash to the Docker-Content-Digest the
   * registry announced, if it announced one.
   */
  async getManifest(name: string, ref: string): Promise<Manifest | null> {
    const repo = this.repository(name);
    UpstreamClient.checkReference(ref);
    const res = await this.request('GET', `/v2/${repo}/manifests/${ref}`, { scopes: [repoScope(repo, 'pull')], headers: { accept: MANIFEST_ACCEPT } });
    if (res.status === 404) {
      await drain(res);
      return null;
    }
    if (res.status !== 200) throw await this.fail(res, `GET manifest ${repo}:${ref}`);
    const body = await readBody(res, MAX_MANIFEST_BYTES);
    const byDigest = parseDigest(ref);
    const announced = parseDigest(String(res.headers['docker-content-digest'] ?? ''));
    const algorithm = byDigest?.algorithm ?? announced?.algorithm ?? 'sha256';
    const digest = digestOf(body, algorithm);
    if (byDigest && digest !== ref) throw new UpstreamError('digest-mismatch', `${safeUrl(this.base)} sent a manifest for ${repo}@${ref} whose bytes hash to ${digest}: refused`);
    if (announced && digestOf(body, announced.algorithm) !== announced.digest) {
      throw new UpstreamError('digest-mismatch', `${safeUrl(this.base)} sent a manifest for ${repo}:${ref} that does not hash to its Docker-Content-Digest ${announced.digest}: refused`);
    }
    let mediaType = baseMediaType(res.headers['content-type']);
    if (!mediaType || mediaType === 'application/json' || mediaType === 'application/octet-stream') {
      try {
        const declared = (JSON.parse(body.toString('utf8')) as { mediaType?: unknown }).mediaType;
        if (typeof declared === 'string') mediaType = declared;
      } catch {
        // the caller's parser says what is wrong with it
      }
    }
    return { digest, mediaType, size: body.length, body };
  }

  /** PUT of a manifest under a tag or its digest; returns its digest (checked against what the registry announces). */
  async putManifest(name: string, ref: string, body: Buffer, mediaType: string): Promise<string> {
    const repo = this.repository(name);
    UpstreamClient.checkReference(ref);
    const res = await this.request('PUT', `/v2/${repo}/manifests/${ref}`, { scopes: [repoScope(repo, 'pull,push')], headers: { 'content-type': mediaType }, body });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await this.fail(res, `PUT manifest ${repo}:${ref}`);
    await drain(res);
    const mine = digestOf(body, parseDigest(ref)?.algorithm ?? 'sha256');
    const announced = String(res.headers['docker-content-digest'] ?? '');
    if (parseDigest(announced) && announced.split(':')[0] === mine.split(':')[0] && announced !== mine) {
      throw new UpstreamError('digest-mismatch', `${safeUrl(this.base)} stored manifest ${repo}:${ref} as ${announced}, not ${mine}`);
    }
    return mine;
  }

  /** DELETE of a manifest by digest; false when it was not there. */
  async deleteManifest(name: string, digest: string): Promise<boolean> {
    const repo = this.repository(name);
    UpstreamClient.checkDigest(digest);
    const res = await this.request('DELETE', `/v2/${repo}/manifests/${digest}`, { scopes: [repoScope(repo, 'delete'), repoScope(repo, 'pull,push')] });
    if (res.status === 404) {
      await drain(res);
      return false;
    }
    if (res.status !== 202 && res.status !== 200 && res.status !== 204) throw await this.fail(res, `DELETE manifest ${repo}@${digest}`);
    await drain(res);
    return true;
  }

  // ---- blobs --------------------------------------------------------------------------------------

  /** HEAD of a blob: its size, or null when the repository does not have it. */
  async headBlob(name: string, digest: string): Promise<number | null> {
    const repo = this.repository(name);
    UpstreamClient.checkDigest(digest);
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { scopes: [repoScope(repo, 'pull')], followRedirects: true });
    res.body.resume();
    if (res.status === 404) return null;
    if (res.status !== 200) throw await this.fail(res, `HEAD blob ${repo}@${digest}`);
    const n = Number(res.headers['content-length']);
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  }

  /**
   * GET of a blob as a stream, redirects followed (S3, CDNs). The stream errors at its end unless
   * the bytes hash to `digest` (and number `expectedSize`, when given): read it to the end before
   * trusting what it delivered. Throws not-found when the repository does not have it.
   */
  async getBlob(name: string, digest: string, expectedSize?: number): Promise<BlobDownload> {
    const repo = this.repository(name);
    UpstreamClient.checkDigest(digest);
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { scopes: [repoScope(repo, 'pull')], followRedirects: true });
    if (res.status !== 200) throw await this.fail(res, `GET blob ${repo}@${digest}`);
    const declared = Number(res.headers['content-length']);
    const size = Number.isSafeInteger(declared) && declared >= 0 ? declared : null;
    if (expectedSize !== undefined && size !== null && size !== expectedSize) {
      res.body.destroy();
      throw new UpstreamError('digest-mismatch', `${safeUrl(this.base)} announced ${size} bytes for ${digest}, expected ${expectedSize}: refused`);
    }
    const verifier = new VerifyingStream(digest, expectedSize ?? size, safeUrl(this.base));
    pipeline(res.body, verifier, () => undefined);
    return { size, stream: verifier };
  }

  /**
   * Puts a blob into `name`: nothing to do when `from` (another repository of this registry) can
   * be mounted; otherwise the bytes from `source` go up in one PUT, or in PATCHes of `chunkSize`
   * bytes when given (at most one chunk in memory). Returns how it got there.
   */
  async pushBlob(name: string, digest: string, size: number, source: BlobSource, opts: { mountFrom?: string; chunkSize?: number } = {}): Promise<'mounted' | 'uploaded'> {
    const repo = this.repository(name);
    UpstreamClient.checkDigest(digest);
    const from = opts.mountFrom ? this.repository(opts.mountFrom) : null;
    const scopes = [repoScope(repo, 'pull,push'), ...(from && from !== repo ? [repoScope(from, 'pull')] : [])];
    const query = from ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` : '';
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/${query}`, { scopes });
    if (start.status === 201 && from) {
      await drain(start);
      return 'mounted';
    }
    if (start.status !== 202) throw await this.fail(start, `POST upload ${repo}`);
    await drain(start);
    let location = this.location(start);
    try {
      if (opts.chunkSize && size > opts.chunkSize) {
        let offset = 0;
        for await (const chunk of chunks(await source(), opts.chunkSize)) {
          const res = await this.request('PATCH', '', {
            url: location,
            scopes,
            headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
            body: chunk,
          });
          if (res.status !== 202) throw await this.fail(res, `PATCH upload ${repo}`);
          await drain(res);
          location = this.location(res);
          offset += chunk.length;
        }
        if (offset !== size) throw new UpstreamError('protocol', `the source of ${digest} gave ${offset} bytes, expected ${size}`);
        location.searchParams.set('digest', digest);
        const done = await this.request('PUT', '', { url: location, scopes });
        if (done.status !== 201) throw await this.fail(done, `PUT upload ${repo}@${digest}`);
        await drain(done);
      } else {
        location.searchParams.set('digest', digest);
        const body = await source();
        const done = await this.request('PUT', '', { url: location, scopes, headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) }, body });
        if (done.status !== 201) throw await this.fail(done, `PUT upload ${repo}@${digest}`);
        await drain(done);
      }
    } catch (err) {
      // Leave no session behind on the registry (best effort).
      location.searchParams.delete('digest');
      await this.request('DELETE', '', { url: location, scopes })
        .then((r) => drain(r))
        .catch(() => undefined);
      throw err;
    }
    return 'uploaded';
  }

  private location(res: Exchange): URL {
    const loc = res.headers.location;
    if (!loc) throw new UpstreamError('protocol', `${safeUrl(this.base)} started an upload without a Location`, res.status);
    let u: URL;
    try {
      u = new URL(loc, this.base);
    } catch {
      throw new UpstreamError('protocol', `${safeUrl(this.base)} sent a malformed upload Location`, res.status);
    }
    // The upload goes on at the registry, never somewhere it points us to with our credentials.
    if (u.origin !== this.base.origin) throw new UpstreamError('protocol', `${safeUrl(this.base)} sent an upload Location on another host`, res.status);
    return u;
  }

  // ---- listings -----------------------------------------------------------------------------------

  /** Every tag of a repository (pages followed; at most `limit`); [] when the repository does not exist. */
  async tags(name: string, limit = 100_000): Promise<string[]> {
    const repo = this.repository(name);
    return this.paged(`/v2/${repo}/tags/list?n=1000`, [repoScope(repo, 'pull')], 'tags', limit, `tags of ${repo}`);
  }

  /** The repositories of the registry (/v2/_catalog, pages followed; at most `limit`). */
  async catalog(limit = 100_000): Promise<string[]> {
    return this.paged('/v2/_catalog?n=1000', ['registry:catalog:*'], 'repositories', limit, 'catalog');
  }

  private async paged(first: string, scopes: string[], field: 'tags' | 'repositories', limit: number, what: string): Promise<string[]> {
    const out: string[] = [];
    let next: URL | null = this.url(first);
    for (let page = 0; next && out.length < limit; page++) {
      const res = await this.request('GET', '', { url: next, scopes });
      if (res.status === 404 && field === 'tags') {
        await drain(res);
        return out;
      }
      if (res.status !== 200) throw await this.fail(res, what);
      let list: unknown;
      try {
        list = (JSON.parse((await readBody(res, 16 * 1024 * 1024)).toString('utf8')) as Record<string, unknown>)[field];
      } catch (err) {
        if (err instanceof UpstreamError) throw err;
        throw new UpstreamError('protocol', `${what} at ${safeUrl(this.base)}: the answer is not JSON`, res.status);
      }
      if (list !== null && list !== undefined && !Array.isArray(list)) throw new UpstreamError('protocol', `${what} at ${safeUrl(this.base)}: "${field}" is not a list`);
      for (const x of (list as unknown[] | null) ?? []) if (typeof x === 'string') out.push(x);
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''));
      next = null;
      if (link) {
        const u = new URL(link[1], this.base);
        if (u.origin === this.base.origin && page < 10_000) next = u;
      }
    }
    return out.slice(0, limit);
  }

  /**
   * The manifests that refer to `digest` (signatures, SBOMs): the referrers API, or, where the
   * registry has none (404), the fallback tag "sha256-<hex>" of the OCI distribution spec.
   */
  async referrers(name: string, digest: string, artifactType?: string): Promise<Descriptor[]> {
    const viaApi = await this.referrersApi(name, digest, artifactType);
    if (viaApi) return viaApi;
    // A HEAD first: most digests have no fallback tag, and a manifest GET counts against Docker
    // Hub's pull limit where a HEAD does not (a proxy-cache listing is anyone's to ask for).
    if (!(await this.headManifest(name, referrersTag(digest)))) return [];
    const index = await this.getManifest(name, referrersTag(digest));
    const found = index ? descriptorsOf(index.body, `the referrers tag of ${digest} at ${safeUrl(this.base)}`) : [];
    return artifactType ? found.filter((d) => d.artifactType === artifactType) : found;
  }

  /** What the referrers API answers, or null when the registry has none (a 404, as Distribution 2.8 answers). */
  async referrersApi(name: string, digest: string, artifactType?: string): Promise<Descriptor[] | null> {
    const repo = this.repository(name);
    UpstreamClient.checkDigest(digest);
    const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const res = await this.request('GET', `/v2/${repo}/referrers/${digest}${q}`, { scopes: [repoScope(repo, 'pull')], headers: { accept: MediaTypes.ociIndex } });
    if (res.status === 404 || res.status === 400 || res.status === 405) {
      await drain(res);
      return null;
    }
    if (res.status !== 200) throw await this.fail(res, `referrers of ${repo}@${digest}`);
    const found = descriptorsOf(await readBody(res, MAX_MANIFEST_BYTES), `referrers of ${repo}@${digest} at ${safeUrl(this.base)}`);
    // A registry that ignored the filter says so by leaving out OCI-Filters-Applied.
    return artifactType && !String(res.headers['oci-filters-applied'] ?? '').includes('artifactType') ? found.filter((d) => d.artifactType === artifactType) : found;
  }
}

/** The fallback tag under which a registry without the referrers API lists a digest's referrers. */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

/** The valid descriptors of an index's manifests list. */
function descriptorsOf(index: Buffer, what: string): Descriptor[] {
  let manifests: unknown;
  try {
    manifests = (JSON.parse(index.toString('utf8')) as { manifests?: unknown }).manifests;
  } catch {
    throw new UpstreamError('protocol', `${what}: the index is not JSON`);
  }
  if (!Array.isArray(manifests)) return [];
  return manifests.filter((d): d is Descriptor => !!d && typeof d === 'object' && typeof (d as Descriptor).digest === 'string' && !!parseDigest((d as Descriptor).digest));
}

/** The bytes of a stream in pieces of exactly `size` (the last one shorter). */
async function* chunks(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    let chunk = c;
    while (held + chunk.length >= size) {
      const take = size - held;
      parts.push(chunk.subarray(0, take));
      yield Buffer.concat(parts);
      parts = [];
      held = 0;
      chunk = chunk.subarray(take);
    }
    if (chunk.length) {
      parts.push(chunk);
      held += chunk.length;
    }
  }
  if (held) yield Buffer.concat(parts);
}
