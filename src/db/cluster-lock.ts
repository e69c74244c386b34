// Locks for the whole cluster, on PostgreSQL advisory locks (every node on the database sees them).
//
// - ClusterWriteLock: the push/GC interlock (RegistryService.writes) across nodes. A push holds it
//   shared from the check of what it refers to until its rows are committed; a GC sweep batch holds
//   it exclusive. Such a step is several statements, a file rename or object copy, and the quota
//   check (a lock of its own) — not one transaction — so the lock is a session-level advisory lock
//   taken on a pooled connection of its own and held for the step, then unlocked and the connection
//   returned. (An xact lock would need a transaction left open across the file operations, which
//   costs the same connection and leaves an "idle in transaction" session.) PostgreSQL queues a
//   shared request behind a waiting exclusive one, so a stream of pushes cannot starve GC, and a
//   sweep batch waits only for the pushes already between their check and their write. When a node
//   dies its connections close and PostgreSQL releases what they held.
// - ClusterTryLock: one holder at a time for the whole cluster, tried without waiting, held on a
//   connection of its own for as long as the holder runs (one GC run per cluster). Losing the
//   connection loses the lock: the holder is told (onLost) and should stop.
//
// The connections come from a small pool of their own, apart from the main pool, so a step that
// holds a lock connection and needs a main-pool connection inside can never wait on itself.
import type pg from 'pg';
import type { WriteLock } from '../lib/rwlock.ts';
import { DatabaseUnavailableError } from './client.ts';

/**
 * A lock that cannot be taken because the database cannot be reached (or refuses another
 * connection) is the database's unavailability: the edges answer 503, and clients retry.
 */
function unavailable(e: unknown): never {
  if (e instanceof DatabaseUnavailableError) throw e;
  const x = e as { code?: unknown; message?: unknown };
  throw new DatabaseUnavailableError(typeof x?.code === 'string' ? x.code : String(x?.message ?? e).split('\n')[0].slice(0, 100));
}

/** Advisory lock space of the push/GC interlock ('gcwl'); key 0. */
export const WRITES_SPACE = 0x6763776c;
/** Advisory lock space of one-at-a-time jobs ('runl'); the key names the job. */
export const RUN_SPACE = 0x72756e6c;
/** Keys in RUN_SPACE. */
export const RUN_KEYS = { gc: 1 } as const;

export interface HeldLock {
  /** Unlocks and returns the connection (a connection that may still hold it is closed instead). */
  release(): Promise<void>;
  /** Called once if the connection holding the lock is lost (the lock with it). */
  onLost(fn: () => void): void;
}

/** One holder at a time in the whole cluster. */
export interface TryLock {
  /** The lock, or null at once when another holder (this node or another) has it. */
  tryAcquire(): Promise<HeldLock | null>;
}

export interface ClusterLocksOptions {
  /** Connections for held locks: at most this many pushes are between check and write at once per node. */
  max?: number;
  log?: { warn(o: object, m: string): void };
}

/** The pool of lock connections of one node, and the locks taken on it. Close it with the app. */
export class ClusterLocks {
  private constructor(private readonly pool: pg.Pool) {}

  static async open(databaseUrl: string, opts: ClusterLocksOptions = {}): Promise<ClusterLocks> {
    const { default: pgLib } = await import('pg');
    const pool = new pgLib.Pool({
      connectionString: databaseUrl,
      max: opts.max ?? 16,
      application_name: 'berth-locks',
      // Waiting for a lock connection is waiting for the lock (a sweep batch, a few ms); a minute
      // without one means the database is unreachable or overloaded: the push fails.
      connectionTimeoutMillis: 60_000,
      keepAlive: true,
      idleTimeoutMillis: 30_000,
    });
    pool.on('error', (err) => opts.log?.warn({ err: err.message }, 'database connection lost'));
    return new ClusterLocks(pool);
  }

  /** Runs fn holding the advisory lock (space, key), shared or exclusive, on a connection of its own. */
  private async hold<T>(mode: 'shared' | 'exclusive', space: number, key: number, fn: () => Promise<T>): Promise<T> {
    const c = await this.pool.connect().catch(unavailable);
    let healthy = true;
    const lost = () => (healthy = false);
    c.on('error', lost);
    try {
      await c.query(mode === 'shared' ? 'SELECT pg_advisory_lock_shared($1, $2)' : 'SELECT pg_advisory_lock($1, $2)', [space, key]).catch((e: unknown) => {
        healthy = false;
        unavailable(e);
      });
      try {
        return await fn();
      } finally {
        const unlock = mode === 'shared' ? 'SELECT pg_advisory_unlock_shared($1, $2) AS ok' : 'SELECT pg_advisory_unlock($1, $2) AS ok';
        // A connection that may still hold the lock is closed, not reused.
        await c.query<{ ok: boolean }>(unlock, [space, key]).then(
          (r) => r.rows[0]?.ok === true || lost(),
          lost,
        );
      }
    } finally {
      c.off('error', lost);
      c.release(!healthy);
    }
  }

  /** The push/GC interlock for every node on the database (RegistryService.writes). */
  writeLock(): WriteLock {
    return {
      shared: (task) => this.hold('shared', WRITES_SPACE, 0, task),
      exclusive: (task) => this.hold('exclusive', WRITES_SPACE, 0, task),
    };
  }

  /** A one-holder-at-a-time lock for the cluster (RUN_KEYS). */
  tryLock(key: number): TryLock {
    return {
      tryAcquire: async () => {
        const c = await this.pool.connect().catch(unavailable);
        // A checked-out client's 'error' is its holder's to handle (unhandled, it ends the process).
        const ignore = () => undefined;
        c.on('error', ignore);
        let got = false;
        try {
          got = (await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [RUN_SPACE, key])).rows[0]?.ok === true;
        } catch (e) {
          c.off('error', ignore);
          c.release(true);
          unavailable(e);
        }
        c.off('error', ignore);
        if (!got) {
          c.release();
          return null;
        }
        return held(c, RUN_SPACE, key);
      },
    };
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }
}

/** A session lock held on connection c until release (or until the connection is lost). */
function held(c: pg.PoolClient, space: number, key: number): HeldLock {
  let released = false;
  let lost = false;
  const listeners: (() => void)[] = [];
  const onError = () => {
    if (lost || released) return;
    lost = true;
    for (const fn of listeners.splice(0)) fn();
  };
  c.on('error', onError);
  // A held run lock idles for minutes: keepalive is on (the pool's), and 'end' means it is gone too.
  c.on('end', onError);
  return {
    onLost(fn) {
      if (lost) fn();
      else listeners.push(fn);
    },
    async release() {
      if (released) return;
      released = true;
      let healthy = !lost;
      if (healthy) {
        await c.query<{ ok: boolean }>('SELECT pg_advisory_unlock($1, $2) AS ok', [space, key]).then(
          (r) => (healthy = r.rows[0]?.ok === true),
          () => (healthy = false),
        );
      }
      c.off('error', onError);
      c.off('end', onError);
      c.release(!healthy);
    },
  };
}
