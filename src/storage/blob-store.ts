// Content-addressed blob store over a storage driver: one copy per digest for the whole registry.
// It does not know about repositories; visibility (links) is the service's job. Blobs get here
// only through an upload's place() (src/storage/uploads.ts), after their digest was verified.
import type { Readable } from 'node:stream';
import type { ParsedDigest } from '../lib/digest.ts';
import type { StorageDriver } from './driver/driver.ts';
import { paths } from './paths.ts';

export class BlobStore {
  constructor(private readonly driver: StorageDriver) {}

  /** Size of a stored blob, or null. */
  async size(d: ParsedDigest): Promise<number | null> {
    const st = await this.driver.stat(paths.blobData(d));
    return st ? st.size : null;
  }

  /** Streams bytes [start, end] of a blob; throws PathNotFoundError when absent. */
  open(d: ParsedDigest, start?: number, end?: number): Promise<Readable> {
    return this.driver.reader(paths.blobData(d), start, end);
  }

  async getBytes(d: ParsedDigest): Promise<Buffer | null> {
    return this.driver.getContent(paths.blobData(d));
  }

  /** A short-lived URL of the blob's bytes a client may fetch directly, or null when the driver has none. */
  async redirectUrl(d: ParsedDigest, expiresInSeconds: number): Promise<string | null> {
    return this.driver.redirectUrl ? this.driver.redirectUrl(paths.blobData(d), expiresInSeconds) : null;
  }

  async delete(d: ParsedDigest): Promise<void> {
    await this.driver.delete(paths.blobDir(d));
  }

  /** Every blob in the store with its size and modification time (for garbage collection). */
  async *list(): AsyncGenerator<{ digest: ParsedDigest; size: number; modTime: Date }> {
    for await (const o of this.driver.walk(paths.blobsUnder())) {
      const d = paths.blobOfData(o.path);
      if (d) yield { digest: d, size: o.size, modTime: o.modTime };
    }
  }
}
