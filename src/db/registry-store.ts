// Registry metadata in the database: repositories, blob links, manifests, tags, referrers.
// Plain data in and out; caching and rules live in src/services/registry-service.ts.
import type { Db } from './client.ts';

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
}

export class RegistryStore {
  constructor(private readonly db: Db) {}

  async findRepositoryId(name: string): Promise<number | null> {
    const r = await this.db.repository.findUnique({ where: { name }, select: { id: true } });
    return r?.id ?? null;
  }

  async ensureRepository(name: string, projectId: number | null): Promise<number> {
    const r = await this.db.repository.upsert({ where: { name }, create: { name, projectId }, update: {}, select: { id: true } });
    return r.id;
  }

  /** Size of a blob if it is linked into the repository. */
  async linkedBlobSize(repositoryId: number, digest: string): Promise<number | null> {
    const l = await this.db.blobLink.findUnique({ where: { repositoryId_digest: { repositoryId, digest } }, select: { blob: { select: { size: true } } } });
    return l ? Number(l.blob.size) : null;
  }

  /** Records a stored blob and links it into a repository (idempotent). */
  async linkBlob(repositoryId: number, digest: string, size: number): Promise<void> {
    await this.db.$transaction([
      this.db.blob.upsert({ where: { digest }, create: { digest, size: BigInt(size) }, update: {} }),
      this.db.blobLink.upsert({ where: { repositoryId_digest: { repositoryId, digest } }, create: { repositoryId, digest }, update: {} }),
    ]);
  }

  async unlinkBlob(repositoryId: number, digest: string): Promise<boolean> {
    const r = await this.db.blobLink.deleteMany({ where: { repositoryId, digest } });
    return r.count > 0;
  }

  /** Names of repositories holding a link to the blob (for automatic mounts), at most `limit`. */
  async repositoriesWithBlob(digest: string, limit = 50): Promise<{ name: string; size: number }[]> {
    const rows = await this.db.blobLink.findMany({ where: { digest }, take: limit, select: { repository: { select: { name: true } }, blob: { select: { size: true } } } });
    return rows.map((r) => ({ name: r.repository.name, size: Number(r.blob.size) }));
  }

  /** Which of the digests are linked into the repository. */
  async linkedDigests(repositoryId: number, digests: string[]): Promise<Set<string>> {
    if (!digests.length) return new Set();
    const rows = await this.db.blobLink.findMany({ where: { repositoryId, digest: { in: digests } }, select: { digest: true } });
    return new Set(rows.map((r) => r.digest));
  }

  async manifestDigests(repositoryId: number, digests: string[]): Promise<Set<string>> {
    if (!digests.length) return new Set();
    const rows = await this.db.manifest.findMany({ where: { repositoryId, digest: { in: digests } }, select: { digest: true } });
    return new Set(rows.map((r) => r.digest));
  }

  /** Stores a manifest, links its bytes as a blob and points the tag at it, in one transaction. */
  async putManifest(repositoryId: number, m: NewManifest, tag: string | null): Promise<void> {
    const data = {
      mediaType: m.mediaType,
      artifactType: m.artifactType,
      configType: m.configType,
      size: m.size,
      subject: m.subject,
      annotations: m.annotations,
      refs: JSON.stringify(m.refs),
    };
    const ops = [
      this.db.blob.upsert({ where: { digest: m.digest }, create: { digest: m.digest, size: BigInt(m.size) }, update: {} }),
      this.db.blobLink.upsert({ where: { repositoryId_digest: { repositoryId, digest: m.digest } }, create: { repositoryId, digest: m.digest }, update: {} }),
      this.db.manifest.upsert({ where: { repositoryId_digest: { repositoryId, digest: m.digest } }, create: { repositoryId, digest: m.digest, ...data }, update: {} }),
      this.db.repository.update({ where: { id: repositoryId }, data: { updatedAt: new Date() } }),
    ];
    if (tag !== null) {
      ops.push(this.db.tag.upsert({ where: { repositoryId_name: { repositoryId, name: tag } }, create: { repositoryId, name: tag, digest: m.digest }, update: { digest: m.digest } }) as never);
    }
    await this.db.$transaction(ops as never);
  }

  async findManifest(repositoryId: number, digest: string): Promise<ManifestRecord | null> {
    const m = await this.db.manifest.findUnique({ where: { repositoryId_digest: { repositoryId, digest } } });
    return m ? { digest: m.digest, mediaType: m.mediaType, artifactType: m.artifactType, size: m.size, subject: m.subject, annotations: m.annotations, refs: JSON.parse(m.refs) } : null;
  }

  async findTag(repositoryId: number, name: string): Promise<string | null> {
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
    const rows = await this.db.repository.findMany({
      where: { ...(last !== undefined ? { name: { gt: last } } : {}), ...(projectIds ? { projectId: { in: projectIds } } : {}) },
      orderBy: { name: 'asc' },
      take: limit,
      select: { name: true },
    });
    return rows.map((r) => r.name);
  }

  async referrers(repositoryId: number, subject: string, artifactType?: string): Promise<ManifestRecord[]> {
    const rows = await this.db.manifest.findMany({
      where: { repositoryId, subject, ...(artifactType ? { artifactType } : {}) },
      orderBy: { id: 'asc' },
    });
    return rows.map((m) => ({ digest: m.digest, mediaType: m.mediaType, artifactType: m.artifactType, size: m.size, subject: m.subject, annotations: m.annotations, refs: [] }));
  }

  async touchPull(repositoryId: number, digest: string): Promise<void> {
    await this.db.$transaction([
      this.db.manifest.updateMany({ where: { repositoryId, digest }, data: { pulledAt: new Date() } }),
      this.db.repository.update({ where: { id: repositoryId }, data: { pullCount: { increment: 1 } } }),
    ]);
  }
}
