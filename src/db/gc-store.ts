// Garbage collection's database side: decides what nothing refers to any more and deletes those
// rows in one transaction. Files are the caller's (src/services/gc.ts): it deletes a blob's bytes
// only after its row is gone, and only for the digests returned here.
//
// Kept, always: everything created within the time window (a push uploads its layers and child
// manifests before the manifest or index that refers to them), every manifest with a tag, and
// everything those reach. Rows older than the window that nothing reaches are collected:
// - with deleteUntagged, manifests without a tag that no kept manifest refers to (as an index's
//   child) and whose subject is not kept (signatures and other accessories go with their subject);
// - links of a repository to a blob none of its manifests refers to (layers of deleted images);
// - blobs no repository links to any more, and manifest bytes no manifest row refers to.
import { directSql, sqlDate, type Db, type SqlArg } from './client.ts';

export interface GcPlan {
  /** Untagged manifests deleted (deleteUntagged only). */
  manifests: { repositoryId: number; repository: string; digest: string }[];
  /** Repository links deleted (including those of the deleted manifests). */
  links: { repositoryId: number; digest: string }[];
  /** Blob rows deleted: their bytes in the blob store may go. */
  blobs: { digest: string; size: number }[];
  /** Bytes of manifests stored in the database that were deleted with their last manifest row. */
  manifestBytes: number;
}

interface ManifestRow {
  id: number | bigint;
  digest: string;
  /** The digests it lists (config, layers, children), parsed from the row's JSON once. */
  refs: string[];
  subject: string | null;
  recent: number;
}

/** Thrown inside the transaction of a dry run, so that it rolls back after computing the plan. */
class DryRun extends Error {
  constructor(readonly plan: GcPlan) {
    super('dry run');
  }
}

export class GcStore {
  constructor(private readonly db: Db) {}

  /**
   * Computes what to collect and, unless dryRun, deletes those rows; returns the plan either way.
   * One synchronous SQLite transaction on the writer connection: nothing else writes meanwhile,
   * and a dry run is the same transaction rolled back. It blocks the event loop while it runs
   * (a few ms per thousand manifests).
   */
  async collect(opts: { cutoff: Date; deleteUntagged: boolean; dryRun: boolean }): Promise<GcPlan> {
    const direct = directSql(this.db);
    if (!direct) throw new Error('garbage collection needs the database opened by openDatabase');
    const cutoff = sqlDate(opts.cutoff);
    try {
      return await direct.transaction((run, all) => {
        const q = <T>(sql: string, ...args: SqlArg[]) => all(sql, args) as T[];
        const plan: GcPlan = { manifests: [], links: [], blobs: [], manifestBytes: 0 };
        // Integers may come back as BigInt (the connection's safe-integer mode): ids are made Numbers.
        for (const { id, name } of q<{ id: number | bigint; name: string }>('SELECT "id", "name" FROM "Repository" ORDER BY "id"')) {
          const repo = { id: Number(id), name };
          const rows = q<Omit<ManifestRow, 'refs'> & { refs: string }>('SELECT "id", "digest", "refs", "subject", julianday("pushedAt") >= julianday(?) AS "recent" FROM "Manifest" WHERE "repositoryId" = ?', cutoff, repo.id).map(
            (m): ManifestRow => ({ ...m, refs: JSON.parse(m.refs) as string[] }),
          );
          const tagged = new Set(q<{ digest: string }>('SELECT DISTINCT "digest" FROM "Tag" WHERE "repositoryId" = ?', repo.id).map((t) => t.digest));
          const doomed = opts.deleteUntagged ? untaggedUnreached(rows, tagged) : [];
          const gone = new Set(doomed.map((m) => m.digest));
          const referenced = new Set<string>();
          for (const m of rows) {
            if (gone.has(m.digest)) continue;
            referenced.add(m.digest);
            for (const r of m.refs) referenced.add(r);
          }
          const stale = new Set(gone);
          for (const l of q<{ digest: string }>('SELECT "digest" FROM "BlobLink" WHERE "repositoryId" = ? AND julianday("createdAt") < julianday(?)', repo.id, cutoff)) {
            if (!referenced.has(l.digest)) stale.add(l.digest);
          }
          run('DELETE FROM "Manifest" WHERE "id" IN (SELECT value FROM json_each(?))', [JSON.stringify(doomed.map((m) => Number(m.id)))]);
          run('DELETE FROM "BlobLink" WHERE "repositoryId" = ? AND "digest" IN (SELECT value FROM json_each(?))', [repo.id, JSON.stringify([...stale])]);
          for (const m of doomed) plan.manifests.push({ repositoryId: repo.id, repository: repo.name, digest: m.digest });
          for (const d of stale) plan.links.push({ repositoryId: repo.id, digest: d });
        }
        const orphans = q<{ digest: string; size: number | bigint }>(
          'SELECT "digest", "size" FROM "Blob" b WHERE julianday("createdAt") < julianday(?) AND NOT EXISTS (SELECT 1 FROM "BlobLink" l WHERE l."digest" = b."digest")',
          cutoff,
        );
        run('DELETE FROM "Blob" WHERE "digest" IN (SELECT value FROM json_each(?))', [JSON.stringify(orphans.map((b) => b.digest))]);
        plan.blobs = orphans.map((b) => ({ digest: b.digest, size: Number(b.size) }));
        const unreferenced = 'FROM "ManifestContent" WHERE NOT EXISTS (SELECT 1 FROM "Manifest" m WHERE m."digest" = "ManifestContent"."digest")';
        plan.manifestBytes = Number(q<{ n: number | bigint | null }>(`SELECT SUM(length("content")) AS "n" ${unreferenced}`)[0]?.n ?? 0);
        run(`DELETE ${unreferenced}`, []);
        if (opts.dryRun) throw new DryRun(plan);
        return plan;
      });
    } catch (e) {
      if (e instanceof DryRun) return e.plan;
      throw e;
    }
  }

  /** Which of the digests have a blob row (written again by a push since the plan was made). */
  async blobRowsOf(digests: string[]): Promise<Set<string>> {
    const rows = await this.db.$queryRawUnsafe<{ digest: string }[]>('SELECT "digest" FROM "Blob" WHERE "digest" IN (SELECT value FROM json_each(?))', JSON.stringify(digests));
    return new Set(rows.map((r) => r.digest));
  }
}

/**
 * Untagged manifests older than the window that nothing kept reaches: kept are the tagged and the
 * recent ones, then, repeatedly, the children they list and the accessories whose subject is kept.
 */
function untaggedUnreached(rows: ManifestRow[], tagged: Set<string>): ManifestRow[] {
  const byDigest = new Map(rows.map((m) => [m.digest, m]));
  const bySubject = new Map<string, ManifestRow[]>();
  for (const m of rows) if (m.subject) (bySubject.get(m.subject) ?? bySubject.set(m.subject, []).get(m.subject)!).push(m);
  const kept = new Set<string>();
  const queue: string[] = [];
  const keep = (d: string) => {
    if (kept.has(d) || !byDigest.has(d)) return;
    kept.add(d);
    queue.push(d);
  };
  for (const m of rows) if (tagged.has(m.digest) || Number(m.recent)) keep(m.digest);
  while (queue.length) {
    const d = queue.pop()!;
    for (const r of byDigest.get(d)!.refs) keep(r);
    for (const a of bySubject.get(d) ?? []) keep(a.digest);
  }
  return rows.filter((m) => !kept.has(m.digest));
}
