// Immutable tag rules (table "ImmutableRule"), Harbor's per-project rules that make matching tags
// impossible to overwrite or delete: the only place their SQL lives. Selectors are kept as the JSON
// text of Harbor's API; parsing, validation and matching are the service's business
// (src/services/immutable-tags.ts).
import type { Db } from './client.ts';

export interface ImmutableRuleRow {
  id: number;
  projectId: number;
  priority: number;
  disabled: boolean;
  /** JSON: [{kind, decoration, pattern, extras}]. */
  tagSelectors: string;
  /** JSON: {"repository": [{kind, decoration, pattern}]}. */
  scopeSelectors: string;
  createdAt: Date;
  updatedAt: Date;
}

export type ImmutableRuleFields = Pick<ImmutableRuleRow, 'priority' | 'disabled' | 'tagSelectors' | 'scopeSelectors'>;

export class ImmutableRuleStore {
  constructor(private readonly db: Db) {}

  /** One page of a project's rules, oldest first, and their total. */
  async list(projectId: number, page: number, pageSize: number): Promise<{ total: number; items: ImmutableRuleRow[] }> {
    const where = { projectId };
    const [total, items] = await Promise.all([
      this.db.immutableRule.count({ where }),
      this.db.immutableRule.findMany({ where, orderBy: { id: 'asc' }, skip: (page - 1) * pageSize, take: pageSize }),
    ]);
    return { total, items };
  }

  /** Every rule of the project named `projectName` (for the matcher cache), oldest first. */
  byProjectName(projectName: string): Promise<ImmutableRuleRow[]> {
    return this.db.immutableRule.findMany({ where: { project: { name: projectName } }, orderBy: { id: 'asc' } });
  }

  count(projectId: number): Promise<number> {
    return this.db.immutableRule.count({ where: { projectId } });
  }

  /** The rule, if it belongs to the project (a rule of another project is not found). */
  find(projectId: number, id: number): Promise<ImmutableRuleRow | null> {
    return this.db.immutableRule.findFirst({ where: { id, projectId } });
  }

  async create(projectId: number, fields: ImmutableRuleFields): Promise<number> {
    const row = await this.db.immutableRule.create({ data: { projectId, ...fields }, select: { id: true } });
    return row.id;
  }

  /** Changes the project's rule; false when it has no such rule. */
  async update(projectId: number, id: number, fields: Partial<ImmutableRuleFields>): Promise<boolean> {
    const r = await this.db.immutableRule.updateMany({ where: { id, projectId }, data: fields });
    return r.count > 0;
  }

  /** Deletes the project's rule; false when it has no such rule. */
  async delete(projectId: number, id: number): Promise<boolean> {
    const r = await this.db.immutableRule.deleteMany({ where: { id, projectId } });
    return r.count > 0;
  }

  /**
   * Names of the tags of a repository (those pointing at `digest`, or all of them when it is null):
   * what a delete by digest or of the whole repository would remove, to be checked against the rules.
   */
  async tagNames(repositoryId: number, digest: string | null): Promise<string[]> {
    const rows = await this.db.tag.findMany({ where: digest === null ? { repositoryId } : { repositoryId, digest }, select: { name: true } });
    return rows.map((r) => r.name);
  }
}
