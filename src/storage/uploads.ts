// Blob upload sessions. Every byte is hashed as it arrives; completion verifies the digest and
// only then places the bytes at the blob's content address, so a crash (or kill -9) leaves either
// a resumable session or a complete blob, never a half blob in the store.
//
// Two ways to keep the bytes received so far, chosen by the driver:
// - a local filesystem (driver.files): appended to uploads/<uuid>/data, fdatasync'ed once at
//   completion and renamed into blobs/ (the fast path: one write of each byte, no copy);
// - object storage (no append, no rename): a multipart object uploads/<uuid>/data. Bytes are
//   gathered into parts of `partSize` (≥ the driver's 5 MiB minimum); what is left at the end of
//   a request (below the minimum, so it cannot be a part that is not the last) is kept as a small
//   tail object uploads/<uuid>/tail/<offset>, and the session's state (multipart id, parts, tail
//   length) in its record. Completion uploads the tail as the last part, completes the multipart
//   object and copies it server-side to its content address (radosgw copies by reference).
//
// The running sha256 is kept in memory, as each chunk arrives. When it is missing (a restart, or
// a session another process received, with no saved state to continue), it is recomputed by
// re-reading what was stored: on disk the data file; on object storage the parts cannot be read
// before completion, so the multipart object is completed, read back (hashed) into a fresh
// multipart object, and continued from there.
//
// Where records live decides the mode:
// - one node (StoredSessionRecords, info.json in the storage): this process's copy of a session
//   is the truth between requests, and info.json is only for restarts;
// - several nodes (SharedSessionRecords, a database row every node reads, src/db): every request
//   re-reads the record (one indexed read), claims a lease on it before a body is read (two nodes
//   never write one session at once), and ends with a check-and-set write of the new state. The
//   running hash is kept only while the record is still what this node last wrote (object
//   storage: its version; a disk: the data file's size, which only ever grows); otherwise the node
//   continues from the record. Each write also stores the hash of the bytes so far: a chunk (a
//   PATCH with Content-Range, as the OCI conformance suite and oras send them, or any PATCH after
//   the session's first) is hashed with a SHA-256 whose state can be saved
//   (src/lib/running-hash.ts), and that state is stored, so the next chunk continues it on any node
//   without reading earlier bytes; otherwise (the one PATCH of docker, podman and skopeo) Node's
//   faster native hash runs and its digest is stored, so a PUT without a body completes on any
//   node without re-reading anything. A record with neither (an older one, a state that fails its
//   checks, a format this node does not know, parts nobody recorded) is continued by re-reading
//   the stored bytes, once: the re-read of a chunk makes a state that can be saved.
import { randomUUID } from 'node:crypto';
import { finished, type Readable, type Writable } from 'node:stream';
import { finished as streamFinished } from 'node:stream/promises';
import type { DigestAlgorithm, ParsedDigest } from '../lib/digest.ts';
import { nativeHash, RESUMABLE_SHA256_FORMAT, resumableSha256, resumeSha256, type RunningHash } from '../lib/running-hash.ts';
import { AppError } from '../lib/errors.ts';
import { KeyedMutex } from '../lib/mutex.ts';
import { bodyBytesReceived } from '../lib/young-gc.ts';
import type { BlobStore } from './blob-store.ts';
import { InvalidPartError, type FileWriter, type LocalFiles, type PartInfo, type StorageDriver } from './driver/driver.ts';
import { paths } from './paths.ts';

export interface UploadInfo {
  uuid: string;
  repository: string;
  startedAt: string;
  /** Who opened it (a principal key), for the cap per principal. */
  owner?: string;
}

/** How many sessions may be open at once (Infinity: no cap). */
export interface UploadLimits {
  perRepository: number;
  perOwner: number;
}

/** Object storage only: where the received bytes are (persisted in info.json after each request). */
interface PartsState {
  multipartId?: string;
  parts: (PartInfo & { size: number })[];
  /** Bytes in the tail object, which starts at the end of the parts. */
  tail: number;
}

/** A session as written down between requests. */
export interface SessionRecord extends UploadInfo, Partial<PartsState> {}

/**
 * Where session records live between requests on one node: info.json next to the session's bytes
 * (StoredSessionRecords), read only after a restart. Several nodes share SharedSessionRecords
 * instead (a database row with the offset, the digest so far, versions and a lease).
 */
export interface SessionRecords {
  read(uuid: string): Promise<SessionRecord | null>;
  /**
   * Creates or replaces the record. `durable` false (a new session's first record on a disk):
   * it survives a restart of the process, not necessarily a power loss.
   */
  write(record: SessionRecord, durable: boolean): Promise<void>;
}

/** Records as uploads/<uuid>/info.json in the storage itself (removed with the session's bytes). */
export class StoredSessionRecords implements SessionRecords {
  constructor(private readonly driver: StorageDriver) {}

  async read(uuid: string): Promise<SessionRecord | null> {
    const raw = await this.driver.getContent(paths.uploadInfo(uuid));
    if (!raw) return null;
    try {
      return JSON.parse(raw.toString('utf8')) as SessionRecord;
    } catch {
      return null; // torn by a power loss: start again
    }
  }

  async write(record: SessionRecord, durable: boolean): Promise<void> {
    const data = Buffer.from(JSON.stringify(record));
    if (durable || !this.driver.files) return this.driver.putContent(paths.uploadInfo(record.uuid), data);
    const iw = await this.driver.files.writer(paths.uploadInfo(record.uuid), false);
    iw.stream.end(data);
    await iw.close();
  }
}

/** What a request leaves in a shared record: how many bytes, where they are, and their digest. */
export interface SessionState {
  offset: number;
  multipartId?: string;
  parts: (PartInfo & { size: number })[];
  tail: number;
  /**
   * The hash of the first `offset` bytes in `hashFormat`: a finished digest (DIGEST_FORMAT) or a
   * state to continue (RESUMABLE_SHA256_FORMAT); null: unknown.
   */
  hashState?: Buffer | null;
  hashFormat?: string | null;
}

/** A session as a shared store keeps it. */
export interface SharedSessionRecord extends UploadInfo, SessionState {
  /** Bumped by every write. */
  version: number;
  updatedAt: Date;
  /** The node writing to the session now, until leaseUntil. */
  lease: string | null;
  leaseUntil: Date | null;
}

/**
 * Session records every node shares (a database table: src/db/upload-session-store.ts). Writes are
 * check-and-set on the version (false: another node wrote it, holds it, or it is gone), and a
 * request writes only under a lease it claimed.
 */
export interface SharedSessionRecords {
  readonly shared: true;
  /** Inserts a new session's record (version 0, offset 0, no lease). */
  create(info: UploadInfo, now: Date): Promise<void>;
  read(uuid: string): Promise<SharedSessionRecord | null>;
  /** Open sessions of the repository and of the owner, on every node. */
  count(repository: string, owner: string | undefined): Promise<{ repository: number; owner: number }>;
  /** Takes the lease when the record is at `version` and not leased until after `now`; version + 1. */
  claim(uuid: string, version: number, lease: string, now: Date, until: Date): Promise<boolean>;
  renew(uuid: string, version: number, lease: string, now: Date, until: Date): Promise<boolean>;
  /** Writes the state under the lease (version + 1); keeps the lease until `hold`, or clears it. */
  update(uuid: string, version: number, lease: string, state: SessionState, now: Date, hold?: Date): Promise<boolean>;
  /** Clears the lease, state unchanged (version + 1). */
  release(uuid: string, version: number, lease: string, now: Date): Promise<boolean>;
  delete(uuid: string): Promise<void>;
  /** Records last written before `before` and not leased at `now`, oldest first. */
  idle(before: Date, now: Date, limit: number): Promise<SharedSessionRecord[]>;
}

