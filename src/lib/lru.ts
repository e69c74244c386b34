/**
 * A small LRU cache bounded by entry count and by a total weight (bytes): `weigh` estimates what
 * an entry costs (default: `approxBytes` of its key and value).
 * Map keeps insertion order, so re-inserting on read makes the first key the least recent.
 */
export class Lru<K, V> {
  private map = new Map<K, { value: V; weight: number }>();
  private total = 0;
  /** The most recently used key: reading it again needs no re-insertion (hot keys repeat). */
  private mru: K | undefined;
  /** Lookups answered and not answered (for metrics). */
  hits = 0;
  misses = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxWeight = Infinity,
    private readonly weigh: (v: V, k: K) => number = (v, k) => ENTRY_BYTES + approxBytes(k) + approxBytes(v),
  ) {}

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (key !== this.mru) {
      this.map.delete(key);
      this.map.set(key, e);
      this.mru = key;
    }
    return e.value;
  }

  /** Whether the key is cached, without counting a lookup or making it recent. */
  has(key: K): boolean {
    return this.map.has(key);
  }

  /** The cached value without counting a lookup or making it recent (for updates in place). */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  set(key: K, value: V): void {
    const weight = this.weigh(value, key);
    // Drop the old value first: a value too heavy to cache must not leave a stale one readable.
    this.delete(key);
    if (weight > this.maxWeight) return;
    this.map.set(key, { value, weight });
    this.mru = key;
    this.total += weight;
    while (this.map.size > this.maxEntries || this.total > this.maxWeight) {
      const oldest = this.map.keys().next().value as K;
      this.delete(oldest);
    }
  }

  delete(key: K): void {
    const e = this.map.get(key);
    if (!e) return;
    if (key === this.mru) this.mru = undefined;
    this.total -= e.weight;
    this.map.delete(key);
  }

  /** Removes every key the predicate accepts (used for prefix invalidation). */
  deleteWhere(pred: (key: K) => boolean): void {
    for (const k of [...this.map.keys()]) if (pred(k)) this.delete(k);
  }

  clear(): void {
    this.map.clear();
    this.mru = undefined;
    this.total = 0;
  }

  get size(): number {
    return this.map.size;
  }
}

/** Per-entry bookkeeping of a Map entry and its holder object, in bytes (V8, 64-bit). */
const ENTRY_BYTES = 80;

/**
 * A cheap estimate of what a cached key or value holds in memory: strings at two bytes a
 * character, buffers and typed arrays by length, small arrays and plain objects by their members
 * (one level deep; deeper members count a flat 64 bytes).
 */
export function approxBytes(x: unknown, depth = 0): number {
  if (typeof x === 'string') return 16 + 2 * x.length;
  if (typeof x === 'number' || typeof x === 'boolean' || x === null || x === undefined) return 8;
  if (ArrayBuffer.isView(x)) return 64 + x.byteLength;
  if (depth > 1) return 64;
  if (Array.isArray(x)) {
    let n = 32;
    for (const e of x) n += approxBytes(e, depth + 1);
    return n;
  }
  if (typeof x === 'object') {
    let n = 32;
    for (const [k, v] of Object.entries(x as Record<string, unknown>)) n += 16 + 2 * k.length + approxBytes(v, depth + 1);
    return n;
  }
  return 64;
}
