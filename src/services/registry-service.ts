// Use cases of the OCI distribution API. Keeps the hot read paths (manifest by tag, blob HEAD/GET)
// off the database with caches that are updated in the same code path that changes the data, and
// dropped when another node announces a change (topics 'repositories', 'tags', 'manifests' of
// src/db/changes.ts). While announcements may be missed (`changes.live` false) they are bypassed.
import { Readable } from 'node:stream';
import { digestOf, parseDigest, type ParsedDigest } from '../lib/digest.ts';
import { AppError } from '../lib/errors.ts';
import { Lru } from '../lib/lru.ts';
import { SharedExclusiveLock, type WriteLock } from '../lib/rwlock.ts';
import { parseManifest, type ParsedManifest } from '../lib/manifest.ts';
import { isValidName, isValidTag } from '../lib/reference.ts';
import type { RegistryStore, ManifestRecord } from '../db/registry-store.ts';
import { LocalChanges, type Changes, type Topic } from '../db/changes.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { ChunkRange, UploadStatus, UploadStore } from '../storage/uploads.ts';
import { PathNotFoundError } from '../storage/driver/driver.ts';

export interface StoredManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export interface RegistryDeps {
  store: RegistryStore;
  blobs: BlobStore;
  uploads: UploadStore;
  /** Project id for a new repository (null when projects are not in use). */
  projectIdFor?: (repository: string) => Promise<number | null>;
  /**
   * Runs `write`, which adds `digest` (`size` bytes) to `repository`, if the project's storage
   * quota allows it (throws DENIED otherwise). Without it, every write is admitted.
   */
  admit?: (repository: string, digest: string, size: number, write: () => Promise<void>) => Promise<void>;
  /** When set, blob GETs may be answered with a presigned URL valid this many seconds (BERTH_S3_REDIRECT). */
  blobRedirectSeconds?: number;
  /**
   * The push/GC interlock: pushes hold it shared from the check of what they refer to until their
   * rows are committed; a GC sweep holds it exclusive. Default: one process (SharedExclusiveLock);
   * on PostgreSQL a cluster-wide one.
   */
  writes?: WriteLock;
  /** Announces changes to the other nodes and tells this one theirs (default: this process only). */
  changes?: Changes;
  /** Immutable tag rules (src/services/immutable-tags.ts); without them no tag is immutable. */
  immutable?: TagImmutability;
  /** Called after content changes (audit, statistics); never awaited by the caller's response. */
  onEvent?: (e: { type: 'push' | 'delete' | 'pull'; repository: string; digest: string; tag?: string }) => void;
}

/**
 * Which tags may not be overwritten or deleted (Harbor's immutable tag rules). Contract: `tagTest`
 * answers from memory as a rule (it runs on every tag push) and returns null when no enabled rule
 * covers the repository; `tagNames` reads what a delete would remove.
 */
export interface TagImmutability {
  tagTest(repository: string): Promise<((tag: string) => boolean) | null>;
  /** The repository's tags pointing at `digest`, or all of them when it is null. */
  tagNames(repositoryId: number, digest: string | null): Promise<string[]>;
}

const SEP = '\u0000';
/** Announcements of one GC run at most; beyond, the whole topic is announced. */
const COLLECTED_ANNOUNCEMENTS_MAX = 100;
const TAG_LIST_MAX = 50_000;
/** Cached tag-list pages per repository at most (the page cache holds 4,096 in all). */
const TAG_PAGE_KEYS_MAX = 2_048;
/** Blobs up to this size (image configs, small layers and artifacts) are served from memory. */
const SMALL_BLOB_MAX = 64 * 1024;

/**
 * The caches are sized for a heap capped at 128 MiB old space (npm start, the appliance): together
 * at most ~72 MiB (links ~18, tags ~12, manifests 16, tag lists 8, small blobs 8, tag pages 4, repository ids ~3), which keeps
 * a hot working set of thousands of repositories in memory.
 */
