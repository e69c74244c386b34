// Filesystem driver: files under a root directory. Atomic replace is write-to-temp + fsync + rename,
// and renames fsync the destination directory so a committed file survives a crash.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { PathNotFoundError, type FileInfo, type FileWriter, type StorageDriver } from './driver.ts';

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'ENOENT';
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class FsDriver implements StorageDriver {
  readonly name = 'filesystem';

  constructor(private readonly root: string) {
    fs.mkdirSync(root, { recursive: true });
  }

  private full(p: string): string {
    // "/a//b/" and "a/b" are the same file (as in the memory driver); ".." cannot climb out of the root.
    const rel = path.posix.normalize('/' + p).slice(1).replace(/\/+$/, '');
    if (rel.startsWith('..')) throw new Error(`invalid storage path: ${p}`);
    return path.join(this.root, rel);
  }

  async stat(p: string): Promise<FileInfo | null> {
    try {
      const st = await fsp.stat(this.full(p));
      return { size: st.isDirectory() ? 0 : st.size, modTime: st.mtime };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async getContent(p: string): Promise<Buffer | null> {
    try {
      return await fsp.readFile(this.full(p));
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async putContent(p: string, data: Buffer): Promise<void> {
    const target = this.full(p);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${randomUUID()}`;
    try {
      const fh = await fsp.open(tmp, 'w');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, target);
    } catch (e) {
      // A failed write or rename (disk full, target is a directory) must not leave the temp file behind.
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
    await fsyncDir(path.dirname(target));
  }

  async reader(p: string, start = 0, end?: number): Promise<Readable> {
    const file = this.full(p);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, 'r');
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(p);
      throw e;
    }
    return fh.createReadStream({ start, end, highWaterMark: 256 * 1024 });
  }

  async writer(p: string, append: boolean): Promise<FileWriter> {
    const file = this.full(p);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const stream = fs.createWriteStream(file, { flags: append ? 'a' : 'w', highWaterMark: 1024 * 1024 });
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    const initial = append ? (await fsp.stat(file)).size : 0;
    const end = async () => {
      if (!stream.writableEnded && !stream.destroyed) stream.end();
      await closed;
      if (stream.errored) throw stream.errored;
    };
    return {
      stream,
      size: () => initial + stream.bytesWritten,
      close: end,
      async commit() {
        await end();
        // fsync through a fresh descriptor: it flushes the file's data whichever descriptor wrote it.
        const fh = await fsp.open(file, 'r+');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      },
    };
  }

  async move(from: string, to: string): Promise<void> {
    const src = this.full(from);
    const dst = this.full(to);
    // mkdir returns the first directory it had to create: those new entries must reach the disk
    // too, or a power loss could drop the blob's directory after the database linked it.
    const created = await fsp.mkdir(path.dirname(dst), { recursive: true });
    try {
      await fsp.rename(src, dst);
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(from);
      throw e;
    }
    await fsyncDir(path.dirname(dst));
    if (created) {
      for (let dir = path.dirname(dst); dir !== path.dirname(created); dir = path.dirname(dir)) {
        if (dir !== path.dirname(dst)) await fsyncDir(dir);
      }
      await fsyncDir(path.dirname(created));
    }
  }

  async delete(p: string): Promise<void> {
    await fsp.rm(this.full(p), { recursive: true, force: true });
  }

  async list(p: string): Promise<string[]> {
    try {
      return await fsp.readdir(this.full(p));
    } catch (e) {
      if (isNotFound(e) || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw e;
    }
  }
}
