// Repositories and artifacts as the management API and the UI see them (Harbor's model): an
// artifact is a manifest that is not a referrer and not an untagged child of an index in the same
// repository (a child with its own tag, app:1.0-amd64, is one too), with its tags,
// size, platforms and accessories (referrers). Reads go to the database with indexed paging;
// changes go through the RegistryService so its caches stay right.
import { dialectOf, type Db } from '../db/client.ts';
import type { Dialect } from '../db/dialect.ts';
import { parseDigest } from '../lib/digest.ts';
import { AppError } from '../lib/errors.ts';
import { Lru } from '../lib/lru.ts';
import { MediaTypes } from '../lib/manifest.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { RegistryService } from './registry-service.ts';

const INDEX_TYPES = [MediaTypes.ociIndex, MediaTypes.dockerList];
const IMAGE_CONFIGS = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

export interface RepositoryRecord {
  id: number;
  projectId: number | null;
  name: string;
  description: string;
  artifactCount: number;
  pullCount: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ArtifactRecord {
  id: number;
  repositoryId: number;
  digest: string;
  mediaType: string;
  configType: string | null;
  artifactType: string | null;
  type: string;
  size: number;
  pushedAt: Date;
  pulledAt: Date | null;
  annotations: Record<string, string> | null;
  tags: { name: string; pushedAt: Date }[];
  references: { digest: string; platform: Record<string, unknown> | null; size: number }[];
  accessories: { digest: string; type: string; artifactType: string | null; size: number }[];
  extra: Record<string, unknown>;
}

function artifactKind(mediaType: string, configType: string | null, artifactType: string | null): string {
  if (INDEX_TYPES.includes(mediaType as never)) return 'IMAGE';
  if (configType && IMAGE_CONFIGS.has(configType)) return 'IMAGE';
  if (configType === 'application/vnd.cncf.helm.config.v1+json') return 'CHART';
  if (artifactType?.includes('cosign') || artifactType === 'application/vnd.dev.cosign.artifact.sig.v1+json') return 'SIGNATURE';
  if (artifactType?.includes('sbom') || artifactType?.includes('spdx') || artifactType?.includes('cyclonedx')) return 'SBOM';
  return 'UNKNOWN';
}

/** Harbor's accessory types: signature.cosign, signature.notation, sbom.harbor, subject.accessory. */
function accessoryKind(artifactType: string | null): string {
  const a = artifactType ?? '';
  if (a.includes('notary') || a.includes('notation')) return 'signature.notation';
  if (a.includes('cosign') || a.includes('signature')) return 'signature.cosign';
  if (a.includes('sbom') || a.includes('spdx') || a.includes('cyclonedx')) return 'sbom.harbor';
  return 'subject.accessory';
}

/**
 * The one rule for "is an artifact", as SQL over "Manifest" m, for the repositories `set` names (a
 * list of placeholders or a subquery; its parameters are passed twice): not a referrer, and not a
 * child of an index in the same repository unless it has a tag of its own. The children set is an
 * uncorrelated subquery the database builds once; only manifests in it look up their tags (indexed).
 * Written with `?` placeholders: run it through the dialect's text().
 */
function isArtifact(d: Dialect, set: string): string {
  const children = childrenOf(d);
  return `m."repositoryId" IN (${set}) AND m."subject" IS NULL
    AND ((m."repositoryId", m."digest") NOT IN (SELECT p."repositoryId", j.value FROM ${children} WHERE p."repositoryId" IN (${set}) AND p."mediaType" IN ('${INDEX_TYPES.join("','")}'))
      OR EXISTS (SELECT 1 FROM "Tag" t WHERE t."repositoryId" = m."repositoryId" AND t."digest" = m."digest"))`;
}

/** Manifests `p` joined with the digests they reference, `j.value` (the engine's JSON array reader). */
function childrenOf(d: Dialect): string {
  return d.engine === 'postgresql' ? `"Manifest" p CROSS JOIN LATERAL jsonb_array_elements_text(p."refs"::jsonb) AS j(value)` : `"Manifest" p, json_each(p."refs") j`;
}

/**
 * What a repository's artifact list needs beyond its rows, kept while the repository's content is
 * unchanged (RegistryService.contentGen): how many artifacts it has, and which of its manifests are
 * not artifacts although not referrers (untagged children of its indexes; usually few).
 */
interface RepoFacts {
  gen: number;
  count: number;
  excluded: string[];
}

/** Artifacts whose pages are cached as keys: pages past this many rows seek from a remembered row. */
const ANCHORS_MAX = 20_000;

export class ArtifactsService {
  private facts = new Lru<number, RepoFacts>(20_000, 4 * 1024 * 1024, (f) => 64 + f.excluded.length * 90);
  /**
   * repositoryId, content generation, page size, page -> the id of the artifact just before that
   * page (in list order), so a deep page (the next one of a walk, or one asked again) seeks by the
   * sort key from that row instead of skipping every row before it.
   */
  private anchors = new Lru<string, number>(ANCHORS_MAX);
  /** Repository lists: total by scope, and the name before a page (see listRepositories). */
  private repoTotals = new Lru<string, number>(1_000);
  private repoAnchors = new Lru<string, string>(ANCHORS_MAX);