export class RegistryService {
  private repoIds = new Lru<string, number>(20_000, 4 * 1024 * 1024);
  /** repoId SEP digest -> size, for blobs linked into a repository */
  private links = new Lru<string, number>(100_000, 16 * 1024 * 1024);
  /** repoId SEP tag -> digest */
  private tags = new Lru<string, string>(50_000, 12 * 1024 * 1024);
  /** repoId SEP digest -> manifest bytes, bounded by total size */
  private manifests = new Lru<string, StoredManifest>(20_000, 16 * 1024 * 1024, (m) => m.bytes.length + 200);
  /**
   * repoId -> all its tag names, sorted, for paging without a query per page (a walk of 10,000
   * tags is 100 pages). Kept up to date in place when a tag is pushed or deleted (a binary search
   * and one splice), so a push does not make the next listing re-read every tag; repositories with
   * more than TAG_LIST_MAX tags are paged in SQL instead.
   */
  private tagLists = new Lru<number, string[]>(1_000, 8 * 1024 * 1024, (l) => 64 + l.length * 48);
  /**
   * digest -> bytes of small blobs: every pull reads the image's config blob right after its
   * manifest. Content-addressed, so never stale; who may read it is checked through `links` first.
   */
  private smallBlobs = new Lru<string, Buffer>(4_096, 8 * 1024 * 1024, (b) => b.length + 100);
  /** digest -> size of blobs seen in the object store, for redirects (content-addressed: never stale while linked). */
  private stored = new Lru<string, number>(10_000, 2 * 1024 * 1024);
  /**
   * repoId SEP the page's query -> that tag-list page as the HTTP layer serialized it: a walk asks
   * for the same pages again, and serializing a page cost about a fifth of its CPU. A tag change
   * drops only the pages it changes (see `dropChangedPages`).
   */
  private tagPages = new Lru<string, { size: number }>(4_096, 4 * 1024 * 1024, (p) => p.size);
  /** repoId -> the queries of its pages in `tagPages` (may name evicted pages; pruned as it grows). */
  private tagPageKeys = new Map<number, Set<string>>();
  /** repoId -> count of tag changes, so a listing read while a tag changed is not cached stale. */
  private tagGen = new Map<number, number>();
  /** Count of repositories created or deleted (or possibly so), for caches of repository lists. */
  private repoListGen = 0;
  /** repoId -> count of changes of its manifests or tags, for caches of facts derived from them (artifact counts). */
  private contentGens = new Map<number, number>();
  /** Count of changes of any one repository's content (see anyContentGen). */
  private anyContent = 0;
  /** Count of changes of every repository's content at once (a flush): added to each contentGen. */
  private allContentGen = 0;
  /** Count of tag-list flushes of every repository: added to each tagGen. */
  private allTagGen = 0;
  /** Numbers handed out while not live, never equal to each other (no cache may keep what is read then). */
  private unique = 0;
  private readonly changes: Changes;
  /**
   * Every step that reads "this blob or manifest is there" and then records something that relies
   * on it (completing an upload, a mount, a manifest PUT) runs shared; garbage collection runs
   * exclusive, so it never deletes between such a read and its write.
   */
  readonly writes: WriteLock;

  constructor(private readonly deps: RegistryDeps) {
    this.writes = deps.writes ?? new SharedExclusiveLock();
    this.changes = deps.changes ?? new LocalChanges();
    // This node's own changes updated the caches in place where they were made.
    this.changes.subscribe('repositories', (key, local) => {
      if (local) return;
      if (key === null) this.flush();
      else this.dropRepository(key);
    });
    this.changes.subscribe('tags', (key, local) => {
      if (!local) this.remoteTagChange(key);
    });
    this.changes.subscribe('manifests', (key, local) => {
      if (!local) this.remoteManifestChange(key);
    });
  }

  // ---- changes between nodes ----------------------------------------------------------------

  /** The gate of a cache fill: remember `changes.generation(topic)` before the query, keep the result only if this holds after it. */
  private fresh(topic: Topic, gen: number): boolean {
    return this.changes.live && this.changes.generation(topic) === gen;
  }

  /** Drops every cached fact (another node's changes may have been missed). */
  private flush(): void {
    this.repoIds.clear();
    this.links.clear();
    this.tags.clear();
    this.manifests.clear();
    this.tagLists.clear();
    this.tagPages.clear();
    this.tagPageKeys.clear();
    this.stored.clear();
    this.allTagGen++;
    this.allContentGen++;
    this.repoListGen++;
  }

  /** `key`: repository id, or id@tag (src/db/changes.ts). */
  private remoteTagChange(key: string | null): void {
    if (key === null) {
      this.tags.clear();
      this.tagLists.clear();
      this.tagPages.clear();
      this.tagPageKeys.clear();
      this.allTagGen++;
      this.allContentGen++;
      return;
    }
    const { id, item } = splitKey(key);
    if (item === null) this.tags.deleteWhere((k) => k.startsWith(`${id}${SEP}`));
    else this.tags.delete(`${id}${SEP}${item}`);
    this.tagsChanged(id);
    this.contentChanged(id);
  }

