// A pass-through stream that hashes what flows and, at the end, refuses (errors) unless the bytes
// hash to the expected digest and, when known, have the expected length. Whoever stores or serves
// a downloaded blob reads through it, so a blob whose bytes lie about their digest never counts as
// received: the consumer sees an error instead of an end.
import { Transform, type TransformCallback } from 'node:stream';
import { newHash, parseDigest } from '../lib/digest.ts';
import { UpstreamError } from './errors.ts';

export class VerifyingStream extends Transform {
  private readonly hash;
  private readonly algorithm;
  private bytes = 0;

  constructor(
    private readonly digest: string,
    private readonly expectedSize: number | null,
    private readonly source = 'the registry',
  ) {
    super();
    const parsed = parseDigest(digest);
    if (!parsed) throw new UpstreamError('protocol', `cannot verify ${digest.slice(0, 80)}: unsupported digest`);
    this.algorithm = parsed.algorithm;
    this.hash = newHash(parsed.algorithm);
  }

  /** Bytes that went through so far. */
  get received(): number {
    return this.bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedSize !== null && this.bytes > this.expectedSize) {
      cb(new UpstreamError('digest-mismatch', `${this.source} sent more than the ${this.expectedSize} bytes of ${this.digest}`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.expectedSize !== null && this.bytes !== this.expectedSize) {
      cb(new UpstreamError('digest-mismatch', `${this.source} sent ${this.bytes} bytes for ${this.digest}, expected ${this.expectedSize}`));
      return;
    }
    const got = `${this.algorithm}:${this.hash.digest('hex')}`;
    if (got !== this.digest) {
      cb(new UpstreamError('digest-mismatch', `${this.source} sent bytes that hash to ${got}, not ${this.digest}: refused`));
      return;
    }
    cb();
  }
}
