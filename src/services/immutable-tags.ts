// Immutable tag rules, as Harbor has them: a tag is immutable when an enabled rule of its project
// matches both its repository (the name inside the project, without "<project>/") and the tag's
// name. An immutable tag that exists is never pointed at another manifest and never deleted, and
// no manifest carrying one is deleted (RegistryService enforces it through `TagImmutability`); a new
// tag that matches may be created, and is immutable from then on.
//
// The manifest PUT asks on every push, so a project's rules are compiled once and kept in memory.
// Every rule change is announced on the 'access' topic (src/db/changes.ts), which drops them on
// every node; while another node's announcement may be missed, they are read through.
import type { ImmutableRuleRow, ImmutableRuleStore } from '../db/immutable-rule-store.ts';
import { LocalChanges, type Changes } from '../db/changes.ts';
import { AppError } from '../lib/errors.ts';
import { Lru } from '../lib/lru.ts';
import { projectOf } from '../lib/reference.ts';
// The doublestar matcher of replication filters: the same pattern language as Harbor's selectors.
import { globMatcher } from '../lib/glob.ts';
import type { TagImmutability } from './registry-service.ts';

/** Harbor's limit of rules per project. */
export const MAX_RULES_PER_PROJECT = 15;
const MAX_SELECTORS = 10;
const MAX_PATTERN = 512;
/** A safety net under the announcements: rules are read again at least this often. */
const TTL_MS = 60_000;

export const ACTION = 'immutable';
export const TEMPLATE = 'immutable_template';
const TAG_DECORATIONS = ['matches', 'excludes'] as const;
const REPO_DECORATIONS = ['repoMatches', 'repoExcludes'] as const;

export interface ImmutableSelector {
  kind: string;
  decoration: string;
  pattern: string;
  extras?: string;
}

/** A rule as Harbor's API describes it (fields left out of an update keep their value). */
export interface ImmutableRuleInput {
  priority?: number;
  disabled?: boolean;
  action?: string;
  template?: string;
  params?: Record<string, unknown>;
  tagSelectors?: ImmutableSelector[];
  scopeSelectors?: Record<string, ImmutableSelector[]>;
}

export interface ImmutableRule {
  id: number;
  projectId: number;
  priority: number;
  disabled: boolean;
  tagSelectors: ImmutableSelector[];
  scopeSelectors: { repository: ImmutableSelector[] };
}

type Test = (s: string) => boolean;

interface Compiled {
  repository: Test;
  tag: Test;
}

interface Cached {
  rules: Compiled[];
  expires: number;
}

function bad(message: string): AppError {
  return new AppError('BAD_REQUEST', undefined, { message });
}

/** The selectors' tests combined: each "matches" must match, each "excludes" must not. */
function compile(selectors: ImmutableSelector[], excludes: string): Test {
  const tests = selectors.map((s) => ({ match: globMatcher(s.pattern), not: s.decoration === excludes }));
  return (v) => tests.every((t) => t.match(v) !== t.not);
}

function toRule(row: ImmutableRuleRow): ImmutableRule {
  return {
    id: row.id,
    projectId: row.projectId,
    priority: row.priority,
    disabled: row.disabled,
    tagSelectors: JSON.parse(row.tagSelectors) as ImmutableSelector[],
    scopeSelectors: JSON.parse(row.scopeSelectors) as { repository: ImmutableSelector[] },
  };
}

/** Checks one list of selectors (`field` names it in the 400). */
function checkSelectors(list: ImmutableSelector[], field: string, decorations: readonly string[]): ImmutableSelector[] {
  if (!list.length) throw bad(`${field}: at least one selector is required`);
  if (list.length > MAX_SELECTORS) throw bad(`${field}: at most ${MAX_SELECTORS} selectors`);
  return list.map((s, i) => {
    const at = `${field}.${i}`;
    if (s.kind !== 'doublestar') throw bad(`${at}.kind: unknown kind "${s.kind}" (only "doublestar")`);
    if (!decorations.includes(s.decoration)) throw bad(`${at}.decoration: unknown decoration "${s.decoration}" (one of ${decorations.join(', ')})`);
    if (!s.pattern) throw bad(`${at}.pattern: must not be empty`);
    if (s.pattern.length > MAX_PATTERN) throw bad(`${at}.pattern: at most ${MAX_PATTERN} characters`);
    try {
      globMatcher(s.pattern);
    } catch (e) {
      throw bad(`${at}.pattern: malformed pattern "${s.pattern}" (${(e as Error).message})`);
    }
    return { kind: s.kind, decoration: s.decoration, pattern: s.pattern, ...(s.extras ? { extras: s.extras } : {}) };
  });
}

export class ImmutableTagsService implements TagImmutability {
  private readonly changes: Changes;
  /** project name -> its enabled rules, compiled. */
  private cache = new Lru<string, Cached>(10_000, 8 * 1024 * 1024, (c) => 200 + c.rules.length * 400);

  constructor(
    private readonly store: ImmutableRuleStore,
    opts: { changes?: Changes } = {},
  ) {
    this.changes = opts.changes ?? new LocalChanges();
    this.changes.subscribe('access', () => this.cache.clear());
  }

  // ---- rules --------------------------------------------------------------------------------