  /** `key`: repository id, or id@digest (src/db/changes.ts). */
  private remoteManifestChange(key: string | null): void {
    if (key === null) {
      this.manifests.clear();
      this.links.clear();
      this.stored.clear();
      this.allContentGen++;
      return;
    }
    const { id, item } = splitKey(key);
    if (item === null) {
      for (const c of [this.links, this.manifests] as Lru<string, unknown>[]) c.deleteWhere((k) => k.startsWith(`${id}${SEP}`));
    } else {
      this.links.delete(`${id}${SEP}${item}`);
      this.manifests.delete(`${id}${SEP}${item}`);
      this.stored.delete(item);
    }
    this.contentChanged(id);
  }

  // ---- repositories -------------------------------------------------------------------------

  private async repoId(name: string): Promise<number | null> {
    const live = this.changes.live;
    if (live) {
      const hit = this.repoIds.get(name);
      if (hit !== undefined) return hit;
    }
    const gen = this.changes.generation('repositories');
    const id = await this.deps.store.findRepositoryId(name);
    if (id !== null && this.fresh('repositories', gen)) this.repoIds.set(name, id);
    return id;
  }

  private async ensureRepo(name: string): Promise<number> {
    const hit = await this.repoId(name);
    if (hit !== null) return hit;
    // Every writer comes here (/v2, import, replication, proxy cache): none may create a repository
    // no client could pull.
    if (!isValidName(name)) throw new AppError('NAME_INVALID', { name: name.slice(0, 300) }, { message: 'invalid repository name' });
    const projectId = this.deps.projectIdFor ? await this.deps.projectIdFor(name) : null;
    const id = await this.deps.store.ensureRepository(name, projectId);
    this.repoListGen++;
    this.repoIds.set(name, id);
    // Other nodes keep lists of repositories (the Harbor API's totals and page positions).
    await this.changes.publish('repositories', name);
    return id;
  }

  /** Hits, misses and entries of the hot-path caches (for metrics). */
  cacheStats(): Record<string, { hits: number; misses: number; entries: number }> {
    const s = (c: { hits: number; misses: number; size: number }) => ({ hits: c.hits, misses: c.misses, entries: c.size });
    return { repositories: s(this.repoIds), links: s(this.links), tags: s(this.tags), manifests: s(this.manifests), tag_lists: s(this.tagLists), small_blobs: s(this.smallBlobs), tag_pages: s(this.tagPages) };
  }

  /**
   * Drops every cached fact about a repository after it was deleted through the management API,
   * on this node and (announced) on every other.
   */
  async forgetRepository(name: string): Promise<void> {
    this.dropRepository(name);
    await this.changes.publish('repositories', name);
  }

  private dropRepository(name: string): void {
    this.repoListGen++;
    const id = this.repoIds.peek(name);
    this.repoIds.delete(name);
    if (id === undefined) return;
    const prefix = `${id}${SEP}`;
    for (const c of [this.links, this.tags, this.manifests, this.tagPages] as Lru<string, unknown>[]) c.deleteWhere((k) => k.startsWith(prefix));
    this.tagsChanged(id);
    this.contentChanged(id);
  }

  /**
   * Drops cached facts about links and manifests garbage collection removed (a removed manifest's
   * link is among the links), here and (announced) on every other node.
   */
  async forgetCollected(links: { repositoryId: number; digest: string }[], manifests: { repositoryId: number; digest: string }[]): Promise<void> {
    for (const l of links) this.links.delete(`${l.repositoryId}${SEP}${l.digest}`);
    for (const m of manifests) {
      this.manifests.delete(`${m.repositoryId}${SEP}${m.digest}`);
      this.contentChanged(m.repositoryId);
    }
    const keys = new Set([...links, ...manifests].map((x) => `${x.repositoryId}@${x.digest}`));
    if (!keys.size) return;
    if (keys.size > COLLECTED_ANNOUNCEMENTS_MAX) return this.changes.publish('manifests', null);
    for (const k of keys) await this.changes.publish('manifests', k);
  }

  /** The repository's tags changed in a way not known in detail: drop its list and every page. */
  private tagsChanged(id: number): void {
    this.tagLists.delete(id);
    this.dropChangedPages(id, null, null);
    this.bumpTagGen(id);
  }

  /**
   * Numbers that change whenever a repository is created or deleted (`repositoriesGen`), or a
   * manifest or a tag of the repository is added or removed (`contentGen`: push, delete, garbage
   * collection, repository deletion): facts derived from them and cached elsewhere (the Harbor
   * API's counts and page positions) are valid while they stay the same.
   */
  repositoriesGen(): number {
    // While another node's change may be missed, no two calls agree: nothing read meanwhile is kept.
    if (!this.changes.live) return -++this.unique;
    return this.repoListGen;
  }

  contentGen(repositoryId: number): number {
    if (!this.changes.live) return -++this.unique;
    return (this.contentGens.get(repositoryId) ?? 0) + this.allContentGen;
  }

