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
    this.bytes += chunk.length;
    this.push(chunk);
    const due = this.start + (this.bytes / this.bytesPerSecond) * 1000;
    const wait = due - this.clock.now();
    if (wait <= 0) return cb();
    this.clock.sleep(wait).then(() => cb(), cb);
  }
}

/** A policy's speed (KB/s, as Harbor counts it; 0 or less: no limit) in bytes per second. */
export function speedToBytesPerSecond(kbPerSecond: number | null | undefined): number | null {
  return kbPerSecond && kbPerSecond > 0 ? kbPerSecond * 1024 : null;
}