function isShared(r: SessionRecords | SharedSessionRecords | undefined): r is SharedSessionRecords {
  return !!r && (r as SharedSessionRecords).shared === true;
}

/** hashFormat of a stored digest: the sha256 of the record's first `offset` bytes (it verifies, it cannot continue). */
const DIGEST_FORMAT = 'sha256-digest';

/** A record's hash of its first `offset` bytes, as stored (checked when used). */
interface SavedHash {
  offset: number;
  format: typeof DIGEST_FORMAT | typeof RESUMABLE_SHA256_FORMAT;
  value: Buffer;
}

/** The record's hash, when in a format this node knows (a state is checked fully when continued). */
function savedHash(record: SessionState): SavedHash | undefined {
  const value = record.hashState;
  if (!value) return undefined;
  if (record.hashFormat === DIGEST_FORMAT && value.length === 32) return { offset: record.offset, format: DIGEST_FORMAT, value };
  if (record.hashFormat === RESUMABLE_SHA256_FORMAT) return { offset: record.offset, format: RESUMABLE_SHA256_FORMAT, value };
  return undefined;
}

function lostSession(uuid: string): AppError {
  return new AppError('BLOB_UPLOAD_INVALID', { uuid, reason: 'the upload session was taken over by another request' }, {
    message: 'the upload session was changed by another request meanwhile; ask for its status and resume',
  });
}

/**
 * A request's lease on a shared record: claimed before the body is read, renewed while it
 * streams, given up by the request's last write (or released). Its writes and renewals run one at
 * a time, so a renewal never races a write that bumps the version.
 */
class Lease {
  /** The record's version while this request holds it. */
  version: number;
  /** Until the request's last write or release. */
  held = true;
  /** The record changed under us (the lease expired unrenewed and another node took it, or the session was removed). */
  lost = false;
  /** Whether this request wrote a new state (then this node's copy is the record's). */
  wrote = false;
  private queue: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;

  constructor(private readonly records: SharedSessionRecords, readonly uuid: string, readonly name: string, private readonly ms: number, version: number) {
    this.version = version;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  startRenewing(): void {
    this.timer = setInterval(() => {
      void this.serial(async () => {
        if (!this.held || this.lost) return;
        const now = Date.now();
        if (!(await this.records.renew(this.uuid, this.version, this.name, new Date(now), new Date(now + this.ms)))) this.lost = true;
      }).catch(() => undefined); // the database is away: the next renewal tries again
    }, Math.max(Math.floor(this.ms / 3), 10));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Writes the state; `final` gives the lease up with it. */
  write(state: SessionState, final: boolean): Promise<void> {
    return this.serial(async () => {
      if (this.lost || !this.held) throw lostSession(this.uuid);
      const now = Date.now();
      if (!(await this.records.update(this.uuid, this.version, this.name, state, new Date(now), final ? undefined : new Date(now + this.ms)))) {
        this.lost = true;
        throw lostSession(this.uuid);
      }
      this.version++;
      this.wrote = true;
      if (final) this.held = false;
    });
  }

  /** Gives the lease up without writing a state. */
  release(): Promise<void> {
    return this.serial(async () => {
      if (!this.held || this.lost) return;
      this.held = false;
      if (await this.records.release(this.uuid, this.version, this.name, new Date())) this.version++;
      else this.lost = true;
    });
  }
}

interface LiveSession {
  info: UploadInfo;
  /** The running sha256 of the first `offset` bytes. */
  hash?: { hash: RunningHash; offset: number };
  /** Shared records: the record's version this copy matches (-1: none, rebuild from the record). */
  version?: number;
  /**
   * Shared records: the stored hash of the first `offset` bytes (a digest verifies a PUT without
   * re-reading; a state also continues the hash).
   */
  saved?: SavedHash;
  /** Object storage: the session's parts and tail. */
  parts?: PartsState;
  /** A single-request push: never written down, cancelled by its request when it fails. */
  transient?: boolean;
  done?: boolean;
  /** Counted in the open-session counts; cleared by the one place that ends a session (release). */
  counted?: boolean;
}

export interface UploadStatus extends UploadInfo {
  size: number;
}

/** Optional Content-Range of a chunk: inclusive byte positions. */
export interface ChunkRange {
  start: number;
  end: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MiB = 1024 * 1024;
/** Shared records: copies of sessions a node keeps (see UploadStore.evictCopies). */
const MAX_COPIES = 10_000;
/** S3's limit on the parts of a multipart object. */
const MAX_PARTS = 10_000;

function partsBytes(st: PartsState): number {
  return st.parts.reduce((n, p) => n + p.size, 0);
}

function rangeInvalid(body: Readable, current: number, range: ChunkRange): AppError {
  body.resume();
  return new AppError('RANGE_INVALID', { expectedStart: current, got: range }, { headers: { Range: `0-${Math.max(current - 1, 0)}` } });
}

function endedEarly(received: number, size: number): AppError {
  return new AppError('BLOB_UPLOAD_INVALID', { reason: 'request body ended early', received, size }, {
    message: 'the request body ended before its declared length; the upload session keeps what arrived',
  });
}

function lengthMismatch(range: ChunkRange, received: number): AppError {
  return new AppError('BLOB_UPLOAD_INVALID', { reason: 'chunk length does not match Content-Range', range, received });
}

/**
 * Pipes `body` into `file` without ending it. Resolves null when the body ended, or which side
 * failed: on a body failure every chunk the body emitted has been given to `file` (which is left
 * open, so closing it keeps them); on a file failure the body is drained.
 */
function copy(body: Readable, file: Writable): Promise<{ side: 'body' | 'file'; err: unknown } | null> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (v: { side: 'body' | 'file'; err: unknown } | null) => {
      if (settled) return;
      settled = true;
      stopBody();
      file.off('error', onFileError);
      body.unpipe(file);
      resolve(v);
    };
    const onFileError = (err: Error) => {
      body.resume();
      settle({ side: 'file', err });
    };
    // finished() reports a body that closes before its end (an aborted request) as an error too.
    const stopBody = finished(body, { writable: false }, (err) => settle(err ? { side: 'body', err } : null));
    file.on('error', onFileError);
    body.pipe(file, { end: false });
  });
}

/**
 * One request's hold on a session, under the session's lock: the steps a blob commit is made of
 * (receive → verify → place → end), each implemented for the driver's kind of storage.
 */
export interface Upload {
  readonly info: UploadInfo;
  /** Bytes received so far. */
  size(): Promise<number>;
  /** Appends a chunk (hashing it); a chunk that does not start where the session ends is RANGE_INVALID. */
  receive(body: Readable, range?: ChunkRange): Promise<number>;
  /** Checks the digest of everything received (DIGEST_INVALID) and makes the bytes durable; returns the size. */
  verify(d: ParsedDigest): Promise<number>;
  /** Puts the verified bytes at the blob's content address (skipped when that blob is already stored). */
  place(d: ParsedDigest): Promise<void>;
  /** The blob is committed: the session ends, and its leftovers are removed after the answer. */
  end(): void;
}

