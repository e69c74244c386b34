// S3-compatible object storage (AWS S3, Ceph radosgw, MinIO) through the AWS SDK v3, which is
// loaded only when this driver is built (BERTH_STORAGE=s3). Keys are `<prefix><path>`.
//
// Settings that radosgw 16 needs (see docs/README "Object storage"): path-style addressing for an
// endpoint, and checksums only WHEN_REQUIRED: the SDK's default streams an aws-chunked body with
// a CRC32 trailer that radosgw refuses. Bodies are sent as buffers with their length.
//
// Object reads (reader: every blob GET) from a plain-http endpoint (radosgw, MinIO in the same
// network) take a faster path, see FastReads below; anything unusual there falls back to the SDK.
import type { Agent, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { bodyBytesReceived } from '../../lib/young-gc.ts';
import { InvalidPartError, PathNotFoundError, type FileInfo, type ObjectInfo, type PartInfo, type StorageDriver } from './driver.ts';

export interface S3Options {
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Key prefix (e.g. "berth/"), so several installations can share a bucket. */
  prefix: string;
  /** Bytes of presigned read URLs kept (READ_URLS_BYTES by default; tests set less). */
  readUrlBytes?: number;
}

type Sdk = typeof import('@aws-sdk/client-s3');

/** Objects above this are copied in ranges (CopyObject's limit is 5 GiB). */
const COPY_MAX = 5 * 1024 * 1024 * 1024;
const COPY_RANGE = 1024 * 1024 * 1024;

function norm(p: string): string {
  return p.split('/').filter(Boolean).join('/');
}

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isNotFound(e: unknown): boolean {
  const name = (e as Error)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || status(e) === 404;
}

/** A presigned GET is signed for this long and reused for READ_URL_REUSE_MS of it. */
const READ_URL_EXPIRES_S = 15 * 60;
const READ_URL_REUSE_MS = 10 * 60 * 1000;
/**
 * Presigned URLs kept (one per object read lately), by their size: ~600 bytes of strings each (a
 * 450-character URL and its key), some 5,000 objects; the oldest goes first. Counted by entries
 * (10,000 URL objects), they could hold ~9 MiB of a heap capped at 128.
 */
const READ_URLS_BYTES = 3 * 1024 * 1024;
/** What an entry costs besides its two strings (the map's entry, the record). */
const READ_URL_OVERHEAD = 100;
/**
 * One socket read's buffer (libuv's own reads are 64 KiB). 256 KiB rather than 1 MiB: the parser's
 * copy of each read is then a smaller allocation that the allocator reuses instead of mapping fresh
 * pages (about half the page faults), which measured 1.4-1.8 ms CPU/MiB instead of 1.7-2.1 in 8
 * alternating rounds of bench/s3-read.mjs, and ~13 MiB less peak RSS over the pull rows.
 */
const READ_BUFFER = 256 * 1024;

/**
 * Object reads without the SDK's per-request work and with large socket reads. Node's HTTP client
 * reads a socket 64 KiB at a time into a fresh buffer and copies each body piece out of it again:
 * ~130 reads, allocations and stream hand-offs per 8 MiB, about as much CPU as everything else of a
 * blob GET together. Here the GET is presigned once by the SDK (kept per object for part of its
 * lifetime: presigning costs ~1 ms), sent with node:http on keep-alive sockets that read with
 * `onread` into one shared 256 KiB buffer and hand each read to the HTTP parser as their data. The
 * parser copies the body bytes out (verified by test/unit/s3-fast-read.test.ts), so the shared
 * buffer is free again when the hand-off returns; a read takes up to 256 KiB.
 *
 * Only a 200 (206 for a range) is taken; any other answer, or a request that fails before an
 * answer, returns null and the caller asks through the SDK, which gives today's errors (404 →
 * PathNotFoundError, 416 → empty, its retries on 5xx). A connection that breaks mid-body is an
 * error on the stream, as with the SDK (whose Body is the same kind of IncomingMessage).
 */
class FastReads {
  private readonly urls = new Map<string, { url: string; until: number; bytes: number }>();
  private urlBytes = 0;
  private presigner: Promise<typeof import('@aws-sdk/s3-request-presigner')> | null = null;

  private constructor(
    private readonly http: typeof import('node:http'),
    private readonly agent: Agent,
    private readonly sign: (key: string, expiresIn: number, presigner: typeof import('@aws-sdk/s3-request-presigner')) => Promise<string>,
    private readonly maxUrlBytes: number,
  ) {}

  static async create(sign: FastReads['sign'], maxUrlBytes = READ_URLS_BYTES): Promise<FastReads> {
    const http = await import('node:http');
    const net = await import('node:net');
    const shared = Buffer.allocUnsafe(READ_BUFFER);
    class ReadAgent extends http.Agent {
      override createConnection(o: import('node:http').ClientRequestArgs): import('node:net').Socket {
        const socket: import('node:net').Socket = net.connect({
          host: o.host ?? undefined,
          port: Number(o.port),
          family: o.family,
          localAddress: o.localAddress,
          onread: {
            buffer: shared,
            callback: (n: number) => {
              socket.emit('data', shared.subarray(0, n));
              // The parser copied the body out into fresh buffers that live until the client has
              // them: counted like request bodies, so a minor GC frees them while they are young
              // (else ~60 MB of them waited for a full collection during 4 pulls at once).
              bodyBytesReceived(n);
              return true;
            },
          },
        });
        return socket;
      }
    }
    // No socket limit: a download holds its socket while its client reads, so a cap would make the
    // next download wait for the slowest client.
    return new FastReads(http, new ReadAgent({ keepAlive: true }), sign, maxUrlBytes);
  }

  close(): void {
    this.agent.destroy();
    this.urls.clear();
    this.urlBytes = 0;
  }

  private forget(key: string): void {
    const had = this.urls.get(key);
    if (!had) return;
    this.urls.delete(key);
    this.urlBytes -= had.bytes;
  }

  private async url(key: string): Promise<string> {
    const now = Date.now();
    const hit = this.urls.get(key);
    if (hit && hit.until > now) return hit.url;
    this.presigner ??= import('@aws-sdk/s3-request-presigner');
    const url = await this.sign(key, READ_URL_EXPIRES_S, await this.presigner);
    this.forget(key);
    const bytes = key.length + url.length + READ_URL_OVERHEAD;
    while (this.urls.size && this.urlBytes + bytes > this.maxUrlBytes) this.forget(this.urls.keys().next().value!);
    this.urls.set(key, { url, until: now + READ_URL_REUSE_MS, bytes });
    this.urlBytes += bytes;
    return url;
  }

  /** The object's bytes [start, end] (end undefined: to its end), or null: ask the SDK. */
  async get(key: string, start: number, end: number | undefined): Promise<IncomingMessage | null> {
    const ranged = start !== 0 || end !== undefined;
    let url: string;
    try {
      url = await this.url(key);
    } catch {
      return null;
    }
    return new Promise((resolve) => {
      try {
        this.send(key, url, ranged ? `bytes=${start}-${end ?? ''}` : undefined, resolve);
      } catch {
        this.forget(key);
        resolve(null);
      }
    });
  }

  /** One GET on a keep-alive socket; resolves with a 200/206 answer, or null (see get). */
  private send(key: string, url: string, range: string | undefined, resolve: (r: IncomingMessage | null) => void): void {
    let answered = false;
    const giveUp = () => {
      this.forget(key);
      resolve(null);
    };
    const req = this.http.get(url, { agent: this.agent, headers: range ? { range } : {}, timeout: 120_000 }, (res) => {
      answered = true;
      clearTimeout(connecting);
      if (res.statusCode !== (range ? 206 : 200)) {
        res.destroy();
        giveUp();
        return;
      }
      resolve(res);
    });
    // As the SDK: 5 s to connect a new socket, then 120 s without a byte moving (mid-body: an error
    // on the body).
    let connecting: NodeJS.Timeout | undefined;
    req.on('socket', (socket) => {
      if (!socket.connecting) return;
      connecting = setTimeout(() => req.destroy(new Error('connection timeout')), 5_000);
      socket.once('connect', () => clearTimeout(connecting));
    });
    req.on('timeout', () => req.destroy(new Error('socket timeout')));
    req.on('error', () => {
      clearTimeout(connecting);
      if (!answered) giveUp();
    });
  }
}

export class S3Driver implements StorageDriver {
  readonly name = 's3';
  readonly minPartSize = 5 * 1024 * 1024;

  private constructor(
    private readonly sdk: Sdk,
    private readonly client: S3Client,
    private readonly opts: S3Options,
    /** Reads past the SDK (plain-http endpoints only); null: every read through the SDK. */
    private readonly fast: FastReads | null,
  ) {}

  /** Loads the SDK and builds the client; no request is made (see ensureBucket). */
  static async create(opts: S3Options): Promise<S3Driver> {
    const sdk = await import('@aws-sdk/client-s3');
    const client = new sdk.S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle,
      ...(opts.accessKeyId && opts.secretAccessKey ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // A store that does not answer fails the request instead of hanging it (requestTimeout is
      // the socket's idle time, so a long transfer that keeps moving is fine).
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000 },
    });
    const sign = (Key: string, expiresIn: number, p: typeof import('@aws-sdk/s3-request-presigner')) =>
      p.getSignedUrl(client, new sdk.GetObjectCommand({ Bucket: opts.bucket, Key }), { expiresIn });
    const fast = opts.endpoint && new URL(opts.endpoint).protocol === 'http:' ? await FastReads.create(sign, opts.readUrlBytes) : null;
    return new S3Driver(sdk, client, { ...opts, prefix: opts.prefix ? norm(opts.prefix) + '/' : '' }, fast);
  }

  /**
   * Creates the bucket when it does not exist. Two nodes starting at once may both try: "already
   * exists" followed by a HeadBucket that succeeds counts as success.
   */
  async ensureBucket(): Promise<'exists' | 'created'> {
    const Bucket = this.opts.bucket;
    try {
      await this.client.send(new this.sdk.HeadBucketCommand({ Bucket }));
      return 'exists';
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    try {
      await this.client.send(new this.sdk.CreateBucketCommand({ Bucket }));
      return 'created';
    } catch (e) {
      const name = (e as Error).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists' && status(e) !== 409) throw e;
      await this.client.send(new this.sdk.HeadBucketCommand({ Bucket }));
      return 'exists';
    }
  }

  close(): void {
    this.fast?.close();
    this.client.destroy();
  }

  private key(p: string): string {
    return this.opts.prefix + norm(p);
  }

  private dirKey(p: string): string {
    const k = this.key(p);
    return k && !k.endsWith('/') ? k + '/' : k;
  }

  async stat(p: string): Promise<FileInfo | null> {
    try {
      const h = await this.client.send(new this.sdk.HeadObjectCommand({ Bucket: this.opts.bucket, Key: this.key(p) }));
      return { size: Number(h.ContentLength ?? 0), modTime: h.LastModified ?? new Date() };
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    const l = await this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix: this.dirKey(p), MaxKeys: 1 }));
    return l.KeyCount ? { size: 0, modTime: l.Contents?.[0]?.LastModified ?? new Date() } : null;
  }

  async getContent(p: string): Promise<Buffer | null> {
    try {
      const r = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.opts.bucket, Key: this.key(p) }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async putContent(p: string, data: Buffer): Promise<void> {
    await this.client.send(new this.sdk.PutObjectCommand({ Bucket: this.opts.bucket, Key: this.key(p), Body: data, ContentLength: data.length }));
  }

  async reader(p: string, start = 0, end?: number): Promise<Readable> {
    const fast = await this.fast?.get(this.key(p), start, end);
    if (fast) return fast;
    const Range = start === 0 && end === undefined ? undefined : `bytes=${start}-${end ?? ''}`;
    try {
      const r = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.opts.bucket, Key: this.key(p), Range }));
      return r.Body as Readable;
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(p);
      // A range at or past the end (an empty object, say): nothing to read, as a file would give.
      if ((e as Error).name === 'InvalidRange' || status(e) === 416) {
        const { Readable: R } = await import('node:stream');
        return R.from([], { objectMode: false });
      }
      throw e;
    }
  }

  async delete(p: string): Promise<void> {
    const keys = [this.key(p)];
    for await (const o of this.walk(p)) keys.push(this.key(o.path));
    for (let i = 0; i < keys.length; i += 1000) {
      await this.client.send(new this.sdk.DeleteObjectsCommand({
        Bucket: this.opts.bucket,
        Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true },
      }));
    }
  }

  async list(p: string): Promise<string[]> {
    const Prefix = this.dirKey(p);
    const out: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const r = await this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix, Delimiter: '/', ContinuationToken }));
      for (const cp of r.CommonPrefixes ?? []) out.push(cp.Prefix!.slice(Prefix.length).replace(/\/$/, ''));
      for (const c of r.Contents ?? []) if (c.Key !== Prefix) out.push(c.Key!.slice(Prefix.length));
      ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out;
  }

  async *walk(prefix: string): AsyncIterable<ObjectInfo> {
    const Prefix = this.dirKey(prefix);
    let ContinuationToken: string | undefined;
    do {
      const r = await this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix, ContinuationToken }));
      for (const c of r.Contents ?? []) {
        yield { path: c.Key!.slice(this.opts.prefix.length), size: Number(c.Size ?? 0), modTime: c.LastModified ?? new Date() };
      }
      ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async startMultipart(p: string): Promise<string> {
    const r = await this.client.send(new this.sdk.CreateMultipartUploadCommand({ Bucket: this.opts.bucket, Key: this.key(p) }));
    return r.UploadId!;
  }

  async uploadPart(p: string, uploadId: string, partNumber: number, data: Buffer): Promise<PartInfo> {
    try {
      const r = await this.client.send(new this.sdk.UploadPartCommand({ Bucket: this.opts.bucket, Key: this.key(p), UploadId: uploadId, PartNumber: partNumber, Body: data, ContentLength: data.length }));
      return { partNumber, etag: r.ETag! };
    } catch (e) {
      if ((e as Error).name === 'NoSuchUpload') throw new InvalidPartError(p, `no multipart upload ${uploadId}`);
      throw e;
    }
  }

  async completeMultipart(p: string, uploadId: string, parts: PartInfo[]): Promise<void> {
    try {
      await this.client.send(new this.sdk.CompleteMultipartUploadCommand({
        Bucket: this.opts.bucket,
        Key: this.key(p),
        UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((x) => ({ PartNumber: x.partNumber, ETag: x.etag })) },
      }));
    } catch (e) {
      const name = (e as Error).name;
      if (name === 'EntityTooSmall' || name === 'InvalidPart' || name === 'InvalidPartOrder' || name === 'NoSuchUpload') throw new InvalidPartError(p, name);
      throw e;
    }
  }

  async listParts(p: string, uploadId: string): Promise<(PartInfo & { size: number })[]> {
    const out: (PartInfo & { size: number })[] = [];
    let PartNumberMarker: string | undefined;
    try {
      for (;;) {
        const r = await this.client.send(new this.sdk.ListPartsCommand({ Bucket: this.opts.bucket, Key: this.key(p), UploadId: uploadId, PartNumberMarker }));
        for (const x of r.Parts ?? []) out.push({ partNumber: x.PartNumber!, etag: x.ETag!, size: Number(x.Size ?? 0) });
        if (!r.IsTruncated) break;
        PartNumberMarker = String(r.NextPartNumberMarker);
      }
    } catch (e) {
      if ((e as Error).name === 'NoSuchUpload') throw new InvalidPartError(p, `no multipart upload ${uploadId}`);
      throw e;
    }
    return out.sort((a, b) => a.partNumber - b.partNumber);
  }

  async abortMultipart(p: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new this.sdk.AbortMultipartUploadCommand({ Bucket: this.opts.bucket, Key: this.key(p), UploadId: uploadId }));
    } catch (e) {
      if ((e as Error).name !== 'NoSuchUpload' && !isNotFound(e)) throw e;
    }
  }

  async copy(from: string, to: string): Promise<void> {
    const Bucket = this.opts.bucket;
    const CopySource = `${Bucket}/${this.key(from).split('/').map(encodeURIComponent).join('/')}`;
    const st = await this.stat(from);
    if (!st) throw new PathNotFoundError(from);
    if (st.size <= COPY_MAX) {
      await this.client.send(new this.sdk.CopyObjectCommand({ Bucket, Key: this.key(to), CopySource }));
      return;
    }
    // Larger objects: a multipart object whose parts are server-side copies of ranges.
    const id = await this.startMultipart(to);
    try {
      const parts: PartInfo[] = [];
      for (let off = 0, n = 1; off < st.size; off += COPY_RANGE, n++) {
        const r = await this.client.send(new this.sdk.UploadPartCopyCommand({
          Bucket, Key: this.key(to), UploadId: id, PartNumber: n, CopySource, CopySourceRange: `bytes=${off}-${Math.min(off + COPY_RANGE, st.size) - 1}`,
        }));
        parts.push({ partNumber: n, etag: r.CopyPartResult!.ETag! });
      }
      await this.completeMultipart(to, id, parts);
    } catch (e) {
      await this.abortMultipart(to, id).catch(() => undefined);
      throw e;
    }
  }

  async redirectUrl(p: string, expiresInSeconds: number): Promise<string> {
    const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
    return getSignedUrl(this.client, new this.sdk.GetObjectCommand({ Bucket: this.opts.bucket, Key: this.key(p) }), { expiresIn: expiresInSeconds });
  }
}
