// Garbage collection's database side: bounded pages to read (the mark) and short deleting
// transactions that check again, at the moment they delete, that nothing has come to rely on
// what they delete (the sweep). The rules of what is kept live in src/services/gc.ts; files are
// the service's too (it deletes a blob's bytes only after its row is gone).
//
// Every statement here is one index range or a handful of index lookups per row, so a run over N
// objects costs O(N log N) and no single call holds the event loop for long:
// - manifests, tags and links of a repository are read in pages of its primary or unique index
//   (keyset on digest, never OFFSET);
// - "does any link point at this blob" uses BlobLink(digest), "does any manifest have this digest"
//   uses Manifest(digest) (both indexed), each once per row;
// - "what was pushed into this repository since the run began" uses Manifest(repositoryId, pushedAt).
//
// Reads go through a read-only connection of their own, opened for the run (WAL: it never blocks
// the writer and sees every commit); deletes go through the writer connection (DirectSql).
import Database from 'better-sqlite3';
import { directSql, sqlDate, type Db, type DirectSql, type SqlArg } from './client.ts';

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

type Rows = (sql: string, ...args: SqlArg[]) => Promise<unknown[]>;

/** One run's reads: pages of at most `limit` rows, each from one index range (a few ms at most). */
export class GcReader {
  constructor(private readonly rows: Rows, private readonly cutoff: string, private readonly closer: () => void) {}

  close(): void {
    this.closer();
  }

  async repositories(afterId: number, limit: number): Promise<{ id: number; name: string }[]> {
    return ((await this.rows('SELECT "id", "name" FROM "Repository" WHERE "id" > ? ORDER BY "id" LIMIT ?', afterId, limit)) as { id: number | bigint; name: string }[]).map((r) => ({ id: Number(r.id), name: r.name }));
  }

  async manifests(repositoryId: number, afterDigest: string, limit: number): Promise<GcManifestRow[]> {
    const rows = (await this.rows(
      'SELECT "id", "digest", "refs", "subject", julianday("pushedAt") >= julianday(?) AS "recent" FROM "Manifest" WHERE "repositoryId" = ? AND "digest" > ? ORDER BY "digest" LIMIT ?',
      this.cutoff,
      repositoryId,
      afterDigest,
      limit,
    )) as { id: number | bigint; digest: string; refs: string; subject: string | null; recent: number | bigint }[];
    return rows.map((m) => ({ id: Number(m.id), digest: m.digest, refs: JSON.parse(m.refs) as string[], subject: m.subject, recent: Number(m.recent) === 1 }));
  }

  /** Distinct digests that tags of the repository point at (Tag(repositoryId, digest) is indexed). */
  async taggedDigests(repositoryId: number, afterDigest: string, limit: number): Promise<string[]> {
    return ((await this.rows('SELECT DISTINCT "digest" FROM "Tag" WHERE "repositoryId" = ? AND "digest" > ? ORDER BY "digest" LIMIT ?', repositoryId, afterDigest, limit)) as { digest: string }[]).map((t) => t.digest);
  }

  /** Links of the repository created (or renewed) before the cutoff. */
  async oldLinks(repositoryId: number, afterDigest: string, limit: number): Promise<{ digests: string[]; rows: number; last: string }> {
    const rows = (await this.rows(
      'SELECT "digest", julianday("createdAt") < julianday(?) AS "old" FROM "BlobLink" WHERE "repositoryId" = ? AND "digest" > ? ORDER BY "digest" LIMIT ?',
      this.cutoff,
      repositoryId,
      afterDigest,
      limit,
    )) as { digest: string; old: number | bigint }[];
    // The page's size and last digest are returned too, so that a page of only recent links still advances.
    return { digests: rows.filter((r) => Number(r.old) === 1).map((r) => r.digest), rows: rows.length, last: rows.at(-1)?.digest ?? '' };
  }

  /** Blob rows older than the cutoff, with their count of links. */
  async oldBlobs(afterDigest: string, limit: number): Promise<{ rows: GcBlobRow[]; last: string }> {
    const rows = (await this.rows(
      'SELECT b."digest", b."size", julianday(b."createdAt") < julianday(?) AS "old", (SELECT COUNT(*) FROM "BlobLink" l WHERE l."digest" = b."digest") AS "links" FROM "Blob" b WHERE b."digest" > ? ORDER BY b."digest" LIMIT ?',
      this.cutoff,
      afterDigest,
      limit,
    )) as { digest: string; size: number | bigint; old: number | bigint; links: number | bigint }[];
    return { rows: rows.filter((r) => Number(r.old) === 1).map((r) => ({ digest: r.digest, size: Number(r.size), links: Number(r.links) })), last: rows.at(-1)?.digest ?? '' };
  }

  /** Manifest bytes stored in the database, with how many manifest rows have that digest. */
  async contents(afterDigest: string, limit: number): Promise<GcContentRow[]> {
    // length() of a BLOB reads its size from the record header, not the bytes.
    const rows = (await this.rows(
      'SELECT c."digest", length(c."content") AS "bytes", (SELECT COUNT(*) FROM "Manifest" m WHERE m."digest" = c."digest") AS "manifests" FROM "ManifestContent" c WHERE c."digest" > ? ORDER BY c."digest" LIMIT ?',
      afterDigest,
      limit,
    )) as { digest: string; bytes: number | bigint; manifests: number | bigint }[];
    return rows.map((r) => ({ digest: r.digest, bytes: Number(r.bytes), manifests: Number(r.manifests) }));
  }
}