  /** A number that changes whenever any repository's content changes (the sum of every contentGen's changes). */
  anyContentGen(): number {
    if (!this.changes.live) return -++this.unique;
    return this.anyContent + this.allContentGen;
  }

  private contentChanged(id: number): void {
    this.contentGens.set(id, (this.contentGens.get(id) ?? 0) + 1);
    this.anyContent++;
  }

  private tagGenOf(id: number): number {
    return (this.tagGen.get(id) ?? 0) + this.allTagGen;
  }

  /** Any listing read before now must not be cached (it may miss the change). */
  private bumpTagGen(id: number): void {
    this.tagGen.set(id, (this.tagGen.get(id) ?? 0) + 1);
  }

  /**
   * `tag` was added (`added` true) or removed: update the cached sorted list in place and drop the
   * cached pages it changes. Without a cached list nothing is known of the neighbours, so every
   * page of the repository goes (the list is read again on the next listing).
   */
  private tagChanged(id: number, tag: string, added: boolean): void {
    this.bumpTagGen(id);
    const all = this.tagLists.peek(id);
    if (!all) {
      this.dropChangedPages(id, null, null);
      return;
    }
    const i = lowerBound(all, tag);
    const present = i < all.length && all[i] === tag;
    if (present === added) return; // a re-tag, or the removal of a tag that was not there: no listing changes
    // Pages are judged against the list that holds the tag (after an insert, before a removal).
    if (added) all.splice(i, 0, tag);
    this.dropChangedPages(id, all, tag);
    if (!added) all.splice(i, 1);
    if (all.length > TAG_LIST_MAX) this.tagLists.delete(id);
    else this.tagLists.set(id, all); // re-weighed
  }

  /**
   * Drops the cached pages of repository `id` that a change of `tag` alters, judged with the sorted
   * list `all` that holds the tag; with no list (or no tag), every page. A page asked as
   * (n, last) holds the first n tags after `last` and a Link when there is an (n+1)th, so it changes
   * exactly when the tag is after `last` and among the first n+1 tags after it. A page whose query
   * cannot be read that way (no n: the whole rest) changes whenever the tag is after `last`.
   */
  private dropChangedPages(id: number, all: string[] | null, tag: string | null): void {
    const keys = this.tagPageKeys.get(id);
    if (!keys) return;
    for (const key of keys) {
      if (!this.tagPages.has(`${id}${SEP}${key}`)) {
        keys.delete(key);
        continue;
      }
      if (all && tag !== null && !pageHolds(all, key, tag)) continue;
      this.tagPages.delete(`${id}${SEP}${key}`);
      keys.delete(key);
    }
    if (!keys.size) this.tagPageKeys.delete(id);
  }

  // ---- blobs --------------------------------------------------------------------------------

  /** Size of a blob linked into the repository, or null. */
  async blobSize(repository: string, digest: string): Promise<number | null> {
    const id = await this.repoId(repository);
    if (id === null) return null;
    const key = `${id}${SEP}${digest}`;
    if (this.changes.live) {
      const hit = this.links.get(key);
      if (hit !== undefined) return hit;
    }
    const gen = this.changes.generation('manifests');
    const size = await this.deps.store.linkedBlobSize(id, digest);
    if (size !== null && this.fresh('manifests', gen)) this.links.set(key, size);
    return size;
  }

  async statBlob(repository: string, d: ParsedDigest): Promise<number> {
    const size = await this.blobSize(repository, d.digest);
    if (size === null) throw new AppError('BLOB_UNKNOWN', { digest: d.digest });
    return size;
  }

  /** The bytes of a blob (start and end inclusive); callers check the repository's link first. */
  async openBlob(d: ParsedDigest, start?: number, end?: number): Promise<Readable> {
    try {
      return await this.deps.blobs.open(d, start, end);
    } catch (e) {
      if (!(e instanceof PathNotFoundError)) throw e;
      // Manifests are blobs too, stored in the database rather than as files.
      const bytes = await this.deps.store.manifestContent(d.digest);
      if (!bytes) throw new AppError('BLOB_UNKNOWN', { digest: d.digest });
      return Readable.from([bytes.subarray(start ?? 0, end === undefined ? undefined : end + 1)]);
    }
  }

  /**
   * The whole blob from memory when it is small (callers check the repository's link first), or
   * null: then stream it with openBlob.
   */
  async smallBlob(d: ParsedDigest, size: number): Promise<Buffer | null> {
    if (size > SMALL_BLOB_MAX) return null;
    const hit = this.smallBlobs.get(d.digest);
    if (hit) return hit;
    const bytes = (await this.deps.blobs.getBytes(d)) ?? (await this.deps.store.manifestContent(d.digest));
    if (!bytes || bytes.length !== size) return null;
    this.smallBlobs.set(d.digest, bytes);
    return bytes;
  }

