// Garbage collection's database side: bounded pages to read (the mark) and short deleting
// transactions that check again, at the moment they delete, that nothing has come to rely on
// what they delete (the sweep); and the runs' history and the schedule. The rules of what is kept
// live in src/services/gc.ts; files are the service's too (it deletes a blob's bytes only after
// its row is gone).
//
// Every statement here is one index range or a handful of index lookups per row, so a run over N
// objects costs O(N log N) and no single call holds the event loop for long:
// - manifests, tags and links of a repository are read in pages of its primary or unique index
//   (keyset on digest, never OFFSET);
// - "does any link point at this blob" uses BlobLink(digest), "does any manifest have this digest"
//   uses Manifest(digest) (both indexed), each once per row;
// - "what was pushed into this repository since the run began" uses Manifest(repositoryId, pushedAt).
//
// Both engines run the same statements, written once with the dialect's helpers (dates, lists,
// placeholders). What differs is where they run:
// - SQLite: reads go through a read-only connection of their own, opened for the run (WAL: it
//   never blocks the writer and sees every commit); a sweep is one synchronous transaction on the
//   writer connection (DirectSql).
// - PostgreSQL: reads are statements on the pool (each page sees what is committed when it runs);
//   a sweep is one transaction on a pooled connection, its statements planned for their
//   arguments (CUSTOM_PLANS; a generic plan reads a whole large repository per batch).
// A sweep's body is a generator of statements (`Step`), so the same body runs inside SQLite's
// synchronous transaction and PostgreSQL's asynchronous one.
import Database from 'better-sqlite3';
import { dialectOf, directSql, pgSql, type Db, type DirectSql, type PgSql, type SqlArg } from './client.ts';
import type { Dialect } from './dialect.ts';

export interface GcManifestRow {
  id: number;
  digest: string;
  /** The digests it lists (config, layers, children), parsed from the row's JSON once. */
  refs: string[];
  subject: string | null;
  /** Pushed (or pushed again) at or after the cutoff. */
  recent: boolean;
}

export interface GcBlobRow {
  digest: string;
  size: number;
  /** How many repositories link it (for a dry run, which deletes no links). */
  links: number;
}

export interface GcContentRow {
  digest: string;
  bytes: number;
  /** How many manifest rows have this digest (for a dry run, which deletes no manifests). */
  manifests: number;
}

/** One statement of a sweep, with its arguments: yielded by a Step, run by the store. */
export interface SweepStatement {
  sql: string;
  args: unknown[];
}

/**
 * Work inside a sweep's transaction, as a generator of statements: `const rows = yield* step`.
 * The store answers each statement with its rows, synchronously on SQLite, after an await on PostgreSQL.
 */
export type Step<T> = Generator<SweepStatement, T, unknown[]>;

function* statement<R>(sql: string, args: unknown[]): Step<R[]> {
  return (yield { sql, args }) as R[];
}

/** A boolean column of a SELECT: PostgreSQL returns true/false, SQLite 1/0. */
const truthy = (v: unknown) => v === true || Number(v) === 1;

type Rows = (sql: string, args: unknown[]) => Promise<unknown[]>;

/**
 * PostgreSQL, first statement of every sweep: its statements are planned for their arguments, for
 * this transaction only. Berth's statements are named, and after five uses PostgreSQL may run a
 * named statement on a generic plan, made for an average repository (a few rows). For the one
 * repository that holds most of the registry (10,000 manifests) such plans, under the exclusive
 * lock, read every link of it to delete a batch of 250 (`"repositoryId" = ?` as the index
 * condition, the digest list a filter: 180 ms), and every old manifest of it to delete 250 by id,
 * scanning its tags for each (340 ms); planned for the arguments, 2-4 ms. Planning costs well
 * under a millisecond a statement.
 */
const CUSTOM_PLANS = `SELECT set_config('plan_cache_mode', 'force_custom_plan', true)`;

