// Filesystem driver: files under a root directory. Atomic replace is write-to-temp + fsync + rename,
// and renames fsync the destination directory so a committed file survives a crash. Besides the
// object contract it offers the local fast path (`files`: append, fdatasync, rename) that upload
// sessions use. Multipart parts wait in <root>/.multipart/<id>/ (hidden from list and walk).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { CHUNK_SIZE, giveChunk, takeChunk, type Releasing } from '../../lib/chunk-pool.ts';
import { InvalidPartError, PathNotFoundError, type FileInfo, type FileWriter, type LocalFiles, type ObjectInfo, type PartInfo, type StorageDriver } from './driver.ts';

/**
 * Bytes [start, end] of an open file, read into pooled chunks (see lib/chunk-pool.ts): a consumer
 * that calls release(chunk) once it is done with a chunk lets the next read reuse its buffer.
 */
class FileReadStream extends Readable implements Releasing {
  private pos: number;
  private readonly last: number;
  private reading = false;

  constructor(private readonly fh: fsp.FileHandle, start: number, end: number | undefined) {
    super({ highWaterMark: CHUNK_SIZE });
    this.pos = start;
    this.last = end ?? Infinity;
  }

  override _read(): void {
    if (this.reading) return;
    this.reading = true;
    const want = Math.min(CHUNK_SIZE, this.last - this.pos + 1);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const buf = takeChunk();
    this.fh.read(buf, 0, want, this.pos).then(
      ({ bytesRead }) => {
        this.reading = false;
        if (bytesRead === 0) {
          giveChunk(buf);
          this.push(null);
          return;
        }
        this.pos += bytesRead;
        this.push(buf.subarray(0, bytesRead));
      },
      (err: Error) => {
        this.reading = false;
        giveChunk(buf);
        this.destroy(err);
      },
    );
  }

  release(chunk: Buffer): void {
    giveChunk(chunk);
  }

  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    this.fh.close().then(() => cb(err), (e: Error) => cb(err ?? e));
  }
}

/** Bytes gathered before one writev: a 64 KiB socket chunk each time would be ~128 thread-pool round trips per 8 MiB. */
const BATCH = 1024 * 1024;

/**
 * Appends to an open descriptor in ~1 MiB writev calls. fs.WriteStream only gathers what arrives
 * while a write is in flight, so at socket speed it mostly writes 64 KiB at a time, and every write
 * is a hand-off to the thread pool and back (about 1 ms of main-thread CPU per 8 MiB blob here).
 * Chunks are acknowledged as soon as they are gathered; backpressure applies while a batch is
 * being written. The descriptor is not closed here.
 */
class BatchWriteStream extends Writable {
  bytesWritten = 0;
  private batch: Buffer[] = [];
  private batched = 0;
  /** Set while a writev is in flight: destroy waits for it, so the caller never closes the descriptor under it. */
  private onIdle: (() => void) | null = null;
  private busy = false;