abstract class BaseUpload implements Upload {
  ended = false;
  /**
   * Shared records: this request is a later chunk of a chunked upload (a PATCH after the first),
   * whose next chunk may reach another node: a hash started here (no running one, no saved state to
   * continue: the chunk before reached another node) is one whose state can be saved. Otherwise the
   * native hash (about 10x cheaper in CPU under Liftoff) is used. Once a session's hash is saveable it
   * stays so (it is continued); a native one goes on while its chunks reach the same node, and the
   * first chunk on another node re-reads the bytes once, into a saveable hash.
   */
  continuable = false;
  constructor(
    protected readonly driver: StorageDriver,
    protected readonly blobs: BlobStore,
    readonly info: UploadInfo,
    protected readonly session: LiveSession,
    /** Shared records: whether the session's record is shared, and this request's lease on it (absent for a status read). */
    protected readonly shared = false,
    protected readonly lease?: Lease,
  ) {}
  get uuid(): string {
    return this.info.uuid;
  }
  abstract size(): Promise<number>;
  abstract receive(body: Readable, range?: ChunkRange): Promise<number>;
  abstract verify(d: ParsedDigest): Promise<number>;
  abstract place(d: ParsedDigest): Promise<void>;
  /** After the request: keeps what was received (unless the session ended), releases what the request held. */
  abstract settle(): Promise<void>;
  /** Removes whatever the session left in storage. */
  abstract remove(): Promise<void>;
  /** Whether the request may have changed the stored bytes or this copy (false: it only looked). */
  abstract get touched(): boolean;
  end(): void {
    this.ended = true;
  }
  protected digestInvalid(d: ParsedDigest, actual: string): AppError {
    return new AppError('DIGEST_INVALID', { expected: d.digest, actual: `${d.algorithm}:${actual}` });
  }
  /** Shared records: the hex sha256 of the first `size` bytes from the record's hash, when it covers exactly those. */
  protected async storedDigest(size: number): Promise<string | undefined> {
    const saved = this.session.saved;
    if (!saved || saved.offset !== size) return undefined;
    if (saved.format === DIGEST_FORMAT) return saved.value.toString('hex');
    return (await this.resumed(size))?.digest().toString('hex');
  }
  /** Shared records: the record's saved sha256 state of the first `size` bytes, continued; undefined when there is none or it fails its checks. */
  protected async resumed(size: number): Promise<RunningHash | undefined> {
    const saved = this.session.saved;
    if (!saved || saved.offset !== size || saved.format !== RESUMABLE_SHA256_FORMAT) return undefined;
    return (await resumeSha256(saved.value, size)) ?? undefined;
  }
  /** A new hash for a re-read (or a first chunk): a saveable sha256 for a chunk that another node may continue. */
  protected async freshHash(algorithm: DigestAlgorithm): Promise<RunningHash> {
    return algorithm === 'sha256' && this.continuable ? resumableSha256() : nativeHash(algorithm);
  }
  /** Shared records: the hash fields to store with a state of `size` bytes (the running hash's state or digest, or the one read). */
  protected hashFields(size: number): Pick<SessionState, 'hashState' | 'hashFormat'> {
    const running = this.session.hash;
    let saved: SavedHash | undefined;
    if (running && running.offset === size) {
      const state = running.hash.save();
      saved = state ? { offset: size, format: RESUMABLE_SHA256_FORMAT, value: state } : { offset: size, format: DIGEST_FORMAT, value: running.hash.digest() };
    } else if (this.session.saved?.offset === size) saved = this.session.saved;
    this.session.saved = saved;
    return saved ? { hashState: saved.value, hashFormat: saved.format } : { hashState: null, hashFormat: null };
  }
}

/** Local filesystem: append in place, fdatasync once, rename into the store. */
class FileUpload extends BaseUpload {
  private writer?: FileWriter;
  private verifiedSize = 0;

  private get files(): LocalFiles {
    return this.driver.files!;
  }

  async size(): Promise<number> {
    // Shared records: another node may have appended since this one's running hash: the file says.
    if (this.shared) return (await this.driver.stat(paths.uploadData(this.uuid)))?.size ?? 0;
    return this.session.hash?.offset ?? (await this.driver.stat(paths.uploadData(this.uuid)))?.size ?? 0;
  }

  /**
   * Shared records: the data file opened for appending, and its size then. Opening revalidates
   * what a shared filesystem (NFS) caches, so the size includes every byte another node appended.
   */
  private async openShared(): Promise<number> {
    this.writer ??= await this.files.writer(paths.uploadData(this.uuid), true);
    return this.writer.size();
  }

  async receive(body: Readable, range?: ChunkRange): Promise<number> {
    const session = this.session;
    // The running hash's offset is the data file's size (a stat otherwise: after a restart or a failed write).
    const current = this.shared ? await this.openShared() : await this.size();
    if (range && range.start !== current) throw rangeInvalid(body, current, range);
    const hash = await this.hashAt(current, 'sha256');
    session.hash = undefined; // invalid until the write completes
    const w = (this.writer ??= await this.files.writer(paths.uploadData(this.uuid), true));
    let received = 0;
    // Hash from a 'data' listener registered before pipe's own: it sees every chunk, in order,
    // with no extra stream stage (and no extra buffering) between the socket and the file.
    const onData = (chunk: Buffer) => {
      hash.update(chunk);
      received += chunk.length;
      bodyBytesReceived(chunk.length);
    };
    body.on('data', onData);
    let failure: { side: 'body' | 'file'; err: unknown } | null;
    try {
      failure = await copy(body, w.stream);
    } finally {
      body.off('data', onData);
    }
    if (failure?.side === 'file') throw failure.err; // the file holds an unknown length: the next request stats and re-hashes it
    if (failure) {
      // The client went away or stalled mid-body (the server's idle timeout destroys its socket).
      // Everything received was handed to the file and hashed: keep it, so the session resumes
      // from there (GET answers its Range, and the next chunk starts at that offset).
      await this.closeWriter();
      session.hash = { hash, offset: current + received };
      throw endedEarly(received, current + received);
    }
    // Flushed before the running hash says the bytes are in the file.
    w.stream.end();
    await streamFinished(w.stream);
    session.hash = { hash, offset: current + received };
    if (range && range.end - range.start + 1 !== received) throw lengthMismatch(range, received);
    return current + received;
  }

  async verify(d: ParsedDigest): Promise<number> {
    const size = this.shared ? await this.openShared() : await this.size();
    // Shared records: the hash another node stored spares re-reading the file, when it covers all of it.
    const stored = this.shared && d.algorithm === 'sha256' && this.session.hash?.offset !== size ? await this.storedDigest(size) : undefined;
    const actual = stored ?? (await this.hashAt(size, d.algorithm)).digest().toString('hex');
    if (actual !== d.hex) throw this.digestInvalid(d, actual);
    // With a body, the writer that received it is the one fsynced: no second open.
    const w = this.writer ?? (await this.files.writer(paths.uploadData(this.uuid), true));
    this.writer = undefined;
    await w.commit(); // data durable before the rename makes it visible
    this.verifiedSize = size;
    return size;
  }

  async place(d: ParsedDigest): Promise<void> {
    // Already stored (a concurrent or earlier push of the same content): the upload is just removed.
    if ((await this.blobs.size(d)) === this.verifiedSize) return;
    await this.files.move(paths.uploadData(this.uuid), paths.blobData(d));
  }

  get touched(): boolean {
    return true;
  }

  private async closeWriter(): Promise<void> {
    const w = this.writer;
    this.writer = undefined;
    await w?.close();
  }

  async settle(): Promise<void> {
    const w = this.writer;
    await this.closeWriter();
    // Shared records: the file's size (after a failed write: what it holds) and the digest, under the lease.
    if (this.lease?.held && !this.ended) {
      const size = w ? w.size() : ((await this.driver.stat(paths.uploadData(this.uuid)))?.size ?? 0);
      await this.lease.write({ offset: size, parts: [], tail: 0, ...this.hashFields(size) }, true);
    }
  }

  async remove(): Promise<void> {
    await this.driver.delete(paths.uploadDir(this.uuid));
  }

