// Throttling of failed logins, per user name and per client address. After `limit` failures in the
// window a key is locked for a delay that doubles with each further failure, capped at `maxLockMs`,
// so guessing is slowed to a crawl but a real user is never locked out for good.
export interface ThrottleOptions {
  limit: number;
  windowMs: number;
  baseLockMs: number;
  maxLockMs: number;
}

interface Entry {
  failures: number;
  first: number;
  lockedUntil: number;
}

export class LoginThrottle {
  private entries = new Map<string, Entry>();

  constructor(private readonly opts: ThrottleOptions = { limit: 5, windowMs: 5 * 60_000, baseLockMs: 30_000, maxLockMs: 15 * 60_000 }, private readonly now: () => number = Date.now) {}

  /** Whether any of the keys is locked right now. */
  locked(keys: string[]): boolean {
    const t = this.now();
    return keys.some((k) => (this.entries.get(k)?.lockedUntil ?? 0) > t);
  }

  fail(keys: string[]): void {
    const t = this.now();
    for (const k of keys) {
      let e = this.entries.get(k);
      if (!e || (t - e.first > this.opts.windowMs && e.lockedUntil < t)) e = { failures: 0, first: t, lockedUntil: 0 };
      e.failures++;
      if (e.failures >= this.opts.limit) {
        const lock = Math.min(this.opts.baseLockMs * 2 ** (e.failures - this.opts.limit), this.opts.maxLockMs);
        e.lockedUntil = t + lock;
      }
      this.entries.set(k, e);
    }
    if (this.entries.size > 100_000) this.sweep();
  }

  succeed(keys: string[]): void {
    for (const k of keys) this.entries.delete(k);
  }

  private sweep(): void {
    const t = this.now();
    for (const [k, e] of this.entries) if (e.lockedUntil < t && t - e.first > this.opts.windowMs) this.entries.delete(k);
  }
}