  constructor(private readonly fd: number) {
    super({ highWaterMark: BATCH });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.batch.push(chunk);
    this.batched += chunk.length;
    if (this.batched < BATCH) cb();
    else this.flush(cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.flush(cb);
  }

  private flush(cb: (e?: Error | null) => void): void {
    const bufs = this.batch;
    const total = this.batched;
    this.batch = [];
    this.batched = 0;
    if (total === 0) return cb();
    const done = (err?: Error | null) => {
      this.busy = false;
      const idle = this.onIdle;
      this.onIdle = null;
      if (idle) idle();
      else cb(err);
    };
    const write = (list: Buffer[], left: number): void => {
      this.busy = true;
      fs.writev(this.fd, list, (err, n) => {
        if (err || this.destroyed) return done(err);
        this.bytesWritten += n;
        if (n === left) return done();
        // A short write (rare: a full disk reports ENOSPC on the retry): go on from where it stopped.
        let skip = n;
        const rest: Buffer[] = [];
        for (const b of list) {
          if (skip >= b.length) skip -= b.length;
          else {
            rest.push(skip ? b.subarray(skip) : b);
            skip = 0;
          }
        }
        write(rest, left - n);
      });
    };
    write(bufs, total);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.batch = [];
    if (this.busy) this.onIdle = () => cb(err);
    else cb(err);
  }
}

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

/** Resolves once every byte given to the stream was written; rejects if it failed or was destroyed first. */
function ended(stream: Writable): Promise<void> {
  if (stream.writableFinished) return Promise.resolve();
  if (stream.errored) return Promise.reject(stream.errored);
  if (stream.destroyed) return Promise.reject(new Error('write stream destroyed before it finished'));
  return new Promise((resolve, reject) => {
    stream.once('finish', () => resolve());
    stream.once('error', reject);
    stream.once('close', () => (stream.writableFinished ? resolve() : reject(stream.errored ?? new Error('write stream closed before it finished'))));
  });
}

/** Where multipart parts wait, under the root; a name no storage path starts with. */
const MULTIPART = '.multipart';

export class FsDriver implements StorageDriver {
  readonly name = 'filesystem';
  readonly minPartSize = 1;
  readonly files: LocalFiles = { writer: (p, append) => this.writer(p, append), move: (from, to) => this.move(from, to) };

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
    return new FileReadStream(fh, start, end);
  }

