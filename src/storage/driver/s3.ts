// S3-compatible object storage (AWS S3, Ceph radosgw, MinIO) through the AWS SDK v3, which is
// loaded only when this driver is built (BERTH_STORAGE=s3). Keys are `<prefix><path>`.
//
// Settings that radosgw 16 needs (see docs/README "Object storage"): path-style addressing for an
// endpoint, and checksums only WHEN_REQUIRED: the SDK's default streams an aws-chunked body with
// a CRC32 trailer that radosgw refuses. Bodies are sent as buffers with their length.
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
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

export class S3Driver implements StorageDriver {
  readonly name = 's3';
  readonly minPartSize = 5 * 1024 * 1024;

  private constructor(
    private readonly sdk: Sdk,
    private readonly client: S3Client,
    private readonly opts: S3Options,
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
    return new S3Driver(sdk, client, { ...opts, prefix: opts.prefix ? norm(opts.prefix) + '/' : '' });
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