/** The statements, in the engine's form (built once per store). */
function statements(d: Dialect) {
  // SQLite's planner would scan Manifest(repositoryId, …) for a delete by id; "+" makes it use the primary key.
  const byIdInRepository = d.engine === 'sqlite' ? '+"repositoryId"' : '"repositoryId"';
  const t = (sql: string) => d.text(sql);
  return {
    repositories: t('SELECT "id", "name" FROM "Repository" WHERE "id" > ? ORDER BY "id" LIMIT ?'),
    manifests: t(`SELECT "id", "digest", "refs", "subject", ${d.dateAtLeast('"pushedAt"', '?')} AS "recent" FROM "Manifest" WHERE "repositoryId" = ? AND "digest" > ? ORDER BY "digest" LIMIT ?`),
    taggedDigests: t('SELECT DISTINCT "digest" FROM "Tag" WHERE "repositoryId" = ? AND "digest" > ? ORDER BY "digest" LIMIT ?'),
    oldLinks: t(`SELECT "digest", ${d.dateBefore('"createdAt"', '?')} AS "old" FROM "BlobLink" WHERE "repositoryId" = ? AND "digest" > ? ORDER BY "digest" LIMIT ?`),
    oldBlobs: t(
      `SELECT b."digest", b."size", ${d.dateBefore('b."createdAt"', '?')} AS "old", (SELECT COUNT(*) FROM "BlobLink" l WHERE l."digest" = b."digest") AS "links" FROM "Blob" b WHERE b."digest" > ? ORDER BY b."digest" LIMIT ?`,
    ),
    // length() of a BLOB (bytea) reads its size, not the bytes.
    contents: t(
      'SELECT c."digest", length(c."content") AS "bytes", (SELECT COUNT(*) FROM "Manifest" m WHERE m."digest" = c."digest") AS "manifests" FROM "ManifestContent" c WHERE c."digest" > ? ORDER BY c."digest" LIMIT ?',
    ),
    // Dates are written by the app in the engine's form (dialect.date), so this compares in index
    // order; new rows are also found by id (an index range of the primary key: only rows inserted
    // since the run began), which holds whatever the clock of the node that wrote them.
    pushedSince: t(
      'SELECT "digest", "refs", "subject" FROM "Manifest" WHERE "repositoryId" = ? AND "pushedAt" >= ? UNION SELECT "digest", "refs", "subject" FROM "Manifest" WHERE "id" > ? AND "repositoryId" = ?',
    ),
    highestManifestId: t('SELECT COALESCE(MAX("id"), 0) AS "id" FROM "Manifest"'),
    deleteManifests: t(
      `DELETE FROM "Manifest" WHERE ${byIdInRepository} = ? AND ${d.inList('"id"', 'int')} AND ${d.dateBefore('"pushedAt"', '?')} AND NOT EXISTS (SELECT 1 FROM "Tag" t WHERE t."repositoryId" = "Manifest"."repositoryId" AND t."digest" = "Manifest"."digest") RETURNING "digest"`,
    ),
    deleteLinks: t(`DELETE FROM "BlobLink" WHERE "repositoryId" = ? AND ${d.inList('"digest"', 'text')} AND ${d.dateBefore('"createdAt"', '?')} RETURNING "digest"`),
    deleteBlobs: t(
      `DELETE FROM "Blob" WHERE ${d.inList('"digest"', 'text')} AND ${d.dateBefore('"createdAt"', '?')} AND NOT EXISTS (SELECT 1 FROM "BlobLink" l WHERE l."digest" = "Blob"."digest") RETURNING "digest", "size"`,
    ),
    deleteContents: t(
      `DELETE FROM "ManifestContent" WHERE ${d.inList('"digest"', 'text')} AND NOT EXISTS (SELECT 1 FROM "Manifest" m WHERE m."digest" = "ManifestContent"."digest") RETURNING "digest", length("content") AS "bytes"`,
    ),
    blobRowsOf: t(`SELECT "digest" FROM "Blob" WHERE ${d.inList('"digest"', 'text')}`),
  };
}
type Statements = ReturnType<typeof statements>;

/** One run's reads: pages of at most `limit` rows, each from one index range (a few ms at most). */
export class GcReader {
  constructor(
    private readonly rows: Rows,
    private readonly sql: Statements,
    private readonly cutoff: string,
    private readonly closer: () => void,
  ) {}

  close(): void {
    this.closer();
  }

  async repositories(afterId: number, limit: number): Promise<{ id: number; name: string }[]> {
    return ((await this.rows(this.sql.repositories, [afterId, limit])) as { id: number | bigint; name: string }[]).map((r) => ({ id: Number(r.id), name: r.name }));
  }

