// What storage quotas read and write: a project's limit, and the bytes its repositories hold.
import { dialectOf, pgSql, type Db, type PgSql } from './client.ts';
import type { Dialect } from './dialect.ts';

/** The advisory lock space of quota checks ('quot'); the key is the project id. */
const QUOTA_LOCK = 0x71756f74;

export class QuotaStore {
  private readonly d: Dialect;
  private readonly pg: PgSql | null;
  private readonly usageSql: string;
  private readonly holdsSql: string;

  constructor(private readonly db: Db) {
    this.d = dialectOf(db);
    this.pg = pgSql(db);
    this.usageSql = this.d.text(
      `SELECT ${this.d.sumInt('b."size"')} AS "total" FROM "Blob" b WHERE b."digest" IN (SELECT DISTINCT l."digest" FROM "BlobLink" l JOIN "Repository" r ON r."id" = l."repositoryId" WHERE r."projectId" = ?)`,
    );
    this.holdsSql = this.d.text('SELECT 1 FROM "BlobLink" l JOIN "Repository" r ON r."id" = l."repositoryId" WHERE r."projectId" = ? AND l."digest" = ? LIMIT 1');
  }

  /** The project's storage limit in bytes (-1 unlimited), or null when there is no such project. */
  async limit(projectId: number): Promise<number | null> {
    const p = await this.db.project.findUnique({ where: { id: projectId }, select: { storageLimit: true } });
    return p ? Number(p.storageLimit) : null;
  }

  async setLimit(projectId: number, bytes: number): Promise<void> {
    await this.db.project.update({ where: { id: projectId }, data: { storageLimit: BigInt(bytes) } });
  }

  /** Bytes of the distinct blobs (and manifests) linked into the project's repositories. */
  async usage(projectId: number): Promise<number> {
    const rows = await this.db.$queryRawUnsafe<{ total: bigint | number | null }[]>(this.usageSql, projectId);
    return Number(rows[0]?.total ?? 0);
  }

  /** Whether a repository of the project links the blob. */
  async holds(projectId: number, digest: string): Promise<boolean> {
    const rows = await this.db.$queryRawUnsafe<unknown[]>(this.holdsSql, projectId, digest);
    return rows.length > 0;
  }

  /**
   * Runs fn alone for the project: on PostgreSQL across every node on the database (an advisory
   * lock), on SQLite as it is (one process per data directory, which serializes in memory).
   */
  exclusive<T>(projectId: number, fn: () => Promise<T>): Promise<T> {
    return this.pg ? this.pg.withLock(QUOTA_LOCK, projectId, fn) : fn();
  }
}
