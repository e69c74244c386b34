// The immutable tag rule service over a fake store: matching as Harbor does it (the scope against the
// repository name inside its project), and the project's rules read once, then kept in memory until a
// change is announced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalChanges } from '../../src/db/changes.ts';
import type { ImmutableRuleRow, ImmutableRuleStore } from '../../src/db/immutable-rule-store.ts';
import { ImmutableTagsService } from '../../src/services/immutable-tags.ts';

function fakeStore(rows: ImmutableRuleRow[]) {
  const reads: string[] = [];
  const store = {
    async byProjectName(name: string) {
      reads.push(name);
      return name === 'rel' ? rows : [];
    },
  } as unknown as ImmutableRuleStore;
  return { store, reads };
}

const row = (tag: string, repo: string, extra: Partial<ImmutableRuleRow> = {}): ImmutableRuleRow => ({
  id: 1,
  projectId: 1,
  priority: 0,
  disabled: false,
  tagSelectors: JSON.stringify([{ kind: 'doublestar', decoration: 'matches', pattern: tag }]),
  scopeSelectors: JSON.stringify({ repository: [{ kind: 'doublestar', decoration: 'repoMatches', pattern: repo }] }),
  createdAt: new Date(),
  updatedAt: new Date(),
  ...extra,
});

test("rules match the repository's name inside its project and the tag", async () => {
  const { store } = fakeStore([row('v*', 'app/*'), row('stable', '**', { disabled: true })]);
  const svc = new ImmutableTagsService(store, { changes: new LocalChanges() });
  const t = await svc.tagTest('rel/app/api');
  assert.ok(t);
  assert.equal(t('v1'), true);
  assert.equal(t('latest'), false);
  assert.equal(t('stable'), false); // its rule is disabled
  assert.equal(await svc.tagTest('rel/app/api/deeper'), null); // "*" stops at "/"
  assert.equal(await svc.tagTest('rel/other'), null);
  assert.equal(await svc.tagTest('elsewhere/app/api'), null);
  assert.equal(await svc.tagTest('rel'), null);
});

test("a project's rules are read once and kept until a change is announced", async () => {
  const { store, reads } = fakeStore([row('v*', '**')]);
  const changes = new LocalChanges();
  const svc = new ImmutableTagsService(store, { changes });
  for (let i = 0; i < 5; i++) assert.ok((await svc.tagTest('rel/app'))?.('v1'));
  for (let i = 0; i < 5; i++) assert.equal(await svc.tagTest('none/app'), null);
  assert.deepEqual(reads, ['rel', 'none']);
  await changes.publish('access');
  assert.ok((await svc.tagTest('rel/app'))?.('v1'));
  assert.deepEqual(reads, ['rel', 'none', 'rel']);
});
