// The running hashes of upload sessions (src/lib/running-hash.ts): a saved SHA-256 state continues
// to the digest of all the bytes, in another "process" (a state copied as bytes, as the database
// carries it), interleaved with other sessions; a state that is not a good one is refused, never
// hashed on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { nativeHash, resumableSha256, resumeSha256, RESUMABLE_SHA256_FORMAT, type RunningHash } from '../../src/lib/running-hash.ts';

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 17 + (i >> 9)) & 0xff;
  return b;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

test('a saved state, carried as bytes, continues to the digest of every byte, chunk after chunk', async () => {
  const data = bytes(1_000_003, 1);
  // Cuts that fall inside 64-byte blocks, on block edges, and an empty chunk.
  const cuts = [0, 1, 63, 64, 65, 70_000, 70_000, 512 * 1024, 999_999, data.length];
  let saved: Buffer | null = null;
  for (let i = 0; i + 1 < cuts.length; i++) {
    const h: RunningHash | null = saved ? await resumeSha256(Buffer.from(saved), cuts[i]) : await resumableSha256();
    assert.ok(h, `the state at ${cuts[i]} is accepted`);
    h.update(data.subarray(cuts[i], cuts[i + 1]));
    assert.ok(h.digest().equals(sha256(data.subarray(0, cuts[i + 1]))), `digest after ${cuts[i + 1]} bytes`);
    saved = h.save();
    assert.ok(saved, 'a resumable hash saves its state');
  }
  assert.equal(RESUMABLE_SHA256_FORMAT, 'sha256-wasm-state-v1');
});

test('digest() does not end the hash, and sessions sharing the one engine do not mix', async () => {
  const a = bytes(300_000, 2);
  const b = bytes(200_000, 3);
  const ha = await resumableSha256();
  const hb = await resumableSha256();
  for (let off = 0; off < a.length; off += 10_000) {
    ha.update(a.subarray(off, off + 10_000));
    hb.update(b.subarray(off, off + 10_000));
    ha.digest();
  }
  assert.ok(ha.digest().equals(sha256(a)));
  assert.ok(hb.digest().equals(sha256(b)));
});

test('a state that is not a good one is refused: wrong length, altered bytes, another byte count, garbage', async () => {
  const data = bytes(5000, 4);
  const h = await resumableSha256();
  h.update(data);
  const saved = h.save()!;
  assert.ok(await resumeSha256(saved, 5000));
  assert.equal(await resumeSha256(saved, 4999), null, 'saved for another offset');
  assert.equal(await resumeSha256(saved.subarray(0, saved.length - 1), 5000), null, 'truncated');
  assert.equal(await resumeSha256(Buffer.concat([saved, Buffer.alloc(1)]), 5000), null, 'too long');
  assert.equal(await resumeSha256(Buffer.alloc(0), 0), null, 'empty');
  assert.equal(await resumeSha256(Buffer.alloc(saved.length, 0xab), 5000), null, 'garbage of the right size');
  assert.equal(await resumeSha256(sha256(data), 5000), null, 'a finished digest');
  for (const at of [0, 3, 4, 40, saved.length - 20, saved.length - 1]) {
    const bad = Buffer.from(saved);
    bad[at] ^= 0x01;
    assert.equal(await resumeSha256(bad, 5000), null, `one bit flipped at ${at}`);
  }
});

test('the native hash keeps going after a digest and has no state to save', () => {
  const data = bytes(70_000, 5);
  const h = nativeHash();
  h.update(data.subarray(0, 1000));
  assert.ok(h.digest().equals(sha256(data.subarray(0, 1000))));
  h.update(data.subarray(1000));
  assert.ok(h.digest().equals(sha256(data)));
  assert.equal(h.save(), null);
  const h512 = nativeHash('sha512');
  h512.update(data);
  assert.ok(h512.digest().equals(createHash('sha512').update(data).digest()));
});
