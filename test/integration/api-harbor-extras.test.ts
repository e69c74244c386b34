// Smaller Harbor endpoints: project deletability, user group search, disk volumes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { Oci, bytes } from '../helpers/oci.ts';
import { assertHarborShape } from '../helpers/harbor-shapes.ts';

let t: TestApp;
const api = (method: 'get' | 'post', p: string, auth: string | null = t.adminAuth) => {
  const r = t.request[method](`/api/v2.0${p}`);
  return auth ? r.set('Authorization', auth) : r;
};

before(async () => {
  t = await makeApp({}, REAL_ACCESS);
  for (const name of ['empty', 'full']) assert.equal((await api('post', '/projects').send({ project_name: name })).status, 201);
  await new Oci(t.request, t.adminAuth).pushBlob('full/app', bytes(100, 1));
  assert.equal((await api('post', '/users').send({ username: 'nobody', password: 'Passw0rd!x' })).status, 201);
});
after(async () => {
  await t?.close();
});

test('_deletable: a project with repositories is not, an empty one is; outsiders learn nothing', async () => {
  const empty = (await api('get', '/projects/empty/_deletable')).body;
  assertHarborShape('ProjectDeletable', empty);
  assert.deepEqual(empty, { deletable: true, message: '' });
  const full = await api('get', '/projects/full/_deletable');
  assert.equal(full.status, 200);
  assert.equal(full.body.deletable, false);
  assert.match(full.body.message, /repositories/);
  const outsider = await api('get', '/projects/full/_deletable', basic('nobody', 'Passw0rd!x'));
  assert.equal(outsider.status, (await api('get', '/projects/no-such-project/_deletable', basic('nobody', 'Passw0rd!x'))).status);
});

test('usergroups/search by name, paged', async () => {
  for (const dn of ['cn=devs,ou=groups,dc=example,dc=org', 'cn=ops,ou=groups,dc=example,dc=org']) {
    assert.equal((await api('post', '/usergroups').send({ group_type: 1, ldap_group_dn: dn })).status, 201);
  }
  const res = await api('get', '/usergroups/search?groupname=dev');
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-total-count'], '1');
  for (const g of res.body) assertHarborShape('UserGroupSearchItem', g);
  assert.deepEqual(res.body.map((g: { group_name: string; group_type: number }) => [g.group_name, g.group_type]), [['devs', 1]]);
  assert.equal((await api('get', '/usergroups/search')).status, 400);
  assert.equal((await api('get', '/usergroups/search?groupname=dev', null)).status, 401);
});

test('systeminfo/volumes reports the data disk, for system admins only', async () => {
  const res = await api('get', '/systeminfo/volumes');
  assert.equal(res.status, 200);
  assertHarborShape('SystemInfo', res.body);
  const [disk] = res.body.storage;
  assertHarborShape('Storage', disk);
  assert.ok(disk.total > 0 && disk.free > 0 && disk.free <= disk.total);
  assert.equal((await api('get', '/systeminfo/volumes', basic('nobody', 'Passw0rd!x'))).status, 403);
});
