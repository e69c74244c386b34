// Builds the Prisma client after applying migrations, over SQLite (better-sqlite3 driver adapter,
// the default: a file: URL) or PostgreSQL (adapter-pg: a postgresql:// URL), and gives the stores
// direct use of the engine for their hot statements (DirectSql on SQLite, PgSql on PostgreSQL).
// pg and the PostgreSQL client are loaded only for a postgresql:// URL.
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import type Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import { ensurePrivateFile, privateFile } from '../lib/private-files.ts';
import { postgresql, sqlite, type Dialect } from './dialect.ts';
import { migratePostgres, migrateSqlite } from './migrate.ts';

/**
 * The Prisma client. Typed as the SQLite-generated client on both engines: the PostgreSQL client's
 * model API is the same at run time, but TypeScript does not see the two as assignable (see
 * openPostgres). Where query arguments differ (`mode: 'insensitive'`), use the dialect's helpers.
 */
export type Db = PrismaClient;

/** True for a PostgreSQL connection URL (postgresql:// or postgres://). */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** A database URL with its password replaced, fit for logs and error messages. */
export function redactDatabaseUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^/]*@/i, '$1:***@').replace(/([?&]password=)[^&]*/i, '$1***');
}

/**
 * Statements on Berth's own PostgreSQL pool, outside Prisma: Prisma costs ~20x the CPU of a named
 * prepared statement per query, which the registry's hot paths cannot pay.
 */
export interface PgSql {
  /** One statement, prepared once per pooled connection (named after its text). */
  query<R = Record<string, unknown>>(text: string, values: readonly unknown[]): Promise<{ rows: R[]; rowCount: number }>;
  /** fn's statements in BEGIN..COMMIT on one connection (ROLLBACK if it throws). */
  transaction<T>(fn: (query: PgSql['query']) => Promise<T>): Promise<T>;
  /**
   * Runs fn holding the advisory lock (space, key) for the whole cluster: every node on the database
   * waits for it. The lock lives on a connection of a small pool of its own, so holders that need
   * the main pool inside fn cannot starve each other of connections; it is released when fn ends, or
   * by PostgreSQL when the holding node dies.
   */
  withLock<T>(space: number, key: number, fn: () => Promise<T>): Promise<T>;
}

interface EngineInfo {
  dialect: Dialect;
  pg: PgSql | null;
}
const engines = new WeakMap<Db, EngineInfo>();

/** The SQL dialect of a client made by openDatabase (SQLite for anything else). */
export function dialectOf(db: Db): Dialect {
  return engines.get(db)?.dialect ?? sqlite;
}

/** The PostgreSQL statement runner of a client made by openDatabase, or null on SQLite. */
export function pgSql(db: Db): PgSql | null {
  return engines.get(db)?.pg ?? null;
}

export interface OpenOptions {
  /** Where a dropped PostgreSQL connection is reported (pg's pool emits it; unhandled, it would end the process). */
  log?: { warn(o: object, m: string): void };
  /** Connections in Berth's PostgreSQL pool (shared by Prisma and the stores). */
  poolSize?: number;
  /** Called after every Prisma query with its operation (findMany, $queryRaw ...) and duration (metrics). */
  onQuery?: (operation: string, seconds: number) => void;
}

/** The client with every Prisma query timed for opts.onQuery; shares the original's engine and registrations. */
function timed(prisma: Db, opts: OpenOptions): Db {
  const onQuery = opts.onQuery;
  if (!onQuery) return prisma;
  const client = prisma.$extends({
    query: {
      async $allOperations({ operation, args, query }) {
        const t0 = performance.now();
        try {
          return await query(args);
        } finally {
          onQuery(operation, (performance.now() - t0) / 1000);
        }
      },
    },
  }) as unknown as Db;
  const d = direct.get(prisma);
  if (d) direct.set(client, d);
  const e = engines.get(prisma);
  if (e) engines.set(client, e);
  return client;
}

