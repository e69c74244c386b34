// Blob upload sessions. Bytes are appended to uploads/<uuid>/data while being hashed; completion
// verifies the digest, fsyncs once and moves the file into the blob store in one rename, so a crash
// leaves either a resumable session or a complete blob, never a half blob in the store.
import { randomUUID, type Hash } from 'node:crypto';
import { finished, type Readable, type Writable } from 'node:stream';
import { finished as streamFinished } from 'node:stream/promises';
import { newHash, type ParsedDigest } from '../lib/digest.ts';
import { AppError } from '../lib/errors.ts';
import { KeyedMutex } from '../lib/mutex.ts';
import { bodyBytesReceived } from '../lib/young-gc.ts';
import type { BlobStore } from './blob-store.ts';
import type { FileWriter, StorageDriver } from './driver/driver.ts';
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

interface LiveSession {
  info: UploadInfo;
  hash?: { hash: Hash; offset: number };
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

/** Runs `adopt` (the verified upload moved into the blob store) together with the caller's own step. */
export type BlobCommit = (adopt: () => Promise<void>, size: number) => Promise<void>;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

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

export class UploadStore {
  private locks = new KeyedMutex();
  /**
   * Sessions this process created or has read (the info file on disk is for restarts): the running
   * sha256, valid while `offset` equals the data file size, and whether it completed (its
   * directory is still being removed, and it is gone for every request).
   */
  private live = new Map<string, LiveSession>();
  /** Open sessions by repository and by owner: every session this process knows until it ends. */
  private openByRepository = new Map<string, number>();
  private openByOwner = new Map<string, number>();

  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    private readonly limits: UploadLimits = { perRepository: Infinity, perOwner: Infinity },
  ) {}

  /**
   * Starts a session. A transient one (a single-request push, completed by the same request) is
   * never written down: after a crash its data file is simply purged. Refused with TOOMANYREQUESTS
   * when the repository or the owner already holds as many open sessions as the limits allow.
   */
  async create(repository: string, transient = false, owner?: string): Promise<UploadStatus> {
    this.checkLimits(repository, owner);
    const uuid = randomUUID();
    const info: UploadInfo = { uuid, repository, startedAt: new Date().toISOString(), ...(owner ? { owner } : {}) };
    // The info file is for restarts only (this process keeps the info in memory), so it is written
    // after the answer, under the session's lock: any request for the session waits for it. No
    // fsync: a session survives a restart of the process (the page cache does), and after a power
    // loss a client simply starts a new one. Durability is paid once, at completion.
    if (!transient) void this.locks.run(uuid, async () => {
      const iw = await this.driver.writer(paths.uploadInfo(uuid), false);
      iw.stream.end(Buffer.from(JSON.stringify(info)));
      await iw.close();
    }).catch(() => undefined); // a disk that cannot take it fails the first append as well
    // The data file is created by the first append (a missing one counts as empty).
    this.track(uuid, { info, hash: { hash: newHash(), offset: 0 } });
    return { ...info, size: 0 };
  }