  /**
   * The hash of the first `size` bytes: the running one, the record's saved state (another node
   * received them), or by re-reading the file (after a restart, or with no usable state).
   */
  private async hashAt(size: number, algorithm: DigestAlgorithm): Promise<RunningHash> {
    const state = this.session.hash;
    if (algorithm === 'sha256' && state && state.offset === size) return state.hash;
    const resumed = algorithm === 'sha256' && this.shared ? await this.resumed(size) : undefined;
    if (resumed) {
      this.session.hash = { hash: resumed, offset: size };
      return resumed;
    }
    const hash = await this.freshHash(algorithm);
    if (size > 0) {
      const r = await this.driver.reader(paths.uploadData(this.uuid), 0, size - 1);
      for await (const chunk of r) hash.update(chunk as Buffer);
    }
    if (algorithm === 'sha256') this.session.hash = { hash, offset: size };
    return hash;
  }
}

/**
 * Part-sized buffers, reused by every object-storage upload of this process: a part is gathered in
 * one and sent from it, and the next part (of any upload) fills it again. Up to `KEPT` idle ones are
 * held, and only while uploads keep coming (dropped after IDLE_MS unused).
 */
class PartBuffers {
  private static readonly KEPT = 4;
  private static readonly IDLE_MS = 30_000;
  private idle: Buffer[] = [];
  private lastUse = 0;
  private timer: NodeJS.Timeout | undefined;

  /** A part's size and room past it for the chunk that completes the part (request bodies arrive in ≤ 64 KiB, stored objects are read in ≤ 1 MiB). */
  readonly size: number;

  constructor(readonly partSize: number) {
    this.size = partSize + Math.min(MiB, partSize);
  }

  take(): Buffer {
    this.lastUse = Date.now();
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(b: Buffer): void {
    this.lastUse = Date.now();
    if (b.length !== this.size || this.idle.length >= PartBuffers.KEPT) return;
    this.idle.push(b);
    this.timer ??= setInterval(() => {
      if (Date.now() - this.lastUse < PartBuffers.IDLE_MS) return;
      this.idle = [];
      clearInterval(this.timer);
      this.timer = undefined;
    }, PartBuffers.IDLE_MS).unref();
  }
}

/**
 * Bytes received and not yet in a part. The first MiB (a quarter of a part, if less) is kept as
 * the chunks that came (a small blob takes no more than its size); past it, every byte is copied
 * into a buffer from PartBuffers as it arrives, and the chunk is dropped. Holding the chunks until a part's worth had gathered
 * kept each one through several minor collections: promoted to the old generation, they waited for
 * a full one, and with 4 pushes at once 60-90 MB of dead 64 KiB buffers piled up, then the part
 * was sent from a fresh 8 MiB concatenation, garbage again once sent. Copied at once, a chunk dies
 * young (src/lib/young-gc.ts collects it), and the part is sent from a buffer the next part reuses.
 */
class PendingBytes {
  private chunks: Buffer[] = [];
  private buf: Buffer | undefined;
  length = 0;

  /** Up to this many bytes, the chunks themselves are kept. */
  private readonly chunksUpTo: number;

  constructor(private readonly buffers: PartBuffers) {
    this.chunksUpTo = Math.min(MiB, buffers.partSize / 4);
  }

  push(chunk: Buffer): void {
    if (!this.buf && this.length + chunk.length <= this.chunksUpTo) {
      this.chunks.push(chunk);
      this.length += chunk.length;
      return;
    }
    if (!this.buf || this.length + chunk.length > this.buf.length) {
      const next = this.length + chunk.length <= this.buffers.size ? this.buffers.take() : Buffer.allocUnsafeSlow(this.length + chunk.length);
      if (this.buf) this.buf.copy(next, 0, 0, this.length);
      else this.chunks.reduce((off, c) => off + c.copy(next, off), 0);
      this.release();
      this.chunks = [];
      this.buf = next;
    }
    chunk.copy(this.buf, this.length);
    this.length += chunk.length;
  }

  /** The pending bytes (a view: valid until the next push or clear). */
  bytes(): Buffer {
    if (this.buf) return this.buf.subarray(0, this.length);
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
  }

  clear(): void {
    this.release();
    this.chunks = [];
    this.length = 0;
  }

  private release(): void {
    if (this.buf) this.buffers.give(this.buf);
    this.buf = undefined;
  }
}

/**
 * Object storage: bytes gathered into parts of a multipart object, the remainder below the minimum
 * part size kept as a tail object. `pending` holds bytes received in this request and not yet in
 * a part (at most one part's worth): saved as the tail when the request ends without a commit.
 */
class PartsUpload extends BaseUpload {
  private readonly pending: PendingBytes;
  /** The state as last saved (info.json), to know which tail object to delete. */
  private saved?: PartsState;
  private loaded = false;

  constructor(
    driver: StorageDriver,
    blobs: BlobStore,
    info: UploadInfo,
    session: LiveSession,
    private readonly buffers: PartBuffers,
    private readonly records: SessionRecords,
    shared = false,
    lease?: Lease,
  ) {
    super(driver, blobs, info, session, shared, lease);
    this.pending = new PendingBytes(buffers);
  }

  private get st(): PartsState {
    return (this.session.parts ??= { parts: [], tail: 0 });
  }

  private get partSize(): number {
    return this.buffers.partSize;
  }

  private get pendingBytes(): number {
    return this.pending.length;
  }

  get touched(): boolean {
    return this.loaded;
  }

  private get dataPath(): string {
    return paths.uploadData(this.uuid);
  }

  async size(): Promise<number> {
    return partsBytes(this.st) + (this.loaded ? this.pendingBytes : this.st.tail);
  }

  /**
   * Takes the stored tail into `pending` and makes sure the running hash covers everything: this
   * node's, or the record's saved state continued, or else a re-read (the hash is missing, or of
   * another algorithm).
   */
  private async load(algorithm: DigestAlgorithm = 'sha256'): Promise<RunningHash> {
    const st = this.st;
    const stored = partsBytes(st) + st.tail;
    const tail = await this.loadTail();
    const running = this.session.hash;
    if (algorithm === 'sha256' && running && running.offset === stored) {
      if (tail) this.keep(tail);
      return running.hash;
    }
    const resumed = algorithm === 'sha256' && this.shared ? await this.resumed(stored) : undefined;
    if (resumed && (await this.onlyRecordedParts(st))) {
      if (tail) this.keep(tail);
      this.session.hash = { hash: resumed, offset: stored };
      return resumed;
    }
    // Re-read: the parts become readable only as a completed object; it is read back, hashed,
    // into a fresh multipart object under the same key, which the session continues.
    const hash = await this.freshHash(algorithm);
    this.session.hash = undefined;
    if (st.parts.length) {
      const recorded = partsBytes(st);
      await this.completeForReading(st);
      this.session.parts = { parts: [], tail: 0 };
      for await (const chunk of await this.driver.reader(this.dataPath, 0, recorded - 1)) await this.write(hash, chunk as Buffer);
    }
    if (tail) await this.write(hash, tail);
    if (algorithm === 'sha256') this.session.hash = { hash, offset: stored };
    return hash;
  }