/** A value SQLite stores for a DateTime column, exactly as Prisma's adapter writes it. */
export function sqlDate(d: Date = new Date()): string {
  return d.toISOString().replace('Z', '+00:00');
}

export type SqlArg = string | number | bigint | Buffer | null;

/**
 * Synchronous statements on Prisma's own SQLite connection, for the registry's hot writes: the
 * adapter prepares every statement anew and Prisma interprets each query, ~150 µs of CPU per
 * statement; a cached prepared statement costs a few µs. Using the same connection (not a second
 * writer) means no lock fights with the rest of the app; the only rule is not to write while a
 * Prisma transaction is open on it, which `transaction` waits out.
 */
export interface DirectSql {
  /**
   * Runs fn in BEGIN..COMMIT (ROLLBACK if it throws) once no Prisma transaction is open, and
   * resolves once the commit is durable. fn must be synchronous, so nothing else can use the
   * connection meanwhile.
   */
  transaction<T>(fn: (run: (sql: string, args: SqlArg[]) => Database.RunResult, all: (sql: string, args: SqlArg[]) => unknown[]) => T): Promise<T>;
}

const direct = new WeakMap<Db, DirectSql>();

/** The direct statement runner of a client made by openDatabase. */
export function directSql(db: Db): DirectSql | null {
  return direct.get(db) ?? null;
}

interface AdapterTx {
  commit(): Promise<void>;
  rollback(): Promise<void>;
}
interface Adapter {
  client: Database.Database;
  startTransaction(isolationLevel?: string): Promise<AdapterTx>;
}

/** Counts open Prisma transactions on the connection, and wakes waiters when none is left. */
class TxGate {
  open = 0;
  private waiters: (() => void)[] = [];
  enter(): void {
    this.open++;
  }
  leave(): void {
    this.open--;
    if (this.open === 0) for (const w of this.waiters.splice(0)) w();
  }
  idle(): Promise<void> {
    return this.open === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

/** The adapter factory, also handing over the connection it opens and gating its transactions. */
class HookedFactory extends PrismaBetterSqlite3 {
  constructor(config: ConstructorParameters<typeof PrismaBetterSqlite3>[0], private readonly onConnect: (a: Adapter, gate: TxGate) => void) {
    super(config);
  }
  override async connect() {
    const adapter = await super.connect();
    const a = adapter as unknown as Adapter;
    const gate = new TxGate();
    const start = a.startTransaction.bind(a);
    // The gate closes before BEGIN and opens after COMMIT/ROLLBACK.
    a.startTransaction = async (isolationLevel) => {
      gate.enter();
      let tx: AdapterTx;
      try {
        tx = await start(isolationLevel);
      } catch (e) {
        gate.leave();
        throw e;
      }
      let done = false;
      const end = () => {
        if (!done) {
          done = true;
          gate.leave();
        }
      };
      const commit = tx.commit.bind(tx);
      const rollback = tx.rollback.bind(tx);
      tx.commit = () => commit().finally(end);
      tx.rollback = () => rollback().finally(end);
      return tx;
    };
    this.onConnect(a, gate);
    return adapter;
  }
}

/**
 * fsync of the database's write-ahead log on the thread pool (null for an in-memory database).
 * The WAL file lives as long as the connection (it is removed only when the last one closes).
 */
function walSyncer(databaseUrl: string): (() => Promise<void>) | null {
  const file = databaseUrl.replace(/^file:/, '');
  if (!file || file === ':memory:' || file.startsWith('file::memory:')) return null;
  let handle: Promise<fs.promises.FileHandle> | null = null;
  const open = async () => {
    const h = await fs.promises.open(`${file}-wal`, 'r');
    // Once: the WAL's directory entry, so the file itself survives a crash.
    const dir = await fs.promises.open(path.dirname(path.resolve(file)), 'r');
    await dir.sync().finally(() => dir.close());
    return h;
  };
  return async () => {
    handle ??= open();
    try {
      await (await handle).sync();
    } catch (e) {
      handle = null; // opened again next time
      throw e;
    }
  };
}

/** The SQLite file of a file: URL, or null for an in-memory database. */
function databaseFile(databaseUrl: string): string | null {
  const file = databaseUrl.replace(/^file:/, '');
  return !file || file === ':memory:' || file.startsWith('file::memory:') ? null : file;
}

/**
 * The database holds password hashes and sealed secrets: 0600, and so are its WAL and shared-memory
 * files (SQLite creates those with the database file's mode; an older install's are tightened).
 */
function tightenDatabaseFiles(file: string, create: boolean): void {
  if (create) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    ensurePrivateFile(file); // an empty file is a new database to SQLite
  }
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) privateFile(f);
}

