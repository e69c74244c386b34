// In-memory driver for unit tests and throwaway runs. It behaves like object storage (no append,
// no rename; S3's 5 MiB minimum part size unless told otherwise), so the upload code that runs on
// S3 runs here too, without a server.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { InvalidPartError, PathNotFoundError, type FileInfo, type ObjectInfo, type PartInfo, type StorageDriver } from './driver.ts';

function norm(p: string): string {
  return p.split('/').filter(Boolean).join('/');
}

interface Obj {
  data: Buffer;
  modTime: Date;
}

export class MemoryDriver implements StorageDriver {
  readonly name = 'memory';
  readonly minPartSize: number;
  private objects = new Map<string, Obj>();
  private multiparts = new Map<string, { path: string; parts: Map<number, { etag: string; data: Buffer }> }>();

  constructor(opts: { minPartSize?: number } = {}) {
    this.minPartSize = opts.minPartSize ?? 5 * 1024 * 1024;
  }

  private isDir(p: string): boolean {
    const prefix = p + '/';
    for (const k of this.objects.keys()) if (k.startsWith(prefix)) return true;
    return false;
  }

  async stat(p: string): Promise<FileInfo | null> {
    const key = norm(p);
    const f = this.objects.get(key);
    if (f) return { size: f.data.length, modTime: f.modTime };
    return this.isDir(key) ? { size: 0, modTime: new Date() } : null;
  }

  async getContent(p: string): Promise<Buffer | null> {
    const f = this.objects.get(norm(p));
    return f ? Buffer.from(f.data) : null;
  }

  async putContent(p: string, data: Buffer): Promise<void> {
    this.objects.set(norm(p), { data: Buffer.from(data), modTime: new Date() });
  }

  async reader(p: string, start = 0, end?: number): Promise<Readable> {
    const f = this.objects.get(norm(p));
    if (!f) throw new PathNotFoundError(p);
    const slice = f.data.subarray(start, end === undefined ? f.data.length : end + 1);
    // Byte mode like a file stream (Readable.from defaults to object mode).
    return Readable.from(slice.length ? [slice] : [], { objectMode: false });
  }

  async delete(p: string): Promise<void> {
    const key = norm(p);
    this.objects.delete(key);
    const prefix = key + '/';
    for (const k of [...this.objects.keys()]) if (k.startsWith(prefix)) this.objects.delete(k);
  }

  async list(p: string): Promise<string[]> {
    const key = norm(p);
    const prefix = key ? key + '/' : '';
    const out = new Set<string>();
    for (const k of this.objects.keys()) if (k.startsWith(prefix)) out.add(k.slice(prefix.length).split('/')[0]);
    return [...out];
  }

  async *walk(prefix: string): AsyncIterable<ObjectInfo> {
    const key = norm(prefix);
    const under = key ? key + '/' : '';
    for (const [k, f] of [...this.objects]) if (k.startsWith(under)) yield { path: k, size: f.data.length, modTime: f.modTime };
  }

  async startMultipart(p: string): Promise<string> {
    const id = randomUUID();
    this.multiparts.set(id, { path: norm(p), parts: new Map() });
    return id;
  }

  async uploadPart(p: string, uploadId: string, partNumber: number, data: Buffer): Promise<PartInfo> {
    const m = this.multiparts.get(uploadId);
    if (!m || m.path !== norm(p)) throw new InvalidPartError(p, `no multipart upload ${uploadId}`);
    const etag = randomUUID();
    m.parts.set(partNumber, { etag, data: Buffer.from(data) });
    return { partNumber, etag };
  }

  async completeMultipart(p: string, uploadId: string, parts: PartInfo[]): Promise<void> {
    const m = this.multiparts.get(uploadId);
    if (!m || m.path !== norm(p)) throw new InvalidPartError(p, `no multipart upload ${uploadId}`);
    const bufs = parts.map((part, i) => {
      const got = m.parts.get(part.partNumber);
      if (!got || got.etag !== part.etag) throw new InvalidPartError(p, `part ${part.partNumber} unknown`);
      if (i < parts.length - 1 && got.data.length < this.minPartSize) throw new InvalidPartError(p, `part ${part.partNumber} is ${got.data.length} bytes, below ${this.minPartSize}`);
      return got.data;
    });
    this.objects.set(m.path, { data: Buffer.concat(bufs), modTime: new Date() });
    this.multiparts.delete(uploadId);
  }

  async listParts(p: string, uploadId: string): Promise<(PartInfo & { size: number })[]> {
    const m = this.multiparts.get(uploadId);
    if (!m || m.path !== norm(p)) throw new InvalidPartError(p, `no multipart upload ${uploadId}`);
    return [...m.parts].sort((a, b) => a[0] - b[0]).map(([partNumber, x]) => ({ partNumber, etag: x.etag, size: x.data.length }));
  }

  async abortMultipart(_p: string, uploadId: string): Promise<void> {
    this.multiparts.delete(uploadId);
  }

  /** Multipart uploads neither completed nor aborted (tests check nothing is left behind). */
  openMultiparts(): number {
    return this.multiparts.size;
  }

  async copy(from: string, to: string): Promise<void> {
    const f = this.objects.get(norm(from));
    if (!f) throw new PathNotFoundError(from);
    this.objects.set(norm(to), { data: f.data, modTime: new Date() });
  }
}