  /**
   * Whether the multipart object holds exactly the recorded parts. A request that died (or lost its
   * lease) after uploading parts it never recorded leaves more; continuing past them would number
   * new parts among them, and radosgw refuses a completion that leaves an uploaded part out. Such
   * a session is re-read instead (completeForReading takes those parts in). One ListParts request.
   */
  private async onlyRecordedParts(st: PartsState): Promise<boolean> {
    if (!st.multipartId) return true;
    let uploaded: (PartInfo & { size: number })[];
    try {
      uploaded = await this.driver.listParts(this.dataPath, st.multipartId);
    } catch (e) {
      if (e instanceof InvalidPartError) return false; // gone: the re-read says what is left
      throw e;
    }
    // The ETag (an MD5 of the part on S3) too: a part replaced under a recorded number holds other bytes than the state hashed.
    const tag = (etag: string) => etag.replace(/"/g, '');
    return uploaded.length === st.parts.length && st.parts.every((p, i) => uploaded[i].partNumber === p.partNumber && tag(uploaded[i].etag) === tag(p.etag));
  }

  /** Reads the stored tail (not yet kept) and marks the session loaded. */
  private async loadTail(): Promise<Buffer | undefined> {
    const st = this.st;
    const tail = st.tail ? (await this.driver.getContent(paths.uploadTail(this.uuid, partsBytes(st))))?.subarray(0, st.tail) : undefined;
    if (st.tail && (!tail || tail.length !== st.tail)) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid: this.uuid, reason: 'tail object missing' });
    this.saved = { ...st, parts: [...st.parts] };
    this.loaded = true;
    return tail;
  }

  /**
   * Completes the session's multipart object so that it can be read. A process that died in the
   * middle of a request may have uploaded parts after the recorded ones (never acknowledged to the
   * client); radosgw completes only with every uploaded part listed, so they are listed too, and
   * only the recorded bytes (the object's start) are read back.
   */
  private async completeForReading(st: PartsState): Promise<void> {
    const recorded = partsBytes(st);
    try {
      await this.driver.completeMultipart(this.dataPath, st.multipartId!, st.parts);
      return;
    } catch (e) {
      if (!(e instanceof InvalidPartError)) throw e;
    }
    let uploaded: (PartInfo & { size: number })[] = [];
    try {
      uploaded = await this.driver.listParts(this.dataPath, st.multipartId!);
    } catch (e) {
      if (!(e instanceof InvalidPartError)) throw e; // gone: completed by an earlier re-read that died before saving
    }
    const same = st.parts.every((p, i) => uploaded[i]?.partNumber === p.partNumber && uploaded[i]?.etag === p.etag);
    if (uploaded.length && same) await this.driver.completeMultipart(this.dataPath, st.multipartId!, uploaded);
    if (((await this.driver.stat(this.dataPath))?.size ?? -1) < recorded) {
      throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid: this.uuid, reason: 'the stored parts are gone; start the upload again' });
    }
  }

  private keep(chunk: Buffer): void {
    this.pending.push(chunk);
  }

  /** Hashes and keeps a chunk, uploading a part whenever a part's worth is pending. */
  private async write(hash: RunningHash, chunk: Buffer): Promise<void> {
    hash.update(chunk);
    this.keep(chunk);
    if (this.pendingBytes >= this.partSize) await this.flushPart();
  }

  private async flushPart(): Promise<void> {
    const st = this.st;
    // Part numbers go up to 10,000 and the last one is kept for the tail at completion.
    if (this.lease?.lost) throw lostSession(this.uuid); // another node has the session now: write nothing more
    if (st.parts.length >= MAX_PARTS - 1) {
      throw new AppError('BLOB_UPLOAD_INVALID', { reason: 'blob too large', parts: st.parts.length }, { message: `a blob on object storage is at most ${MAX_PARTS - 1} parts of ${this.partSize / MiB} MiB` });
    }
    if (!st.multipartId) {
      st.multipartId = await this.driver.startMultipart(this.dataPath);
      // Written down at once, so an expiry can abort it even if this process dies before the end.
      if (!this.session.transient && this.saved && !this.saved.parts.length) await this.saveState({ ...this.saved, multipartId: st.multipartId }, false);
    }
    const data = this.pending.bytes();
    const part = await this.driver.uploadPart(this.dataPath, st.multipartId, st.parts.length + 1, data);
    st.parts.push({ ...part, size: data.length });
    this.pending.clear();
  }

  /** Writes the state down; shared records: under the lease, which `final` gives up. */
  private async saveState(st: PartsState, final: boolean): Promise<void> {
    if (!this.lease) return this.records.write({ ...this.info, ...st }, true);
    const offset = partsBytes(st) + st.tail;
    await this.lease.write({ offset, multipartId: st.multipartId, parts: st.parts, tail: st.tail, ...this.hashFields(offset) }, final);
  }

  async receive(body: Readable, range?: ChunkRange): Promise<number> {
    const current = await this.size();
    if (range && range.start !== current) throw rangeInvalid(body, current, range);
    const hash = this.loaded ? this.session.hash!.hash : await this.load();
    this.session.hash = undefined; // invalid until every byte of this body is hashed and kept
    let received = 0;
    let storageError: unknown;
    try {
      for await (const chunk of body) {
        received += (chunk as Buffer).length;
        bodyBytesReceived((chunk as Buffer).length);
        try {
          await this.write(hash, chunk as Buffer);
        } catch (e) {
          storageError = e;
          throw e;
        }
      }
    } catch (e) {
      // Every byte hashed is in a part or pending (a part that failed to upload stays pending),
      // so the running hash stays valid, and settle() keeps what arrived.
      this.session.hash = { hash, offset: current + received };
      if (storageError) throw storageError;
      throw endedEarly(received, current + received); // the body failed: client gone, idle timeout
    }
    this.session.hash = { hash, offset: current + received };
    if (range && range.end - range.start + 1 !== received) throw lengthMismatch(range, received);
    return current + received;
  }

  async verify(d: ParsedDigest): Promise<number> {
    let hash = this.loaded && d.algorithm === 'sha256' ? this.session.hash!.hash : undefined;
    // Shared records: the hash the last writer stored covers every byte: compare it, read only the tail (for place()).
    if (!hash && !this.loaded && this.shared && d.algorithm === 'sha256' && this.session.hash?.offset !== (await this.size())) {
      const stored = await this.storedDigest(await this.size());
      if (stored !== undefined) {
        const tail = await this.loadTail();
        if (tail) this.keep(tail);
        if (stored !== d.hex) throw this.digestInvalid(d, stored);
        return this.size();
      }
    }
    if (!hash) {
      if (this.loaded) {
        // Another algorithm than the running sha256: save, then re-read everything.
        await this.save(false);
        this.pending.clear();
      }
      hash = await this.load(d.algorithm);
    }
    const actual = hash.digest().toString('hex');
    if (actual !== d.hex) throw this.digestInvalid(d, actual);
    return this.size(); // parts are durable once uploaded; the rest is in memory until place()
  }

  async place(d: ParsedDigest): Promise<void> {
    const size = await this.size();
    if ((await this.blobs.size(d)) === size) return; // already stored: the session is just removed
    const st = this.st;
    const rest = this.pending.bytes();
    if (!st.parts.length) {
      await this.driver.putContent(paths.blobData(d), rest); // below one part: written whole
      return;
    }
    const parts: PartInfo[] = [...st.parts];
    if (rest.length) parts.push(await this.driver.uploadPart(this.dataPath, st.multipartId!, parts.length + 1, rest));
    await this.driver.completeMultipart(this.dataPath, st.multipartId!, parts);
    st.multipartId = undefined;
    await this.driver.copy(this.dataPath, paths.blobData(d));
  }

  /** Stores what is pending (a part, or the tail) and the state, then drops the tail the state no longer names. */
  private async save(final: boolean): Promise<void> {
    if (this.pendingBytes >= this.driver.minPartSize) await this.flushPart();
    const st = this.st;
    const offset = partsBytes(st);
    if (this.pendingBytes) await this.driver.putContent(paths.uploadTail(this.uuid, offset), this.pending.bytes());
    st.tail = this.pendingBytes;
    await this.saveState(st, final);
    const old = this.saved;
    if (old?.tail && partsBytes(old) !== offset) await this.driver.delete(paths.uploadTail(this.uuid, partsBytes(old)));
    this.saved = { ...st, parts: [...st.parts] };
  }

  async settle(): Promise<void> {
    if (!this.loaded || this.ended || this.session.transient) return this.pending.clear();
    try {
      await this.save(true);
      this.pending.clear(); // the request is over: the tail is stored, its buffer goes back
    } catch (e) {
      this.session.hash = undefined; // what is stored is the saved state: re-read it next time
      this.session.parts = this.saved;
      throw e;
    }
  }

  async remove(): Promise<void> {
    const id = this.session.parts?.multipartId;
    if (id) await this.driver.abortMultipart(this.dataPath, id);
    await this.driver.delete(paths.uploadDir(this.uuid));
  }
}

