// The read path of proxy-cache projects: a pull of <project>/<path>:<ref> in a project whose
// upstream is a registry endpoint is answered from what the project holds, fetched from the
// upstream's <path> on first use and stored as normal artifacts of <project>/<path> (through
// RegistryService's public methods: quota, GC interlock and caches apply as for a push).
//
// - By digest: served from the cache with no upstream request; when missing, a HEAD asks the
//   upstream whether it exists before it is fetched (HEADs do not count against rate limits).
// - By tag: a HEAD to the upstream (cheap for rate limits) says which digest the tag names now;
//   the cached copy is used when it is that digest, otherwise the new manifest is fetched.
// - Upstream unreachable or refusing: the cached copy is served (by tag and by digest), with a
//   warning in the log; with nothing cached the pull fails naming the cause.
// - Everything fetched is verified against its digest before it is stored (the upstream client's
//   manifests are hashed whole, blobs stream through a verifying stream, and the blob commit
//   checks the digest again); a lying upstream stores nothing.
// - Every blob fetched has a size announced before its bytes are read (the manifest's descriptor, or
//   the upstream's Content-Length) and is cut at that size; one larger than the room left in the
//   project's quota is refused before it is downloaded, one of unknown size is not fetched at all
//   (an upstream's endless body never fills the disk).
// - A reference outside the tag or digest grammar is unknown, without an upstream request.
// - Concurrent pulls of the same missing manifest or blob fetch it once (per process).
// - A blob GET of a missing blob (openBlob) streams the upstream's bytes to the client while they
//   are stored: the client's copy ends only when the bytes hashed to the digest; on a mismatch it is
//   cut short (and nothing is stored), so no client ever receives a complete, unverified blob.
//
// An image manifest is stored once all its blobs are; an index once all its children are (the
// registry refuses a manifest that refers to what the repository lacks), so a first pull of an
// index fetches every platform's layers.
import { PassThrough, type Readable } from 'node:stream';
import { AppError } from '../lib/errors.ts';
import { parseDigest, type ParsedDigest } from '../lib/digest.ts';
import { parseManifest } from '../lib/manifest.ts';
import { isValidTag } from '../lib/reference.ts';
import type { UpstreamClient } from '../upstream/client.ts';
import { UpstreamError } from '../upstream/errors.ts';
import type { RegistryService, StoredManifest } from './registry-service.ts';

/** What the proxy cache needs of the registry: reads, and the same writes a push makes. */
export type ProxyRegistry = Pick<RegistryService, 'getManifest' | 'putManifest' | 'blobSize' | 'startUpload' | 'completeUpload' | 'cancelUpload'>;

export interface ProxyCacheDeps {
  registry: ProxyRegistry;
  /** The client of a registry endpoint (RegistriesService.client). */
  upstream: (registryId: number) => Promise<UpstreamClient>;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  /**
   * Bytes the repository's project may still take under its quota (null: no limit). A blob larger
   * than that is refused on its announced size, before a byte of it is downloaded.
   */
  room?: (repository: string) => Promise<number | null>;
}

/** A proxy-cache project: its name and its upstream registry endpoint. */
export interface ProxyProject {
  name: string;
  registryId: number;
}

const SEP = '\u0000';
const MAX_DEPTH = 8;
/** Manifests one pull fetches from the upstream at most (an index's children, theirs, ...). */
const MAX_MANIFESTS = 1024;
/** While other pulls wait for a blob, the client it streams to must take this much a second... */
const SLOW_CLIENT_BYTES_PER_S = 32 * 1024;
/** ...measured over windows this long (ms). */
const SLOW_CLIENT_WINDOW_MS = 5_000;
/** Referrers one listing fetches from the upstream at most. */
const MAX_REFERRERS_FETCHED = 64;

export class ProxyCacheService {
  private readonly inflight = new Map<string, Promise<unknown>>();
  /**
   * Blob fetches streamed to a client (openBlob), by key: called when another pull starts waiting
   * for the same blob, it detaches that client if it holds the fetch back (see tee).
   */
  private readonly hurry = new Map<string, () => void>();

  constructor(private readonly deps: ProxyCacheDeps) {}

  /** The repository's path at the upstream: the local name without the project ("hub/library/alpine" → "library/alpine"). */
  static upstreamName(project: ProxyProject, repository: string): string {
    const prefix = project.name + '/';
    if (!repository.startsWith(prefix) || repository.length === prefix.length) throw new AppError('NAME_INVALID', { repository }, { message: `a proxy cache pull names the image below the project: ${project.name}/<image>` });
    return repository.slice(prefix.length);
  }

