// Tag retention's rules on their own: templates, selectors, "or" across rules, disabled rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { covers, retained, type Candidate, type Rule } from '../../src/services/retention.ts';

const NOW = Date.parse('2026-12-06T12:00:00Z');
const DAY = 86_400_000;

/** Artifact i: pushed i days ago, pulled (when given) p days ago. */
const art = (digest: string, tags: string[], pushedDaysAgo: number, pulledDaysAgo?: number): Candidate => ({
  digest,
  tags,
  pushedAt: new Date(NOW - pushedDaysAgo * DAY),
  pulledAt: pulledDaysAgo === undefined ? null : new Date(NOW - pulledDaysAgo * DAY),
});

const rule = (template: Rule['template'], n: number | null, tags: { decoration: string; pattern: string; untagged?: boolean }, repos = '**', more: Partial<Rule> = {}): Rule => ({
  id: 1,
  priority: 0,
  disabled: false,
  action: 'retain',
  template,
  params: n === null ? {} : { [template]: n },
  tag_selectors: [{ kind: 'doublestar', decoration: tags.decoration, pattern: tags.pattern, ...(tags.untagged ? { extras: '{"untagged":true}' } : {}) }],
  scope_selectors: { repository: [{ kind: 'doublestar', decoration: 'repoMatches', pattern: repos }] },
  ...more,
});

const ARTS = [
  art('a', ['v1'], 10, 1),
  art('b', ['v2', 'latest'], 8, 9),
  art('c', ['v3'], 5),
  art('d', [], 4, 2),
  art('e', ['dev-1'], 2, 30),
  art('f', ['v4'], 1),
];
const kept = (rules: Rule[], repository = 'app') => [...retained(rules, repository, ARTS, NOW).keys()].sort();

test('latestPushedK keeps the K newest the selector takes; untagged only when asked', () => {
  assert.deepEqual(kept([rule('latestPushedK', 2, { decoration: 'matches', pattern: '**' })]), ['e', 'f']);
  assert.deepEqual(kept([rule('latestPushedK', 3, { decoration: 'matches', pattern: 'v*' })]), ['b', 'c', 'f']);
  assert.deepEqual(kept([rule('latestPushedK', 4, { decoration: 'matches', pattern: '**', untagged: true })]), ['c', 'd', 'e', 'f']);
  assert.deepEqual(kept([rule('latestPushedK', 0, { decoration: 'matches', pattern: '**' })]), []);
});

test('latestPulledN keeps the N most recently pulled (never pulled: not kept)', () => {
  assert.deepEqual(kept([rule('latestPulledN', 2, { decoration: 'matches', pattern: '**', untagged: true })]), ['a', 'd']);
  assert.deepEqual(kept([rule('latestPulledN', 10, { decoration: 'matches', pattern: '**' })]), ['a', 'b', 'e']);
});

test('nDaysSinceLastPush and nDaysSinceLastPull keep what is recent enough', () => {
  assert.deepEqual(kept([rule('nDaysSinceLastPush', 5, { decoration: 'matches', pattern: '**' })]), ['c', 'e', 'f']);
  assert.deepEqual(kept([rule('nDaysSinceLastPull', 3, { decoration: 'matches', pattern: '**', untagged: true })]), ['a', 'd']);
});

test('excludes takes the artifacts with a tag the pattern does not match; always keeps all it selects', () => {
  assert.deepEqual(kept([rule('always', null, { decoration: 'excludes', pattern: 'v*' })]), ['b', 'e']); // b also has "latest"
  assert.deepEqual(kept([rule('always', null, { decoration: 'matches', pattern: 'dev-*' })]), ['e']);
});

test('rules add up ("or"); a disabled rule keeps nothing; the first rule to keep an artifact is named', () => {
  const r1 = rule('latestPushedK', 1, { decoration: 'matches', pattern: 'v*' });
  const r2 = { ...rule('always', null, { decoration: 'matches', pattern: 'latest' }), id: 2 };
  assert.deepEqual(kept([r1, r2]), ['b', 'f']);
  assert.deepEqual(kept([r1, { ...r2, disabled: true }]), ['f']);
  const by = retained([r1, { ...r2, id: 2 }, { ...rule('always', null, { decoration: 'matches', pattern: '**' }), id: 3 }], 'app', ARTS, NOW);
  assert.deepEqual([by.get('f'), by.get('b'), by.get('a')], [1, 2, 3]);
});

test('a rule covers the repositories its scope selectors match, named below the project', () => {
  const r = rule('always', null, { decoration: 'matches', pattern: '**' }, 'team/*');
  assert.equal(covers([r], 'team/api'), true);
  assert.equal(covers([r], 'team/api/v2'), false);
  assert.equal(covers([r], 'other'), false);
  assert.equal(covers([{ ...r, disabled: true }], 'team/api'), false);
  const excl: Rule = { ...r, scope_selectors: { repository: [{ kind: 'doublestar', decoration: 'repoExcludes', pattern: 'legacy/**' }] } };
  assert.equal(covers([excl], 'legacy/x'), false);
  assert.equal(covers([excl], 'app'), true);
  // A rule keeps nothing in a repository outside its scope.
  const all = rule('always', null, { decoration: 'matches', pattern: '**' });
  assert.deepEqual(kept([r, all], 'team/api').length, 5);
  assert.deepEqual(kept([r], 'other'), []);
});
