// A bandwidth limit for a stream (a replication policy's `speed`, in KB/s): bytes pass as they
// come, and after each chunk the stream waits until the bytes so far could not have arrived faster
// than the limit allows. One Throttle per stream; the clock is injectable for tests.
import { Transform, type TransformCallback } from 'node:stream';

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

export class Throttle extends Transform {
  private readonly start: number;
  private bytes = 0;

  /** bytesPerSecond > 0. */
  constructor(
    private readonly bytesPerSecond: number,
    private readonly clock: Clock = realClock,
  ) {
    super();
    if (!(bytesPerSecond > 0)) throw new RangeError('a throttle needs a positive rate');
    this.start = clock.now();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    // In slices of at most a quarter second's worth: a source that reads a whole blob as one chunk
    // (a file, a buffer) would otherwise pass it at once, and a receiver that knows the length
    // would have it all before the wait.
    const max = Math.max(1, Math.min(16 * 1024, Math.floor(this.bytesPerSecond / 4)));
    let offset = 0;
    const next = (): void => {
      while (offset < chunk.length) {
        // Destroyed (the transfer was stopped or failed): no more waiting for the rest.
        if (this.destroyed) return;
        const part = chunk.subarray(offset, offset + max);
        offset += part.length;
        this.bytes += part.length;
        this.push(part);
        const wait = this.start + (this.bytes / this.bytesPerSecond) * 1000 - this.clock.now();
        if (wait > 0) {
          this.clock.sleep(wait).then(next, cb);
          return;
        }
      }
      cb();
    };
    next();
  }
}

/** A policy's speed (KB/s, as Harbor counts it; 0 or less: no limit) in bytes per second. */
export function speedToBytesPerSecond(kbPerSecond: number | null | undefined): number | null {
  return kbPerSecond && kbPerSecond > 0 ? kbPerSecond * 1024 : null;
}