  async manifests(repositoryId: number, afterDigest: string, limit: number): Promise<GcManifestRow[]> {
    const rows = (await this.rows(this.sql.manifests, [this.cutoff, repositoryId, afterDigest, limit])) as { id: number | bigint; digest: string; refs: string; subject: string | null; recent: unknown }[];
    return rows.map((m) => ({ id: Number(m.id), digest: m.digest, refs: JSON.parse(m.refs) as string[], subject: m.subject, recent: truthy(m.recent) }));
  }

  /** Distinct digests that tags of the repository point at (Tag(repositoryId, digest) is indexed). */
  async taggedDigests(repositoryId: number, afterDigest: string, limit: number): Promise<string[]> {
    return ((await this.rows(this.sql.taggedDigests, [repositoryId, afterDigest, limit])) as { digest: string }[]).map((t) => t.digest);
  }

  /** Links of the repository created (or renewed) before the cutoff. */
  async oldLinks(repositoryId: number, afterDigest: string, limit: number): Promise<{ digests: string[]; rows: number; last: string }> {
    const rows = (await this.rows(this.sql.oldLinks, [this.cutoff, repositoryId, afterDigest, limit])) as { digest: string; old: unknown }[];
    // The page's size and last digest are returned too, so that a page of only recent links still advances.
    return { digests: rows.filter((r) => truthy(r.old)).map((r) => r.digest), rows: rows.length, last: rows.at(-1)?.digest ?? '' };
  }

  /** Blob rows older than the cutoff, with their count of links. */
  async oldBlobs(afterDigest: string, limit: number): Promise<{ rows: GcBlobRow[]; last: string }> {
    const rows = (await this.rows(this.sql.oldBlobs, [this.cutoff, afterDigest, limit])) as { digest: string; size: number | bigint; old: unknown; links: number | bigint }[];
    return { rows: rows.filter((r) => truthy(r.old)).map((r) => ({ digest: r.digest, size: Number(r.size), links: Number(r.links) })), last: rows.at(-1)?.digest ?? '' };
  }

  /** Manifest bytes stored in the database, with how many manifest rows have that digest. */
  async contents(afterDigest: string, limit: number): Promise<GcContentRow[]> {
    const rows = (await this.rows(this.sql.contents, [afterDigest, limit])) as { digest: string; bytes: number | bigint; manifests: number | bigint }[];
    return rows.map((r) => ({ digest: r.digest, bytes: Number(r.bytes), manifests: Number(r.manifests) }));
  }
}

/** The statements of a sweep, each a Step inside the caller's short transaction (see GcStore.sweep). */
export interface GcSweep {
  /**
   * Manifests pushed (or pushed again) into the repository at or after `since`, or inserted with an
   * id above `afterId`: an index range on Manifest(repositoryId, pushedAt), and one on the primary key.
   */
  pushedSince(repositoryId: number, since: Date, afterId: number): Step<{ digest: string; refs: string[]; subject: string | null }[]>;
  /** Deletes those manifests by id that are still older than the cutoff and untagged; returns their digests. */
  deleteManifests(repositoryId: number, ids: number[]): Step<string[]>;
  /** Deletes those links that are still older than the cutoff; returns their digests. */
  deleteLinks(repositoryId: number, digests: string[]): Step<string[]>;
  /** Deletes those blob rows that are still older than the cutoff and linked nowhere; returns them. */
  deleteBlobs(digests: string[]): Step<{ digest: string; size: number }[]>;
  /** Deletes those manifest bytes that no manifest row has any more; returns how many bytes. */
  deleteContents(digests: string[]): Step<{ digest: string; bytes: number }[]>;
}

/** A run as the history shows it (without its log). */
export interface GcRunRow {
  id: number;
  kind: string;
  status: string;
  parameters: string;
  manifestsDeleted: number;
  blobsDeleted: number;
  bytesFreed: bigint;
  createdAt: Date;
  updatedAt: Date;
}

/** What a run writes as it goes: its status, counts and log. */
export interface GcRunUpdate {
  status?: string;
  manifestsDeleted?: number;
  blobsDeleted?: number;
  bytesFreed?: bigint;
  log?: string;
}