  /**
   * A short-lived URL the client may fetch the blob from directly (callers check the repository's
   * link first), or null: serve it. Small blobs are served from memory (cheaper than a second
   * round trip), and manifests fetched as blobs live in the database, not in the object store.
   */
  async blobRedirect(d: ParsedDigest, size: number): Promise<string | null> {
    const seconds = this.deps.blobRedirectSeconds;
    if (!seconds || size <= SMALL_BLOB_MAX) return null;
    if (!this.changes.live || this.stored.get(d.digest) === undefined) {
      if ((await this.deps.blobs.size(d)) !== size) return null;
      this.stored.set(d.digest, size);
    }
    return this.deps.blobs.redirectUrl(d, seconds);
  }

  /** A manifest's bytes by digest, wherever they are stored, or null. */
  async manifestBytes(digest: string): Promise<Buffer | null> {
    const hit = await this.deps.store.manifestContent(digest);
    if (hit) return hit;
    const d = parseDigest(digest);
    return d ? this.deps.blobs.getBytes(d) : null;
  }

  async deleteBlob(repository: string, d: ParsedDigest): Promise<void> {
    const id = await this.repoId(repository);
    const ok = id !== null && (await this.deps.store.unlinkBlob(id, d.digest));
    if (id !== null) this.links.delete(`${id}${SEP}${d.digest}`);
    if (!ok) throw new AppError('BLOB_UNKNOWN', { digest: d.digest });
    await this.changes.publish('manifests', `${id}@${d.digest}`);
    this.deps.onEvent?.({ type: 'delete', repository, digest: d.digest });
  }

  private admit(repository: string, digest: string, size: number, write: () => Promise<void>): Promise<void> {
    return this.deps.admit ? this.deps.admit(repository, digest, size, write) : write();
  }

  private async link(repository: string, digest: string, size: number): Promise<void> {
    const id = await this.ensureRepo(repository);
    await this.deps.store.linkBlob(id, digest, size);
    this.links.set(`${id}${SEP}${digest}`, size);
  }

  /**
   * Links a blob from another repository (or, without `from`, from any of `candidates` the caller
   * may read) into `repository`. Returns the size, or null when no mount is possible.
   */
  async mountBlob(repository: string, d: ParsedDigest, from: string | undefined, mayRead: (repo: string) => Promise<boolean>): Promise<number | null> {
    let size: number | null = null;
    if (from !== undefined) {
      if (from === repository || !(await mayRead(from))) return null;
      size = await this.blobSize(from, d.digest);
    } else {
      for (const r of await this.deps.store.repositoriesWithBlob(d.digest)) {
        if (r.name === repository || (await mayRead(r.name))) {
          size = r.size;
          break;
        }
      }
    }
    if (size === null) return null;
    const found = size;
    return this.writes.shared(async () => {
      if ((await this.deps.blobs.size(d)) !== found) return null;
      await this.admit(repository, d.digest, found, () => this.link(repository, d.digest, found));
      return found;
    });
  }

  // ---- uploads ------------------------------------------------------------------------------

  /**
   * Starts an upload session; `transient` for one completed by the same request (not resumable).
   * `owner` (a principal key) is counted against the cap of open sessions per principal.
   */
  startUpload(repository: string, transient = false, owner?: string): Promise<UploadStatus> {
    return this.deps.uploads.create(repository, transient, owner);
  }

  uploadStatus(repository: string, uuid: string): Promise<UploadStatus> {
    return this.deps.uploads.status(uuid, repository);
  }

  appendUpload(repository: string, uuid: string, body: Readable, range?: ChunkRange): Promise<UploadStatus> {
    return this.deps.uploads.append(uuid, repository, body, range);
  }

  /**
   * The blob commit, in one place: receive and hash the last chunk → verify size and digest →
   * place the bytes at the content address (a rename on disk, a multipart completion and
   * server-side copy on object storage) → link into the repository, both under the GC lock and
   * the project's quota → clean up (the session's leftovers go once the answer is out).
   */
  async completeUpload(repository: string, uuid: string, d: ParsedDigest, body?: Readable, range?: ChunkRange): Promise<number> {
    const size = await this.deps.uploads.withSession(uuid, repository, async (upload) => {
      if (body) await upload.receive(body, range);
      const n = await upload.verify(d);
      await this.writes.shared(() =>
        this.admit(repository, d.digest, n, async () => {
          await upload.place(d);
          await this.link(repository, d.digest, n);
        }),
      );
      upload.end();
      return n;
    });
    this.deps.onEvent?.({ type: 'push', repository, digest: d.digest });
    return size;
  }