  async list(projectId: number, page: number, pageSize: number): Promise<{ total: number; items: ImmutableRule[] }> {
    const { total, items } = await this.store.list(projectId, page, pageSize);
    return { total, items: items.map(toRule) };
  }

  /** Adds a rule to the project; returns its id. BAD_REQUEST naming the field for a rule Harbor refuses. */
  async create(projectId: number, input: ImmutableRuleInput): Promise<number> {
    const rule = this.validate(input, null);
    const existing = await this.store.list(projectId, 1, MAX_RULES_PER_PROJECT + 1);
    if (existing.total >= MAX_RULES_PER_PROJECT) throw bad(`a project has at most ${MAX_RULES_PER_PROJECT} immutable tag rules`);
    if (existing.items.some((r) => sameSelectors(toRule(r), rule))) throw new AppError('CONFLICT', undefined, { message: 'an immutable tag rule with the same selectors already exists in the project' });
    const id = await this.store.create(projectId, this.fields(rule));
    await this.changes.publish('access');
    return id;
  }

  /** Changes the project's rule (fields left out keep their value; `disabled` alone toggles it). */
  async update(projectId: number, id: number, input: ImmutableRuleInput): Promise<void> {
    const row = await this.store.find(projectId, id);
    if (!row) throw notFound();
    const rule = this.validate(input, toRule(row));
    if (!(await this.store.update(projectId, id, this.fields(rule)))) throw notFound();
    await this.changes.publish('access');
  }

  async delete(projectId: number, id: number): Promise<void> {
    if (!(await this.store.delete(projectId, id))) throw notFound();
    await this.changes.publish('access');
  }

  private fields(r: Omit<ImmutableRule, 'id' | 'projectId'>) {
    return { priority: r.priority, disabled: r.disabled, tagSelectors: JSON.stringify(r.tagSelectors), scopeSelectors: JSON.stringify(r.scopeSelectors) };
  }

  /** The rule `input` describes (over `base` for an update), checked as Harbor checks it. */
  private validate(input: ImmutableRuleInput, base: ImmutableRule | null): Omit<ImmutableRule, 'id' | 'projectId'> {
    if (input.action && input.action !== ACTION) throw bad(`action: unknown action "${input.action}" (only "${ACTION}")`);
    if (input.template && input.template !== TEMPLATE) throw bad(`template: unknown template "${input.template}" (only "${TEMPLATE}")`);
    const tags = input.tagSelectors ?? base?.tagSelectors;
    if (!tags) throw bad('tag_selectors: required');
    const scopes = input.scopeSelectors ?? base?.scopeSelectors;
    if (!scopes) throw bad('scope_selectors: required');
    const unknown = Object.keys(scopes).find((k) => k !== 'repository');
    if (unknown !== undefined) throw bad(`scope_selectors.${unknown}: unknown scope (only "repository")`);
    if (!scopes.repository) throw bad('scope_selectors.repository: required');
    return {
      priority: input.priority ?? base?.priority ?? 0,
      disabled: input.disabled ?? base?.disabled ?? false,
      tagSelectors: checkSelectors(tags, 'tag_selectors', TAG_DECORATIONS),
      scopeSelectors: { repository: checkSelectors(scopes.repository, 'scope_selectors.repository', REPO_DECORATIONS) },
    };
  }

  // ---- enforcement (TagImmutability) --------------------------------------------------------

  /** The enabled rules of a project, compiled (from memory unless changed or not live). */
  private async rulesOf(project: string): Promise<Compiled[]> {
    if (this.changes.live) {
      const hit = this.cache.get(project);
      if (hit && hit.expires > Date.now()) return hit.rules;
    }
    const gen = this.changes.generation('access');
    const rows = await this.store.byProjectName(project);
    const rules: Compiled[] = [];
    for (const row of rows) {
      if (row.disabled) continue;
      const r = toRule(row);
      rules.push({ repository: compile(r.scopeSelectors.repository, 'repoExcludes'), tag: compile(r.tagSelectors, 'excludes') });
    }
    if (this.changes.live && this.changes.generation('access') === gen) this.cache.set(project, { rules, expires: Date.now() + TTL_MS });
    return rules;
  }

  async tagTest(repository: string): Promise<((tag: string) => boolean) | null> {
    const project = projectOf(repository);
    // A repository outside any project (no "/") is covered by no project's rules.
    if (project === repository) return null;
    const rules = await this.rulesOf(project);
    if (!rules.length) return null;
    const inside = repository.slice(project.length + 1);
    const tests = rules.filter((r) => r.repository(inside)).map((r) => r.tag);
    if (!tests.length) return null;
    return (tag) => tests.some((t) => t(tag));
  }

  tagNames(repositoryId: number, digest: string | null): Promise<string[]> {
    return this.store.tagNames(repositoryId, digest);
  }
}

function notFound(): AppError {
  return new AppError('NOT_FOUND', undefined, { message: 'immutable tag rule not found' });
}

function sameSelectors(a: Omit<ImmutableRule, 'id' | 'projectId'>, b: Omit<ImmutableRule, 'id' | 'projectId'>): boolean {
  const key = (r: Omit<ImmutableRule, 'id' | 'projectId'>) => JSON.stringify([r.tagSelectors.map((s) => [s.decoration, s.pattern]), r.scopeSelectors.repository.map((s) => [s.decoration, s.pattern])]);
  return key(a) === key(b);
}
