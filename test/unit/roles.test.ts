import { test } from 'node:test';
import assert from 'node:assert/strict';
import { can, isRobotGrantable, missingPermissions, rolePermissions, Roles, type Permission, type RoleId } from '../../src/access/roles.ts';
import { narrow } from '../../src/api/token.ts';
import { parseScope } from '../../src/auth/token.ts';
import type { Action, Principal, RepositoryPolicy } from '../../src/access/principal.ts';

const grant = (roles: RoleId[], pub = false) => ({ roles, public: pub, sysadmin: false });

test('repository pull/push/delete per role follows Harbor', () => {
  const expect: Record<number, [boolean, boolean, boolean]> = {
    [Roles.limitedGuest]: [true, false, false],
    [Roles.guest]: [true, false, false],
    [Roles.developer]: [true, true, false],
    [Roles.maintainer]: [true, true, true],
    [Roles.projectAdmin]: [true, true, true],
  };
  for (const [role, [pull, push, del]] of Object.entries(expect)) {
    const g = grant([Number(role) as RoleId]);
    assert.equal(can(g, 'repository', 'pull'), pull, `role ${role} pull`);
    assert.equal(can(g, 'repository', 'push'), push, `role ${role} push`);
    assert.equal(can(g, 'repository', 'delete'), del, `role ${role} delete`);
  }
});

test('members: only project admins manage them; limited guests cannot even list them', () => {
  assert.equal(can(grant([Roles.limitedGuest]), 'member', 'list'), false);
  assert.equal(can(grant([Roles.guest]), 'member', 'list'), true);
  assert.equal(can(grant([Roles.maintainer]), 'member', 'create'), false);
  assert.equal(can(grant([Roles.projectAdmin]), 'member', 'create'), true);
  assert.equal(can(grant([Roles.developer]), 'robot', 'create'), false);
  assert.equal(can(grant([Roles.projectAdmin]), 'robot', 'create'), true);
  assert.equal(can(grant([Roles.maintainer]), 'tag', 'delete'), true);
  assert.equal(can(grant([Roles.developer]), 'tag', 'delete'), false);
  assert.equal(can(grant([Roles.projectAdmin]), 'log', 'list'), true);
  assert.equal(can(grant([Roles.maintainer]), 'log', 'list'), false);
});

test('several memberships give the union of their roles', () => {
  assert.equal(can(grant([Roles.guest, Roles.developer]), 'repository', 'push'), true);
  assert.equal(can(grant([Roles.limitedGuest, Roles.guest]), 'member', 'read'), true);
});

test('public projects let anyone pull but not push; no roles means nothing on a private project', () => {
  assert.equal(can(grant([], true), 'repository', 'pull'), true);
  assert.equal(can(grant([], true), 'repository', 'push'), false);
  assert.equal(can(grant([], true), 'member', 'list'), false);
  assert.equal(can(grant([]), 'repository', 'pull'), false);
  assert.equal(can({ roles: [], public: false, sysadmin: true }, 'member', 'create'), true);
});

test('robots get exactly their permissions', () => {
  const g = { roles: [], public: false, sysadmin: false, robot: [{ resource: 'repository' as const, action: 'pull' as const }] };
  assert.equal(can(g, 'repository', 'pull'), true);
  assert.equal(can(g, 'repository', 'push'), false);
});

test('rolePermissions lists literal pairs', () => {
  const dev = rolePermissions(Roles.developer);
  assert.ok(dev.some((p) => p.resource === 'repository' && p.action === 'push'));
  assert.ok(!dev.some((p) => p.resource === 'repository' && p.action === 'delete'));
});

test('scope parsing', () => {
  assert.deepEqual(parseScope('repository:team/app/api:pull,push'), { type: 'repository', name: 'team/app/api', actions: ['pull', 'push'] });
  assert.deepEqual(parseScope('repository(plugin):x/y:pull'), { type: 'repository', name: 'x/y', actions: ['pull'] });
  assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
  assert.equal(parseScope('nonsense'), null);
});

test('narrowing grants what the policy allows and never fails for asking too much', async () => {
  const policy: RepositoryPolicy = {
    async allowedActions(principal, repository, wanted) {
      if (repository.startsWith('pub/')) return wanted.filter((a) => a === 'pull' || (principal?.name === 'dev' && a === 'push')) as Action[];
      return [];
    },
    async visibleProjectIds() {
      return [];
    },
  };
  const dev: Principal = { kind: 'user', id: 2, name: 'dev', sysadmin: false };
  assert.deepEqual(await narrow(policy, dev, ['repository:pub/a:pull,push,delete']), [{ type: 'repository', name: 'pub/a', actions: ['pull', 'push'] }]);
  assert.deepEqual(await narrow(policy, null, ['repository:pub/a:push,pull']), [{ type: 'repository', name: 'pub/a', actions: ['pull'] }]);
  assert.deepEqual(await narrow(policy, dev, ['repository:priv/a:pull']), [{ type: 'repository', name: 'priv/a', actions: [] }]);
  assert.deepEqual(await narrow(policy, null, ['registry:catalog:*']), [{ type: 'registry', name: 'catalog', actions: [] }]);
  assert.deepEqual(await narrow(policy, dev, ['repository:Bad Name:pull', 'garbage']), []);
});

test('robots may be given project rights only, never robot:update nor changing or deleting the project (Harbor\'s robot permission provider)', () => {
  for (const [r, a] of [['repository', 'pull'], ['repository', 'push'], ['repository', 'delete'], ['artifact', 'delete'], ['tag', 'create'], ['robot', 'create'], ['robot', 'delete'], ['member', 'create'], ['project', 'read']]) assert.equal(isRobotGrantable(r, a), true, `${r}:${a}`);
  for (const [r, a] of [['robot', 'update'], ['project', 'update'], ['project', 'delete'], ['repository', 'own'], ['everything', 'create'], ['user', 'create'], ['__proto__', 'read'], ['repository', 'toString']]) assert.equal(isRobotGrantable(r, a), false, `${r}:${a}`);
});

test('missingPermissions: what a principal would hand on without holding it (public access does not count)', () => {
  const wanted: Permission[] = [{ resource: 'repository', action: 'pull' }, { resource: 'repository', action: 'delete' }, { resource: 'member', action: 'create' }];
  assert.deepEqual(missingPermissions({ roles: [Roles.projectAdmin], public: false, sysadmin: false }, wanted), []);
  assert.deepEqual(missingPermissions({ roles: [], public: false, sysadmin: true }, wanted), []);
  assert.deepEqual(missingPermissions({ roles: [Roles.maintainer], public: false, sysadmin: false }, wanted), [{ resource: 'member', action: 'create' }]);
  const robot = { roles: [], public: true, sysadmin: false, robot: [{ resource: 'robot' as const, action: 'create' as const }] };
  assert.deepEqual(missingPermissions(robot, wanted), wanted, 'a public project lets anyone pull, but that is not the robot\'s to give');
  assert.deepEqual(missingPermissions(robot, rolePermissions(Roles.limitedGuest)).length, rolePermissions(Roles.limitedGuest).length);
  const lg = { roles: [], public: false, sysadmin: false, robot: rolePermissions(Roles.limitedGuest) };
  assert.deepEqual(missingPermissions(lg, rolePermissions(Roles.limitedGuest)), []);
  assert.ok(missingPermissions(lg, rolePermissions(Roles.guest)).length > 0);
});
