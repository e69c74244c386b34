// Reads of the Harbor API's repository and artifact lists: one statement per question, prepared
// once (src/db/list-store.ts), each entering an index in list order. Plain rows out; the rule for
// "is an artifact", the counts kept per repository and the page positions live in
// src/services/artifacts.ts.
import { MediaTypes } from '../lib/manifest.ts';
import type { Db } from './client.ts';
import type { Dialect } from './dialect.ts';
import { asDate, asDateOrNull, containsPattern, listReader, type ListReader, type ReadArg, type Row } from './list-store.ts';

const INDEX_TYPES = [MediaTypes.ociIndex, MediaTypes.dockerList];
const INDEX_TYPES_SQL = `('${INDEX_TYPES.join("','")}')`;

export interface RepositoryRow {
  id: number;
  projectId: number | null;
  name: string;
  description: string;
  pullCount: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ArtifactRow {
  id: number;
  digest: string;
  mediaType: string;
  configType: string | null;
  artifactType: string | null;
  size: number;
  pushedAt: Date;
  pulledAt: Date | null;
  annotations: string | null;
}

/** Which repositories a repository list covers, and how it is ordered. */
export interface RepositoryScope {
  /** Only repositories of these projects; null: all. */
  projectIds: number[] | null;
  /** Only names containing this (case-insensitive). */
  name?: string;
}
/**
 * A repository list's order (Harbor's `sort`): by name, creation (the id: ids grow with creation
 * time), update time or pull count, ascending or descending; ties among equal values go by id in
 * the same direction, so every order is total and a page can seek from the row before it.
 */
export interface RepositorySort {
  by: 'name' | 'creation' | 'update' | 'pulls';
  desc: boolean;
}

/** Where a repository page starts in its order: just after this row's sort key (see repositoryCursor). */
export interface RepositoryCursor {
  value: ReadArg;
  id: number;
}

/** Where an artifact page starts: after the row with this id (in list order), or after `offset` rows. */
export type PageStart = { after: number } | { offset: number };

/** A filter of the artifact list (the `q` of Harbor's API). */
export interface ArtifactFilter {
  digest?: string;
  /** A tag name: equal to it (`exactTag`), else containing it. */
  tag?: string;
  exactTag?: boolean;
}

const REPO_COLS = 'r."id", r."projectId", r."name", r."description", r."pullCount", r."createdAt", r."updatedAt"';
const ART_COLS = 'm."id", m."digest", m."mediaType", m."configType", m."artifactType", m."size", m."pushedAt", m."pulledAt", m."annotations"';
/** Newest first; the id orders manifests pushed in the same millisecond. Both in the index (repositoryId, pushedAt) + rowid. */
const ART_ORDER = ' ORDER BY m."pushedAt" DESC, m."id" DESC';

/** Manifests `p` joined with the digests they reference, `j.value` (the engine's JSON array reader). */
function childrenOf(d: Dialect): string {
  return d.engine === 'postgresql' ? `"Manifest" p CROSS JOIN LATERAL jsonb_array_elements_text(p."refs"::jsonb) AS j(value)` : `"Manifest" p, json_each(p."refs") j`;
}

/**
 * The one rule for "is an artifact", as SQL over "Manifest" m, for the repositories `set` names (a
 * list of placeholders or a subquery; its parameters are passed twice): not a referrer, and not a
 * child of an index in the same repository unless it has a tag of its own.
 */
function isArtifact(d: Dialect, set: string): string {
  return `m."repositoryId" IN (${set}) AND m."subject" IS NULL
    AND ((m."repositoryId", m."digest") NOT IN (SELECT p."repositoryId", j.value FROM ${childrenOf(d)} WHERE p."repositoryId" IN (${set}) AND p."mediaType" IN ${INDEX_TYPES_SQL})
      OR EXISTS (SELECT 1 FROM "Tag" t WHERE t."repositoryId" = m."repositoryId" AND t."digest" = m."digest"))`;
}

/**
 * The artifact list in list order, `cols` of each row: from the top, after a row, after an offset.
 * With `excl`, the digests of one list parameter are left out (the untagged index children); without,
 * the statement needs no manifest's digest (an index on (repositoryId, subject, pushedAt) covers it).
 */
function listStatements(d: Dialect, cols: string, excl: boolean) {
  const base = `SELECT ${cols} FROM "Manifest" m WHERE m."repositoryId" = ? AND m."subject" IS NULL${excl ? ` AND NOT (${d.inList('m."digest"', 'text')})` : ''}`;
  return {
    first: `${base}${ART_ORDER} LIMIT ?`,
    // A row value, so the index is entered at the anchor (an OR of the two cases scans from the top).
    after: `${base} AND (m."pushedAt", m."id") < (SELECT a."pushedAt", a."id" FROM "Manifest" a WHERE a."id" = ?)${ART_ORDER} LIMIT ?`,
    offset: `${base}${ART_ORDER} LIMIT ? OFFSET ?`,
  };
}

/** The artifact order is read in chunks of this many ids, other requests running in between. */
const ORDER_CHUNK = 4_096;

export interface ArtifactStoreOptions {
  /** The SQLite file, when known (else found through the client). */
  file?: string;
  /** Ids per chunk of artifactOrder (default ORDER_CHUNK). */
  orderChunk?: number;
}

function statements(d: Dialect) {
  return {
    rows: { excl: listStatements(d, ART_COLS, true), all: listStatements(d, ART_COLS, false) },
    ids: { excl: listStatements(d, 'm."id"', true), all: listStatements(d, 'm."id"', false) },
    repoByName: `SELECT ${REPO_COLS} FROM "Repository" r WHERE r."name" = ?`,
    repoIdsOf: 'SELECT r."id" FROM "Repository" r WHERE r."projectId" = ?',
    nonReferrers: 'SELECT COUNT(*) AS n FROM "Manifest" m WHERE m."repositoryId" = ? AND m."subject" IS NULL',
    // Untagged children of the repository's indexes that are manifests of it (not referrers).
    excludedChildren: `SELECT DISTINCT j.value AS digest FROM ${childrenOf(d)} WHERE p."repositoryId" = ? AND p."mediaType" IN ${INDEX_TYPES_SQL}
      AND EXISTS (SELECT 1 FROM "Manifest" c WHERE c."repositoryId" = p."repositoryId" AND c."digest" = j.value AND c."subject" IS NULL)
      AND NOT EXISTS (SELECT 1 FROM "Tag" t WHERE t."repositoryId" = p."repositoryId" AND t."digest" = j.value)`,
    byIds: `SELECT ${ART_COLS} FROM "Manifest" m WHERE ${d.inList('m."id"', 'int')}`,
    manifest: `SELECT ${ART_COLS} FROM "Manifest" m WHERE m."repositoryId" = ? AND m."digest" = ?`,
    tagDigest: 'SELECT "digest" FROM "Tag" WHERE "repositoryId" = ? AND "name" = ?',
    // PostgreSQL: one index lookup per digest, driven by the list. As `"digest" = ANY(?)` the named
    // statement's generic plan (used from its sixth run) expects a repository to hold a handful of
    // rows and filters every tag (or manifest) of the repository instead (12 ms at 20,000 tags);
    // OFFSET 0 keeps the lookup a subquery, so its plan is the (repositoryId, digest) index whatever
    // the estimate.
    tagsOf:
      d.engine === 'postgresql'
        ? `SELECT t."name", t."digest", t."updatedAt" FROM (SELECT DISTINCT u.v FROM unnest(?::text[]) AS u(v)) l CROSS JOIN LATERAL (SELECT "name", "digest", "updatedAt" FROM "Tag" WHERE "repositoryId" = ? AND "digest" = l.v OFFSET 0) t`
        : `SELECT "name", "digest", "updatedAt" FROM "Tag" WHERE "repositoryId" = ? AND ${d.inList('"digest"', 'text')}`,
    accessoriesOf:
      d.engine === 'postgresql'
        ? `SELECT a."digest", a."subject", a."artifactType", a."size" FROM (SELECT DISTINCT u.v FROM unnest(?::text[]) AS u(v)) l CROSS JOIN LATERAL (SELECT "id", "digest", "subject", "artifactType", "size" FROM "Manifest" WHERE "repositoryId" = ? AND "subject" = l.v OFFSET 0) a ORDER BY a."id"`
        : `SELECT "digest", "subject", "artifactType", "size" FROM "Manifest" WHERE "repositoryId" = ? AND ${d.inList('"subject"', 'text')} ORDER BY "id"`,
    projectArtifacts: `SELECT COUNT(*) AS n FROM "Manifest" m WHERE ${isArtifact(d, 'SELECT r."id" FROM "Repository" r WHERE r."projectId" = ?')}`,
  };
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

function repositoryRow(r: Row): RepositoryRow {
  return {
    id: num(r.id),
    projectId: r.projectId === null ? null : num(r.projectId),
    name: r.name as string,
    description: r.description as string,
    pullCount: num(r.pullCount),
    createdAt: asDate(r.createdAt),
    updatedAt: asDate(r.updatedAt),
  };
}

function artifactRow(r: Row): ArtifactRow {
  return {
    id: num(r.id),
    digest: r.digest as string,
    mediaType: r.mediaType as string,
    configType: (r.configType as string | null) ?? null,
    artifactType: (r.artifactType as string | null) ?? null,
    size: num(r.size),
    pushedAt: asDate(r.pushedAt),
    pulledAt: asDateOrNull(r.pulledAt),
    annotations: (r.annotations as string | null) ?? null,
  };
}

export class ArtifactStore {
  private readonly sql: ListReader;
  private readonly d: Dialect;
  private readonly s: ReturnType<typeof statements>;

  private readonly chunk: number;

  constructor(
    private readonly db: Db,
    opts: ArtifactStoreOptions = {},
  ) {
    this.sql = listReader(db, opts.file);
    this.chunk = opts.orderChunk ?? ORDER_CHUNK;
    this.d = this.sql.dialect;
    this.s = statements(this.d);
  }

  // ---- repositories -------------------------------------------------------------------------

  /** Sets a repository's description; false when there is no such repository. */
  async setDescription(name: string, description: string): Promise<boolean> {
    return (await this.db.repository.updateMany({ where: { name }, data: { description } })).count > 0;
  }

  /** Deletes a repository with its manifests, tags and links (cascades); false when there was none. */
  async deleteRepository(name: string): Promise<boolean> {
    return (await this.db.repository.deleteMany({ where: { name } })).count > 0;
  }

  /**
   * Harbor's /statistics counts: public projects and their repositories; private ones among
   * `privateScope` (null: all); the bytes of every blob when asked.
   */
  async statistics(privateScope: number[] | null, withStorage: boolean): Promise<{ publicProjects: number; publicRepos: number; privateProjects: number; privateRepos: number; storage: number }> {
    const scope = privateScope ? { id: { in: privateScope } } : {};
    const [publicProjects, publicRepos, privateProjects, privateRepos] = await Promise.all([
      this.db.project.count({ where: { public: true } }),
      this.db.repository.count({ where: { project: { public: true } } }),
      this.db.project.count({ where: { ...scope, public: false } }),
      this.db.repository.count({ where: { project: { ...scope, public: false } } }),
    ]);
    const storage = withStorage ? Number((await this.db.blob.aggregate({ _sum: { size: true } }))._sum.size ?? 0) : 0;
    return { publicProjects, publicRepos, privateProjects, privateRepos, storage };
  }

  async repository(name: string): Promise<RepositoryRow | null> {
    const rows = await this.sql.all(this.s.repoByName, [name]);
    return rows.length ? repositoryRow(rows[0]) : null;
  }

  /** Ids of the project's repositories. */
  async repositoryIds(projectId: number): Promise<number[]> {
    return (await this.sql.all(this.s.repoIdsOf, [projectId])).map((r) => num(r.id));
  }

  private repositoryWhere(scope: RepositoryScope): { where: string; args: ReadArg[] } {
    const parts: string[] = [];
    const args: ReadArg[] = [];
    if (scope.projectIds?.length === 1) {
      // Equality, so the (projectId, name) index yields the names in order (an IN list is sorted).
      parts.push('r."projectId" = ?');
      args.push(scope.projectIds[0]);
    } else if (scope.projectIds) {
      parts.push(this.d.inList('r."projectId"', 'int'));
      args.push(this.d.listArg(scope.projectIds));
    }
    if (scope.name) {
      parts.push(`r."name" ${this.d.ilike} ? ESCAPE '\\'`);
      args.push(containsPattern(scope.name));
    }
    return { where: parts.length ? ` WHERE ${parts.join(' AND ')}` : '', args };
  }

  async countRepositories(scope: RepositoryScope): Promise<number> {
    const { where, args } = this.repositoryWhere(scope);
    const rows = await this.sql.all(`SELECT COUNT(*) AS n FROM "Repository" r${where}`, args);
    return num(rows[0]?.n ?? 0);
  }

  /** The position just after `row` in `sort`'s order, for repositoryPage's `after`. */
  repositoryCursor(row: RepositoryRow, sort: RepositorySort): RepositoryCursor {
    const value = sort.by === 'name' ? row.name : sort.by === 'update' ? this.d.date(row.updatedAt) : sort.by === 'pulls' ? row.pullCount : row.id;
    return { value, id: row.id };
  }

  /**
   * A page of repositories in `sort`'s order: after a cursor (keyset: one index range, whatever the
   * depth; the indexes are (name), (projectId, name), (updatedAt, id), (projectId, updatedAt, id),
   * (pullCount, id), (projectId, pullCount, id) and the id itself), or after `offset` rows.
   */
  async repositoryPage(scope: RepositoryScope, sort: RepositorySort, start: { after: RepositoryCursor } | { offset: number }, limit: number): Promise<RepositoryRow[]> {
    const { where, args } = this.repositoryWhere(scope);
    const dir = sort.desc ? 'DESC' : 'ASC';
    const cmp = sort.desc ? '<' : '>';
    const col = sort.by === 'update' ? 'r."updatedAt"' : sort.by === 'pulls' ? 'r."pullCount"' : null;
    let sql = `SELECT ${REPO_COLS} FROM "Repository" r${where}`;
    if ('after' in start) {
      const and = where ? ' AND' : ' WHERE';
      if (sort.by === 'name') {
        sql += `${and} r."name" ${cmp} ?`;
        args.push(start.after.value);
      } else if (col) {
        sql += `${and} (${col}, r."id") ${cmp} (?, ?)`;
        args.push(start.after.value, start.after.id);
      } else {
        sql += `${and} r."id" ${cmp} ?`;
        args.push(start.after.id);
      }
    }
    sql += sort.by === 'name' ? ` ORDER BY r."name" ${dir}` : col ? ` ORDER BY ${col} ${dir}, r."id" ${dir}` : ` ORDER BY r."id" ${dir}`;
    sql += ' LIMIT ?';
    args.push(limit);
    if ('offset' in start && start.offset > 0) {
      sql += ' OFFSET ?';
      args.push(start.offset);
    }
    return (await this.sql.all(sql, args)).map(repositoryRow);
  }

  // ---- artifacts ----------------------------------------------------------------------------

  /**
   * The repository's manifests that are not referrers, counted, and the digests of those among them
   * that are untagged children of its indexes (not artifacts: they show as their index's references).
   */
  async artifactFacts(repositoryId: number): Promise<{ nonReferrers: number; excluded: string[] }> {
    const [counted, excluded] = await Promise.all([this.sql.all(this.s.nonReferrers, [repositoryId]), this.sql.all(this.s.excludedChildren, [repositoryId])]);
    return { nonReferrers: num(counted[0]?.n ?? 0), excluded: excluded.map((r) => r.digest as string) };
  }

  /** A page of the repository's artifacts, newest first: its non-referrers except `excluded`. */
  async artifactPage(repositoryId: number, excluded: string[], start: PageStart, limit: number): Promise<ArtifactRow[]> {
    const st = excluded.length ? this.s.rows.excl : this.s.rows.all;
    const pre: ReadArg[] = excluded.length ? [repositoryId, this.d.listArg(excluded)] : [repositoryId];
    const rows =
      'after' in start
        ? await this.sql.all(st.after, [...pre, start.after, limit])
        : start.offset > 0
          ? await this.sql.all(st.offset, [...pre, limit, start.offset])
          : await this.sql.all(st.first, [...pre, limit]);
    return rows.map(artifactRow);
  }

  /**
   * The ids of every artifact of the repository (its non-referrers except `excluded`), in list
   * order: read in chunks, each from the last id of the one before, yielding in between (a long
   * repository must not hold the event loop for one long statement).
   */
  async artifactOrder(repositoryId: number, excluded: string[]): Promise<Int32Array> {
    const st = excluded.length ? this.s.ids.excl : this.s.ids.all;
    const pre: ReadArg[] = excluded.length ? [repositoryId, this.d.listArg(excluded)] : [repositoryId];
    const ids: number[] = [];
    for (;;) {
      const rows = ids.length ? await this.sql.all(st.after, [...pre, ids[ids.length - 1], this.chunk]) : await this.sql.all(st.first, [...pre, this.chunk]);
      for (const r of rows) ids.push(num(r.id));
      if (rows.length < this.chunk) return Int32Array.from(ids);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** The artifacts with these ids, in the order given (ids not found are left out). */
  async artifactsByIds(ids: ArrayLike<number>): Promise<ArtifactRow[]> {
    if (!ids.length) return [];
    const list = Array.from(ids);
    const rows = new Map((await this.sql.all(this.s.byIds, [this.d.listArg(list)])).map((r) => [num(r.id), r]));
    const out: ArtifactRow[] = [];
    for (const id of list) {
      const r = rows.get(id);
      if (r) out.push(artifactRow(r));
    }
    return out;
  }

  /** A page of the artifacts that match the filter, newest first, and how many match. */
  /** The ids of the artifacts that match the filter, in list order (newest first). */
  async filteredOrder(repositoryId: number, f: ArtifactFilter): Promise<Int32Array> {
    const args: ReadArg[] = [repositoryId, repositoryId];
    let filter = '';
    if (f.digest) {
      filter += ' AND m."digest" = ?';
      args.push(f.digest);
    }
    if (f.tag !== undefined && f.exactTag) {
      filter += ' AND m."digest" IN (SELECT t."digest" FROM "Tag" t WHERE t."repositoryId" = ? AND t."name" = ?)';
      args.push(repositoryId, f.tag);
    } else if (f.tag) {
      filter += ` AND m."digest" IN (SELECT t."digest" FROM "Tag" t WHERE t."repositoryId" = ? AND t."name" ${this.d.ilike} ? ESCAPE '\\')`;
      args.push(repositoryId, containsPattern(f.tag));
    }
    const rows = await this.sql.all(`SELECT m."id" FROM "Manifest" m WHERE ${isArtifact(this.d, '?')}${filter}${ART_ORDER}`, args);
    return Int32Array.from(rows, (r) => num(r.id));
  }

  async manifest(repositoryId: number, digest: string): Promise<ArtifactRow | null> {
    const rows = await this.sql.all(this.s.manifest, [repositoryId, digest]);
    return rows.length ? artifactRow(rows[0]) : null;
  }

  async tagDigest(repositoryId: number, tag: string): Promise<string | null> {
    const rows = await this.sql.all(this.s.tagDigest, [repositoryId, tag]);
    return rows.length ? (rows[0].digest as string) : null;
  }

  /** The arguments of tagsOf / accessoriesOf: on PostgreSQL the list comes first (it drives the lookups). */
  private listFirst(repositoryId: number, values: string[]): ReadArg[] {
    return this.d.engine === 'postgresql' ? [this.d.listArg(values), repositoryId] : [repositoryId, this.d.listArg(values)];
  }

  /** Tags of the repository pointing at any of the digests (unordered). */
  async tagsOf(repositoryId: number, digests: string[]): Promise<{ name: string; digest: string; updatedAt: Date }[]> {
    if (!digests.length) return [];
    const rows = await this.sql.all(this.s.tagsOf, this.listFirst(repositoryId, digests));
    return rows.map((r) => ({ name: r.name as string, digest: r.digest as string, updatedAt: asDate(r.updatedAt) }));
  }

  /** Referrers in the repository of any of the digests, oldest first. */
  async accessoriesOf(repositoryId: number, subjects: string[]): Promise<{ digest: string; subject: string; artifactType: string | null; size: number }[]> {
    if (!subjects.length) return [];
    const rows = await this.sql.all(this.s.accessoriesOf, this.listFirst(repositoryId, subjects));
    return rows.map((r) => ({ digest: r.digest as string, subject: r.subject as string, artifactType: (r.artifactType as string | null) ?? null, size: num(r.size) }));
  }

  /** Artifacts in all the project's repositories, by the same rule as the lists. */
  async projectArtifactCount(projectId: number): Promise<number> {
    const rows = await this.sql.all(this.s.projectArtifacts, [projectId, projectId]);
    return num(rows[0]?.n ?? 0);
  }
}
