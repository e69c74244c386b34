// In-memory driver for unit tests and throwaway runs. Same contract as the filesystem driver.
import { Readable, Writable } from 'node:stream';
import { PathNotFoundError, type FileInfo, type FileWriter, type StorageDriver } from './driver.ts';

function norm(p: string): string {
  return p.split('/').filter(Boolean).join('/');
}

export class MemoryDriver implements StorageDriver {
  readonly name = 'memory';
  private files = new Map<string, { chunks: Buffer[]; size: number; modTime: Date }>();

  private isDir(p: string): boolean {
    const prefix = p + '/';
    for (const k of this.files.keys()) if (k.startsWith(prefix)) return true;
    return false;
  }

  async stat(p: string): Promise<FileInfo | null> {
    const key = norm(p);
    const f = this.files.get(key);
    if (f) return { size: f.size, modTime: f.modTime };
    return this.isDir(key) ? { size: 0, modTime: new Date() } : null;
  }

  async getContent(p: string): Promise<Buffer | null> {
    const f = this.files.get(norm(p));
    return f ? Buffer.concat(f.chunks) : null;
  }

  async putContent(p: string, data: Buffer): Promise<void> {
    this.files.set(norm(p), { chunks: [Buffer.from(data)], size: data.length, modTime: new Date() });
  }

  async reader(p: string, start = 0, end?: number): Promise<Readable> {
    const f = this.files.get(norm(p));
    if (!f) throw new PathNotFoundError(p);
    const all = Buffer.concat(f.chunks);
    const slice = all.subarray(start, end === undefined ? all.length : end + 1);
    // Byte mode like a file stream (Readable.from defaults to object mode).
    return Readable.from(slice.length ? [slice] : [], { objectMode: false });
  }

  async writer(p: string, append: boolean): Promise<FileWriter> {
    const key = norm(p);
    let f = this.files.get(key);
    if (!f || !append) {
      f = { chunks: [], size: 0, modTime: new Date() };
      this.files.set(key, f);
    }
    const file = f;
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        file.chunks.push(Buffer.from(chunk));
        file.size += chunk.length;
        file.modTime = new Date();
        cb();
      },
    });
    const end = () => new Promise<void>((resolve) => (stream.writableFinished ? resolve() : stream.end(resolve)));
    return { stream, size: () => file.size + stream.writableLength, commit: end, close: end };
  }

  async move(from: string, to: string): Promise<void> {
    const src = norm(from);
    const f = this.files.get(src);
    if (!f) throw new PathNotFoundError(from);
    this.files.delete(src);
    this.files.set(norm(to), f);
  }

  async delete(p: string): Promise<void> {
    const key = norm(p);
    this.files.delete(key);
    const prefix = key + '/';
    for (const k of [...this.files.keys()]) if (k.startsWith(prefix)) this.files.delete(k);
  }

  async list(p: string): Promise<string[]> {
    const key = norm(p);
    const prefix = key ? key + '/' : '';
    const out = new Set<string>();
    for (const k of this.files.keys()) if (k.startsWith(prefix)) out.add(k.slice(prefix.length).split('/')[0]);
    return [...out];
  }
}