  cancelUpload(repository: string, uuid: string): Promise<void> {
    return this.deps.uploads.cancel(uuid, repository);
  }

  // ---- manifests ----------------------------------------------------------------------------

  /** Resolves a tag or digest reference to a digest, or null. */
  private async resolve(id: number, reference: string): Promise<string | null> {
    if (reference.includes(':')) return reference;
    const key = `${id}${SEP}${reference}`;
    if (this.changes.live) {
      const hit = this.tags.get(key);
      if (hit !== undefined) return hit;
    }
    const gen = this.changes.generation('tags');
    const digest = await this.deps.store.findTag(id, reference);
    if (digest !== null && this.fresh('tags', gen)) this.tags.set(key, digest);
    return digest;
  }

  async getManifest(repository: string, reference: string): Promise<StoredManifest> {
    const id = await this.repoId(repository);
    const digest = id === null ? null : await this.resolve(id, reference);
    if (id === null || digest === null) throw new AppError('MANIFEST_UNKNOWN', { reference });
    const key = `${id}${SEP}${digest}`;
    if (this.changes.live) {
      const hit = this.manifests.get(key);
      if (hit) return hit;
    }
    const gen = this.changes.generation('manifests');
    const rec = await this.deps.store.findManifest(id, digest);
    const bytes = rec && (await this.manifestBytes(digest));
    if (!rec || !bytes) throw new AppError('MANIFEST_UNKNOWN', { reference });
    const m = { digest, mediaType: rec.mediaType, bytes };
    if (this.fresh('manifests', gen)) this.manifests.set(key, m);
    return m;
  }

  /**
   * Validates and stores a manifest under a tag or a digest reference. Every referenced blob and
   * child manifest must already be in the repository. Returns the digest and the subject, if any.
   */
  async putManifest(repository: string, reference: string, contentType: string | undefined, body: Buffer): Promise<{ digest: string; subject: string | null }> {
    const isDigestRef = reference.includes(':');
    let digest: string;
    if (isDigestRef) {
      const d = parseDigest(reference);
      if (!d) throw new AppError('DIGEST_INVALID', { reference });
      digest = digestOf(body, d.algorithm);
      if (digest !== reference) throw new AppError('DIGEST_INVALID', { expected: reference, actual: digest });
    } else {
      if (!isValidTag(reference)) throw new AppError('TAG_INVALID', { tag: reference });
      digest = digestOf(body);
    }
    const m = parseManifest(body, contentType);
    if (!isDigestRef) await this.refuseOverwrite(repository, reference, digest);
    return this.writes.shared(() => this.storeManifest(repository, isDigestRef ? null : reference, digest, m, body));
  }

  /**
   * Validate, then write: the references are checked before anything is recorded, and the
   * repository is created only together with the manifest (a refused push leaves nothing behind).
   */
  private async storeManifest(repository: string, tag: string | null, digest: string, m: ParsedManifest, body: Buffer): Promise<{ digest: string; subject: string | null }> {
    await this.checkReferences(await this.repoId(repository), m);
    const record = {
      digest,
      mediaType: m.mediaType,
      artifactType: m.artifactType,
      configType: m.configType,
      size: body.length,
      subject: m.subject?.digest ?? null,
      annotations: m.annotations ? JSON.stringify(m.annotations) : null,
      refs: [...m.blobs, ...m.manifests],
      content: body,
    };
    let id = 0;
    await this.admit(repository, digest, body.length, async () => {
      id = await this.ensureRepo(repository);
      try {
        await this.deps.store.putManifest(id, record, tag);
      } finally {
        this.contentChanged(id);
      }
    });
    if (tag !== null) {
      this.tags.set(`${id}${SEP}${tag}`, digest);
      this.tagChanged(id, tag, true);
    }
    this.links.set(`${id}${SEP}${digest}`, body.length);
    this.manifests.set(`${id}${SEP}${digest}`, { digest, mediaType: m.mediaType, bytes: body });
    // A new manifest is nothing another node has cached (it keeps only what it found); a tag may be.
    // Either way their lists and counts of the repository's content change.
    await (tag !== null ? this.changes.publish('tags', `${id}@${tag}`) : this.changes.publish('manifests', `${id}@${digest}`));
    this.deps.onEvent?.({ type: 'push', repository, digest, tag: tag ?? undefined });
    return { digest, subject: record.subject };
  }