  private async writer(p: string, append: boolean): Promise<FileWriter> {
    const file = this.full(p);
    const flags = append ? 'a' : 'w';
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, flags);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      await fsp.mkdir(path.dirname(file), { recursive: true });
      fh = await fsp.open(file, flags);
    }
    let initial = 0;
    try {
      if (append) initial = (await fh.stat()).size;
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
    // Writes go through the descriptor opened above (kept open for the fdatasync in commit).
    const stream = new BatchWriteStream(fh.fd);
    let closing: Promise<void> | undefined;
    // Ends the stream (if the caller did not), waits for the last write, then runs `before`
    // (fdatasync) and closes the descriptor whatever happened; the first error wins.
    const finish = (before?: () => Promise<void>) =>
      (closing ??= (async () => {
        let err: unknown;
        try {
          if (!stream.writableEnded && !stream.destroyed) stream.end();
          await ended(stream);
          if (before) await before();
        } catch (e) {
          err = e;
        }
        await fh.close().catch((e) => (err ??= e));
        if (err) throw err;
      })());
    return {
      stream,
      size: () => initial + stream.bytesWritten,
      close: () => finish(),
      // fdatasync on the descriptor that wrote: it flushes the data and the size (all a reader
      // needs); only timestamps may lag behind.
      commit: () => finish(() => fh.datasync()),
    };
  }

  private async move(from: string, to: string): Promise<void> {
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
    // The rename lives in the destination directory; each directory mkdir created lives in its
    // parent. fsync them together: they are independent, and nobody sees the blob as stored
    // (the database links it) before all of them returned.
    const dirs = [path.dirname(dst)];
    if (created) {
      for (let dir = path.dirname(dst); dir !== path.dirname(created); dir = path.dirname(dir)) dirs.push(path.dirname(dir));
    }
    await Promise.all([...new Set(dirs)].map(fsyncDir));
  }

  async delete(p: string): Promise<void> {
    await fsp.rm(this.full(p), { recursive: true, force: true });
  }

  async list(p: string): Promise<string[]> {
    try {
      return (await fsp.readdir(this.full(p))).filter((n) => n !== MULTIPART);
    } catch (e) {
      if (isNotFound(e) || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw e;
    }
  }

  async *walk(prefix: string): AsyncIterable<ObjectInfo> {
    const base = this.full(prefix);
    const rel = path.relative(this.root, base).split(path.sep).filter(Boolean).join('/');
    const st = await this.stat(prefix);
    if (!st) return;
    if (st.size > 0 || !(await fsp.stat(base)).isDirectory()) {
      yield { path: rel, ...st };
      return;
    }
    const stack = [rel];
    while (stack.length) {
      const dir = stack.pop()!;
      let entries: fs.Dirent[];
      try {
        entries = await fsp.readdir(path.join(this.root, dir), { withFileTypes: true });
      } catch (e) {
        if (isNotFound(e)) continue; // removed while walking
        throw e;
      }
      for (const e of entries) {
        const child = dir ? `${dir}/${e.name}` : e.name;
        if (child === MULTIPART || e.name.includes('.tmp-')) continue;
        if (e.isDirectory()) stack.push(child);
        else if (e.isFile()) {
          const s = await this.stat(child);
          if (s) yield { path: child, ...s };
        }
      }
    }
  }

  private partFile(uploadId: string, partNumber?: number): string {
    if (!/^[0-9a-f-]{36}$/.test(uploadId)) throw new InvalidPartError('', `no multipart upload ${uploadId}`);
    return path.join(this.root, MULTIPART, uploadId, partNumber === undefined ? '' : String(partNumber));
  }

  async startMultipart(_p: string): Promise<string> {
    const id = randomUUID();
    await fsp.mkdir(this.partFile(id), { recursive: true });
    return id;
  }

  async uploadPart(p: string, uploadId: string, partNumber: number, data: Buffer): Promise<PartInfo> {
    if (!fs.existsSync(this.partFile(uploadId))) throw new InvalidPartError(p, `no multipart upload ${uploadId}`);
    const file = this.partFile(uploadId, partNumber);
    const tmp = `${file}.tmp-${randomUUID()}`;
    await fsp.writeFile(tmp, data);
    await fsp.rename(tmp, file);
    const etag = createHash('md5').update(data).digest('hex');
    return { partNumber, etag };
  }

  async completeMultipart(p: string, uploadId: string, parts: PartInfo[]): Promise<void> {
    const target = this.full(p);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${randomUUID()}`;
    try {
      const out = await fsp.open(tmp, 'w');
      try {
        for (const [i, part] of parts.entries()) {
          let data: Buffer;
          try {
            data = await fsp.readFile(this.partFile(uploadId, part.partNumber));
          } catch (e) {
            if (isNotFound(e)) throw new InvalidPartError(p, `part ${part.partNumber} unknown`);
            throw e;
          }
          if (createHash('md5').update(data).digest('hex') !== part.etag) throw new InvalidPartError(p, `part ${part.partNumber} unknown`);
          if (i < parts.length - 1 && data.length < this.minPartSize) throw new InvalidPartError(p, `part ${part.partNumber} too small`);
          await out.write(data);
        }
        await out.sync();
      } finally {
        await out.close();
      }
      await fsp.rename(tmp, target);
    } catch (e) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
    await fsyncDir(path.dirname(target));
    await this.abortMultipart(p, uploadId);
  }

  async listParts(p: string, uploadId: string): Promise<(PartInfo & { size: number })[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.partFile(uploadId));
    } catch (e) {
      if (isNotFound(e)) throw new InvalidPartError(p, `no multipart upload ${uploadId}`);
      throw e;
    }
    const out: (PartInfo & { size: number })[] = [];
    for (const n of names.filter((x) => /^\d+$/.test(x)).map(Number).sort((a, b) => a - b)) {
      const data = await fsp.readFile(this.partFile(uploadId, n));
      out.push({ partNumber: n, etag: createHash('md5').update(data).digest('hex'), size: data.length });
    }
    return out;
  }

  async abortMultipart(_p: string, uploadId: string): Promise<void> {
    await fsp.rm(this.partFile(uploadId), { recursive: true, force: true });
  }

  async copy(from: string, to: string): Promise<void> {
    const src = this.full(from);
    const dst = this.full(to);
    await fsp.mkdir(path.dirname(dst), { recursive: true });
    const tmp = `${dst}.tmp-${randomUUID()}`;
    try {
      // A reflink where the filesystem has them (O(1)), else a real copy; never a hard link:
      // the source may be an upload that still grows in place.
      await fsp.copyFile(src, tmp, fs.constants.COPYFILE_FICLONE);
      const fh = await fsp.open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, dst);
    } catch (e) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      if (isNotFound(e) && !fs.existsSync(src)) throw new PathNotFoundError(from);
      throw e;
    }
    await fsyncDir(path.dirname(dst));
  }
}
