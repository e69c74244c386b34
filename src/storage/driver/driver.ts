// The storage driver: a dumb key/value store of files addressed by slash-separated paths.
// It knows nothing about digests, repositories or uploads; src/storage builds those on top.
import type { Readable, Writable } from 'node:stream';

export interface FileInfo {
  size: number;
  modTime: Date;
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

export class PathNotFoundError extends Error {
  constructor(public readonly path: string) {
    super(`path not found: ${path}`);
    this.name = 'PathNotFoundError';
  }
}

export interface StorageDriver {
  readonly name: string;
  /** File size and mtime, or null when absent. Directories are reported as size 0. */
  stat(path: string): Promise<FileInfo | null>;
  /** Whole content of a small file, or null when absent. */
  getContent(path: string): Promise<Buffer | null>;
  /** Replaces a small file atomically (readers see the old or the new content, never a mix). */
  putContent(path: string, data: Buffer): Promise<void>;
  /** Streams bytes [start, end] (inclusive end) of a file; throws PathNotFoundError. */
  reader(path: string, start?: number, end?: number): Promise<Readable>;
  /** Opens a file for appending (append=true) or truncates it; creates parents. */
  writer(path: string, append: boolean): Promise<FileWriter>;
  /** Moves a file atomically, replacing the destination; durable when it returns. */
  move(from: string, to: string): Promise<void>;
  /** Removes a file or a whole directory tree; absent paths are not an error. */
  delete(path: string): Promise<void>;
  /** Names of the direct children of a directory ([] when absent). */
  list(path: string): Promise<string[]>;
}