  /** Throws MANIFEST_BLOB_UNKNOWN unless every reference is in the repository (`id` null: not created yet). */
  private async checkReferences(id: number | null, m: ParsedManifest): Promise<void> {
    if (id === null) {
      if (m.blobs.length || m.manifests.length) throw new AppError('MANIFEST_BLOB_UNKNOWN', { digests: m.blobs.length ? m.blobs : m.manifests });
      return;
    }
    const missingBlobs: string[] = [];
    const unknown: string[] = [];
    // Under the shared write lock: with several nodes (deps.writes is the cluster lock), a link cached
    // here may have been collected by another node's GC a moment ago, its announcement still on the way.
    const trust = this.changes.live && !this.deps.writes;
    for (const b of m.blobs) {
      if (!trust || this.links.get(`${id}${SEP}${b}`) === undefined) unknown.push(b);
    }
    if (unknown.length) {
      const present = await this.deps.store.linkedDigests(id, unknown);
      for (const b of unknown) if (!present.has(b)) missingBlobs.push(b);
    }
    if (missingBlobs.length) throw new AppError('MANIFEST_BLOB_UNKNOWN', { digests: missingBlobs });
    if (m.manifests.length) {
      const present = await this.deps.store.manifestDigests(id, m.manifests);
      const missing = m.manifests.filter((d) => !present.has(d));
      if (missing.length) throw new AppError('MANIFEST_BLOB_UNKNOWN', { digests: missing });
    }
  }

  // ---- immutable tag rules (issue 17: Harbor's immutable tags) --------------------------------

  /** DENIED when `tag` is immutable, exists, and points at another manifest than `digest`. */
  private async refuseOverwrite(repository: string, tag: string, digest: string): Promise<void> {
    const test = await this.deps.immutable?.tagTest(repository);
    if (!test?.(tag)) return;
    const id = await this.repoId(repository);
    // Read from the database, not the tag cache: only pushes of protected tags pay for it.
    const current = id === null ? null : await this.deps.store.findTag(id, tag);
    if (current !== null && current !== digest) throw new AppError('DENIED', { tag }, { message: `The tag ${repository}:${tag} is immutable, cannot be overwritten` });
  }

  /** DENIED when deleting `digest` (null: the whole repository) would remove an immutable tag. */
  async refuseImmutableDelete(repository: string, id: number, digest: string | null): Promise<void> {
    const test = await this.deps.immutable?.tagTest(repository);
    if (!test) return;
    const hit = (await this.deps.immutable!.tagNames(id, digest)).filter(test);
    if (!hit.length) return;
    const what = digest === null ? `The repository ${repository}` : `The artifact ${repository}@${digest}`;
    throw new AppError('DENIED', { tags: hit }, { message: `${what} has immutable tags (${hit.slice(0, 5).join(', ')}${hit.length > 5 ? ', …' : ''}), cannot be deleted` });
  }

  /** Deletes by digest (the manifest and its tags) or by tag (only the tag). */
  async deleteManifest(repository: string, reference: string): Promise<void> {
    const id = await this.repoId(repository);
    if (id === null) throw new AppError('MANIFEST_UNKNOWN', { reference });
    if (!reference.includes(':')) {
      const test = await this.deps.immutable?.tagTest(repository);
      if (test?.(reference) && (await this.deps.store.findTag(id, reference)) !== null) {
        throw new AppError('DENIED', { tag: reference }, { message: `The tag ${repository}:${reference} is immutable, cannot be deleted` });
      }
    } else await this.refuseImmutableDelete(repository, id, reference);
    if (!reference.includes(':')) {
      const ok = await this.deps.store.deleteTag(id, reference);
      this.contentChanged(id);
      this.tags.delete(`${id}${SEP}${reference}`);
      this.tagChanged(id, reference, false);
      if (!ok) throw new AppError('MANIFEST_UNKNOWN', { reference });
      await this.changes.publish('tags', `${id}@${reference}`);
      this.deps.onEvent?.({ type: 'delete', repository, digest: '', tag: reference });
      return;
    }
    const removedTags = await this.deps.store.deleteManifest(id, reference);
    this.contentChanged(id);
    this.manifests.delete(`${id}${SEP}${reference}`);
    this.links.delete(`${id}${SEP}${reference}`);
    for (const t of removedTags ?? []) {
      this.tags.delete(`${id}${SEP}${t}`);
      this.tagChanged(id, t, false);
    }
    if (removedTags === null) throw new AppError('MANIFEST_UNKNOWN', { reference });
    await this.changes.publish('manifests', `${id}@${reference}`);
    if (removedTags.length > COLLECTED_ANNOUNCEMENTS_MAX) await this.changes.publish('tags', String(id));
    else for (const t of removedTags) await this.changes.publish('tags', `${id}@${t}`);
    this.deps.onEvent?.({ type: 'delete', repository, digest: reference });
  }

