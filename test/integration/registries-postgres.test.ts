// Registry endpoints on PostgreSQL (the store's queries: case-insensitive search, the unique name,
// the delete that checks for proxy-cache projects in one transaction, the status a ping saves),
// against a real PostgreSQL and a real Distribution with Basic auth.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { missingDistribution, removeDistribution, startDistribution, type Distribution } from '../helpers/distribution.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';

const skip = missingPostgres() || missingDistribution({ htpasswd: true });
const USER = 'pg-puller';
const SECRET = 'Pg-upstream-S3cret-2f';

let pgServer: TestPostgres;
let dist: Distribution;
let t: TestApp;

const api = async (method: 'get' | 'post' | 'put' | 'delete', p: string, body?: unknown) => {
  const r = t.request[method](`/api/v2.0${p}`).set('Authorization', t.adminAuth);
  return body === undefined ? r : r.send(body as object);
};

describe('registry endpoints on PostgreSQL', { skip }, () => {
  before(async () => {
    pgServer = await startPostgres();
    dist = await startDistribution({ users: { [USER]: SECRET } });
    t = await makeApp({ BERTH_DATABASE_URL: await pgServer.createDatabase(), BERTH_SECRET_KEY: 'registries-postgres-test-key-0123456789' }, REAL_ACCESS);
  });
  after(async () => {
    await t?.close();
    if (dist) await removeDistribution(dist);
    await pgServer?.stop();
  });

  test('create, search, ping, update, conflicts, delete', async () => {
    assert.match(t.berth.config.databaseUrl, /^postgresql:\/\//);
    const res = await api('post', '/registries', { name: 'Upstream-PG', type: 'docker-registry', url: dist.url, credential: { type: 'basic', access_key: USER, access_secret: SECRET } });
    assert.equal(res.status, 201, res.text);
    const id = Number(String(res.headers.location).split('/').pop());
    assert.equal((await api('get', '/registries?q=name%3D~upstream')).body.length, 1, 'the search ignores case on PostgreSQL too');
    assert.equal((await api('post', '/registries', { name: 'Upstream-PG', type: 'docker-registry', url: dist.url })).status, 409);

    assert.equal((await api('post', '/registries/ping', { id })).status, 200);
    assert.equal((await api('get', `/registries/${id}`)).body.status, 'healthy');
    assert.equal((await api('put', `/registries/${id}`, { access_secret: 'Wrong-secret-3' })).status, 200);
    const bad = await api('post', '/registries/ping', { id });
    assert.equal(bad.status, 400);
    assert.match(bad.body.errors[0].message, /refused the credentials of user "pg-puller"/);

    const rows = await t.berth.db.$queryRawUnsafe<{ s: string }[]>('SELECT "accessSecret" AS s FROM "Registry" WHERE "id" = $1', id);
    assert.match(rows[0].s, /^enc:v1:/);
    const plain = await t.berth.db.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM "Registry" WHERE "accessSecret" LIKE '%' || $1 || '%' OR "accessSecret" LIKE '%' || $2 || '%'`, SECRET, 'Wrong-secret-3');
    assert.equal(Number(plain[0].n), 0);

    assert.equal((await api('post', '/projects', { project_name: 'pg-cache' })).status, 201);
    await t.berth.db.project.update({ where: { name: 'pg-cache' }, data: { registryId: id } });
    assert.equal((await api('delete', `/registries/${id}`)).status, 412);
    await t.berth.db.project.update({ where: { name: 'pg-cache' }, data: { registryId: null } });
    assert.equal((await api('delete', `/registries/${id}`)).status, 200);
    assert.equal((await api('get', `/registries/${id}`)).status, 404);
  });
});
