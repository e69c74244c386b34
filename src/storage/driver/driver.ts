// The storage driver: a dumb key/value store of objects addressed by slash-separated paths.
// It knows nothing about digests, repositories or uploads; src/storage builds those on top.
//
// The contract is what object storage (S3, radosgw, MinIO) can keep: whole-object writes, ranged
// reads, listing, multipart assembly and server-side copy. It does not promise append, rename or
// fsync. A driver over a local filesystem may offer those as an optional fast path (`files`),
// which the upload sessions use when present.
import type { Readable, Writable } from 'node:stream';

export interface FileInfo {
  size: number;
  modTime: Date;
}

/** An object found by walk(). */
export interface ObjectInfo extends FileInfo {
  path: string;
}

/** A part of a multipart object, as uploadPart returned it. */
export interface PartInfo {
  partNumber: number;
  etag: string;
}

export class PathNotFoundError extends Error {
  constructor(public readonly path: string) {
    super(`path not found: ${path}`);
    this.name = 'PathNotFoundError';
  }
}

/** completeMultipart was given a part that is not the last one and is smaller than minPartSize (S3's EntityTooSmall), or an unknown part. */
export class InvalidPartError extends Error {
  constructor(public readonly path: string, detail: string) {
    super(`invalid multipart part for ${path}: ${detail}`);
    this.name = 'InvalidPartError';
  }
}

export interface StorageDriver {
  readonly name: string;
  /** Smallest size of a part that is not the last one of a multipart object (5 MiB on S3). */
  readonly minPartSize: number;
  /** Size and mtime of an object, or null when absent. A prefix with objects under it ("directory") is size 0. */
  stat(path: string): Promise<FileInfo | null>;
  /** Whole content of a small object, or null when absent. The caller may change the buffer. */
  getContent(path: string): Promise<Buffer | null>;
  /** Replaces an object atomically (readers see the old or the new content, never a mix); durable on return. The caller may reuse `data` once the promise settles. */
  putContent(path: string, data: Buffer): Promise<void>;
  /** Streams bytes [start, end] (inclusive end, clamped to the size) of an object; throws PathNotFoundError. */
  reader(path: string, start?: number, end?: number): Promise<Readable>;
  /** Removes an object and every object under `path/`; absent paths are not an error. */
  delete(path: string): Promise<void>;
  /** Names of the direct children of a prefix ([] when absent). */
  list(path: string): Promise<string[]>;
  /** Every object under a prefix, with size and mtime, in no particular order (GC's sweep). */
  walk(prefix: string): AsyncIterable<ObjectInfo>;
  /**
   * Multipart assembly: parts are durable once uploadPart resolves, and nothing is visible at
   * `path` before completeMultipart; parts may come from different processes. Every part but the
   * last must hold at least minPartSize bytes (completeMultipart throws InvalidPartError). The
   * caller may reuse a part's `data` once uploadPart's promise settles.
   */
  startMultipart(path: string): Promise<string>;
  uploadPart(path: string, uploadId: string, partNumber: number, data: Buffer): Promise<PartInfo>;
  /**
   * Makes the parts, in the given order, the object at `path` (replacing it atomically); durable on
   * return. List every part uploaded: radosgw refuses a completion that leaves one out.
   */
  completeMultipart(path: string, uploadId: string, parts: PartInfo[]): Promise<void>;
  /** The parts uploaded so far, by part number (also those a process uploaded and died before recording). */
  listParts(path: string, uploadId: string): Promise<(PartInfo & { size: number })[]>;
  /** Drops an unfinished multipart object and its parts; an unknown id is not an error. */
  abortMultipart(path: string, uploadId: string): Promise<void>;
  /** Server-side copy; `to` is replaced atomically and durable on return; PathNotFoundError when `from` is absent. */
  copy(from: string, to: string): Promise<void>;
  /** A URL a client may GET directly for `expiresInSeconds` (presigned), or absent: bytes go through Berth. */
  redirectUrl?(path: string, expiresInSeconds: number): Promise<string>;
  /** Optional fast path of a local filesystem (append, fsync, rename), used by upload sessions when present. */
  readonly files?: LocalFiles;
  /** Releases connections (object storage clients); optional. */
  close?(): void;
}

/** What only a local filesystem has: files that grow in place and a rename. */
export interface LocalFiles {
  /** Opens a file for appending (append=true) or truncates it; creates parents. */
  writer(path: string, append: boolean): Promise<FileWriter>;
  /** Moves a file atomically, replacing the destination; durable when it returns. */
  move(from: string, to: string): Promise<void>;
}

/** A file being appended to. Bytes written are durable only after commit(). */
export interface FileWriter {
  readonly stream: Writable;
  /** Bytes in the file, including what was there when it was opened; exact once commit()/close() resolved. */
  size(): number;
  /** Flushes and fsyncs; the writer is closed afterwards. */
  commit(): Promise<void>;
  /** Closes without promising durability (the file keeps what was written). */
  close(): Promise<void>;
}