/** The deletes, each inside the caller's short transaction (see GcStore.sweep). */
export interface GcSweep {
  /**
   * Manifests pushed (or pushed again) into the repository at or after `since`: an index range on
   * Manifest(repositoryId, pushedAt). The app writes every date as sqlDate, so text order is time order.
   */
  pushedSince(repositoryId: number, since: Date): { digest: string; refs: string[]; subject: string | null }[];
  /** Deletes those manifests by id that are still older than the cutoff and untagged; returns their digests. */
  deleteManifests(repositoryId: number, ids: number[]): string[];
  /** Deletes those links that are still older than the cutoff; returns their digests. */
  deleteLinks(repositoryId: number, digests: string[]): string[];
  /** Deletes those blob rows that are still older than the cutoff and linked nowhere; returns them. */
  deleteBlobs(digests: string[]): { digest: string; size: number }[];
  /** Deletes those manifest bytes that no manifest row has any more; returns how many bytes. */
  deleteContents(digests: string[]): { digest: string; bytes: number }[];
}

export class GcStore {
  constructor(private readonly db: Db) {}

  private direct(): DirectSql {
    const direct = directSql(this.db);
    if (!direct) throw new Error('garbage collection needs the database opened by openDatabase');
    return direct;
  }

  /**
   * Opens the reads of one run (close it at the end). A read-only connection of its own when the
   * database is a file; otherwise (an in-memory database) each page is a short transaction on the
   * writer connection.
   */
  async reader(cutoff: Date): Promise<GcReader> {
    const direct = this.direct();
    const c = sqlDate(cutoff);
    const list = (await this.db.$queryRawUnsafe('PRAGMA database_list')) as { name: string; file: string }[];
    const file = list.find((x) => x.name === 'main')?.file;
    if (file && file !== ':memory:') {
      const conn = new Database(file, { readonly: true, fileMustExist: true });
      conn.pragma('busy_timeout = 5000');
      const statements = new Map<string, Database.Statement>();
      const rows: Rows = async (sql, ...args) => {
        let s = statements.get(sql);
        if (!s) statements.set(sql, (s = conn.prepare(sql)));
        return s.all(...args);
      };
      return new GcReader(rows, c, () => conn.close());
    }
    // An in-memory database has no second connection: each page is a transaction on the writer's.
    return new GcReader((sql, ...args) => direct.transaction((_run, all) => all(sql, args)), c, () => undefined);
  }

  /**
   * Runs fn in one short transaction on the writer connection and resolves once it is durable.
   * The caller holds the registry's write lock exclusively, so no push is between its check and
   * its write meanwhile; the statements check their conditions again as they delete.
   */
  sweep<T>(cutoff: Date, fn: (s: GcSweep) => T): Promise<T> {
    const c = sqlDate(cutoff);
    return this.direct().transaction((_run, all) => {
      const q = <R>(sql: string, ...args: SqlArg[]) => all(sql, args) as R[];
      const s: GcSweep = {
        pushedSince: (repositoryId, since) =>
          q<{ digest: string; refs: string; subject: string | null }>('SELECT "digest", "refs", "subject" FROM "Manifest" WHERE "repositoryId" = ? AND "pushedAt" >= ?', repositoryId, sqlDate(since)).map((m) => ({
            digest: m.digest,
            refs: JSON.parse(m.refs) as string[],
            subject: m.subject,
          })),
        deleteManifests: (repositoryId, ids) =>
          ids.length
            ? q<{ digest: string }>(
                // By id (the primary key): "+" keeps the planner from scanning the repository's index instead.
                'DELETE FROM "Manifest" WHERE +"repositoryId" = ? AND "id" IN (SELECT value FROM json_each(?)) AND julianday("pushedAt") < julianday(?) AND NOT EXISTS (SELECT 1 FROM "Tag" t WHERE t."repositoryId" = "Manifest"."repositoryId" AND t."digest" = "Manifest"."digest") RETURNING "digest"',
                repositoryId,
                JSON.stringify(ids),
                c,
              ).map((r) => r.digest)
            : [],
        deleteLinks: (repositoryId, digests) =>
          digests.length
            ? q<{ digest: string }>('DELETE FROM "BlobLink" WHERE "repositoryId" = ? AND "digest" IN (SELECT value FROM json_each(?)) AND julianday("createdAt") < julianday(?) RETURNING "digest"', repositoryId, JSON.stringify(digests), c).map((r) => r.digest)
            : [],
        deleteBlobs: (digests) =>
          digests.length
            ? q<{ digest: string; size: number | bigint }>(
                'DELETE FROM "Blob" WHERE "digest" IN (SELECT value FROM json_each(?)) AND julianday("createdAt") < julianday(?) AND NOT EXISTS (SELECT 1 FROM "BlobLink" l WHERE l."digest" = "Blob"."digest") RETURNING "digest", "size"',
                JSON.stringify(digests),
                c,
              ).map((r) => ({ digest: r.digest, size: Number(r.size) }))
            : [],
        deleteContents: (digests) =>
          digests.length
            ? q<{ digest: string; bytes: number | bigint }>(
                'DELETE FROM "ManifestContent" WHERE "digest" IN (SELECT value FROM json_each(?)) AND NOT EXISTS (SELECT 1 FROM "Manifest" m WHERE m."digest" = "ManifestContent"."digest") RETURNING "digest", length("content") AS "bytes"',
                JSON.stringify(digests),
              ).map((r) => ({ digest: r.digest, bytes: Number(r.bytes) }))
            : [],
      };
      return fn(s);
    });
  }

  /** Which of the digests have a blob row (written again by a push since the plan was made). */
  async blobRowsOf(digests: string[]): Promise<Set<string>> {
    const rows = await this.db.$queryRawUnsafe<{ digest: string }[]>('SELECT "digest" FROM "Blob" WHERE "digest" IN (SELECT value FROM json_each(?))', JSON.stringify(digests));
    return new Set(rows.map((r) => r.digest));
  }
}