export class UploadStore {
  private locks = new KeyedMutex();
  /**
   * Sessions this process created or has read (info.json is for restarts): the running sha256,
   * object storage's parts, and whether it completed (its leftovers are still being removed, and
   * it is gone for every request). With shared records, a cache checked against the record on
   * every request.
   */
  private live = new Map<string, LiveSession>();
  /** Open sessions by repository and by owner: every session this process knows until it ends. */
  private openByRepository = new Map<string, number>();
  private openByOwner = new Map<string, number>();

  /** Upload sessions open now, as the caps count them (for metrics; with shared records, those this node knows). */
  get openSessions(): number {
    let n = 0;
    for (const v of this.openByRepository.values()) n += v;
    return n;
  }
  /** Object storage: bytes gathered before a part is uploaded. */
  private readonly partBuffers: PartBuffers;
  private readonly records: SessionRecords;
  /** Records every node shares (cluster mode), or null: one node, records for restarts only. */
  private readonly shared: SharedSessionRecords | null;
  /** This node's name in the leases it takes. */
  private readonly node: string;
  private readonly leaseMs: number;

  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    private readonly limits: UploadLimits = { perRepository: Infinity, perOwner: Infinity },
    opts: {
      partSize?: number;
      /** Where records live: info.json by default; a SharedSessionRecords (a database table) for several nodes. */
      records?: SessionRecords | SharedSessionRecords;
      /** Shared records: the name this node leases sessions under (a random one by default). */
      node?: string;
      /** Shared records: how long a lease lasts unrenewed (a request renews it every third of that). */
      leaseSeconds?: number;
    } = {},
  ) {
    this.partBuffers = new PartBuffers(Math.max(opts.partSize ?? 8 * MiB, driver.minPartSize));
    this.shared = isShared(opts.records) ? opts.records : null;
    // A single-request push has no shared record; what it writes down (rarely) goes to info.json.
    this.records = isShared(opts.records) || !opts.records ? new StoredSessionRecords(driver) : opts.records;
    this.node = opts.node ?? randomUUID();
    this.leaseMs = (opts.leaseSeconds ?? 60) * 1000;
  }

  /**
   * Starts a session. A transient one (a single-request push, completed by the same request) is
   * never written down: after a crash its leftovers are simply purged. Refused with TOOMANYREQUESTS
   * when the repository or the owner already holds as many open sessions as the limits allow.
   */
  async create(repository: string, transient = false, owner?: string): Promise<UploadStatus> {
    if (this.shared) return this.createShared(this.shared, repository, transient, owner);
    this.checkLimits(repository, owner);
    const uuid = randomUUID();
    const info: UploadInfo = { uuid, repository, startedAt: new Date().toISOString(), ...(owner ? { owner } : {}) };
    // The info file is for restarts only (this process keeps the info in memory), so it is written
    // after the answer, under the session's lock: any request for the session waits for it. On a
    // disk, no fsync: a session survives a restart of the process (the page cache does), and after
    // a power loss a client simply starts a new one. Durability is paid once, at completion.
    if (!transient) void this.locks.run(uuid, () => this.records.write(info, false)).catch(() => undefined); // a store that cannot take it fails the first chunk as well
    this.track(uuid, { info, hash: { hash: nativeHash(), offset: 0 }, ...(this.driver.files ? {} : { parts: { parts: [], tail: 0 } }), ...(transient ? { transient } : {}) });
    return { ...info, size: 0 };
  }

  /**
   * Shared records: the record is written before the answer (the next request may reach another
   * node), and the caps count every node's sessions: insert, then count, and take the insert back
   * when it went over (two nodes racing for the last place may both be refused, never both admitted).
   * A single-request push gets no record (no other node ever sees it) and is checked against the count.
   */
  private async createShared(shared: SharedSessionRecords, repository: string, transient: boolean, owner: string | undefined): Promise<UploadStatus> {
    const capped = Number.isFinite(this.limits.perRepository) || (owner !== undefined && Number.isFinite(this.limits.perOwner));
    const uuid = randomUUID();
    const now = new Date();
    const info: UploadInfo = { uuid, repository, startedAt: now.toISOString(), ...(owner ? { owner } : {}) };
    if (transient) {
      if (capped) {
        const open = await shared.count(repository, owner);
        this.checkLimits(repository, owner, open.repository, open.owner);
      }
    } else {
      await shared.create(info, now);
      if (capped) {
        try {
          const open = await shared.count(repository, owner);
          this.checkLimits(repository, owner, open.repository - 1, open.owner - 1);
        } catch (e) {
          await shared.delete(uuid).catch(() => undefined); // else expired later
          throw e;
        }
      }
    }
    // A copy is kept only for a single-request push: any node starts a new session's hash for free.
    if (transient) this.track(uuid, { info, hash: { hash: nativeHash(), offset: 0 }, ...(this.driver.files ? {} : { parts: { parts: [], tail: 0 } }), transient });
    return { ...info, size: 0 };
  }

  /** Refuses a new session when the repository or the owner already holds its limit (counts: those open besides it). */
  private checkLimits(repository: string, owner: string | undefined, perRepo = this.openByRepository.get(repository) ?? 0, perOwnerOpen?: number): void {
    if (perRepo >= this.limits.perRepository) {
      throw new AppError('TOOMANYREQUESTS', { repository, open: perRepo, limit: this.limits.perRepository }, {
        message: 'too many open uploads for this repository; finish or cancel some, or wait for them to expire',
      });
    }
    const perOwner = owner === undefined ? 0 : (perOwnerOpen ?? this.openByOwner.get(owner) ?? 0);
    if (perOwner >= this.limits.perOwner) {
      throw new AppError('TOOMANYREQUESTS', { open: perOwner, limit: this.limits.perOwner }, {
        message: 'too many open uploads for this user; finish or cancel some, or wait for them to expire',
      });
    }
  }

  private static bump(counts: Map<string, number>, key: string, by: number): void {
    const n = (counts.get(key) ?? 0) + by;
    if (n > 0) counts.set(key, n);
    else counts.delete(key);
  }

  /** Records a live session and counts it as open. */
  private track(uuid: string, session: LiveSession): void {
    this.live.set(uuid, session);
    session.counted = true;
    UploadStore.bump(this.openByRepository, session.info.repository, 1);
    if (session.info.owner) UploadStore.bump(this.openByOwner, session.info.owner, 1);
  }

  /** The session ended (completed, cancelled, expired): it no longer counts. Idempotent. */
  private release(uuid: string): void {
    const session = this.live.get(uuid);
    if (!session?.counted) return;
    session.counted = false;
    UploadStore.bump(this.openByRepository, session.info.repository, -1);
    if (session.info.owner) UploadStore.bump(this.openByOwner, session.info.owner, -1);
  }

  /** Forgets a session entirely (its leftovers are gone or going). */
  private forget(uuid: string): void {
    this.release(uuid);
    this.live.delete(uuid);
  }

  private handle(session: LiveSession, lease?: Lease): BaseUpload {
    const shared = !!this.shared && !session.transient;
    return this.driver.files
      ? new FileUpload(this.driver, this.blobs, session.info, session, shared, lease)
      : new PartsUpload(this.driver, this.blobs, session.info, session, this.partBuffers, this.records, shared, lease);
  }

  /**
   * Runs `fn` with the session (which must belong to the repository; BLOB_UPLOAD_UNKNOWN
   * otherwise) under its lock. What `fn` received is kept when it does not end the session; when
   * it does, the answer goes out first and the session's leftovers are removed afterwards, still
   * under the lock, so a later request for it waits and then finds nothing. With shared records
   * the session is also leased for the request (BLOB_UPLOAD_INVALID while another node writes it).
   */
  withSession<T>(uuid: string, repository: string, fn: (upload: Upload) => Promise<T>): Promise<T> {
    return this.run(uuid, repository, fn);
  }

  private run<T>(uuid: string, repository: string, fn: (upload: Upload) => Promise<T>, chunk?: { body: Readable; range?: ChunkRange }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      void this.locks.run(uuid, async () => {
        let upload: BaseUpload | undefined;
        let lease: Lease | undefined;
        let session: LiveSession | undefined;
        let result: T;
        /** Shared records: a chunk that another chunk may follow, on any node (see BaseUpload.continuable). */
        let chunked = false;
        try {
          if (this.shared) {
            const found = await this.sharedSession(uuid, repository);
            session = found.session;
            if (found.record) lease = await this.claim(found.session, found.record, chunk);
            // A PATCH that is not the session's first: a client that chunks. The first chunk (and the
            // one PATCH of docker, podman and skopeo) is hashed natively: V8 runs hash-wasm on Liftoff
            // only here (src/main.ts keeps Prisma's module off TurboFan), ~10x the CPU of the native
            // hash, so the saveable hash is started only by a chunk that reached another node than
            // the one before it (one re-read of the bytes so far); a session that stays on one node
            // is hashed natively to the end.
            chunked = !!lease && !!chunk && (found.record?.offset ?? 0) > 0;
          } else {
            session = await this.session(uuid, repository);
          }
          lease?.startRenewing();
          upload = this.handle(session, lease);
          upload.continuable = chunked;
          result = await fn(upload);
          await upload.settle();
        } catch (e) {
          await upload?.settle().catch(() => undefined);
          if (lease && session) await this.letGo(session, lease, upload?.touched ?? false);
          reject(e);
          return;
        }
        if (!upload.ended) {
          if (lease) await this.letGo(session, lease, false);
          return resolve(result);
        }
        lease?.stop();
        Object.assign(session, { done: true, hash: undefined });
        this.release(uuid);
        resolve(result);
        await upload.remove().catch(() => undefined); // else purged later
        if (lease) await this.shared!.delete(uuid).catch(() => undefined); // after the objects: a record left alone is expired with them
        this.live.delete(uuid);
      });
    });
  }

  /** The session, which must belong to the repository; BLOB_UPLOAD_UNKNOWN otherwise. */
  async status(uuid: string, repository: string): Promise<UploadStatus> {
    if (this.shared) {
      // Outside the session's lock: reads the record, never touches this node's copy (a request may be using it).
      const known = this.live.get(uuid);
      if (!UUID_RE.test(uuid) || known?.done || (known && known.info.repository !== repository)) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
      if (known?.transient) return { ...known.info, size: await this.handle(known).size() };
      const record = await this.shared.read(uuid);
      if (!record || record.repository !== repository) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
      // Object storage: the record says (no storage round trip); a disk: the file does.
      const size = this.driver.files ? ((await this.driver.stat(paths.uploadData(uuid)))?.size ?? 0) : record.offset;
      return { uuid, repository: record.repository, startedAt: record.startedAt, ...(record.owner ? { owner: record.owner } : {}), size };
    }
    const session = await this.session(uuid, repository);
    return { ...session.info, size: await this.handle(session).size() };
  }

  /** Appends a chunk; a chunk that does not start where the session ends is refused with RANGE_INVALID. */
  append(uuid: string, repository: string, body: Readable, range?: ChunkRange): Promise<UploadStatus> {
    return this.run(uuid, repository, async (u) => ({ ...u.info, size: await u.receive(body, range) }), { body, range });
  }

  async cancel(uuid: string, repository: string): Promise<void> {
    await this.locks.run(uuid, async () => {
      if (this.shared) {
        const { session, record } = await this.sharedSession(uuid, repository);
        const lease = record ? await this.claim(session, record) : undefined;
        await this.handle(session).remove();
        if (lease) await this.shared.delete(uuid);
        this.forget(uuid);
        return;
      }
      await this.handle(await this.session(uuid, repository)).remove();
      this.forget(uuid);
    });
  }

  /** Deletes sessions idle for longer than ttlSeconds; returns how many. */
  async purgeExpired(ttlSeconds: number, now = Date.now()): Promise<number> {
    if (this.shared) return this.purgeShared(this.shared, ttlSeconds, now);
    let n = 0;
    const stored = new Set(await this.driver.list(paths.uploadsRoot()));
    // On a disk the data file's mtime is the last chunk; on object storage the record is rewritten by every request.
    const lastActive = async (uuid: string) =>
      (this.driver.files ? await this.driver.stat(paths.uploadData(uuid)) : await this.driver.stat(paths.uploadInfo(uuid))) ?? (await this.driver.stat(paths.uploadDir(uuid)));
    const expired = (st: { modTime: Date } | null) => !st || now - st.modTime.getTime() > ttlSeconds * 1000;
    for (const uuid of stored) {
      if (!expired(await lastActive(uuid))) continue;
      await this.locks.run(uuid, async () => {
        const session = this.live.get(uuid) ?? (UUID_RE.test(uuid) ? await this.stored(uuid) : null);
        if (session) await this.handle(session).remove();
        else await this.driver.delete(paths.uploadDir(uuid));
        this.forget(uuid);
      });
      n++;
    }
    // Sessions this process knows that were not in storage when it was listed (nothing written
    // yet, or their record was still being written): by their last activity once written, by
    // their start otherwise, so that they stop counting against the caps.
    for (const [uuid, session] of [...this.live]) {
      if (stored.has(uuid) || now - Date.parse(session.info.startedAt) <= ttlSeconds * 1000) continue;
      await this.locks.run(uuid, async () => {
        if (this.live.get(uuid) !== session) return; // ended meanwhile
        if ((await this.driver.stat(paths.uploadDir(uuid))) && !expired(await lastActive(uuid))) return;
        await this.handle(session).remove().catch(() => undefined);
        this.forget(uuid);
        n++;
      });
    }
    return n;
  }

  /**
   * Shared records: sessions whose record was last written before the cutoff and that no node
   * holds (each is claimed first, so a request starting on another node meanwhile wins); then
   * objects under uploads/ that no record names, once they are as old (a node died between removing
   * a session's objects and its record, or during a single-request push); then this node's copies
   * of sessions that ended elsewhere. Multipart uploads whose id no record names anymore cannot be
   * listed here: an object store's lifecycle rule (AbortIncompleteMultipartUpload) removes those.
   */
  private async purgeShared(shared: SharedSessionRecords, ttlSeconds: number, now: number): Promise<number> {
    let n = 0;
    const cutoff = new Date(now - ttlSeconds * 1000);
    const seen = new Set<string>();
    for (;;) {
      const idle = (await shared.idle(cutoff, new Date(now), 500)).filter((r) => !seen.has(r.uuid));
      if (!idle.length) break;
      for (const record of idle) {
        seen.add(record.uuid);
        await this.locks
          .run(record.uuid, async () => {
            const t = Date.now();
            if (!(await shared.claim(record.uuid, record.version, this.node, new Date(t), new Date(t + this.leaseMs)))) return; // written or taken meanwhile
            await this.handle(this.fromRecord(record)).remove();
            await shared.delete(record.uuid);
            this.forget(record.uuid);
            n++;
          })
          .catch(() => undefined); // tried again at the next purge, once the lease has expired
      }
    }
    for (const uuid of await this.driver.list(paths.uploadsRoot())) {
      if (seen.has(uuid) || this.live.get(uuid)?.transient) continue;
      await this.locks.run(uuid, async () => {
        if (UUID_RE.test(uuid) && (await shared.read(uuid))) return;
        let last = 0;
        for await (const o of this.driver.walk(paths.uploadDir(uuid))) last = Math.max(last, o.modTime.getTime());
        if (now - last <= ttlSeconds * 1000) return;
        await this.driver.delete(paths.uploadDir(uuid));
        this.forget(uuid);
        n++;
      });
    }
    for (const [uuid, session] of [...this.live]) {
      if (session.transient) continue;
      await this.locks.run(uuid, async () => {
        if (this.live.get(uuid) === session && !(await shared.read(uuid))) this.forget(uuid);
      });
    }
    return n;
  }

  /** A session as info.json describes it (after a restart), or null. */
  private async stored(uuid: string): Promise<LiveSession | null> {
    const saved = await this.records.read(uuid);
    if (!saved) return null;
    const info: UploadInfo = { uuid: saved.uuid, repository: saved.repository, startedAt: saved.startedAt, ...(saved.owner ? { owner: saved.owner } : {}) };
    const parts = this.driver.files ? undefined : { multipartId: saved.multipartId, parts: saved.parts ?? [], tail: saved.tail ?? 0 };
    return { info, ...(parts ? { parts } : {}) };
  }

  private async session(uuid: string, repository: string): Promise<LiveSession> {
    const known = this.live.get(uuid);
    if (!UUID_RE.test(uuid) || known?.done) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
    if (known) {
      if (known.info.repository !== repository) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
      return known;
    }
    const session = await this.stored(uuid);
    if (!session || session.info.repository !== repository) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
    // A session from before a restart counts again once it is used (once: another request may have loaded it meanwhile).
    if (!this.live.has(uuid)) this.track(uuid, session);
    return this.live.get(uuid)!;
  }

  // ---- shared records ----------------------------------------------------------------------

  /** A copy of a session as its shared record describes it (no running hash: continued from the record's state, or re-read). */
  private fromRecord(record: SharedSessionRecord): LiveSession {
    const info: UploadInfo = { uuid: record.uuid, repository: record.repository, startedAt: record.startedAt, ...(record.owner ? { owner: record.owner } : {}) };
    const session: LiveSession = { info, version: -1 };
    this.sync(session, record);
    return session;
  }

  /**
   * Makes this node's copy match the record. The running hash is kept only while the record is
   * what this node last wrote: on object storage when the version is the one it wrote; on a disk
   * the copy's hash is checked against the data file's size instead (the file only grows, so
   * an equal size means nobody appended), which is what the upload does anyway.
   */
  private sync(session: LiveSession, record: SharedSessionRecord): void {
    const saved = savedHash(record);
    if (this.driver.files) {
      session.saved = saved;
      return;
    }
    if (session.version === record.version) return; // this node wrote it last: its copy is the record
    session.version = record.version;
    session.hash = undefined;
    session.saved = saved;
    session.parts = { multipartId: record.multipartId, parts: record.parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag, size: p.size })), tail: record.tail };
  }

  /** The session and its record (null for a single-request push, which has none); BLOB_UPLOAD_UNKNOWN when there is none. */
  private async sharedSession(uuid: string, repository: string): Promise<{ session: LiveSession; record: SharedSessionRecord | null }> {
    const known = this.live.get(uuid);
    if (!UUID_RE.test(uuid) || known?.done) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
    if (known?.transient) {
      if (known.info.repository !== repository) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
      return { session: known, record: null };
    }
    const record = await this.shared!.read(uuid);
    if (!record) {
      if (known) this.forget(uuid); // ended on another node
      throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
    }
    if (record.repository !== repository) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
    let session = known;
    if (!session) {
      session = this.fromRecord(record);
      this.track(uuid, session);
      this.evictCopies();
    } else {
      this.sync(session, record);
      // Most recently used last (a Map keeps insertion order): evictCopies drops from the front.
      this.live.delete(uuid);
      this.live.set(uuid, session);
    }
    return { session, record };
  }

  /**
   * Shared records: this node's copies are a cache (a session may end on another node, and this
   * one hears of it only when asked again or at expiry), so at most MAX_COPIES are kept, the least
   * recently used dropped first; a dropped copy costs a re-read of the session's bytes if this
   * node continues it.
   */
  private evictCopies(): void {
    if (this.live.size <= MAX_COPIES) return;
    for (const [uuid, s] of this.live) {
      if (this.live.size <= MAX_COPIES) break;
      if (!s.transient) this.forget(uuid);
    }
  }

  /**
   * Leases the session for one request. A chunk that does not start where the record ends is
   * refused first (RANGE_INVALID, nothing written); a record another request wrote meanwhile is
   * read again once; one another node holds now is refused: RANGE_INVALID for a chunk (the OCI
   * answer to a chunk out of order), BLOB_UPLOAD_INVALID otherwise.
   */
  private async claim(session: LiveSession, record: SharedSessionRecord, chunk?: { body: Readable; range?: ChunkRange }): Promise<Lease> {
    const shared = this.shared!;
    const uuid = record.uuid;
    for (let attempt = 0; ; attempt++) {
      // Object storage: the record is the truth (a disk: the file is, checked by the upload).
      if (chunk?.range && !this.driver.files && chunk.range.start !== record.offset) throw rangeInvalid(chunk.body, record.offset, chunk.range);
      const now = Date.now();
      if (await shared.claim(uuid, record.version, this.node, new Date(now), new Date(now + this.leaseMs))) {
        // The claim is this node's write: a copy that matched the record still does.
        if (session.version === record.version) session.version = record.version + 1;
        return new Lease(shared, uuid, this.node, this.leaseMs, record.version + 1);
      }
      const again = await shared.read(uuid);
      if (!again) {
        this.forget(uuid);
        throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
      }
      const held = again.lease !== null && (again.leaseUntil?.getTime() ?? 0) >= Date.now();
      if (attempt === 0 && !held && again.version !== record.version) {
        this.sync(session, again);
        record = again;
        continue;
      }
      const detail = { uuid, reason: 'the upload session is being written by another request' };
      if (chunk) {
        chunk.body.resume();
        throw new AppError('RANGE_INVALID', detail, { headers: { Range: `0-${Math.max(again.offset - 1, 0)}` } });
      }
      throw new AppError('BLOB_UPLOAD_INVALID', detail, { message: 'the upload session is being written by another request; retry when it is done' });
    }
  }

  /**
   * Ends a request's lease: given up if the request wrote nothing (its copy still matches the
   * record), or dropped from this node's copy when the record no longer says what the copy holds
   * (the request failed after writing parts it never recorded, or another node took over).
   */
  private async letGo(session: LiveSession, lease: Lease, failedAfterWork: boolean): Promise<void> {
    lease.stop();
    const wroteLast = lease.wrote && !lease.held; // the request's last write stored this copy's state
    if (lease.held) await lease.release().catch(() => undefined); // else it expires
    if (lease.lost || (failedAfterWork && !wroteLast)) {
      session.version = -1;
      session.hash = undefined;
    } else if (session.version !== -1 || wroteLast) session.version = lease.version;
  }
}