  private checkLimits(repository: string, owner: string | undefined): void {
    const perRepo = this.openByRepository.get(repository) ?? 0;
    if (perRepo >= this.limits.perRepository) {
      throw new AppError('TOOMANYREQUESTS', { repository, open: perRepo, limit: this.limits.perRepository }, {
        message: 'too many open uploads for this repository; finish or cancel some, or wait for them to expire',
      });
    }
    const perOwner = owner === undefined ? 0 : (this.openByOwner.get(owner) ?? 0);
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

  /** Forgets a session entirely (its directory is gone or going). */
  private forget(uuid: string): void {
    this.release(uuid);
    this.live.delete(uuid);
  }

  /** The session, which must belong to the repository; BLOB_UPLOAD_UNKNOWN otherwise. */
  async status(uuid: string, repository: string): Promise<UploadStatus> {
    const info = await this.info(uuid, repository);
    const st = await this.driver.stat(paths.uploadData(uuid));
    return { ...info, size: st?.size ?? 0 };
  }

  /** Appends a chunk; a chunk that does not start where the session ends is refused with RANGE_INVALID. */
  append(uuid: string, repository: string, body: Readable, range?: ChunkRange): Promise<UploadStatus> {
    return this.locks.run(uuid, async () => {
      const info = await this.info(uuid, repository);
      const { size, w } = await this.appendLocked(uuid, body, range);
      await w.close();
      return { ...info, size };
    });
  }

  /**
   * Appends the final chunk (if any), verifies the digest, and moves the bytes into the blob store.
   * Returns the blob size. The session is gone afterwards. `commit`, when given, is called with the
   * move into the store (`adopt`) and must run it: the caller can make the move and whatever
   * records the blob one step (the registry does, so that garbage collection never runs between).
   */
  complete(uuid: string, repository: string, digest: ParsedDigest, body?: Readable, range?: ChunkRange, commit?: BlobCommit): Promise<number> {
    // Answered as soon as the blob is in the store; the session directory is removed afterwards,
    // still under the session's lock, so a later request for it waits and then finds nothing.
    return new Promise<number>((resolve, reject) => {
      void this.locks.run(uuid, async () => {
        let size: number;
        try {
          size = await this.completeLocked(uuid, repository, digest, body, range, commit);
        } catch (e) {
          reject(e);
          return;
        }
        const session = this.live.get(uuid);
        if (session) Object.assign(session, { done: true, hash: undefined });
        this.release(uuid);
        resolve(size);
        await this.driver.delete(paths.uploadDir(uuid)).catch(() => undefined); // else purged later
        this.live.delete(uuid);
      });
    });
  }

  private async completeLocked(uuid: string, repository: string, digest: ParsedDigest, body?: Readable, range?: ChunkRange, commit?: BlobCommit): Promise<number> {
    await this.info(uuid, repository);
    const dataPath = paths.uploadData(uuid);
    // With a body, the writer that received it is the one fsynced: no second open.
    const { size, w } = body ? await this.appendLocked(uuid, body, range) : { size: await this.currentSize(uuid), w: await this.driver.writer(dataPath, true) };
    try {
      const hash = await this.hashAt(uuid, size, digest.algorithm);
      const actual = hash.copy().digest('hex');
      if (actual !== digest.hex) {
        throw new AppError('DIGEST_INVALID', { expected: digest.digest, actual: `${digest.algorithm}:${actual}` });
      }
      await w.commit(); // data durable before the rename makes it visible
    } catch (e) {
      await w.close().catch(() => undefined);
      throw e;
    }
    const adopt = () => this.blobs.adopt(dataPath, digest, size);
    await (commit ? commit(adopt, size) : adopt());
    return size;
  }

  async cancel(uuid: string, repository: string): Promise<void> {
    await this.locks.run(uuid, async () => {
      await this.info(uuid, repository);
      await this.driver.delete(paths.uploadDir(uuid));
      this.forget(uuid);
    });
  }

  /** Deletes sessions idle for longer than ttlSeconds; returns how many. */
  async purgeExpired(ttlSeconds: number, now = Date.now()): Promise<number> {
    let n = 0;
    const onDisk = new Set(await this.driver.list(paths.uploadsRoot()));
    for (const uuid of onDisk) {
      const st = (await this.driver.stat(paths.uploadData(uuid))) ?? (await this.driver.stat(paths.uploadDir(uuid)));
      if (!st || now - st.modTime.getTime() > ttlSeconds * 1000) {
        await this.locks.run(uuid, async () => {
          await this.driver.delete(paths.uploadDir(uuid));
          this.forget(uuid);
        });
        n++;
      }
    }
    // Sessions that never reached the disk (nothing written, and the info file failed or was
    // never due): expire them by their start, so they stop counting against the caps.
    for (const [uuid, session] of [...this.live]) {
      if (onDisk.has(uuid) || now - Date.parse(session.info.startedAt) <= ttlSeconds * 1000) continue;
      await this.locks.run(uuid, async () => {
        if (await this.driver.stat(paths.uploadDir(uuid))) return; // written meanwhile: the next purge decides
        this.forget(uuid);
      });
    }
    return n;
  }

  private async info(uuid: string, repository: string): Promise<UploadInfo> {
    const known = this.live.get(uuid);
    if (!UUID_RE.test(uuid) || known?.done) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
    if (known) {
      if (known.info.repository !== repository) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
      return known.info;
    }
    const raw = await this.driver.getContent(paths.uploadInfo(uuid));
    if (!raw) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
    let info: UploadInfo;
    try {
      info = JSON.parse(raw.toString('utf8')) as UploadInfo;
    } catch {
      throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid }); // torn by a power loss: start again
    }
    if (info.repository !== repository) throw new AppError('BLOB_UPLOAD_UNKNOWN', { uuid });
    // A session from before a restart counts again once it is used (once: another request may have loaded it meanwhile).
    if (!this.live.has(uuid)) this.track(uuid, { info });
    return info;
  }

  private async currentSize(uuid: string): Promise<number> {
    return (await this.driver.stat(paths.uploadData(uuid)))?.size ?? 0;
  }

  /** The hash of the first `size` bytes, from the running state or by re-reading the file (after a restart). */
  private async hashAt(uuid: string, size: number, algorithm: ParsedDigest['algorithm']): Promise<Hash> {
    const state = this.live.get(uuid)?.hash;
    if (algorithm === 'sha256' && state && state.offset === size) return state.hash;
    const hash = newHash(algorithm);
    if (size > 0) {
      const r = await this.driver.reader(paths.uploadData(uuid), 0, size - 1);
      for await (const chunk of r) hash.update(chunk as Buffer);
    }
    const session = this.live.get(uuid);
    if (algorithm === 'sha256' && session) session.hash = { hash, offset: size };
    return hash;
  }

  /** Streams the body into the session; the returned writer is still open (close or commit it). */
  private async appendLocked(uuid: string, body: Readable, range?: ChunkRange): Promise<{ size: number; w: FileWriter }> {
    const dataPath = paths.uploadData(uuid);
    // The running hash's offset is the data file's size (a stat otherwise: after a restart or a failed write).
    const session = this.live.get(uuid);
    const current = session?.hash?.offset ?? (await this.currentSize(uuid));
    if (range && range.start !== current) {
      body.resume();
      throw new AppError('RANGE_INVALID', { expectedStart: current, got: range }, { headers: { Range: `0-${Math.max(current - 1, 0)}` } });
    }
    const hash = await this.hashAt(uuid, current, 'sha256');
    if (session) session.hash = undefined; // invalid until the write completes
    const w = await this.driver.writer(dataPath, true);
    let received = 0;
    // Hash from a 'data' listener registered before pipeline's own: it sees every chunk, in
    // order, with no extra stream stage (and no extra buffering) between the socket and the file.
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
    if (failure?.side === 'file') {
      await w.close().catch(() => undefined);
      throw failure.err; // the file holds an unknown length: the next request stats and re-hashes it
    }
    if (failure) {
      // The client went away or stalled mid-body (the server's idle timeout destroys its socket).
      // Everything received was handed to the file and hashed: keep it, so the session resumes
      // from there (GET answers its Range, and the next chunk starts at that offset).
      await w.close();
      if (session) session.hash = { hash, offset: current + received };
      throw new AppError('BLOB_UPLOAD_INVALID', { reason: 'request body ended early', received, size: current + received }, {
        message: 'the request body ended before its declared length; the upload session keeps what arrived',
      });
    }
    try {
      // Flushed before the running hash says the bytes are in the file.
      w.stream.end();
      await streamFinished(w.stream);
    } catch (e) {
      await w.close().catch(() => undefined);
      throw e;
    }
    const size = current + received;
    if (session) session.hash = { hash, offset: size };
    if (range && range.end - range.start + 1 !== received) {
      await w.close().catch(() => undefined);
      throw new AppError('BLOB_UPLOAD_INVALID', { reason: 'chunk length does not match Content-Range', range, received });
    }
    return { size, w };
  }
}