  /**
   * The project's upstream client. An endpoint that cannot be used (deleted under the project, or
   * its secret unreadable) counts as an upstream that cannot be reached: the cached copy is served,
   * otherwise the pull fails naming the cause (never a non-OCI error code on /v2).
   */
  private async client(project: ProxyProject): Promise<UpstreamClient> {
    try {
      return await this.deps.upstream(project.registryId);
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      throw new UpstreamError('protocol', `its registry endpoint ${project.registryId} cannot be used: ${e.message}`);
    }
  }

  /** Runs `fn` once for `key` at a time: concurrent callers share its outcome. */
  private once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(key) as Promise<T> | undefined;
    if (running) {
      this.hurry.get(key)?.();
      return running;
    }
    const p: Promise<T> = fn().finally(() => {
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    });
    this.inflight.set(key, p);
    return p;
  }

  private async local(repository: string, reference: string): Promise<StoredManifest | null> {
    try {
      return await this.deps.registry.getManifest(repository, reference);
    } catch (e) {
      if (e instanceof AppError && (e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN')) return null;
      throw e;
    }
  }

  /** The error a pull gets when the upstream cannot give what is not cached. */
  private unavailable(project: ProxyProject, e: UpstreamError, what: 'manifest' | 'blob', ref: string): AppError {
    if (e.kind === 'not-found') return new AppError(what === 'manifest' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN', { reference: ref }, { message: `${what} unknown to the upstream registry of proxy cache project ${project.name}` });
    return new AppError('UNAVAILABLE', undefined, { message: `the upstream registry of proxy cache project ${project.name} cannot be used, and ${ref} is not cached: ${e.message}` });
  }

  /**
   * The manifest a pull of `repository:reference` gets in a proxy-cache project (a tag or a
   * digest), from the cache or fetched from the upstream and stored.
   */
  async manifest(project: ProxyProject, repository: string, reference: string): Promise<StoredManifest> {
    const upstreamName = ProxyCacheService.upstreamName(project, repository);
    const byDigest = reference.includes(':');
    // A reference outside the grammar names nothing, here or upstream: unknown, and no upstream request.
    if (byDigest ? !parseDigest(reference) : !isValidTag(reference)) throw new AppError('MANIFEST_UNKNOWN', { reference: reference.slice(0, 200) });
    const cached = await this.local(repository, reference);
    if (byDigest && cached) return cached;
    let digest: string;
    try {
      const client = await this.client(project);
      if (byDigest) {
        // A HEAD first (Docker Hub counts GETs of manifests against its pull limit, not HEADs):
        // pulls of made-up digests cost the limit nothing, and are not fetched.
        if (!(await client.headManifest(upstreamName, reference))) throw new UpstreamError('not-found', `${upstreamName}@${reference} does not exist upstream`, 404);
        digest = reference;
      } else {
        const head = await client.headManifest(upstreamName, reference);
        if (!head) throw new UpstreamError('not-found', `${upstreamName}:${reference} does not exist upstream`, 404);
        digest = head.digest;
        if (cached && cached.digest === digest) return cached;
      }
      await this.once(`m${SEP}${repository}${SEP}${digest}`, () => this.fetchManifest(client, upstreamName, repository, digest, 0, { left: MAX_MANIFESTS }));
      if (!byDigest) {
        try {
          await this.tag(client, upstreamName, repository, reference, digest);
        } catch (e) {
          // The project keeps the tag where it is (an immutable tag rule): it names what it named.
          if (!(cached && e instanceof AppError && e.code === 'DENIED')) throw e;
          this.deps.log.warn({ project: project.name, repository, reference, digest, cached: cached.digest, err: e.message }, 'proxy cache tag not moved to the upstream digest; serving the cached copy');
          return cached;
        }
      }
    } catch (e) {
      if (!(e instanceof UpstreamError)) throw e;
      if (cached && e.kind !== 'not-found') {
        this.deps.log.warn({ project: project.name, repository, reference, kind: e.kind, err: e.message }, 'proxy cache upstream failed; serving the cached copy');
        return cached;
      }
      if (e.kind === 'digest-mismatch') this.deps.log.warn({ project: project.name, repository, reference, err: e.message }, 'proxy cache upstream sent content that does not match its digest; refused');
      throw this.unavailable(project, e, 'manifest', reference);
    }
    return this.deps.registry.getManifest(repository, reference);
  }

  /** Points the local tag at `digest` (the manifest is stored), as the upstream's tag does now. */
  private async tag(client: UpstreamClient, upstreamName: string, repository: string, tag: string, digest: string): Promise<void> {
    const m = await this.deps.registry.getManifest(repository, digest);
    await this.deps.registry.putManifest(repository, tag, m.mediaType, m.bytes);
    this.deps.log.info({ repository, tag, digest, upstream: upstreamName, registry: client.base.host }, 'proxy cache tag updated');
  }

  /** Fetches a manifest by digest and everything it refers to (children, blobs), then stores it. */
  private async fetchManifest(client: UpstreamClient, upstreamName: string, repository: string, digest: string, depth: number, budget: { left: number }): Promise<void> {
    if (depth > MAX_DEPTH) throw new UpstreamError('protocol', `manifests nested deeper than ${MAX_DEPTH} levels at ${digest}`);
    if (await this.local(repository, digest)) return;
    const m = await client.getManifest(upstreamName, digest);
    if (!m) throw new UpstreamError('not-found', `${upstreamName}@${digest} does not exist upstream`, 404);
    let parsed;
    try {
      parsed = parseManifest(m.body, m.mediaType);
    } catch (e) {
      throw new UpstreamError('protocol', `${upstreamName}@${digest} from the upstream is not a manifest Berth stores: ${(e as Error).message}`);
    }
    if (parsed.isIndex) {
      // One pull fetches a bounded number of manifests (an index of thousands, or indexes of
      // indexes, would make one anonymous request fetch without end): refused before any child.
      budget.left -= parsed.manifests.length;
      if (budget.left < 0) throw new UpstreamError('protocol', `${upstreamName}@${digest} from the upstream refers to more than ${MAX_MANIFESTS} manifests: not cached`);
      for (const child of parsed.manifests) await this.once(`m${SEP}${repository}${SEP}${child}`, () => this.fetchManifest(client, upstreamName, repository, child, depth + 1, budget));
    } else {
      const raw = parsed.raw as { config?: { digest: string; size: number; urls?: string[] }; layers?: { digest: string; size: number; urls?: string[] }[] };
      const sizes = new Map<string, number>();
      for (const d of [...(raw.config ? [raw.config] : []), ...(raw.layers ?? [])]) if (!d.urls?.length) sizes.set(d.digest, d.size);
      for (const b of parsed.blobs) if (sizes.has(b)) await this.ensureBlob(client, upstreamName, repository, b, sizes.get(b));
    }
    await this.deps.registry.putManifest(repository, digest, m.mediaType, m.body);
    this.deps.log.info({ repository, digest, upstream: upstreamName, registry: client.base.host }, 'proxy cache manifest stored');
  }

  /** Refuses a blob of `size` bytes when the project's quota has less room left (before any download). */
  private async checkRoom(repository: string, digest: string, size: number): Promise<void> {
    const room = this.deps.room ? await this.deps.room(repository) : null;
    if (room !== null && size > room) {
      throw new AppError('DENIED', { digest, size, room }, { message: `Quota exceeded: blob ${digest} of ${mib(size)} from the upstream registry does not fit the ${mib(room)} left in the quota of project ${repository.split('/')[0]}.` });
    }
  }

  /** The size a blob download announced (Content-Length), or the refusal of a blob of unknown size. */
  private static announced(client: UpstreamClient, digest: string, size: number | null): number {
    if (size === null) throw new UpstreamError('protocol', `${client.base.host} did not announce the size of blob ${digest} (no Content-Length): a blob of unknown size is not fetched`);
    return size;
  }

  /** Stores the blob in the repository unless it is there: fetched once, verified, committed as an upload. */
  private ensureBlob(client: UpstreamClient, upstreamName: string, repository: string, digest: string, size?: number): Promise<number> {
    return this.once(`b${SEP}${repository}${SEP}${digest}`, async () => {
      const have = await this.deps.registry.blobSize(repository, digest);
      if (have !== null) return have;
      const d = parseDigest(digest) as ParsedDigest;
      let body: Readable | null = null;
      let upload: { uuid: string } | null = null;
      // The upload receiver reports a failed body as its own error; the upstream's says why.
      let upstreamFailure: unknown = null;
      try {
        if (size !== undefined) await this.checkRoom(repository, digest, size);
        const download = await client.getBlob(upstreamName, digest, size);
        body = download.stream;
        body.once('error', (e) => (upstreamFailure = e));
        // The stream is cut at the announced size (VerifyingStream), so the announcement bounds it.
        if (size === undefined) await this.checkRoom(repository, digest, ProxyCacheService.announced(client, digest, download.size));
        upload = await this.deps.registry.startUpload(repository, true);
        // The upstream client's stream errors unless the bytes hash to the digest; the commit checks again.
        const n = await this.deps.registry.completeUpload(repository, upload.uuid, d, body);
        this.deps.log.info({ repository, digest, size: n, upstream: upstreamName, registry: client.base.host }, 'proxy cache blob stored');
        return n;
      } catch (e) {
        body?.destroy();
        if (upload) await this.deps.registry.cancelUpload(repository, upload.uuid).catch(() => undefined);
        throw upstreamFailure instanceof UpstreamError ? upstreamFailure : e;
      }
    });
  }

  /**
   * Before a referrers listing in a proxy-cache project: the upstream's referrers of `digest`
   * (signatures, SBOMs; through its referrers API or the fallback tag) are fetched and stored, so
   * the local listing includes them. Best effort: with the upstream unreachable the listing shows
   * what is cached. Resolves with how many were fetched.
   */
  async referrers(project: ProxyProject, repository: string, digest: string): Promise<number> {
    if (!parseDigest(digest)) return 0;
    const upstreamName = ProxyCacheService.upstreamName(project, repository);
    let fetched = 0;
    try {
      const client = await this.client(project);
      for (const r of await client.referrers(upstreamName, digest)) {
        // Anyone may attach referrers to a public image upstream: one listing (an anonymous one,
        // in a public project) fetches a bounded number of them; the next listing goes on.
        if (fetched >= MAX_REFERRERS_FETCHED) {
          this.deps.log.warn({ project: project.name, repository, digest, limit: MAX_REFERRERS_FETCHED }, 'proxy cache referrers: more upstream than one listing fetches');
          break;
        }
        if (await this.local(repository, r.digest)) continue;
        await this.once(`m${SEP}${repository}${SEP}${r.digest}`, () => this.fetchManifest(client, upstreamName, repository, r.digest, 0, { left: MAX_MANIFESTS }));
        fetched++;
      }
    } catch (e) {
      if (!(e instanceof UpstreamError)) throw e;
      this.deps.log.warn({ project: project.name, repository, digest, kind: e.kind, err: e.message }, 'proxy cache referrers not refreshed; listing what is cached');
    }
    return fetched;
  }

  /**
   * A blob GET in a proxy-cache project. Null when the blob is stored (serve it as any other,
   * ranges included); otherwise the upstream's bytes as they arrive, stored at the same time: the
   * stream ends only once they hashed to `digest` (it errors otherwise, and nothing is stored).
   * A client that goes away does not stop the storing. A second pull of the same missing blob
   * waits for the first one's fetch and then gets null. The stream moves at the pace of the
   * slower of the client and the storage.
   */
  async openBlob(project: ProxyProject, repository: string, digest: string): Promise<{ size: number; stream: Readable } | null> {
    if ((await this.deps.registry.blobSize(repository, digest)) !== null) return null;
    const d = parseDigest(digest);
    if (!d) throw new AppError('DIGEST_INVALID', { digest });
    const upstreamName = ProxyCacheService.upstreamName(project, repository);
    const key = `b${SEP}${repository}${SEP}${digest}`;
    const running = this.inflight.get(key);
    if (running) {
      this.hurry.get(key)?.();
      await running.catch((e: unknown) => {
        throw e instanceof UpstreamError ? this.unavailable(project, e, 'blob', digest) : e;
      });
      return null;
    }
    // Claimed before the first await, so concurrent pulls join this fetch.
    let settle!: { resolve: (n: number) => void; reject: (e: unknown) => void };
    const stored = new Promise<number>((resolve, reject) => (settle = { resolve, reject }));
    stored.catch(() => undefined);
    this.inflight.set(key, stored);
    void stored
      .finally(() => {
        if (this.inflight.get(key) === stored) this.inflight.delete(key);
      })
      .catch(() => undefined);
    let download;
    let client;
    try {
      client = await this.client(project);
      download = await client.getBlob(upstreamName, digest);
    } catch (e) {
      settle.reject(e);
      throw e instanceof UpstreamError ? this.unavailable(project, e, 'blob', digest) : e;
    }
    let upload;
    try {
      await this.checkRoom(repository, digest, ProxyCacheService.announced(client, digest, download.size));
      upload = await this.deps.registry.startUpload(repository, true);
    } catch (e) {
      download.stream.destroy();
      settle.reject(e);
      throw e instanceof UpstreamError ? this.unavailable(project, e, 'blob', digest) : e;
    }
    const toClient = new PassThrough();
    const toStore = new PassThrough();
    let upstreamFailure: unknown = null;
    download.stream.once('error', (e) => (upstreamFailure = e));
    this.hurry.set(key, tee(download.stream, toClient, toStore));
    void stored.finally(() => this.hurry.delete(key)).catch(() => undefined);
    const registry = client.base.host;
    this.deps.registry.completeUpload(repository, upload.uuid, d, toStore).then(
      (n) => {
        this.deps.log.info({ repository, digest, size: n, upstream: upstreamName, registry }, 'proxy cache blob stored');
        settle.resolve(n);
      },
      async (e: unknown) => {
        const cause = upstreamFailure instanceof UpstreamError ? upstreamFailure : e;
        toClient.destroy(cause as Error);
        download.stream.destroy();
        await this.deps.registry.cancelUpload(repository, upload.uuid).catch(() => undefined);
        this.deps.log.warn({ repository, digest, upstream: upstreamName, registry, err: (cause as Error).message }, 'proxy cache blob not stored');
        settle.reject(cause);
      },
    );
    return { size: download.size as number, stream: toClient };
  }

  /**
   * A blob a pull asks for in a proxy-cache project: its size once it is stored (fetched from the
   * upstream when missing). For a blob no cached manifest listed yet (a client that read the
   * manifest elsewhere).
   */
  async blob(project: ProxyProject, repository: string, digest: string): Promise<number> {
    const have = await this.deps.registry.blobSize(repository, digest);
    if (have !== null) return have;
    if (!parseDigest(digest)) throw new AppError('DIGEST_INVALID', { digest });
    const upstreamName = ProxyCacheService.upstreamName(project, repository);
    try {
      const client = await this.client(project);
      return await this.ensureBlob(client, upstreamName, repository, digest);
    } catch (e) {
      if (!(e instanceof UpstreamError)) throw e;
      throw this.unavailable(project, e, 'blob', digest);
    }
  }
}

/**
 * Copies `src` into `a` (a client) and `b` (the storage) at the pace of the slower one; when `a` is
 * destroyed (the client went away) `b` goes on alone. `src`'s end or error reaches both.
 *
 * Returns `hurry`, called when other pulls wait for the same blob: from then on the client may hold
 * the copy back only while it keeps reading — one that takes less than SLOW_CLIENT_BYTES_PER_S over
 * a SLOW_CLIENT_WINDOW_MS window while the copy waits for it is cut off, and the storage goes on at
 * its own pace. Without it one stalled (or deliberately slow, anonymous) reader made every pull of a
 * popular missing layer wait at its pace. The cut client retries and gets the stored copy.
 */
function tee(src: Readable, a: PassThrough, b: PassThrough): () => void {
  let aOpen = true;
  let written = 0;
  let timer: NodeJS.Timeout | null = null;
  const stopWatching = () => {
    if (timer) clearInterval(timer);
    timer = null;
  };
  const resume = () => {
    if ((!aOpen || !a.writableNeedDrain) && !b.writableNeedDrain) src.resume();
  };
  a.once('close', () => {
    stopWatching();
    if (!a.writableFinished) {
      aOpen = false;
      resume();
    }
  });
  a.on('drain', resume);
  b.on('drain', resume);
  src.on('data', (chunk: Buffer) => {
    const okB = b.write(chunk);
    const okA = aOpen ? a.write(chunk) : true;
    if (aOpen) written += chunk.length;
    if (!okA || !okB) src.pause();
  });
  src.once('end', () => {
    stopWatching();
    if (aOpen) a.end();
    b.end();
  });
  src.once('error', (e) => {
    stopWatching();
    if (aOpen) a.destroy(e);
    b.destroy(e);
  });
  return () => {
    if (timer || !aOpen) return;
    let taken = written - a.writableLength;
    timer = setInterval(() => {
      const now = written - a.writableLength;
      const rate = ((now - taken) * 1000) / SLOW_CLIENT_WINDOW_MS;
      taken = now;
      if (aOpen && a.writableNeedDrain && rate < SLOW_CLIENT_BYTES_PER_S) {
        stopWatching();
        aOpen = false;
        a.destroy(new Error('the client reads too slowly while other pulls wait for this blob: cut off (the blob is still stored)'));
        resume();
      }
    }, SLOW_CLIENT_WINDOW_MS);
    timer.unref();
  };
}

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}
