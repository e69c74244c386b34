// Retries with exponential backoff for work against another registry: only failures that may pass
// (unreachable, timeout, rate limit, a 5xx) are retried; a refusal, a missing object or a digest
// mismatch fails at once. Sleep and randomness are injectable so callers and tests control time.
import { UpstreamError } from './errors.ts';

export interface RetryOptions {
  /** Tries in all (default 5). */
  attempts?: number;
  /** Delay before the second try, in ms (default 1000); doubled each time. */
  baseMs?: number;
  /** Longest delay, in ms (default 60 s). */
  maxMs?: number;
  /** Stops waiting (and retrying) when aborted: the last error is thrown. */
  signal?: AbortSignal;
  /** Told before each wait (for task logs). */
  onRetry?: (err: UpstreamError, attempt: number, delayMs: number) => void;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** A number in [0, 1) (default Math.random): the delay is spread over its upper half. */
  random?: () => number;
}

const sleeper = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** The delay before try `attempt` + 1 (attempt counts from 1). */
export function backoff(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const full = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(full / 2 + (full / 2) * random());
}

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 5);
  const sleep = opts.sleep ?? sleeper;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (!(e instanceof UpstreamError) || !e.transient || attempt >= attempts || opts.signal?.aborted) throw e;
      const delay = backoff(attempt, opts.baseMs ?? 1000, opts.maxMs ?? 60_000, opts.random ?? Math.random);
      opts.onRetry?.(e, attempt, delay);
      await sleep(delay, opts.signal);
      if (opts.signal?.aborted) throw e;
    }
  }
}
