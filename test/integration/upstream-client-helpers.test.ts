// The upstream client's helpers without a network: retries with backoff (which failures are
// retried, how long it waits, stopping), the bandwidth throttle (on a fake clock: no timing in
// the assertions), and the verifying stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { UpstreamError } from '../../src/upstream/errors.ts';
import { backoff, withRetry } from '../../src/upstream/retry.ts';
import { speedToBytesPerSecond, Throttle } from '../../src/upstream/throttle.ts';
import { VerifyingStream } from '../../src/upstream/verify.ts';
import { sha256 } from '../helpers/oci.ts';

test('withRetry: transient failures are retried with growing delays until it works', async () => {
  const waits: number[] = [];
  const seen: string[] = [];
  let calls = 0;
  const out = await withRetry(
    async () => {
      calls++;
      if (calls === 1) throw new UpstreamError('unreachable', 'cannot reach x');
      if (calls === 2) throw new UpstreamError('protocol', 'answered 503', 503);
      if (calls === 3) throw new UpstreamError('rate-limited', 'answered 429', 429);
      return 'done';
    },
    { baseMs: 100, random: () => 0, sleep: async (ms) => void waits.push(ms), onRetry: (e, n) => void seen.push(`${n}:${e.kind}`) },
  );
  assert.equal(out, 'done');
  assert.deepEqual(waits, [50, 100, 200]);
  assert.deepEqual(seen, ['1:unreachable', '2:protocol', '3:rate-limited']);
});

test('withRetry: a refusal, a missing object, a lie or a 4xx fail at once; attempts are bounded', async () => {
  for (const e of [new UpstreamError('unauthorized', 'no', 401), new UpstreamError('not-found', 'no', 404), new UpstreamError('digest-mismatch', 'lie'), new UpstreamError('protocol', 'bad', 400), new Error('bug')]) {
    let calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw e;
      }, { sleep: async () => undefined }),
      (x: unknown) => x === e,
    );
    assert.equal(calls, 1, e.message);
  }
  let calls = 0;
  await assert.rejects(
    withRetry(async () => {
      calls++;
      throw new UpstreamError('timeout', 'slow');
    }, { attempts: 3, sleep: async () => undefined }),
    /slow/,
  );
  assert.equal(calls, 3);
});

test('withRetry: an abort stops the retries', async () => {
  const ac = new AbortController();
  let calls = 0;
  await assert.rejects(
    withRetry(async () => {
      calls++;
      throw new UpstreamError('unreachable', 'down');
    }, { attempts: 10, signal: ac.signal, sleep: async () => ac.abort() }),
    /down/,
  );
  assert.equal(calls, 1);
});

test('backoff: doubles from the base, capped, spread over the upper half', () => {
  assert.equal(backoff(1, 1000, 60_000, () => 0), 500);
  assert.equal(backoff(1, 1000, 60_000, () => 0.999999), 1000);
  assert.equal(backoff(4, 1000, 60_000, () => 0), 4000);
  assert.equal(backoff(20, 1000, 60_000, () => 0), 30_000);
});

test('Throttle: passes every byte and waits as long as the rate requires (fake clock)', async () => {
  let now = 0;
  const waits: number[] = [];
  const clock = { now: () => now, sleep: async (ms: number) => { waits.push(ms); now += ms; } };
  const data = Buffer.alloc(10_000, 7);
  const chunks = Array.from({ length: 10 }, (_, i) => data.subarray(i * 1000, (i + 1) * 1000));
  const t = new Throttle(2000, clock);
  const [out] = await Promise.all([buffer(t), pipeline(Readable.from(chunks), t)]);
  assert.ok(out.equals(data));
  assert.equal(waits.reduce((a, b) => a + b, 0), 5000, '10,000 bytes at 2,000 bytes/s take 5 s');
  assert.equal(speedToBytesPerSecond(0), null);
  assert.equal(speedToBytesPerSecond(-1), null);
  assert.equal(speedToBytesPerSecond(100), 102_400);
  assert.throws(() => new Throttle(0));
});

test('VerifyingStream: right bytes pass; wrong bytes, too few or too many error at the end', async () => {
  const data = Buffer.from('some blob bytes');
  const ok = new VerifyingStream(sha256(data), data.length);
  assert.ok((await buffer(Readable.from([data]).pipe(ok))).equals(data));
  const run = (input: Buffer, size: number | null) => pipeline(Readable.from([input]), new VerifyingStream(sha256(data), size), async function* (src) {
    for await (const _ of src) void _;
  });
  await assert.rejects(run(Buffer.from('some blob bytez'), data.length), (e: unknown) => e instanceof UpstreamError && e.kind === 'digest-mismatch' && /hash to sha256:[0-9a-f]{64}, not/.test(e.message));
  await assert.rejects(run(data.subarray(0, 5), data.length), /sent 5 bytes for sha256:[0-9a-f]{64}, expected 15/);
  await assert.rejects(run(Buffer.concat([data, Buffer.from('x')]), data.length), /sent more than the 15 bytes/);
  await assert.rejects(run(Buffer.from('other'), null), /hash to/);
  assert.throws(() => new VerifyingStream('md5:abc', null), /unsupported digest/);
});