/** Statuses of a run not ended yet. 'Stopping': a stop was asked for (on any node); the running node polls for it. */
const UNFINISHED = ['Pending', 'Running', 'Stopping'];
const SCHEDULE_KEY = 'gc_schedule';

export class GcStore {
  private readonly d: Dialect;
  private readonly pg: PgSql | null;
  private readonly sql: Statements;

  constructor(private readonly db: Db) {
    this.d = dialectOf(db);
    this.pg = pgSql(db);
    this.sql = statements(this.d);
  }

  private direct(): DirectSql {
    const direct = directSql(this.db);
    if (!direct) throw new Error('garbage collection needs the database opened by openDatabase');
    return direct;
  }

  /**
   * Opens the reads of one run (close it at the end). PostgreSQL: statements on the pool. SQLite:
   * a read-only connection of its own when the database is a file; otherwise (an in-memory
   * database) each page is a short transaction on the writer connection.
   */
  async reader(cutoff: Date): Promise<GcReader> {
    const c = this.d.date(cutoff);
    const pg = this.pg;
    if (pg) return new GcReader(async (sql, args) => (await pg.query(sql, args)).rows, this.sql, c, () => undefined);
    const direct = this.direct();
    const list = (await this.db.$queryRawUnsafe('PRAGMA database_list')) as { name: string; file: string }[];
    const file = list.find((x) => x.name === 'main')?.file;
    if (file && file !== ':memory:') {
      const conn = new Database(file, { readonly: true, fileMustExist: true });
      conn.pragma('busy_timeout = 5000');
      const prepared = new Map<string, Database.Statement>();
      const rows: Rows = async (sql, args) => {
        let s = prepared.get(sql);
        if (!s) prepared.set(sql, (s = conn.prepare(sql)));
        return s.all(...(args as SqlArg[]));
      };
      return new GcReader(rows, this.sql, c, () => conn.close());
    }
    // An in-memory database has no second connection: each page is a transaction on the writer's.
    return new GcReader((sql, args) => direct.transaction((_run, all) => all(sql, args as SqlArg[])), this.sql, c, () => undefined);
  }

  /**
   * Runs the body's statements in one short transaction and resolves once it is committed (durable
   * on SQLite). The caller holds the registry's write lock exclusively, so no push is between its
   * check and its write meanwhile; the statements check their conditions again as they delete.
   */
  async sweep<T>(cutoff: Date, body: (s: GcSweep) => Step<T>): Promise<T> {
    const s = this.sweeper(this.d.date(cutoff));
    if (this.pg) {
      return this.pg.transaction(async (query) => {
        await query(CUSTOM_PLANS, []);
        const steps = body(s);
        let next = steps.next();
        while (!next.done) next = steps.next((await query(next.value.sql, next.value.args)).rows);
        return next.value;
      });
    }
    return this.direct().transaction((_run, all) => {
      const steps = body(s);
      let next = steps.next();
      while (!next.done) next = steps.next(all(next.value.sql, next.value.args as SqlArg[]));
      return next.value;
    });
  }

  private sweeper(cutoff: string): GcSweep {
    const { sql, d } = this;
    return {
      *pushedSince(repositoryId, since, afterId) {
        const rows = yield* statement<{ digest: string; refs: string; subject: string | null }>(sql.pushedSince, [repositoryId, d.date(since), afterId, repositoryId]);
        return rows.map((m) => ({ digest: m.digest, refs: JSON.parse(m.refs) as string[], subject: m.subject }));
      },
      *deleteManifests(repositoryId, ids) {
        if (!ids.length) return [];
        return (yield* statement<{ digest: string }>(sql.deleteManifests, [repositoryId, d.listArg(ids), cutoff])).map((r) => r.digest);
      },
      *deleteLinks(repositoryId, digests) {
        if (!digests.length) return [];
        return (yield* statement<{ digest: string }>(sql.deleteLinks, [repositoryId, d.listArg(digests), cutoff])).map((r) => r.digest);
      },
      *deleteBlobs(digests) {
        if (!digests.length) return [];
        return (yield* statement<{ digest: string; size: number | bigint }>(sql.deleteBlobs, [d.listArg(digests), cutoff])).map((r) => ({ digest: r.digest, size: Number(r.size) }));
      },
      *deleteContents(digests) {
        if (!digests.length) return [];
        return (yield* statement<{ digest: string; bytes: number | bigint }>(sql.deleteContents, [d.listArg(digests)])).map((r) => ({ digest: r.digest, bytes: Number(r.bytes) }));
      },
    };
  }

