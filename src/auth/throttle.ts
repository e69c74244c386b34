// Throttling of failed logins, built so guessing crawls while the owner of a name still signs in:
//
//   pair (user name, client address)  failures lock the pair: after `limit` failures for a lock
//                                      time that doubles with each further failure, capped at
//                                      `maxLockMs`. The only thing that refuses a login.
//   user name, from any address       failures slow the name's logins (a delay before the check,
//                                      doubling, capped at `maxDelayMs`), never lock it: guessing
//                                      from many addresses crawls, the owner waits seconds at most.
//   client address, for any name      the same bounded delay for spraying many names from one
//                                      address; a fresh name's correct password is never refused.
//
// Each counter is forgotten after `windowMs` without failures (counted from the end of its lock),
// and each table holds at most `maxEntries` keys, so cycling names or addresses cannot grow memory.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';

export interface ThrottleOptions {
  /** Failures of one pair before it is locked. */
  limit: number;
  /** A counter is forgotten after this long without a failure (and after its lock ended). */
  windowMs: number;
  baseLockMs: number;
  maxLockMs: number;
  /** Failures of one name (from any address) before its logins are slowed. */
  nameDelayAfter: number;
  /** Failures from one address (for any name) before its logins are slowed. */
  addressDelayAfter: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Keys kept per table (pairs, names, addresses). */
  maxEntries: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = {
  limit: 5,
  windowMs: 5 * 60_000,
  baseLockMs: 30_000,
  maxLockMs: 15 * 60_000,
  nameDelayAfter: 5,
  addressDelayAfter: 10,
  baseDelayMs: 100,
  maxDelayMs: 3_000,
  maxEntries: 10_000,
};

/** What to do with a login before its password is checked. */
export type Verdict = { locked: true; retryAfterMs: number } | { locked: false; delayMs: number };

interface Entry {
  failures: number;
  last: number;
  lockedUntil: number;
}

/** A map of counters with expiry and a size cap; the least recently failed keys go first. */
class Table {
  private readonly map = new Map<string, Entry>();

  constructor(private readonly windowMs: number, private readonly maxEntries: number) {}

  get size(): number {
    return this.map.size;
  }

  private expired(e: Entry, t: number): boolean {
    return Math.max(e.last, e.lockedUntil) + this.windowMs <= t;
  }

  get(key: string, t: number): Entry | undefined {
    const e = this.map.get(key);
    if (e && this.expired(e, t)) {
      this.map.delete(key);
      return undefined;
    }
    return e;
  }

  /** Counts one failure and returns the entry (moved to the young end). */
  fail(key: string, t: number): Entry {
    const e = this.get(key, t) ?? { failures: 0, last: t, lockedUntil: 0 };
    e.failures++;
    e.last = t;
    this.map.delete(key);
    this.map.set(key, e);
    if (this.map.size > this.maxEntries) this.shrink(t);
    return e;
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  /** Down to 90% of the cap: expired keys, then the oldest unlocked, then the oldest of all. */
  private shrink(t: number): void {
    const target = Math.floor(this.maxEntries * 0.9);
    for (const [k, e] of this.map) if (this.expired(e, t)) this.map.delete(k);
    for (const [k, e] of this.map) {
      if (this.map.size <= target) return;
      if (e.lockedUntil <= t) this.map.delete(k);
    }
    for (const k of this.map.keys()) {
      if (this.map.size <= target) return;
      this.map.delete(k);
    }
  }
}

/** A user name as a key: case-insensitive, and long names hashed so keys stay small. */
function nameKey(name: string): string {
  const n = name.toLowerCase();
  return n.length <= 64 ? n : '#' + createHash('sha256').update(n).digest('base64');
}

/**
 * A client address as a key: IPv4-mapped IPv6 as IPv4 (the same client direct or through a proxy),
 * IPv6 by its /64 (one host holds a whole /64, so rotating within it must not reset the counters).
 */
export function addressKey(addr: string): string {
  let a = addr;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const family = isIP(a);
  if (family === 4) return a;
  if (family === 6) {
    const lower = a.toLowerCase();
    if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7);
    return prefix64(lower);
  }
  return a.length <= 64 ? a : '#' + createHash('sha256').update(a).digest('base64');
}

function prefix64(a: string): string {
  const split = a.indexOf('::');
  const groupsOf = (s: string) => (s ? s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  let groups: string[];
  if (split < 0) groups = groupsOf(a);
  else {
    const head = groupsOf(a.slice(0, split));
    const tail = groupsOf(a.slice(split + 2));
    groups = [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0'), ...tail];
  }
  return groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':') + '::/64';
}

export class LoginThrottle {
  private readonly opts: ThrottleOptions;
  private readonly pairs: Table;
  private readonly names: Table;
  private readonly addresses: Table;

  constructor(opts: Partial<ThrottleOptions> = {}, private readonly now: () => number = Date.now) {
    this.opts = { ...DEFAULT_THROTTLE, ...opts };
    this.pairs = new Table(this.opts.windowMs, this.opts.maxEntries);
    this.names = new Table(this.opts.windowMs, this.opts.maxEntries);
    this.addresses = new Table(this.opts.windowMs, this.opts.maxEntries);
  }

  /** The pair's key (case-insensitive name, address by addressKey), for callers that queue per pair. */
  pairKey(name: string, address: string): string {
    return `${nameKey(name)}\n${addressKey(address)}`;
  }

  /** Refused (the pair is locked), or allowed after a delay (0 for a name and address without failures). */
  check(name: string, address: string): Verdict {
    const t = this.now();
    const n = nameKey(name);
    const a = addressKey(address);
    const pair = this.pairs.get(`${n}\n${a}`, t);
    if (pair && pair.lockedUntil > t) return { locked: true, retryAfterMs: pair.lockedUntil - t };
    const delayMs = Math.max(this.delay(this.names.get(n, t), this.opts.nameDelayAfter), this.delay(this.addresses.get(a, t), this.opts.addressDelayAfter));
    return { locked: false, delayMs };
  }

  /** Counts a failed login; returns the lock's length when this failure started one, else 0. */
  fail(name: string, address: string): number {
    const t = this.now();
    const n = nameKey(name);
    const a = addressKey(address);
    this.names.fail(n, t);
    this.addresses.fail(a, t);
    const pair = this.pairs.fail(`${n}\n${a}`, t);
    if (pair.failures < this.opts.limit || pair.lockedUntil > t) return 0;
    const lock = Math.min(this.opts.baseLockMs * 2 ** Math.min(pair.failures - this.opts.limit, 30), this.opts.maxLockMs);
    pair.lockedUntil = t + lock;
    return lock;
  }

  /** A correct password: the pair starts afresh (the name's and the address's counters do not). */
  succeed(name: string, address: string): void {
    this.pairs.delete(`${nameKey(name)}\n${addressKey(address)}`);
  }

  /** Forgets everything (tests, and an admin's "unlock all"). */
  reset(): void {
    this.pairs.clear();
    this.names.clear();
    this.addresses.clear();
  }

  /** Keys held, per table (for tests of the size cap). */
  sizes(): { pairs: number; names: number; addresses: number } {
    return { pairs: this.pairs.size, names: this.names.size, addresses: this.addresses.size };
  }

  private delay(e: Entry | undefined, after: number): number {
    if (!e || e.failures < after) return 0;
    return Math.min(this.opts.baseDelayMs * 2 ** Math.min(e.failures - after, 30), this.opts.maxDelayMs);
  }
}
