// Content-addressed blob store over a storage driver: one copy per digest for the whole registry.
// It does not know about repositories; visibility (links) is the service's job.
import type { Readable } from 'node:stream';
import { digestOf, type ParsedDigest, parseDigest } from '../lib/digest.ts';
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

  /**
   * Moves a complete, verified, fsynced file into the store. When the blob is already present
   * (a concurrent or earlier push of the same content) the file is simply discarded.
   */
  async adopt(fromPath: string, d: ParsedDigest, size: number): Promise<void> {
    if ((await this.size(d)) === size) {
      await this.driver.delete(fromPath);
      return;
    }
    await this.driver.move(fromPath, paths.blobData(d));
  }

  async delete(d: ParsedDigest): Promise<void> {
    await this.driver.delete(paths.blobDir(d));
  }

  /** Every blob in the store with its size and modification time (for garbage collection). */
  async *list(): AsyncGenerator<{ digest: ParsedDigest; size: number; modTime: Date }> {
    for (const algorithm of await this.driver.list(paths.blobsUnder())) {
      for (const prefix of await this.driver.list(paths.blobsUnder(algorithm))) {
        for (const hex of await this.driver.list(paths.blobsUnder(algorithm, prefix))) {
          const d = parseDigest(`${algorithm}:${hex}`);
          const st = d && (await this.driver.stat(paths.blobData(d)));
          if (d && st) yield { digest: d, size: st.size, modTime: st.modTime };
        }
      }
    }
  }
}
