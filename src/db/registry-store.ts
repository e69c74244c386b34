// Registry metadata in the database: repositories, blob links, manifests, tags, referrers.
// Plain data in and out; caching and rules live in src/services/registry-service.ts.
//
// Why not Prisma everywhere: on this path Prisma costs 100-200 µs per query and several ms per
// upsert transaction, which caps pushes and listings. So:
// - reads go through a second, read-only better-sqlite3 connection with prepared statements
//   (WAL: readers never block the writer and always see committed data);
// - writes stay on Prisma's connection (one writer, so no lock fights with the other services),
//   as raw SQL, and concurrent writes are group-committed: requests that arrive while a commit is
//   in flight share the next transaction, so N pushes cost one durable fsync, not N. Each caller
//   is answered only after its own data is committed.
// - PostgreSQL: reads and writes are named prepared statements on Berth's own pg pool (PgSql),
//   with the same group commit (N pushes, one BEGIN..COMMIT); the statements are the same text in
//   the engine's form (src/db/dialect.ts).
import Database from 'better-sqlite3';
import { directSql, dialectOf, pgSql, type Db, type DirectSql, type PgSql, type SqlArg } from './client.ts';
import { sqlite, type Dialect } from './dialect.ts';

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  size: number;
  subject: string | null;
  annotations: string | null;
  refs: string[];
}

export interface NewManifest extends ManifestRecord {
  configType: string | null;
  /** The manifest's bytes, stored with it. */
  content: Buffer;
}

type Arg = SqlArg | (string | number)[];
/** One write: SQL and its arguments (dates in the dialect's form, as Prisma stores them). */
type Write = [sql: string, args: Arg[]];

/** The read statements, in SQLite's form (see Dialect.text); `pluck`: the first column's value. */
function readStatements(d: Dialect) {
  return {
    repoId: { sql: 'SELECT "id" FROM "Repository" WHERE "name" = ?', pluck: true },
    linkedSize: { sql: 'SELECT b."size" FROM "BlobLink" l JOIN "Blob" b ON b."digest" = l."digest" WHERE l."repositoryId" = ? AND l."digest" = ?', pluck: true },
    tag: { sql: 'SELECT "digest" FROM "Tag" WHERE "repositoryId" = ? AND "name" = ?', pluck: true },
    manifest: { sql: 'SELECT "digest", "mediaType", "artifactType", "size", "subject", "annotations", "refs" FROM "Manifest" WHERE "repositoryId" = ? AND "digest" = ?', pluck: false },
    tagsFirst: { sql: 'SELECT "name" FROM "Tag" WHERE "repositoryId" = ? ORDER BY "name" LIMIT ?', pluck: true },
    tagsAfter: { sql: 'SELECT "name" FROM "Tag" WHERE "repositoryId" = ? AND "name" > ? ORDER BY "name" LIMIT ?', pluck: true },
    reposFirst: { sql: 'SELECT "name" FROM "Repository" ORDER BY "name" LIMIT ?', pluck: true },
    reposAfter: { sql: 'SELECT "name" FROM "Repository" WHERE "name" > ? ORDER BY "name" LIMIT ?', pluck: true },
    reposInFirst: { sql: `SELECT "name" FROM "Repository" WHERE ${d.inList('"projectId"', 'int')} ORDER BY "name" LIMIT ?`, pluck: true },
    reposInAfter: { sql: `SELECT "name" FROM "Repository" WHERE "name" > ? AND ${d.inList('"projectId"', 'int')} ORDER BY "name" LIMIT ?`, pluck: true },
    content: { sql: 'SELECT "content" FROM "ManifestContent" WHERE "digest" = ?', pluck: true },
    // PostgreSQL: one index lookup per digest (the list comes first). A named statement runs on a
    // generic plan after five uses, and that plan scanned every link of the repository and filtered
    // by digest (8-11 ms per push at 20,000 links); the repository id must stay a direct parameter
    // inside the lateral subquery, or the planner picks the digest index and scans a shared layer's links.
    linkedIn: { sql: d.engine === 'postgresql' ? listFirst('BlobLink') : `SELECT "digest" FROM "BlobLink" WHERE "repositoryId" = ? AND ${d.inList('"digest"', 'text')}`, pluck: true },
    manifestsIn: { sql: d.engine === 'postgresql' ? listFirst('Manifest') : `SELECT "digest" FROM "Manifest" WHERE "repositoryId" = ? AND ${d.inList('"digest"', 'text')}`, pluck: true },
    withBlob: { sql: 'SELECT r."name" AS name, b."size" AS size FROM "BlobLink" l JOIN "Repository" r ON r."id" = l."repositoryId" JOIN "Blob" b ON b."digest" = l."digest" WHERE l."digest" = ? LIMIT ?', pluck: false },
    referrers: { sql: 'SELECT "digest", "mediaType", "artifactType", "size", "subject", "annotations" FROM "Manifest" WHERE "repositoryId" = ? AND "subject" = ? ORDER BY "id"', pluck: false },
    referrersOfType: { sql: 'SELECT "digest", "mediaType", "artifactType", "size", "subject", "annotations" FROM "Manifest" WHERE "repositoryId" = ? AND "subject" = ? AND "artifactType" = ? ORDER BY "id"', pluck: false },
  };
}
type ReadKey = keyof ReturnType<typeof readStatements>;