/**
 * A value PostgreSQL cannot take where SQLite would: text with a NUL character, a number beyond the
 * column's range. Carries a 4xx status, so the edges answer 400 (src/http/errors.ts), not 500.
 */
export class UnsupportedValue extends Error {
  readonly status = 400;
  readonly expose = true;
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedValue';
  }
}

/** PostgreSQL's SQLSTATE of an error from pg or from Prisma's adapter, if any. */
function sqlState(e: unknown): string | undefined {
  const x = e as { code?: unknown; meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } } };
  const code = x?.meta?.driverAdapterError?.cause?.originalCode ?? x?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * PostgreSQL cannot be reached (down, restarting, the network, no free connection in time): not a
 * bug in Berth and not the client's fault; the edges answer 503 so clients and load balancers retry.
 */
export class DatabaseUnavailableError extends Error {
  readonly status = 503;
  constructor(readonly reason: string) {
    super('the database is unavailable');
    this.name = 'DatabaseUnavailableError';
  }
}

const UNREACHABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'DatabaseDoesNotExist']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN', 'P1001', 'P1002', 'P1017']);

/** The error as a DatabaseUnavailableError when it says the database cannot be reached, else null. */
function asUnavailable(e: unknown): DatabaseUnavailableError | null {
  const x = e as { code?: unknown; message?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: unknown } } } };
  const kind = x?.meta?.driverAdapterError?.cause?.kind;
  const state = sqlState(e) ?? '';
  const message = typeof x?.message === 'string' ? x.message : '';
  if (
    (typeof kind === 'string' && UNREACHABLE_KINDS.has(kind)) ||
    (typeof x?.code === 'string' && UNREACHABLE_CODES.has(x.code)) ||
    state.startsWith('08') || // connection exceptions
    state === '57P01' || state === '57P02' || state === '57P03' || state === '53300' || // shutdown, starting up, too many connections
    /^Connection terminated|timeout exceeded when trying to connect/.test(message)
  ) {
    return new DatabaseUnavailableError(typeof kind === 'string' ? kind : typeof x?.code === 'string' ? x.code : message.split('\n')[0].slice(0, 100));
  }
  return null;
}

function asDatabaseError(e: unknown): UnsupportedValue | DatabaseUnavailableError | null {
  switch (sqlState(e)) {
    case '22021': // character_not_in_repertoire: a NUL in text
    case '22P05': // untranslatable_character
      return new UnsupportedValue('text with a NUL character is not accepted');
    case '22003': // numeric_value_out_of_range
      return new UnsupportedValue('a number is out of range');
    default:
      return asUnavailable(e);
  }
}

const TIMESTAMP_OID = 1114;
const MAX_NAMED_STATEMENTS = 500;
const INT8_OID = 20;