  /** The highest manifest id so far (0 when there is none). */
  async highestManifestId(): Promise<number> {
    const rows = this.pg ? (await this.pg.query<{ id: number }>(this.sql.highestManifestId, [])).rows : await this.db.$queryRawUnsafe<{ id: number | bigint }[]>(this.sql.highestManifestId);
    return Number(rows[0]?.id ?? 0);
  }

  /** Which of the digests have a blob row (written again by a push since the plan was made). */
  async blobRowsOf(digests: string[]): Promise<Set<string>> {
    if (!digests.length) return new Set();
    const arg = this.d.listArg(digests);
    const rows = this.pg ? (await this.pg.query<{ digest: string }>(this.sql.blobRowsOf, [arg])).rows : await this.db.$queryRawUnsafe<{ digest: string }[]>(this.sql.blobRowsOf, arg);
    return new Set(rows.map((r) => r.digest));
  }

  // ---- runs ---------------------------------------------------------------------------------

  async createRun(kind: string, parameters: string): Promise<number> {
    return (await this.db.gcRun.create({ data: { kind, parameters }, select: { id: true } })).id;
  }

  /** Writes what the run has got to; returns its status as stored (a stop asked for on any node shows as 'Stopping'). */
  async updateRun(id: number, data: GcRunUpdate): Promise<string | null> {
    const row = await this.db.gcRun.update({ where: { id }, data, select: { status: true } }).catch(() => null);
    return row?.status ?? null;
  }

  /** Pending → Running; false when the run is no longer pending (a stop was asked for first). */
  async markRunning(id: number, log: string): Promise<boolean> {
    return (await this.db.gcRun.updateMany({ where: { id, status: 'Pending' }, data: { status: 'Running', log } })).count === 1;
  }

  async runStatus(id: number): Promise<string | null> {
    return (await this.db.gcRun.findUnique({ where: { id }, select: { status: true } }))?.status ?? null;
  }

  /** Asks the node running it to stop (it polls the row); false when the run has ended or does not exist. */
  async requestStop(id: number): Promise<boolean> {
    return (await this.db.gcRun.updateMany({ where: { id, status: { in: ['Pending', 'Running'] } }, data: { status: 'Stopping' } })).count === 1;
  }

  /** Whether any run is unfinished (Pending, Running or Stopping). */
  async hasUnfinished(): Promise<boolean> {
    return (await this.db.gcRun.findFirst({ where: { status: { in: UNFINISHED } }, select: { id: true } })) !== null;
  }

  /** Marks every unfinished run as Stopped (the caller knows no node runs any of them). */
  async markInterrupted(exceptId?: number): Promise<number> {
    return (await this.db.gcRun.updateMany({ where: { status: { in: UNFINISHED }, ...(exceptId !== undefined ? { id: { not: exceptId } } : {}) }, data: { status: 'Stopped' } })).count;
  }

  async countRuns(): Promise<number> {
    return this.db.gcRun.count();
  }

  async listRuns(skip: number, take: number): Promise<GcRunRow[]> {
    return this.db.gcRun.findMany({ orderBy: { id: 'desc' }, skip, take, omit: { log: true } });
  }

  async getRun(id: number): Promise<GcRunRow | null> {
    return this.db.gcRun.findUnique({ where: { id }, omit: { log: true } });
  }

  async runLog(id: number): Promise<string | null> {
    return (await this.db.gcRun.findUnique({ where: { id }, select: { log: true } }))?.log ?? null;
  }

  // ---- schedule -----------------------------------------------------------------------------

  /** The saved schedule (JSON), or null. */
  async loadSchedule(): Promise<string | null> {
    return (await this.db.setting.findUnique({ where: { key: SCHEDULE_KEY } }))?.value ?? null;
  }

  async saveSchedule(value: string): Promise<void> {
    await this.db.setting.upsert({ where: { key: SCHEDULE_KEY }, create: { key: SCHEDULE_KEY, value }, update: { value } });
  }
}