  // ---- listings -----------------------------------------------------------------------------

  /** Tags after `last`; throws NAME_UNKNOWN for a repository that does not exist. */
  async listTags(repository: string, limit: number, last?: string): Promise<string[]> {
    const id = await this.repoId(repository);
    if (id === null) throw new AppError('NAME_UNKNOWN', { name: repository });
    const all = await this.allTags(id);
    if (!all) return this.deps.store.listTags(id, last, limit);
    const lo = last === undefined ? 0 : upperBound(all, last);
    return all.slice(lo, lo + limit);
  }

  /**
   * A tag-list page built by `build` (which also reports unknown repositories), reused while the
   * repository's tags are unchanged. `key` identifies the page (its query); `size` bounds the cache.
   */
  async tagPage<T extends { size: number }>(repository: string, key: string, build: () => Promise<T>): Promise<T> {
    const id = await this.repoId(repository);
    if (id === null) return build();
    const k = `${id}${SEP}${key}`;
    if (this.changes.live) {
      const hit = this.tagPages.get(k);
      if (hit) return hit as T;
    }
    const gen = this.tagGenOf(id);
    const topicGen = this.changes.generation('tags');
    const value = await build();
    // A tag that changed while the page was built may be missing from it: do not keep that page.
    if (this.tagGenOf(id) === gen && this.fresh('tags', topicGen)) {
      let keys = this.tagPageKeys.get(id);
      if (!keys) this.tagPageKeys.set(id, (keys = new Set()));
      if (keys.size >= TAG_PAGE_KEYS_MAX) for (const q of keys) if (!this.tagPages.has(`${id}${SEP}${q}`)) keys.delete(q);
      if (keys.size < TAG_PAGE_KEYS_MAX) {
        keys.add(key);
        this.tagPages.set(k, value);
      }
    }
    return value;
  }

  /** Every tag of the repository, sorted, from the cache or one query; null when there are too many. */
  private async allTags(id: number): Promise<string[] | null> {
    if (this.changes.live) {
      const hit = this.tagLists.get(id);
      if (hit) return hit;
    }
    const gen = this.tagGenOf(id);
    const topicGen = this.changes.generation('tags');
    const all = await this.deps.store.listTags(id, undefined, TAG_LIST_MAX + 1);
    if (all.length > TAG_LIST_MAX) return null;
    if (this.tagGenOf(id) === gen && this.fresh('tags', topicGen)) this.tagLists.set(id, all);
    return all;
  }

  listRepositories(limit: number, last?: string, projectIds?: number[]): Promise<string[]> {
    return this.deps.store.listRepositories(last, limit, projectIds);
  }

  async referrers(repository: string, subject: string, artifactType?: string): Promise<ManifestRecord[]> {
    const id = await this.repoId(repository);
    if (id === null) return [];
    return this.deps.store.referrers(id, subject, artifactType);
  }
}

/** An announcement's key: `<repository id>` or `<repository id>@<tag or digest>`. */
function splitKey(key: string): { id: number; item: string | null } {
  const at = key.indexOf('@');
  return at < 0 ? { id: Number(key), item: null } : { id: Number(key.slice(0, at)), item: key.slice(at + 1) };
}

// Tags are ASCII (the tag grammar), so JS string order is SQLite's BINARY order.

/** Index of the first element of sorted `all` that is >= `s`. */
function lowerBound(all: string[], s: string): number {
  let lo = 0;
  let hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (all[mid] < s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first element of sorted `all` that is > `s`. */
function upperBound(all: string[], s: string): number {
  let lo = 0;
  let hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (all[mid] <= s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Whether the page asked as `key` (the tag-list handler's `n` NUL `last`) shows `tag`, which is in
 * the sorted list `all`, or its Link depends on it: the tag is after `last` and among the first
 * n+1 tags after it. An `n` that is not a plain number (the whole rest) counts as unbounded.
 */
function pageHolds(all: string[], key: string, tag: string): boolean {
  const sep = key.indexOf(SEP);
  const nRaw = sep < 0 ? '' : key.slice(0, sep);
  const last = sep < 0 ? '' : key.slice(sep + 1);
  if (last !== '' && tag <= last) return false;
  if (!/^\d{1,9}$/.test(nRaw)) return true;
  const n = Number(nRaw);
  if (n === 0) return false;
  const from = last === '' ? 0 : upperBound(all, last);
  return lowerBound(all, tag) - from <= n; // the tag's 0-based position after `last` is at most n
}
