// Read buffers that are reused instead of left to the garbage collector. Streaming a blob at
// hundreds of MB/s in fresh 1 MiB buffers keeps V8's collector busy on every core (the external
// memory drives it); a chunk handed back once the socket has taken it is read into again.

/** Size of one read chunk. */
export const CHUNK_SIZE = 1024 * 1024;
const KEEP = 16; // at most 16 MiB kept for reuse (two chunks per download in flight)

const free: Buffer[] = [];
/** Buffers handed out and not yet given back: a second give of the same memory is ignored. */
const out = new WeakSet<ArrayBufferLike>();

/** A chunk-sized buffer, reused when one was given back. */
export function takeChunk(): Buffer {
  const buf = free.pop() ?? Buffer.allocUnsafeSlow(CHUNK_SIZE);
  out.add(buf.buffer);
  return buf;
}

/** Gives back a buffer from takeChunk, or any view of one; its bytes must be needed by no one. */
export function giveChunk(view: Buffer): void {
  const ab = view.buffer;
  if (!out.has(ab)) return; // not ours, or given back already
  out.delete(ab);
  if (free.length < KEEP && ab.byteLength === CHUNK_SIZE) free.push(Buffer.from(ab, 0, CHUNK_SIZE));
}

/**
 * A stream whose chunks may be handed back after use: `release(chunk)` with any chunk it emitted
 * (a view of a pooled buffer). Consumers that never release simply leave chunks to the collector.
 */
export interface Releasing {
  release(chunk: Buffer): void;
}

export function isReleasing(s: unknown): s is Releasing {
  return typeof (s as Releasing | null)?.release === 'function';
}
