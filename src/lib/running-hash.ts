// Running hashes of upload sessions: Node's native one, and a SHA-256 whose state can be saved
// and continued in another process (a chunked upload whose next chunk reaches another node).
//
// Node's crypto cannot export a hash's state, so the continuable SHA-256 is hash-wasm's (pure
// WebAssembly, no install script; `save()`/`load()` give its state as 116 bytes). It costs more
// CPU than the native one, which uses the CPU's SHA instructions through OpenSSL. Measured here
// (Node 20.20, OpenSSL 3.0, x86-64 with SHA-NI, 2 cores shared with other work, load average
// 3-9; CPU time over 256 MiB fed in 16-64 KiB chunks, three alternating rounds):
//   native createHash('sha256')           1,070-1,220 MB/s
//   hash-wasm createSHA256()                150-240 MB/s  (about 5-7x the CPU of native)
//   hash-wasm, load + update + save per chunk  (as used here)  within the noise of the above
// Still far faster than what it replaces: re-reading every earlier byte from object storage
// (~50 MB/s from radosgw, ~20 s/GiB) on each chunk that changes node. So uploads use the
// continuable one only where a later chunk may continue elsewhere (src/storage/uploads.ts says
// when), and the native one everywhere else (a monolithic PUT, the single-PATCH stream of docker,
// podman and skopeo, every upload of a single node).
//
// One WebAssembly instance serves every session of the process: each update loads the session's
// state, hashes, and saves it again, synchronously (nothing else runs in between), so a session
// costs its 116-byte state, not an instance. A saved state also carries some of the last bytes
// hashed (the unfinished 64-byte block): it is as sensitive as the blob itself.
import { createHash, type Hash } from 'node:crypto';
import { createSHA256, type IHasher } from 'hash-wasm';
import { newHash, type DigestAlgorithm } from './digest.ts';

/** A hash over the bytes given so far, which goes on after each digest. */
export interface RunningHash {
  update(chunk: Uint8Array): void;
  /** The digest of every byte given so far; the hash can still be updated. */
  digest(): Buffer;
  /** The saved state (RESUMABLE_SHA256_FORMAT) to continue from elsewhere, or null: this hash cannot be saved. */
  save(): Buffer | null;
}

/**
 * The format of a saved state: hash-wasm's SHA-256 state (its first 4 bytes name the WebAssembly
 * build, which refuses the state of another build), then the number of bytes hashed (64-bit big
 * endian), then the first 16 bytes of the sha256 of all that (a torn or altered state is refused).
 */
export const RESUMABLE_SHA256_FORMAT = 'sha256-wasm-state-v1';
const LENGTH_BYTES = 8;
const CHECK_BYTES = 16;

class NativeHash implements RunningHash {
  constructor(private readonly hash: Hash) {}
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }
  digest(): Buffer {
    return this.hash.copy().digest();
  }
  save(): null {
    return null;
  }
}

/** Node's native hash (fast; its state cannot be saved). */
export function nativeHash(algorithm: DigestAlgorithm = 'sha256'): RunningHash {
  return new NativeHash(newHash(algorithm));
}

interface Engine {
  hasher: IHasher;
  /** Bytes of hash-wasm's saved state. */
  stateLength: number;
}

let engine: Promise<Engine | null> | undefined;

/** The process's one hash-wasm SHA-256 instance; null where WebAssembly cannot run (then nothing is resumable). */
function wasmEngine(): Promise<Engine | null> {
  engine ??= createSHA256().then(
    (hasher) => ({ hasher, stateLength: hasher.init().save().length }),
    () => null,
  );
  return engine;
}

class ResumableSha256 implements RunningHash {
  constructor(
    private readonly engine: Engine,
    private state: Uint8Array,
    /** Bytes hashed so far. */
    private length: number,
  ) {}

  update(chunk: Uint8Array): void {
    const h = this.engine.hasher;
    h.load(this.state);
    h.update(chunk);
    this.state = h.save();
    this.length += chunk.length;
  }

  digest(): Buffer {
    return Buffer.from(this.engine.hasher.load(this.state).digest('binary'));
  }

  save(): Buffer {
    const out = Buffer.alloc(this.state.length + LENGTH_BYTES + CHECK_BYTES);
    out.set(this.state, 0);
    out.writeBigUInt64BE(BigInt(this.length), this.state.length);
    checksum(out.subarray(0, this.state.length + LENGTH_BYTES)).copy(out, this.state.length + LENGTH_BYTES);
    return out;
  }
}

function checksum(b: Uint8Array): Buffer {
  return createHash('sha256').update(b).digest().subarray(0, CHECK_BYTES);
}

/** A new SHA-256 whose state can be saved (the native one where WebAssembly cannot run). */
export async function resumableSha256(): Promise<RunningHash> {
  const e = await wasmEngine();
  return e ? new ResumableSha256(e, e.hasher.init().save(), 0) : nativeHash('sha256');
}

/**
 * Continues a saved state (RESUMABLE_SHA256_FORMAT) of the first `length` bytes. Null when it is
 * not one: wrong size, a checksum that does not match, another byte count, the state of another
 * hash-wasm build. The caller then re-hashes the bytes instead; a bad state never hashes on.
 */
export async function resumeSha256(saved: Uint8Array, length: number): Promise<RunningHash | null> {
  const e = await wasmEngine();
  if (!e || saved.length !== e.stateLength + LENGTH_BYTES + CHECK_BYTES) return null;
  const body = saved.subarray(0, e.stateLength + LENGTH_BYTES);
  if (!checksum(body).equals(saved.subarray(e.stateLength + LENGTH_BYTES))) return null;
  if (Buffer.from(body.buffer, body.byteOffset, body.byteLength).readBigUInt64BE(e.stateLength) !== BigInt(length)) return null;
  const state = Uint8Array.from(saved.subarray(0, e.stateLength));
  try {
    e.hasher.load(state); // checks the build prefix and the length
  } catch {
    return null;
  }
  return new ResumableSha256(e, state, length);
}