/** PostgreSQL: which of a list of digests (first parameter) a repository (second) has in `table`. */
function listFirst(table: 'BlobLink' | 'Manifest'): string {
  return `SELECT b."digest" FROM (SELECT DISTINCT u.v FROM unnest(?::text[]) AS u(v)) l CROSS JOIN LATERAL (SELECT "digest" FROM "${table}" WHERE "repositoryId" = ? AND "digest" = l.v OFFSET 0) b`;
}

/** The prepared reads of one engine: synchronous on SQLite, a round trip on PostgreSQL. */
interface Reader {
  /** The first row (or its first column for a pluck statement), undefined when none. */
  get(key: ReadKey, ...args: Arg[]): unknown;
  /** Every row (or every first column for a pluck statement). */
  all(key: ReadKey, ...args: Arg[]): unknown[] | Promise<unknown[]>;
}

/** A second, read-only connection on the SQLite file (WAL: never blocks the writer). */
function sqliteReader(conn: Database.Database): Reader {
  const stmts = {} as Record<ReadKey, Database.Statement<unknown[], unknown>>;
  for (const [key, { sql, pluck }] of Object.entries(readStatements(sqlite))) {
    const st = conn.prepare(sql);
    stmts[key as ReadKey] = pluck ? st.pluck() : st;
  }
  return {
    get: (key, ...args) => stmts[key].get(...args),
    all: (key, ...args) => stmts[key].all(...args),
  };
}

function pgReader(pg: PgSql, d: Dialect): Reader {
  const stmts = {} as Record<ReadKey, { sql: string; pluck: boolean }>;
  for (const [key, { sql, pluck }] of Object.entries(readStatements(d))) stmts[key as ReadKey] = { sql: d.text(sql), pluck };
  const first = (row: Record<string, unknown>) => row[Object.keys(row)[0]];
  return {
    async get(key, ...args) {
      const st = stmts[key];
      const row = (await pg.query(st.sql, args)).rows[0];
      return row === undefined || !st.pluck ? row : first(row);
    },
    async all(key, ...args) {
      const st = stmts[key];
      const rows = (await pg.query(st.sql, args)).rows;
      return st.pluck ? rows.map(first) : rows;
    },
  };
}

