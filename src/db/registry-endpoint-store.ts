// Registry endpoints (the other registries Berth pulls from and replicates to): their rows, and
// which projects use one as their proxy-cache upstream. The credential's secret arrives here
// already sealed (src/lib/secret-box.ts) and leaves sealed: the store never sees it in plain text.
import type { Db } from './client.ts';
import { nameContains } from './search.ts';
import { conflictOnDuplicate } from './unique.ts';

export interface RegistryEndpointRow {
  id: number;
  name: string;
  type: string;
  url: string;
  description: string;
  /** "basic", or "" for anonymous access. */
  credentialType: string;
  accessKey: string;
  /** Sealed ("enc:v1:…"), or "" when there is none. */
  accessSecret: string;
  insecure: boolean;
  caCertificate: string | null;
  /** healthy, unhealthy or unknown (the last ping's outcome). */
  status: string;
  createdAt: Date;
  updatedAt: Date;
}

export type RegistryEndpointFields = Omit<RegistryEndpointRow, 'id' | 'createdAt' | 'updatedAt'>;

export interface RegistryEndpointFilter {
  /** Exact name, or a case-insensitive part of it. */
  name?: { exact?: string; fuzzy?: string };
  type?: string;
  url?: { exact?: string; fuzzy?: string };
}

export class RegistryEndpointStore {
  constructor(private readonly db: Db) {}

  private async where(f: RegistryEndpointFilter): Promise<Record<string, unknown>> {
    const match = async (column: 'name' | 'url', m?: { exact?: string; fuzzy?: string }) => (!m ? [] : [m.exact !== undefined ? { [column]: m.exact } : await nameContains(this.db, 'Registry', column, m.fuzzy ?? '')]);
    return { AND: [...(await match('name', f.name)), ...(await match('url', f.url)), ...(f.type ? [{ type: f.type }] : [])] };
  }

  /** One page, by id (or by `sort`: name, -name, creation_time, -creation_time…), and the total. */
  async list(f: RegistryEndpointFilter, page: number, pageSize: number, sort: { field: 'id' | 'name' | 'createdAt' | 'updatedAt'; desc: boolean } = { field: 'id', desc: false }): Promise<{ total: number; items: RegistryEndpointRow[] }> {
    const where = await this.where(f);
    const [total, items] = await Promise.all([
      this.db.registry.count({ where }),
      this.db.registry.findMany({ where, orderBy: [{ [sort.field]: sort.desc ? 'desc' : 'asc' }, { id: 'asc' }], skip: (page - 1) * pageSize, take: pageSize }),
    ]);
    return { total, items };
  }

  get(id: number): Promise<RegistryEndpointRow | null> {
    return this.db.registry.findUnique({ where: { id } });
  }

  /** Creates the row; CONFLICT when the name is taken. */
  async create(fields: RegistryEndpointFields): Promise<number> {
    const row = await conflictOnDuplicate(this.db.registry.create({ data: fields, select: { id: true } }), `a registry named "${fields.name}" already exists`);
    return row.id;
  }

  /** Changes the row; CONFLICT when the new name is taken; false when there is no such row. */
  async update(id: number, fields: Partial<RegistryEndpointFields>): Promise<boolean> {
    const n = await conflictOnDuplicate(this.db.registry.updateMany({ where: { id }, data: fields }), `a registry named "${fields.name ?? ''}" already exists`);
    return n.count > 0;
  }

  async setStatus(id: number, status: string): Promise<void> {
    await this.db.registry.updateMany({ where: { id }, data: { status } });
  }

  /** Deletes the row unless a project or a replication policy uses it; what stood in the way otherwise. */
  async delete(id: number): Promise<{ deleted: boolean; usedBy: string[]; policies: string[] }> {
    return this.db.$transaction(async (tx) => {
      const usedBy = (await tx.project.findMany({ where: { registryId: id }, select: { name: true }, orderBy: { name: 'asc' }, take: 10 })).map((p) => p.name);
      const policies = (await tx.replicationPolicy.findMany({ where: { OR: [{ srcRegistryId: id }, { destRegistryId: id }] }, select: { name: true }, orderBy: { name: 'asc' }, take: 10 })).map((p) => p.name);
      if (usedBy.length || policies.length) return { deleted: false, usedBy, policies };
      const n = await tx.registry.deleteMany({ where: { id } });
      return { deleted: n.count > 0, usedBy, policies };
    });
  }

  /** Names of projects (at most 10) that use the registry as their upstream. */
  async projectsUsing(id: number): Promise<string[]> {
    return (await this.db.project.findMany({ where: { registryId: id }, select: { name: true }, orderBy: { name: 'asc' }, take: 10 })).map((p) => p.name);
  }
}