async function openPostgres(databaseUrl: string, opts: OpenOptions): Promise<Db> {
  const { default: pgLib } = await import('pg');
  const { PrismaPg } = await import('@prisma/adapter-pg');
  const { PrismaClient: PgPrismaClient } = await import('../generated/prisma-pg/client.ts');
  const pool = new pgLib.Pool({
    connectionString: databaseUrl,
    max: opts.poolSize ?? 10,
    application_name: 'berth',
    // A request waits at most this long for a connection, then fails (503) instead of hanging.
    connectionTimeoutMillis: 10_000,
    // Dead peers (a failed-over server, a dropped NAT entry) are noticed on idle connections too.
    keepAlive: true,
    // For Berth's own statements (Prisma's adapter passes its own parsers with each query):
    // timestamp(3) columns hold UTC without a zone, so read them as UTC whatever the process's TZ;
    // int8 (sizes, COUNT, SUM::bigint) as a Number (every such value is below 2^53).
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
        if (oid === TIMESTAMP_OID) return (s: string) => new Date(s.replace(' ', 'T') + 'Z');
        if (oid === INT8_OID) return Number;
        return pgLib.types.getTypeParser(oid, format);
      }) as pg.CustomTypesConfig['getTypeParser'],
    },
  });
  // An idle connection the server drops emits 'error' on the pool: unhandled, it ends the process.
  pool.on('error', (err) => opts.log?.warn({ err: err.message }, 'database connection lost'));
  try {
    const c = await pool.connect();
    try {
      await migratePostgres(c);
    } finally {
      c.release();
    }
  } catch (e) {
    await pool.end().catch(() => {});
    throw new Error(`cannot open the PostgreSQL database ${redactDatabaseUrl(databaseUrl)}: ${(e as Error).message}`);
  }
  // Each distinct text is parsed once per connection and kept there: bounded, so that SQL built
  // with a varying shape (IN lists of any length) cannot grow every connection without limit.
  const names = new Map<string, string>();
  const named = (text: string) => {
    let n = names.get(text);
    if (!n && names.size < MAX_NAMED_STATEMENTS) {
      n = `berth_${names.size + 1}`;
      names.set(text, n);
    }
    return n;
  };
  const rethrow = (e: unknown): never => {
    throw asDatabaseError(e) ?? e;
  };
  const run = async <R,>(c: pg.Pool | pg.PoolClient, text: string, values: readonly unknown[]) => {
    const r = await c.query({ name: named(text), text, values: values as unknown[] }).catch(rethrow);
    return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
  };
  // Created on first use: most installs never take a cluster lock.
  let lockPool: pg.Pool | null = null;
  const locks = () => {
    if (!lockPool) {
      lockPool = new pgLib.Pool({ connectionString: databaseUrl, max: 4, application_name: 'berth-locks', connectionTimeoutMillis: 10_000, keepAlive: true });
      lockPool.on('error', (err) => opts.log?.warn({ err: err.message }, 'database connection lost'));
    }
    return lockPool;
  };
  const runner: PgSql = {
    async withLock(space, key, fn) {
      const c = await locks().connect().catch(rethrow);
      let healthy = true;
      try {
        await c.query('SELECT pg_advisory_lock($1, $2)', [space, key]).catch((e: unknown) => {
          healthy = false;
          throw e;
        });
        try {
          return await fn();
        } finally {
          // A connection that may still hold the lock is closed, not reused.
          await c.query('SELECT pg_advisory_unlock($1, $2)', [space, key]).catch(() => (healthy = false));
        }
      } finally {
        c.release(!healthy);
      }
    },
    query: (text, values) => run(pool, text, values),
    async transaction(fn) {
      const c = await pool.connect().catch(rethrow);
      try {
        await c.query('BEGIN').catch(rethrow);
        const out = await fn((text, values) => run(c, text, values));
        await c.query('COMMIT').catch(rethrow);
        return out;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        c.release();
      }
    },
  };
  // The two generated clients' types are not assignable to each other, though their model APIs are
  // the same at run time: the stores are typed against the SQLite one, cast here once. Input that
  // PostgreSQL refuses as text or number (SQLite takes it) is the client's fault, not a bug.
  const prisma = new PgPrismaClient({ adapter: new PrismaPg(pool) }).$extends({
    query: {
      async $allOperations({ args, query }) {
        try {
          return await query(args);
        } catch (e) {
          throw asDatabaseError(e) ?? e;
        }
      },
    },
  }) as unknown as Db;
  const disconnect = prisma.$disconnect.bind(prisma);
  Object.defineProperty(prisma, '$disconnect', {
    value: async () => {
      await disconnect();
      if (!pool.ended) await pool.end();
      if (lockPool && !lockPool.ended) await lockPool.end();
    },
  });
  engines.set(prisma, { dialect: postgresql, pg: runner });
  return timed(prisma, opts);
}