interface WriteJob {
  build: () => Write[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** The write statements in the engine's form. */
function writeStatements(d: Dialect) {
  return {
    INSERT_BLOB: d.text('INSERT INTO "Blob" ("digest", "size", "createdAt") VALUES (?, ?, ?) ON CONFLICT ("digest") DO NOTHING'),
    // Pushing again what a repository already has renews the link's and the manifest's time: garbage
    // collection keeps what was pushed within its window, also when the rows themselves are old (a
    // push that re-uploads layers of a deleted image, or re-pushes an index's existing children).
    INSERT_LINK: d.text('INSERT INTO "BlobLink" ("repositoryId", "digest", "createdAt") VALUES (?, ?, ?) ON CONFLICT ("repositoryId", "digest") DO UPDATE SET "createdAt" = excluded."createdAt"'),
    INSERT_MANIFEST: d.text(
      'INSERT INTO "Manifest" ("repositoryId", "digest", "mediaType", "artifactType", "configType", "size", "subject", "annotations", "refs", "pushedAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT ("repositoryId", "digest") DO UPDATE SET "pushedAt" = excluded."pushedAt"',
    ),
    INSERT_CONTENT: d.text('INSERT INTO "ManifestContent" ("digest", "content") VALUES (?, ?) ON CONFLICT ("digest") DO NOTHING'),
    TOUCH_REPOSITORY: d.text('UPDATE "Repository" SET "updatedAt" = ? WHERE "id" = ?'),
    UPSERT_TAG: d.text(
      'INSERT INTO "Tag" ("repositoryId", "name", "digest", "createdAt", "updatedAt") VALUES (?, ?, ?, ?, ?) ON CONFLICT ("repositoryId", "name") DO UPDATE SET "digest" = excluded."digest", "updatedAt" = excluded."updatedAt"',
    ),
    // PostgreSQL only: nodes creating the same repository at once must not fail on the unique name.
    INSERT_REPOSITORY: d.text('INSERT INTO "Repository" ("name", "projectId", "updatedAt") VALUES (?, ?, ?) ON CONFLICT ("name") DO NOTHING'),
  };
}
/**
 * PostgreSQL: each write of linkBlob/putManifest as ONE statement (data-modifying CTEs), since every
 * statement is a network round trip there (SQLite's are function calls). Same rows, same conflict
 * rules as the statements above; a foreign key check sees the rows its sibling CTEs inserted.
 */
const PG_LINK_BLOB =
  'WITH b AS (INSERT INTO "Blob" ("digest", "size", "createdAt") VALUES ($2, $3, $4) ON CONFLICT ("digest") DO NOTHING) ' +
  'INSERT INTO "BlobLink" ("repositoryId", "digest", "createdAt") VALUES ($1, $2, $4) ON CONFLICT ("repositoryId", "digest") DO UPDATE SET "createdAt" = excluded."createdAt"';
// $1 repositoryId, $2 digest, $3 mediaType, $4 artifactType, $5 configType, $6 size (int), $7 subject,
// $8 annotations, $9 refs, $10 now, $11 content, $12 size (bigint) [, $13 tag]
const PG_PUT_MANIFEST_CTES =
  'WITH b AS (INSERT INTO "Blob" ("digest", "size", "createdAt") VALUES ($2, $12, $10) ON CONFLICT ("digest") DO NOTHING), ' +
  'l AS (INSERT INTO "BlobLink" ("repositoryId", "digest", "createdAt") VALUES ($1, $2, $10) ON CONFLICT ("repositoryId", "digest") DO UPDATE SET "createdAt" = excluded."createdAt"), ' +
  'c AS (INSERT INTO "ManifestContent" ("digest", "content") VALUES ($2, $11) ON CONFLICT ("digest") DO NOTHING), ' +
  'm AS (INSERT INTO "Manifest" ("repositoryId", "digest", "mediaType", "artifactType", "configType", "size", "subject", "annotations", "refs", "pushedAt") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT ("repositoryId", "digest") DO UPDATE SET "pushedAt" = excluded."pushedAt")';
const PG_PUT_MANIFEST = `${PG_PUT_MANIFEST_CTES} UPDATE "Repository" SET "updatedAt" = $10 WHERE "id" = $1`;
const PG_PUT_MANIFEST_TAGGED =
  `${PG_PUT_MANIFEST_CTES}, r AS (UPDATE "Repository" SET "updatedAt" = $10 WHERE "id" = $1) ` +
  'INSERT INTO "Tag" ("repositoryId", "name", "digest", "createdAt", "updatedAt") VALUES ($1, $13, $2, $10, $10) ON CONFLICT ("repositoryId", "name") DO UPDATE SET "digest" = excluded."digest", "updatedAt" = excluded."updatedAt"';
const MAX_BATCH = 256;

export interface RegistryStoreOptions {
  /** The SQLite file, for the read connection; found through PRAGMA database_list when unset. */
  file?: string;
}

export class RegistryStore {
  private reader: Reader | null = null;
  private opening: Promise<Reader | null> | null = null;
  private conn: Database.Database | null = null;
  private pending: WriteJob[] = [];
  private writing = false;
  private readonly direct: DirectSql | null;
  private readonly pg: PgSql | null;
  private readonly dialect: Dialect;
  private readonly w: ReturnType<typeof writeStatements>;

  constructor(private readonly db: Db, private readonly opts: RegistryStoreOptions = {}) {
    this.direct = directSql(db);
    this.pg = pgSql(db);
    this.dialect = dialectOf(db);
    this.w = writeStatements(this.dialect);
    if (this.pg) this.reader = pgReader(this.pg, this.dialect);
  }

  /** The read statements, or null when the database is an in-memory SQLite (reads then use Prisma). */
  private async r(): Promise<Reader | null> {
    if (this.reader) return this.reader;
    this.opening ??= this.openReader().catch(() => null);
    return this.opening;
  }

  private async openReader(): Promise<Reader | null> {
    let file = this.opts.file?.replace(/^file:/, '');
    if (!file) {
      const rows = (await this.db.$queryRawUnsafe('PRAGMA database_list')) as { name: string; file: string }[];
      file = rows.find((x) => x.name === 'main')?.file;
    }
    if (!file || file === ':memory:') return null;
    const conn = new Database(file, { readonly: true, fileMustExist: true });
    conn.pragma('busy_timeout = 5000');
    const reader = sqliteReader(conn);
    this.conn = conn;
    this.reader = reader;
    return reader;
  }

  /** Closes the SQLite read connection (the Prisma client and the pg pool are closed by their owner). */
  close(): void {
    this.conn?.close();
    this.conn = null;
    if (!this.pg) this.reader = null;
    this.opening = null;
  }

  /**
   * Runs the statements in a transaction shared with whatever other writes are waiting (group
   * commit). A batch that fails is retried job by job, so one bad write fails only its caller.
   */
  private write(build: () => Write[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ build, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  /** One transaction: directly on the connection when possible, else through Prisma. */
  private async commit(writes: Write[]): Promise<void> {
    if (this.direct) {
      await this.direct.transaction((run) => {
        for (const [sql, args] of writes) run(sql, args as SqlArg[]);
      });
      return;
    }
    if (this.pg) {
      // One statement is atomic on its own: no BEGIN/COMMIT round trips around it.
      if (writes.length === 1) await this.pg.query(writes[0][0], writes[0][1]);
      else {
        await this.pg.transaction(async (q) => {
          for (const [sql, args] of writes) await q(sql, args);
        });
      }
      return;
    }
    await this.db.$transaction(writes.map(([sql, args]) => this.db.$executeRawUnsafe(sql, ...args)));
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.pending.length) {
        // A commit blocks the event loop while SQLite fsyncs (or waits for PostgreSQL); let the
        // requests that arrived meanwhile reach this queue so they share the next commit.
        await new Promise((resolve) => setImmediate(resolve));
        const batch = this.pending.splice(0, MAX_BATCH);
        try {
          await this.commit(batch.flatMap((j) => j.build()));
          for (const j of batch) j.resolve();
        } catch (e) {
          if (batch.length === 1) {
            batch[0].reject(e);
            continue;
          }
          for (const j of batch) {
            try {
              await this.commit(j.build());
              j.resolve();
            } catch (err) {
              j.reject(err);
            }
          }
        }
      }
    } finally {
      this.writing = false;
    }
  }

  async findRepositoryId(name: string): Promise<number | null> {
    const r = await this.r();
    if (r) return ((await r.get('repoId', name)) as number | undefined) ?? null;
    const row = await this.db.repository.findUnique({ where: { name }, select: { id: true } });
    return row?.id ?? null;
  }

  async ensureRepository(name: string, projectId: number | null): Promise<number> {
    if (this.pg) {
      // Insert-or-keep, then read: another node may create the same repository at the same time.
      await this.pg.query(this.w.INSERT_REPOSITORY, [name, projectId, this.dialect.date()]);
      const id = await this.findRepositoryId(name);
      if (id === null) throw new Error(`repository ${name} vanished while being created`);
      return id;
    }
    // A non-empty update makes this one native upsert on PostgreSQL (an empty one is select-then-insert and races).
    const r = await this.db.repository.upsert({ where: { name }, create: { name, projectId }, update: { name }, select: { id: true } });
    return r.id;
  }

  /** Size of a blob if it is linked into the repository. */
  async linkedBlobSize(repositoryId: number, digest: string): Promise<number | null> {
    const r = await this.r();
    if (r) {
      const size = (await r.get('linkedSize', repositoryId, digest)) as number | bigint | undefined;
      return size === undefined ? null : Number(size);
    }
    const l = await this.db.blobLink.findUnique({ where: { repositoryId_digest: { repositoryId, digest } }, select: { blob: { select: { size: true } } } });
    return l ? Number(l.blob.size) : null;
  }

  /** Records a stored blob and links it into a repository (idempotent). */
  async linkBlob(repositoryId: number, digest: string, size: number): Promise<void> {
    await this.write(() => {
      const now = this.dialect.date();
      if (this.pg) return [[PG_LINK_BLOB, [repositoryId, digest, size, now]]];
      return [
        [this.w.INSERT_BLOB, [digest, size, now]],
        [this.w.INSERT_LINK, [repositoryId, digest, now]],
      ];
    });
  }

  async unlinkBlob(repositoryId: number, digest: string): Promise<boolean> {
    const r = await this.db.blobLink.deleteMany({ where: { repositoryId, digest } });
    return r.count > 0;
  }

  /** Names of repositories holding a link to the blob (for automatic mounts), at most `limit`. */
  async repositoriesWithBlob(digest: string, limit = 50): Promise<{ name: string; size: number }[]> {
    const r = await this.r();
    if (r) return ((await r.all('withBlob', digest, limit)) as { name: string; size: number | bigint }[]).map((x) => ({ name: x.name, size: Number(x.size) }));
    const rows = await this.db.blobLink.findMany({ where: { digest }, take: limit, select: { repository: { select: { name: true } }, blob: { select: { size: true } } } });
    return rows.map((r) => ({ name: r.repository.name, size: Number(r.blob.size) }));
  }

  /** The arguments of linkedIn/manifestsIn: on PostgreSQL the list comes first (listFirst). */
  private inRepository(repositoryId: number, digests: string[]): [Arg, Arg] {
    const list = this.dialect.listArg(digests) as Arg;
    return this.dialect.engine === 'postgresql' ? [list, repositoryId] : [repositoryId, list];
  }

  /** Which of the digests are linked into the repository. */
  async linkedDigests(repositoryId: number, digests: string[]): Promise<Set<string>> {
    if (!digests.length) return new Set();
    const r = await this.r();
    if (r) return new Set((await r.all('linkedIn', ...this.inRepository(repositoryId, digests))) as string[]);
    const rows = await this.db.blobLink.findMany({ where: { repositoryId, digest: { in: digests } }, select: { digest: true } });
    return new Set(rows.map((r) => r.digest));
  }

  async manifestDigests(repositoryId: number, digests: string[]): Promise<Set<string>> {
    if (!digests.length) return new Set();
    const r = await this.r();
    if (r) return new Set((await r.all('manifestsIn', ...this.inRepository(repositoryId, digests))) as string[]);
    const rows = await this.db.manifest.findMany({ where: { repositoryId, digest: { in: digests } }, select: { digest: true } });
    return new Set(rows.map((r) => r.digest));
  }

  /** Stores a manifest, links its bytes as a blob and points the tag at it, in one transaction. */
  async putManifest(repositoryId: number, m: NewManifest, tag: string | null): Promise<void> {
    await this.write(() => {
      const now = this.dialect.date();
      if (this.pg) {
        const args: Arg[] = [repositoryId, m.digest, m.mediaType, m.artifactType, m.configType, m.size, m.subject, m.annotations, JSON.stringify(m.refs), now, m.content, m.size];
        return [tag === null ? [PG_PUT_MANIFEST, args] : [PG_PUT_MANIFEST_TAGGED, [...args, tag]]];
      }
      const w = this.w;
      const ops: Write[] = [
        [w.INSERT_BLOB, [m.digest, m.size, now]],
        [w.INSERT_LINK, [repositoryId, m.digest, now]],
        [w.INSERT_CONTENT, [m.digest, m.content]],
        [w.INSERT_MANIFEST, [repositoryId, m.digest, m.mediaType, m.artifactType, m.configType, m.size, m.subject, m.annotations, JSON.stringify(m.refs), now]],
        [w.TOUCH_REPOSITORY, [now, repositoryId]],
      ];
      if (tag !== null) ops.push([w.UPSERT_TAG, [repositoryId, tag, m.digest, now, now]]);
      return ops;
    });
  }

  async findManifest(repositoryId: number, digest: string): Promise<ManifestRecord | null> {
    const r = await this.r();
    if (r) {
      const m = (await r.get('manifest', repositoryId, digest)) as (Omit<ManifestRecord, 'refs'> & { refs: string }) | undefined;
      return m ? { ...m, size: Number(m.size), refs: JSON.parse(m.refs) } : null;
    }
    const m = await this.db.manifest.findUnique({ where: { repositoryId_digest: { repositoryId, digest } } });
    return m ? { digest: m.digest, mediaType: m.mediaType, artifactType: m.artifactType, size: m.size, subject: m.subject, annotations: m.annotations, refs: JSON.parse(m.refs) } : null;
  }

  /** The bytes of a manifest stored by digest, or null (manifests of older versions are files). */
  async manifestContent(digest: string): Promise<Buffer | null> {
    const r = await this.r();
    if (r) return ((await r.get('content', digest)) as Buffer | undefined) ?? null;
    const row = await this.db.manifestContent.findUnique({ where: { digest } });
    return row ? Buffer.from(row.content) : null;
  }

  async findTag(repositoryId: number, name: string): Promise<string | null> {
    const r = await this.r();
    if (r) return ((await r.get('tag', repositoryId, name)) as string | undefined) ?? null;
    const t = await this.db.tag.findUnique({ where: { repositoryId_name: { repositoryId, name } }, select: { digest: true } });
    return t?.digest ?? null;
  }

  /** Deletes a manifest and every tag pointing at it; returns the deleted tag names, or null if absent. */
  async deleteManifest(repositoryId: number, digest: string): Promise<string[] | null> {
    return this.db.$transaction(async (tx) => {
      const m = await tx.manifest.findUnique({ where: { repositoryId_digest: { repositoryId, digest } }, select: { id: true } });
      if (!m) return null;
      const tags = await tx.tag.findMany({ where: { repositoryId, digest }, select: { name: true } });
      await tx.tag.deleteMany({ where: { repositoryId, digest } });
      await tx.manifest.delete({ where: { id: m.id } });
      await tx.blobLink.deleteMany({ where: { repositoryId, digest } });
      return tags.map((t) => t.name);
    });
  }

  async deleteTag(repositoryId: number, name: string): Promise<boolean> {
    const r = await this.db.tag.deleteMany({ where: { repositoryId, name } });
    return r.count > 0;
  }

  /** Tags in lexical order after `last`, at most `limit` (keyset paging on the primary key). */
  async listTags(repositoryId: number, last: string | undefined, limit: number): Promise<string[]> {
    const r = await this.r();
    if (r) return (await (last === undefined ? r.all('tagsFirst', repositoryId, limit) : r.all('tagsAfter', repositoryId, last, limit))) as string[];
    const rows = await this.db.tag.findMany({
      where: { repositoryId, ...(last !== undefined ? { name: { gt: last } } : {}) },
      orderBy: { name: 'asc' },
      take: limit,
      select: { name: true },
    });
    return rows.map((r) => r.name);
  }

  /** Repository names in lexical order after `last`, optionally only those under the given projects. */
  async listRepositories(last: string | undefined, limit: number, projectIds?: number[]): Promise<string[]> {
    const r = await this.r();
    if (r) {
      if (!projectIds) return (await (last === undefined ? r.all('reposFirst', limit) : r.all('reposAfter', last, limit))) as string[];
      const ids = this.dialect.listArg(projectIds);
      return (await (last === undefined ? r.all('reposInFirst', ids, limit) : r.all('reposInAfter', last, ids, limit))) as string[];
    }
    const rows = await this.db.repository.findMany({
      where: { ...(last !== undefined ? { name: { gt: last } } : {}), ...(projectIds ? { projectId: { in: projectIds } } : {}) },
      orderBy: { name: 'asc' },
      take: limit,
      select: { name: true },
    });
    return rows.map((r) => r.name);
  }

  async referrers(repositoryId: number, subject: string, artifactType?: string): Promise<ManifestRecord[]> {
    const r = await this.r();
    if (r) {
      const rows = (await (artifactType ? r.all('referrersOfType', repositoryId, subject, artifactType) : r.all('referrers', repositoryId, subject))) as Omit<ManifestRecord, 'refs'>[];
      return rows.map((m) => ({ ...m, size: Number(m.size), refs: [] }));
    }
    const rows = await this.db.manifest.findMany({
      where: { repositoryId, subject, ...(artifactType ? { artifactType } : {}) },
      orderBy: { id: 'asc' },
    });
    return rows.map((m) => ({ digest: m.digest, mediaType: m.mediaType, artifactType: m.artifactType, size: m.size, subject: m.subject, annotations: m.annotations, refs: [] }));
  }

}
