// Blob upload sessions. Bytes are appended to uploads/<uuid>/data while being hashed; completion
// verifies the digest, fsyncs once and moves the file into the blob store in one rename, so a crash
// leaves either a resumable session or a complete blob, never a half blob in the store.
import { randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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

export class UploadStore {
  private locks = new KeyedMutex();
  /**
   * Sessions this process created or has read (the info file on disk is for restarts): the running
   * sha256, valid while `offset` equals the data file size, and whether it completed (its
   * directory is still being removed, and it is gone for every request).
   */
  private live = new Map<string, { info: UploadInfo; hash?: { hash: Hash; offset: number }; done?: boolean }>();

  constructor(private readonly driver: StorageDriver, private readonly blobs: BlobStore) {}

  /**
   * Starts a session. A transient one (a single-request push, completed by the same request) is
   * never written down: after a crash its data file is simply purged.
   */
  async create(repository: string, transient = false): Promise<UploadStatus> {
    const uuid = randomUUID();
    const info: UploadInfo = { uuid, repository, startedAt: new Date().toISOString() };
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
    this.live.set(uuid, { info, hash: { hash: newHash(), offset: 0 } });
    return { ...info, size: 0 };
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
      this.live.delete(uuid);
    });
  }

  /** Deletes sessions idle for longer than ttlSeconds; returns how many. */
  async purgeExpired(ttlSeconds: number, now = Date.now()): Promise<number> {
    let n = 0;
    for (const uuid of await this.driver.list(paths.uploadsRoot())) {
      const st = (await this.driver.stat(paths.uploadData(uuid))) ?? (await this.driver.stat(paths.uploadDir(uuid)));
      if (!st || now - st.modTime.getTime() > ttlSeconds * 1000) {
        await this.locks.run(uuid, async () => {
          await this.driver.delete(paths.uploadDir(uuid));
          this.live.delete(uuid);
        });
        n++;
      }
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
    this.live.set(uuid, { info });
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
    try {
      await pipeline(body, w.stream);
    } catch (e) {
      await w.close().catch(() => undefined);
      throw e;
    } finally {
      body.off('data', onData);
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