  /**
   * config digest -> the image facts the list shows (extra_attrs), parsed once: content-addressed,
   * so never stale, and a page of 15 artifacts no longer opens 15 files.
   */
  private extras = new Lru<string, Record<string, unknown>>(10_000, 4 * 1024 * 1024, (e) => 200 + JSON.stringify(e.config ?? null).length);

  constructor(private readonly deps: { db: Db; blobs: BlobStore; registry: RegistryService }) {}

  private async configExtra(digest: string): Promise<Record<string, unknown> | null> {
    const hit = this.extras.get(digest);
    if (hit) return hit;
    const parsed = parseDigest(digest);
    const cfg = parsed && (await this.deps.blobs.getBytes(parsed));
    if (!cfg) return null;
    const c = JSON.parse(cfg.toString('utf8')) as Record<string, unknown>;
    const extra = { architecture: c.architecture, os: c.os, created: c.created, author: c.author, config: c.config };
    this.extras.set(digest, extra);
    return extra;
  }

  /** The repository's artifact count and non-artifact children, from the cache or two indexed queries. */
  private async repoFacts(repositoryId: number): Promise<RepoFacts> {
    const gen = this.deps.registry.contentGen(repositoryId);
    const hit = this.facts.get(repositoryId);
    if (hit && hit.gen === gen) return hit;
    const d = dialectOf(this.deps.db);
    const [counted, excludedRows] = await Promise.all([
      this.deps.db.$queryRawUnsafe<{ n: bigint | number }[]>(d.text('SELECT COUNT(*) AS n FROM "Manifest" m WHERE m."repositoryId" = ? AND m."subject" IS NULL'), repositoryId),
      this.deps.db.$queryRawUnsafe<{ digest: string }[]>(
        d.text(`SELECT DISTINCT j.value AS digest FROM ${childrenOf(d)} WHERE p."repositoryId" = ? AND p."mediaType" IN ('${INDEX_TYPES.join("','")}')
          AND EXISTS (SELECT 1 FROM "Manifest" c WHERE c."repositoryId" = p."repositoryId" AND c."digest" = j.value AND c."subject" IS NULL)
          AND NOT EXISTS (SELECT 1 FROM "Tag" t WHERE t."repositoryId" = p."repositoryId" AND t."digest" = j.value)`),
        repositoryId,
      ),
    ]);
    const excluded = excludedRows.map((r) => r.digest);
    const f = { gen, count: Number(counted[0]?.n ?? 0) - excluded.length, excluded };
    // A change while this was read may be missing from it: use it once, keep it not.
    if (this.deps.registry.contentGen(repositoryId) === gen) this.facts.set(repositoryId, f);
    return f;
  }