export async function openDatabase(databaseUrl: string, opts: OpenOptions = {}): Promise<Db> {
  if (isPostgresUrl(databaseUrl)) return openPostgres(databaseUrl, opts);
  const file = databaseFile(databaseUrl);
  if (file) tightenDatabaseFiles(file, true);
  migrateSqlite(databaseUrl);
  let runner: DirectSql | null = null;
  const adapter = new HookedFactory({ url: databaseUrl, timeout: 5000 }, (a, gate) => {
    const conn = a.client;
    const statements = new Map<string, Database.Statement>();
    const stmt = (sql: string) => {
      let s = statements.get(sql);
      if (!s) {
        s = conn.prepare(sql);
        statements.set(sql, s);
      }
      return s;
    };
    const run = (sql: string, args: SqlArg[]) => stmt(sql).run(...args);
    const all = (sql: string, args: SqlArg[]) => stmt(sql).all(...args);
    const wal = walSyncer(databaseUrl);
    runner = {
      async transaction(fn) {
        // Checked again right before running: nothing can slip in between the check and BEGIN.
        while (gate.open > 0) await gate.idle();
        if (!wal) return conn.transaction(() => fn(run, all))();
        // The commit itself skips the WAL fsync (synchronous = NORMAL for this one transaction:
        // the connection is ours until this synchronous block ends), and the fsync runs on the
        // thread pool instead of blocking the event loop; the caller is answered after it.
        conn.pragma('synchronous = NORMAL');
        let out: ReturnType<typeof fn>;
        try {
          out = conn.transaction(() => fn(run, all))();
        } finally {
          conn.pragma('synchronous = FULL');
        }
        await wal();
        return out;
      },
    };
  });
  const prisma = new PrismaClient({ adapter });
  // One connection: these hold for every query. FULL makes a committed push survive power loss too.
  await prisma.$queryRawUnsafe('PRAGMA synchronous = FULL');
  await prisma.$queryRawUnsafe('PRAGMA foreign_keys = ON');
  if (file) tightenDatabaseFiles(file, false);
  if (runner) direct.set(prisma, runner);
  engines.set(prisma, { dialect: sqlite, pg: null });
  return timed(prisma, opts);
}

/**
 * Whether the database answers a trivial statement within timeoutMs (for /api/v2.0/health: a node
 * that cannot reach PostgreSQL says so, and a load balancer can take it out).
 */
export async function pingDatabase(db: Db, timeoutMs = 2000): Promise<boolean> {
  const pg = pgSql(db);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
    timer.unref();
  });
  const ping = (pg ? pg.query('SELECT 1', []) : db.$queryRawUnsafe('SELECT 1')).then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([ping, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The advisory lock space of start-up steps ('init'). */
const STARTUP_LOCK = 0x696e6974;

/**
 * Runs a start-up step that writes the database (the first admin, the default project) alone: on
 * PostgreSQL nodes that start together take turns (a cluster-wide advisory lock), so the second finds
 * what the first created instead of failing on a unique name; on SQLite, one process per data
 * directory runs it anyway.
 */
export function startupStep<T>(db: Db, fn: () => Promise<T>): Promise<T> {
  const pg = pgSql(db);
  return pg ? pg.withLock(STARTUP_LOCK, 0, fn) : fn();
}