  /**
   * One page of the repository's artifacts (all of them, no filter), newest first: read in index
   * order, from the row before the page when it is known (the previous page was served, or this
   * one before), else with an OFFSET that also yields that row for next time.
   */
  private async artifactPage(repositoryId: number, f: RepoFacts, page: number, pageSize: number): Promise<number[]> {
    const d = dialectOf(this.deps.db);
    const excl = f.excluded.length ? ` AND NOT (${d.inList('m."digest"', 'text')})` : '';
    const exclArgs = f.excluded.length ? [d.listArg(f.excluded)] : [];
    const base = `SELECT m."id" AS id FROM "Manifest" m WHERE m."repositoryId" = ? AND m."subject" IS NULL${excl}`;
    const order = ' ORDER BY m."pushedAt" DESC, m."id" DESC';
    const key = (p: number) => `${repositoryId}:${f.gen}:${pageSize}:${p}`;
    const offset = (page - 1) * pageSize;
    const anchor = page > 1 ? this.anchors.get(key(page)) : undefined;
    let ids: number[] | null = null;
    if (anchor !== undefined) {
      // A row value, so the index is entered at the anchor (an OR of the two cases scans from the top).
      const seek = ` AND (m."pushedAt", m."id") < (SELECT a."pushedAt", a."id" FROM "Manifest" a WHERE a."id" = ?)`;
      const rows = await this.deps.db.$queryRawUnsafe<{ id: bigint | number }[]>(d.text(`${base}${seek}${order} LIMIT ?`), repositoryId, ...exclArgs, anchor, pageSize);
      ids = rows.map((r) => Number(r.id));
      // The anchor row gone without a generation change (it should not be): page by offset instead.
      if (ids.length < pageSize && offset + ids.length < f.count) ids = null;
    }
    if (ids === null) {
      const from = Math.max(0, offset - 1);
      const rows = await this.deps.db.$queryRawUnsafe<{ id: bigint | number }[]>(d.text(`${base}${order} LIMIT ? OFFSET ?`), repositoryId, ...exclArgs, pageSize + (offset > 0 ? 1 : 0), from);
      ids = rows.map((r) => Number(r.id));
      if (offset > 0) {
        const before = ids.shift();
        if (before !== undefined) this.anchors.set(key(page), before);
      }
    }
    if (ids.length === pageSize) this.anchors.set(key(page + 1), ids[ids.length - 1]);
    return ids;
  }

  // ---- repositories -------------------------------------------------------------------------

  async listRepositories(q: { projectIds: number[] | null; name?: string; page: number; pageSize: number; sort?: string }): Promise<{ total: number; items: RepositoryRecord[] }> {
    const where = {
      ...(q.projectIds ? { projectId: { in: q.projectIds } } : {}),
      ...(q.name ? { name: dialectOf(this.deps.db).contains(q.name) } : {}),
    };
    const byName = q.sort !== '-update_time' && q.sort !== '-pull_count';
    const orderBy = q.sort === '-update_time' ? { updatedAt: 'desc' as const } : q.sort === '-pull_count' ? { pullCount: 'desc' as const } : { name: 'asc' as const };
    // The total and, by name, the name before each page are kept while no repository is created or
    // deleted: a deep page seeks by name from there instead of skipping every repository before it.
    const gen = this.deps.registry.repositoriesGen();
    const scope = `${gen}|${q.projectIds?.join(',') ?? '*'}|${q.name ?? ''}`;
    const cacheable = scope.length <= 2_000;
    const anchorKey = (p: number) => `${scope}|${q.pageSize}|${p}`;
    const offset = (q.page - 1) * q.pageSize;
    const anchor = cacheable && byName && q.page > 1 ? this.repoAnchors.get(anchorKey(q.page)) : undefined;
    const cachedTotal = cacheable ? this.repoTotals.get(scope) : undefined;
    const [total, found] = await Promise.all([
      cachedTotal ?? this.deps.db.repository.count({ where }),
      anchor !== undefined
        ? this.deps.db.repository.findMany({ where: { ...where, name: { ...where.name, gt: anchor } }, orderBy, take: q.pageSize })
        : this.deps.db.repository.findMany({ where, orderBy, skip: byName && offset > 0 ? offset - 1 : offset, take: q.pageSize + (byName && offset > 0 ? 1 : 0) }),
    ]);
    const rows = anchor === undefined && byName && offset > 0 ? found.slice(1) : found;
    if (cacheable && this.deps.registry.repositoriesGen() === gen) {
      if (cachedTotal === undefined) this.repoTotals.set(scope, total);
      if (byName && anchor === undefined && offset > 0 && found.length) this.repoAnchors.set(anchorKey(q.page), found[0].name);
      if (byName && rows.length === q.pageSize) this.repoAnchors.set(anchorKey(q.page + 1), rows[rows.length - 1].name);
    }
    const counts = await this.artifactCounts(rows.map((r) => r.id));
    return { total, items: rows.map((r) => ({ id: r.id, projectId: r.projectId, name: r.name, description: r.description, artifactCount: counts.get(r.id) ?? 0, pullCount: r.pullCount, createdAt: r.createdAt, updatedAt: r.updatedAt })) };
  }

  /** A repository with its artifact count (the number its artifact list pages through). */
  async getRepository(name: string): Promise<RepositoryRecord | null> {
    const r = await this.deps.db.repository.findUnique({ where: { name } });
    if (!r) return null;
    const counts = await this.artifactCounts([r.id]);
    return { id: r.id, projectId: r.projectId, name: r.name, description: r.description, artifactCount: counts.get(r.id) ?? 0, pullCount: r.pullCount, createdAt: r.createdAt, updatedAt: r.updatedAt };
  }

  /** A repository's id and project, without counting anything (for routes that only need to know it exists). */
  async findRepository(name: string): Promise<{ id: number; projectId: number | null; name: string } | null> {
    return this.deps.db.repository.findUnique({ where: { name }, select: { id: true, projectId: true, name: true } });
  }

  /** Artifact counts of the given repositories, by the same rule as listArtifacts, in one query. */
  private async artifactCounts(repositoryIds: number[]): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const id of repositoryIds) out.set(id, (await this.repoFacts(id)).count);
    return out;
  }

  async updateRepository(name: string, description: string): Promise<void> {
    const n = await this.deps.db.repository.updateMany({ where: { name }, data: { description } });
    if (!n.count) throw new AppError('NOT_FOUND', undefined, { message: 'repository not found' });
  }

  /** Deletes a repository with all its artifacts and tags (blob bytes stay for garbage collection). */
  async deleteRepository(name: string): Promise<void> {
    const n = await this.deps.db.repository.deleteMany({ where: { name } });
    await this.deps.registry.forgetRepository(name);
    if (!n.count) throw new AppError('NOT_FOUND', undefined, { message: 'repository not found' });
  }

  // ---- artifacts ----------------------------------------------------------------------------

  /**
   * Artifacts of a repository, newest first: manifests that are neither referrers (they show as
   * accessories) nor untagged children of an index in the same repository (they show as its
   * references). A child with a tag of its own (app:1.0-amd64 next to the index app:1.0) is an
   * artifact too. One indexed query; the children set is built once by SQLite, whatever the
   * repository's size, and only children look up their tags.
   */
  async listArtifacts(repositoryId: number, q: { tag?: string; exactTag?: boolean; digest?: string; page: number; pageSize: number; withAccessories: boolean }): Promise<{ total: number; items: ArtifactRecord[] }> {
    const d = dialectOf(this.deps.db);
    const params: unknown[] = [repositoryId, repositoryId];
    let filter = '';
    if (q.digest) {
      filter += ' AND m."digest" = ?';
      params.push(q.digest);
    }
    if (q.tag !== undefined && q.exactTag) {
      filter += ' AND m."digest" IN (SELECT t."digest" FROM "Tag" t WHERE t."repositoryId" = ? AND t."name" = ?)';
      params.push(repositoryId, q.tag);
    } else if (q.tag) {
      filter += ` AND m."digest" IN (SELECT t."digest" FROM "Tag" t WHERE t."repositoryId" = ? AND t."name" ${d.ilike} ? ESCAPE '\\')`;
      params.push(repositoryId, `%${q.tag.replace(/[\\%_]/g, (c) => '\\' + c)}%`);
    }
    if (!filter) {
      // The whole list: its count is cached, and a page is read in index order.
      const f = await this.repoFacts(repositoryId);
      const ids = await this.artifactPage(repositoryId, f, q.page, q.pageSize);
      const rows = await this.deps.db.manifest.findMany({ where: { id: { in: ids } } });
      const at = new Map(ids.map((id, i) => [id, i]));
      rows.sort((a, b) => at.get(a.id)! - at.get(b.id)!);
      return { total: f.count, items: await this.describe(repositoryId, rows, q.withAccessories) };
    }
    const base = `FROM "Manifest" m WHERE ${isArtifact(d, '?')}${filter}`;
    const [countRows, idRows] = await Promise.all([
      this.deps.db.$queryRawUnsafe<{ n: bigint | number }[]>(d.text(`SELECT COUNT(*) AS n ${base}`), ...params),
      this.deps.db.$queryRawUnsafe<{ id: bigint | number }[]>(d.text(`SELECT m."id" AS id ${base} ORDER BY m."pushedAt" DESC, m."id" DESC LIMIT ? OFFSET ?`), ...params, q.pageSize, (q.page - 1) * q.pageSize),
    ]);
    const ids = idRows.map((r) => Number(r.id));
    const rows = await this.deps.db.manifest.findMany({ where: { id: { in: ids } } });
    rows.sort((a, b) => ids.indexOf(a.id) - ids.indexOf(b.id));
    return { total: Number(countRows[0]?.n ?? 0), items: await this.describe(repositoryId, rows, q.withAccessories) };
  }

  async getArtifact(repositoryId: number, reference: string): Promise<ArtifactRecord | null> {
    let digest = reference;
    if (!reference.includes(':')) {
      const t = await this.deps.db.tag.findUnique({ where: { repositoryId_name: { repositoryId, name: reference } }, select: { digest: true } });
      if (!t) return null;
      digest = t.digest;
    }
    const m = await this.deps.db.manifest.findUnique({ where: { repositoryId_digest: { repositoryId, digest } } });
    if (!m) return null;
    return (await this.describe(repositoryId, [m], true))[0];
  }

  private async describe(
    repositoryId: number,
    rows: { id: number; digest: string; mediaType: string; configType: string | null; artifactType: string | null; size: number; pushedAt: Date; pulledAt: Date | null; annotations: string | null; refs: string }[],
    withAccessories: boolean,
  ): Promise<ArtifactRecord[]> {
    const digests = rows.map((r) => r.digest);
    const [tags, accessories] = await Promise.all([
      // Sorted here: with ORDER BY name the database walks every tag of the repository by its name
      // index (3.4 ms at 20,000 tags) instead of looking up these digests in the digest index.
      this.deps.db.tag
        .findMany({ where: { repositoryId, digest: { in: digests } }, select: { name: true, digest: true, updatedAt: true } })
        .then((ts) => ts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))),
      withAccessories ? this.deps.db.manifest.findMany({ where: { repositoryId, subject: { in: digests } }, select: { digest: true, subject: true, artifactType: true, size: true } }) : Promise.resolve([]),
    ]);
    const out: ArtifactRecord[] = [];
    for (const r of rows) {
      const bytes = await this.deps.registry.manifestBytes(r.digest);
      let size = r.size;
      const references: ArtifactRecord['references'] = [];
      let extra: Record<string, unknown> = {};
      if (bytes) {
        const m = JSON.parse(bytes.toString('utf8')) as { config?: { size: number; digest: string }; layers?: { size: number }[]; manifests?: { digest: string; size: number; platform?: Record<string, unknown> }[] };
        if (m.manifests) {
          // An index weighs what its images weigh: each child manifest with its config and layers.
          for (const c of m.manifests) {
            references.push({ digest: c.digest, platform: c.platform ?? null, size: c.size });
            size += c.size;
            const child = await this.deps.registry.manifestBytes(c.digest);
            if (child) {
              const cm = JSON.parse(child.toString('utf8')) as { config?: { size: number }; layers?: { size: number }[] };
              size += (cm.config?.size ?? 0) + (cm.layers ?? []).reduce((a, l) => a + (l.size ?? 0), 0);
            }
          }
        } else {
          size += (m.config?.size ?? 0) + (m.layers ?? []).reduce((a, l) => a + (l.size ?? 0), 0);
          if (m.config && r.configType && IMAGE_CONFIGS.has(r.configType) && m.config.size < 1024 * 1024) {
            extra = (await this.configExtra(m.config.digest)) ?? {};
          }
        }
      }
      out.push({
        id: r.id,
        repositoryId,
        digest: r.digest,
        mediaType: r.mediaType,
        configType: r.configType,
        artifactType: r.artifactType,
        type: artifactKind(r.mediaType, r.configType, r.artifactType),
        size,
        pushedAt: r.pushedAt,
        pulledAt: r.pulledAt,
        annotations: r.annotations ? JSON.parse(r.annotations) : null,
        tags: tags.filter((t) => t.digest === r.digest).map((t) => ({ name: t.name, pushedAt: t.updatedAt })),
        references,
        accessories: accessories.filter((a) => a.subject === r.digest).map((a) => ({ digest: a.digest, type: accessoryKind(a.artifactType), artifactType: a.artifactType, size: a.size })),
        extra,
      });
    }
    return out;
  }

  /** Points a new tag at an existing artifact. */
  async addTag(repository: string, reference: string, tag: string): Promise<void> {
    const m = await this.deps.registry.getManifest(repository, reference).catch(() => null);
    if (!m) throw new AppError('NOT_FOUND', undefined, { message: 'artifact not found' });
    const repoId = (await this.findRepository(repository))!.id;
    if (await this.deps.db.tag.findUnique({ where: { repositoryId_name: { repositoryId: repoId, name: tag } } })) throw new AppError('CONFLICT', undefined, { message: `tag ${tag} already exists` });
    await this.deps.registry.putManifest(repository, tag, m.mediaType, m.bytes);
  }

  async deleteTag(repository: string, tag: string): Promise<void> {
    await this.deps.registry.deleteManifest(repository, tag).catch((e) => {
      if (e instanceof AppError && e.code === 'MANIFEST_UNKNOWN') throw new AppError('NOT_FOUND', undefined, { message: 'tag not found' });
      throw e;
    });
  }

  async deleteArtifact(repository: string, reference: string): Promise<void> {
    let digest = reference;
    if (!reference.includes(':')) {
      const m = await this.deps.registry.getManifest(repository, reference).catch(() => null);
      if (!m) throw new AppError('NOT_FOUND', undefined, { message: 'artifact not found' });
      digest = m.digest;
    }
    await this.deps.registry.deleteManifest(repository, digest).catch((e) => {
      if (e instanceof AppError && e.code === 'MANIFEST_UNKNOWN') throw new AppError('NOT_FOUND', undefined, { message: 'artifact not found' });
      throw e;
    });
  }

  /**
   * Counts for /statistics, as Harbor makes them: public projects and their repositories for anyone;
   * private projects and repositories among `privateScope` (null: all of them, for system admins);
   * storage only when asked (system admins).
   */
  async statistics(privateScope: number[] | null, withStorage: boolean): Promise<{ publicProjects: number; publicRepos: number; privateProjects: number; privateRepos: number; storage: number }> {
    const scope = privateScope ? { id: { in: privateScope } } : {};
    const [publicProjects, publicRepos, privateProjects, privateRepos] = await Promise.all([
      this.deps.db.project.count({ where: { public: true } }),
      this.deps.db.repository.count({ where: { project: { public: true } } }),
      this.deps.db.project.count({ where: { ...scope, public: false } }),
      this.deps.db.repository.count({ where: { project: { ...scope, public: false } } }),
    ]);
    const storage = withStorage ? Number((await this.deps.db.blob.aggregate({ _sum: { size: true } }))._sum.size ?? 0) : 0;
    return { publicProjects, publicRepos, privateProjects, privateRepos, storage };
  }

  /** A project's artifact count: the sum of its repositories' counts, in one query. */
  async projectArtifactCount(projectId: number): Promise<number> {
    const set = 'SELECT r."id" FROM "Repository" r WHERE r."projectId" = ?';
    const d = dialectOf(this.deps.db);
    const rows = await this.deps.db.$queryRawUnsafe<{ n: bigint | number }[]>(d.text(`SELECT COUNT(*) AS n FROM "Manifest" m WHERE ${isArtifact(d, set)}`), projectId, projectId);
    return Number(rows[0]?.n ?? 0);
  }
}
