// Harbor's immutable tag rules: the API (CRUD, paging, validation, who may manage them) and their
// enforcement through real /v2 pushes and deletes and the Harbor API; on PostgreSQL, a rule added
// on one node is enforced by another.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { Oci, OCI_MANIFEST } from '../helpers/oci.ts';
import { assertHarborShape } from '../helpers/harbor-shapes.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';
import { FsDriver } from '../../src/storage/driver/fs.ts';
import { AppError } from '../../src/lib/errors.ts';
import { LocalEnd } from '../../src/services/replication.ts';

const PW = 'Passw0rd!x';

/** A rule as Harbor's UI sends it. */
function rule(tag: string, repo = '**', extra: Record<string, unknown> = {}) {
  return {
    disabled: false,
    action: 'immutable',
    template: 'immutable_template',
    params: {},
    tag_selectors: [{ kind: 'doublestar', decoration: 'matches', pattern: tag }],
    scope_selectors: { repository: [{ kind: 'doublestar', decoration: 'repoMatches', pattern: repo }] },
    priority: 0,
    ...extra,
  };
}

describe('immutable tag rules', () => {
  let t: TestApp;
  let oci: Oci;
  let robotPlain: string;
  let robotRules: string;
  const api = (method: 'get' | 'post' | 'put' | 'delete', p: string, auth: string | null = t.adminAuth) => {
    const r = t.request[method](`/api/v2.0${p}`);
    return auth ? r.set('Authorization', auth) : r;
  };
  const ruleIds = async (project: string) => ((await api('get', `/projects/${project}/immutabletagrules?page_size=100`)).body as { id: number }[]).map((r) => r.id);
  const clearRules = async (project: string) => {
    for (const id of await ruleIds(project)) assert.equal((await api('delete', `/projects/${project}/immutabletagrules/${id}`)).status, 200);
  };
  const addRule = async (project: string, body: object, auth: string = t.adminAuth) => {
    const res = await api('post', `/projects/${project}/immutabletagrules`, auth).send(body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return Number(String(res.headers.location).split('/').pop());
  };

  before(async () => {
    t = await makeApp({}, REAL_ACCESS);
    oci = new Oci(t.request, t.adminAuth);
    // "rel" is public, so that an anonymous caller sees the project and is asked to log in.
    assert.equal((await api('post', '/projects').send({ project_name: 'rel', metadata: { public: 'true' } })).status, 201);
    assert.equal((await api('post', '/projects').send({ project_name: 'other', metadata: { public: 'false' } })).status, 201);
    for (const u of ['padmin', 'maint', 'dev', 'guest']) assert.equal((await api('post', '/users').send({ username: u, password: PW })).status, 201);
    for (const [u, role] of [['padmin', 1], ['maint', 4], ['dev', 2], ['guest', 3]] as const) {
      assert.equal((await api('post', '/projects/rel/members').send({ role_id: role, member_user: { username: u } })).status, 201);
    }
    assert.equal((await api('post', '/projects/other/members').send({ role_id: 1, member_user: { username: 'padmin' } })).status, 201);
    const robot = async (name: string, access: { resource: string; action: string }[]) => {
      const res = await api('post', '/robots').send({ name, level: 'project', duration: -1, permissions: [{ kind: 'project', namespace: 'rel', access }] });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return basic(res.body.name, res.body.secret);
    };
    robotPlain = await robot('plain', [{ resource: 'repository', action: 'push' }, { resource: 'repository', action: 'pull' }]);
    robotRules = await robot('rules', ['list', 'create', 'update', 'delete'].map((action) => ({ resource: 'immutable-tag', action })));
  });
  after(async () => {
    await t?.close();
  });

  describe('the API', () => {
    test('create (201 with Location), list with paging and X-Total-Count, toggle, change, delete', async () => {
      await clearRules('rel');
      const first = await addRule('rel', rule('v*'));
      const second = await addRule('rel', rule('release-*', 'app/**'));
      const list = await api('get', '/projects/rel/immutabletagrules');
      assert.equal(list.status, 200);
      assert.equal(list.headers['x-total-count'], '2');
      assert.deepEqual(list.body.map((r: { id: number }) => r.id), [first, second]);
      assert.deepEqual(list.body[0], { id: first, ...rule('v*') });
      assertHarborShape('ImmutableRule', list.body[0]);
      assertHarborShape('ImmutableSelector', list.body[0].tag_selectors[0]);
      const page2 = await api('get', '/projects/rel/immutabletagrules?page=2&page_size=1');
      assert.equal(page2.headers['x-total-count'], '2');
      assert.deepEqual(page2.body.map((r: { id: number }) => r.id), [second]);
      assert.match(String(page2.headers.link), /rel="prev"/);
      // by project id too
      const byId = await api('get', `/projects/${(await api('get', '/projects/rel')).body.project_id}/immutabletagrules`);
      assert.equal(byId.body.length, 2);
      // the UI's toggle sends the rule with disabled flipped; a client may send only the flag
      assert.equal((await api('put', `/projects/rel/immutabletagrules/${first}`).send({ ...rule('v*'), disabled: true })).status, 200);
      assert.equal((await api('get', '/projects/rel/immutabletagrules')).body[0].disabled, true);
      assert.equal((await api('put', `/projects/rel/immutabletagrules/${first}`).send({ disabled: false })).status, 200);
      const changed = await api('put', `/projects/rel/immutabletagrules/${first}`).send({ tag_selectors: [{ kind: 'doublestar', decoration: 'excludes', pattern: 'dev-*' }] });
      assert.equal(changed.status, 200);
      const now = (await api('get', '/projects/rel/immutabletagrules')).body[0];
      assert.equal(now.disabled, false);
      assert.deepEqual(now.tag_selectors, [{ kind: 'doublestar', decoration: 'excludes', pattern: 'dev-*' }]);
      assert.deepEqual(now.scope_selectors, rule('v*').scope_selectors);
      assert.equal((await api('delete', `/projects/rel/immutabletagrules/${first}`)).status, 200);
      assert.equal((await api('delete', `/projects/rel/immutabletagrules/${first}`)).status, 404);
      assert.equal((await api('put', `/projects/rel/immutabletagrules/${first}`).send({ disabled: true })).status, 404);
      assert.equal((await api('get', '/projects/rel/immutabletagrules')).headers['x-total-count'], '1');
      await clearRules('rel');
    });

    test('bad rules are a 400 naming the field; a 16th rule is refused; unknown ids and projects are 404', async () => {
      await clearRules('rel');
      const bad = async (body: object, field: RegExp) => {
        const res = await api('post', '/projects/rel/immutabletagrules').send(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.match(res.body.errors[0].message, field);
      };
      const sel = (over: object) => ({ tag_selectors: [{ kind: 'doublestar', decoration: 'matches', pattern: 'v*', ...over }] });
      await bad(rule('v*', '**', sel({ kind: 'regex' })), /^tag_selectors\.0\.kind/);
      await bad(rule('v*', '**', sel({ decoration: 'repoMatches' })), /^tag_selectors\.0\.decoration/);
      await bad(rule('v*', '**', sel({ pattern: '' })), /^tag_selectors\.0\.pattern/);
      await bad(rule('{v*'), /^tag_selectors\.0\.pattern: malformed/);
      await bad(rule('v*', '{app'), /^scope_selectors\.repository\.0\.pattern: malformed/);
      await bad(rule('v*', '**', { scope_selectors: { repository: [{ kind: 'doublestar', decoration: 'matches', pattern: '**' }] } }), /^scope_selectors\.repository\.0\.decoration/);
      await bad(rule('v*', '**', { scope_selectors: { namespace: [{ kind: 'doublestar', decoration: 'repoMatches', pattern: '**' }] } }), /^scope_selectors\.namespace/);
      await bad(rule('v*', '**', { tag_selectors: [] }), /^tag_selectors: at least one/);
      await bad(rule('v*', '**', { priority: 'high' }), /^priority/);
      await bad(rule('v*', '**', { priority: 1.5 }), /^priority/);
      await bad(rule('v*', '**', { params: 'x' }), /^params/);
      await bad(rule('v*', '**', { disabled: 'no' }), /^disabled/);
      await bad(rule('v*', '**', { action: 'retain' }), /^action/);
      await bad({ disabled: false }, /^tag_selectors/);
      assert.equal((await api('get', '/projects/rel/immutabletagrules')).headers['x-total-count'], '0');
      for (let i = 0; i < 15; i++) await addRule('rel', rule(`v${i}.*`));
      const sixteenth = await api('post', '/projects/rel/immutabletagrules').send(rule('v15.*'));
      assert.equal(sixteenth.status, 400);
      assert.match(sixteenth.body.errors[0].message, /at most 15/);
      await clearRules('rel');
      assert.equal((await api('post', '/projects/nope/immutabletagrules').send(rule('v*'))).status, 404);
      assert.equal((await api('put', '/projects/rel/immutabletagrules/2147483647').send({ disabled: true })).status, 404);
      assert.equal((await api('delete', '/projects/rel/immutabletagrules/99999')).status, 404);
      assert.equal((await api('delete', '/projects/rel/immutabletagrules/99999999999')).status, 400);
    });

    test('project admins, maintainers and robots with the permission manage rules; developers, guests, other robots and anonymous callers do not', async () => {
      await clearRules('rel');
      const id = await addRule('rel', rule('v*'));
      for (const who of ['dev', 'guest']) {
        const auth = basic(who, PW);
        assert.equal((await api('get', '/projects/rel/immutabletagrules', auth)).status, 403, who);
        assert.equal((await api('post', '/projects/rel/immutabletagrules', auth).send(rule('x*'))).status, 403, who);
        assert.equal((await api('put', `/projects/rel/immutabletagrules/${id}`, auth).send({ disabled: true })).status, 403, who);
        assert.equal((await api('delete', `/projects/rel/immutabletagrules/${id}`, auth)).status, 403, who);
      }
      assert.equal((await api('get', '/projects/rel/immutabletagrules', robotPlain)).status, 403);
      assert.equal((await api('post', '/projects/rel/immutabletagrules', robotPlain).send(rule('x*'))).status, 403);
      assert.equal((await api('get', '/projects/rel/immutabletagrules', null)).status, 401);
      assert.equal((await api('post', '/projects/rel/immutabletagrules', null).send(rule('x*'))).status, 401);
      assert.equal((await api('delete', `/projects/rel/immutabletagrules/${id}`, null)).status, 401);
      // a private project the caller is no member of does not exist for it
      assert.equal((await api('get', '/projects/other/immutabletagrules', basic('dev', PW))).status, 404);
      for (const who of [basic('padmin', PW), basic('maint', PW), robotRules]) {
        assert.equal((await api('get', '/projects/rel/immutabletagrules', who)).status, 200);
        const mine = await addRule('rel', rule('only-*'), who);
        assert.equal((await api('put', `/projects/rel/immutabletagrules/${mine}`, who).send({ disabled: true })).status, 200);
        assert.equal((await api('delete', `/projects/rel/immutabletagrules/${mine}`, who)).status, 200);
      }
      assert.equal((await ruleIds('rel')).length, 1);
      await clearRules('rel');
    });

    test("a rule is reached only through its own project's path", async () => {
      await clearRules('rel');
      const id = await addRule('rel', rule('v*'));
      const padmin = basic('padmin', PW);
      assert.equal((await api('put', `/projects/other/immutabletagrules/${id}`, padmin).send({ disabled: true })).status, 404);
      assert.equal((await api('delete', `/projects/other/immutabletagrules/${id}`, padmin)).status, 404);
      assert.equal((await api('get', '/projects/other/immutabletagrules', padmin)).headers['x-total-count'], '0');
      // a maintainer of rel who is nothing in "other" cannot reach other's rules through rel either
      const otherRule = await addRule('other', rule('v*'));
      assert.equal((await api('delete', `/projects/rel/immutabletagrules/${otherRule}`, basic('maint', PW))).status, 404);
      assert.deepEqual(await ruleIds('other'), [otherRule]);
      assert.equal((await api('get', '/projects/rel/immutabletagrules')).body[0].disabled, false);
      await clearRules('rel');
      await clearRules('other');
    });
  });

  describe('enforcement', () => {
    test('an immutable tag is not overwritten (DENIED), re-pushing its digest is fine, a new matching tag may be created', async () => {
      await clearRules('rel');
      const v1 = await oci.pushImage('rel/app/api', 'v1', 1);
      const other = await oci.pushImage('rel/app/api', 'scratch', 2);
      // before any rule, v1 can be moved (and back)
      assert.equal((await oci.putManifest('rel/app/api', 'v1', other.raw)).status, 201);
      assert.equal((await oci.putManifest('rel/app/api', 'v1', v1.raw)).status, 201);
      await addRule('rel', rule('v*'));
      const refused = await oci.putManifest('rel/app/api', 'v1', other.raw);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.errors[0].code, 'DENIED');
      assert.match(refused.body.errors[0].message, /The tag rel\/app\/api:v1 is immutable, cannot be overwritten/);
      const still = await oci.get('/v2/rel/app/api/manifests/v1').set('Accept', 'application/vnd.oci.image.manifest.v1+json');
      assert.equal(still.headers['docker-content-digest'], v1.digest);
      assert.equal((await oci.putManifest('rel/app/api', 'v1', v1.raw)).status, 201);
      // a robot with push rights is refused alike
      assert.equal((await t.request.put('/v2/rel/app/api/manifests/v1').set('Authorization', robotPlain).set('Content-Type', 'application/vnd.oci.image.manifest.v1+json').send(other.raw.toString())).status, 403);
      // a new tag that matches may be created, and is immutable from then on
      assert.equal((await oci.putManifest('rel/app/api', 'v2', other.raw)).status, 201);
      assert.equal((await oci.putManifest('rel/app/api', 'v2', v1.raw)).status, 403);
      // the Harbor API's tag creation of a new tag is fine too
      assert.equal((await api('post', `/projects/rel/repositories/app%252Fapi/artifacts/${v1.digest}/tags`).send({ name: 'v3' })).status, 201);
      // a tag the rule does not match moves freely
      assert.equal((await oci.putManifest('rel/app/api', 'scratch', v1.raw)).status, 201);
    });

    test('an immutable tag is not deleted, nor the artifact carrying it, nor its repository (/v2 and the Harbor API)', async () => {
      await clearRules('rel');
      const img = await oci.pushImage('rel/keep', 'v1', 3);
      const loose = await oci.pushImage('rel/keep', 'latest', 4);
      await addRule('rel', rule('v*'));
      const byTag = await oci.delete('/v2/rel/keep/manifests/v1');
      assert.equal(byTag.status, 403);
      assert.equal(byTag.body.errors[0].code, 'DENIED');
      assert.match(byTag.body.errors[0].message, /immutable/);
      const byDigest = await oci.delete(`/v2/rel/keep/manifests/${img.digest}`);
      assert.equal(byDigest.status, 403);
      assert.equal(byDigest.body.errors[0].code, 'DENIED');
      assert.equal((await api('delete', '/projects/rel/repositories/keep/artifacts/v1/tags/v1')).status, 403);
      assert.equal((await api('delete', `/projects/rel/repositories/keep/artifacts/${img.digest}`)).status, 403);
      assert.equal((await api('delete', '/projects/rel/repositories/keep/artifacts/v1')).status, 403);
      assert.equal((await api('delete', '/projects/rel/repositories/keep')).status, 403);
      assert.equal((await oci.get('/v2/rel/keep/manifests/v1')).status, 200);
      // another tag on the same artifact may go; the artifact may not (it still carries v1)
      assert.equal((await api('post', `/projects/rel/repositories/keep/artifacts/${img.digest}/tags`).send({ name: 'extra' })).status, 201);
      assert.equal((await oci.delete('/v2/rel/keep/manifests/extra')).status, 202);
      // unprotected content goes as before; a tag that does not exist is still unknown
      assert.equal((await oci.delete(`/v2/rel/keep/manifests/${loose.digest}`)).status, 202);
      assert.equal((await oci.delete('/v2/rel/keep/manifests/v9')).status, 404);
    });

    test('excluded tags and repositories, and disabled rules, protect nothing; a deleted rule stops protecting', async () => {
      await clearRules('rel');
      const a = await oci.pushImage('rel/svc/web', 'v1', 5);
      const b = await oci.pushImage('rel/svc/web', 'v1-rc', 6);
      const c = await oci.pushImage('rel/tmp/web', 'v1', 7);
      const d = await oci.pushImage('rel/tmp/web', 'next', 10);
      const id = await addRule('rel', {
        ...rule('v*'),
        tag_selectors: [{ kind: 'doublestar', decoration: 'matches', pattern: 'v*' }, { kind: 'doublestar', decoration: 'excludes', pattern: '*-rc' }],
        scope_selectors: { repository: [{ kind: 'doublestar', decoration: 'repoExcludes', pattern: 'tmp/**' }] },
      });
      assert.equal((await oci.putManifest('rel/svc/web', 'v1', b.raw)).status, 403);
      assert.equal((await oci.putManifest('rel/svc/web', 'v1-rc', a.raw)).status, 201); // excluded tag
      assert.equal((await oci.putManifest('rel/tmp/web', 'v1', d.raw)).status, 201); // excluded repository
      // the scope is the name inside the project: "rel/**" names no repository
      const scoped = await addRule('rel', rule('w*', 'rel/**'));
      await oci.pushImage('rel/svc/web', 'w1', 8);
      assert.equal((await oci.putManifest('rel/svc/web', 'w1', a.raw)).status, 201);
      assert.equal((await api('delete', `/projects/rel/immutabletagrules/${scoped}`)).status, 200);
      // disabled: not enforced; enabled again: enforced
      assert.equal((await api('put', `/projects/rel/immutabletagrules/${id}`).send({ disabled: true })).status, 200);
      assert.equal((await oci.putManifest('rel/svc/web', 'v1', b.raw)).status, 201);
      assert.equal((await api('put', `/projects/rel/immutabletagrules/${id}`).send({ disabled: false })).status, 200);
      assert.equal((await oci.putManifest('rel/svc/web', 'v1', a.raw)).status, 403);
      // deleted: the tag moves and goes again
      assert.equal((await api('delete', `/projects/rel/immutabletagrules/${id}`)).status, 200);
      assert.equal((await oci.putManifest('rel/svc/web', 'v1', a.raw)).status, 201);
      assert.equal((await oci.delete('/v2/rel/svc/web/manifests/v1')).status, 202);
      assert.equal((await oci.putManifest('rel/tmp/web', 'v1', c.raw)).status, 201);
      assert.equal((await oci.delete(`/v2/rel/tmp/web/manifests/${c.digest}`)).status, 202);
    });

    test("replication's local end obeys the rules too (it writes and deletes through the same registry service)", async () => {
      await clearRules('rel');
      const kept = await oci.pushImage('rel/mirror', 'v1', 11);
      const other = await oci.pushImage('rel/mirror', 'next', 12);
      await addRule('rel', rule('v*'));
      const end = new LocalEnd(t.berth.registry, async () => undefined);
      const denied = (e: unknown) => e instanceof AppError && e.code === 'DENIED' && /immutable/.test(e.message);
      await assert.rejects(end.putManifest('rel/mirror', 'v1', other.raw, OCI_MANIFEST), denied);
      assert.equal(await end.putManifest('rel/mirror', 'v1', kept.raw, OCI_MANIFEST), kept.digest);
      await assert.rejects(end.deleteManifest('rel/mirror', kept.digest), denied);
      assert.equal(await end.deleteManifest('rel/mirror', other.digest), true);
      await clearRules('rel');
    });

    test('artifacts and tags answer immutable: true for immutable tags', async () => {
      await clearRules('rel');
      const img = await oci.pushImage('rel/shown', 'v1', 9);
      assert.equal((await oci.putManifest('rel/shown', 'latest', img.raw)).status, 201);
      const before = await api('get', '/projects/rel/repositories/shown/artifacts?with_tag=true');
      assert.deepEqual(before.body[0].tags.map((x: { immutable: boolean }) => x.immutable), [false, false]);
      await addRule('rel', rule('v*'));
      const list = await api('get', '/projects/rel/repositories/shown/artifacts?with_tag=true');
      const flags = Object.fromEntries(list.body[0].tags.map((x: { name: string; immutable: boolean }) => [x.name, x.immutable]));
      assert.deepEqual(flags, { latest: false, v1: true });
      const one = await api('get', '/projects/rel/repositories/shown/artifacts/latest');
      assert.deepEqual(Object.fromEntries(one.body.tags.map((x: { name: string; immutable: boolean }) => [x.name, x.immutable])), { latest: false, v1: true });
      const tags = await api('get', `/projects/rel/repositories/shown/artifacts/${img.digest}/tags`);
      assert.deepEqual(Object.fromEntries(tags.body.map((x: { name: string; immutable: boolean }) => [x.name, x.immutable])), { latest: false, v1: true });
      await clearRules('rel');
    });
  });
});

describe('immutable tag rules on two nodes (PostgreSQL)', { skip: missingPostgres() }, () => {
  let pgServer: TestPostgres;
  let a: TestApp;
  let b: TestApp;
  let storageDir: string;

  before(async () => {
    pgServer = await startPostgres();
    const url = await pgServer.createDatabase();
    storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-immutable-storage-'));
    const env = { BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: 'immutable-tags-test-secret-key-0123456789' };
    a = await makeApp(env, { auth: 'basic', policy: undefined, driver: new FsDriver(storageDir) });
    b = await makeApp(env, { auth: 'basic', policy: undefined, driver: new FsDriver(storageDir) });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    if (storageDir) fs.rmSync(storageDir, { recursive: true, force: true });
    await pgServer?.stop();
  });

  test('a rule added on node A is enforced by node B within 2 s (and its removal too)', async () => {
    const onA = new Oci(a.request, a.adminAuth);
    const onB = new Oci(b.request, b.adminAuth);
    assert.equal((await a.request.post('/api/v2.0/projects').set('Authorization', a.adminAuth).send({ project_name: 'prod' })).status, 201);
    const x = await onB.pushImage('prod/app', 'v1', 1);
    const y = await onB.pushImage('prod/app', 'other', 2);
    // node B has read the project's (empty) rules: moving v1 there works
    assert.equal((await onB.putManifest('prod/app', 'v1', y.raw)).status, 201);
    const created = await a.request.post('/api/v2.0/projects/prod/immutabletagrules').set('Authorization', a.adminAuth).send(rule('v*'));
    assert.equal(created.status, 201);
    // Until node B hears of the rule a push moves the tag; alternate digests so that every try is an overwrite.
    let current = y;
    let refused = false;
    const deadline = Date.now() + 2000;
    while (!refused) {
      const next = current === x ? y : x;
      const res = await onB.putManifest('prod/app', 'v1', next.raw);
      if (res.status === 403) {
        assert.equal(res.body.errors[0].code, 'DENIED');
        refused = true;
      } else {
        assert.equal(res.status, 201);
        current = next;
        if (Date.now() > deadline) assert.fail('node B did not enforce the rule within 2 s');
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    assert.equal((await onB.delete('/v2/prod/app/manifests/v1')).status, 403);
    const id = Number(String(created.headers.location).split('/').pop());
    assert.equal((await a.request.delete(`/api/v2.0/projects/prod/immutabletagrules/${id}`).set('Authorization', a.adminAuth)).status, 200);
    const deadline2 = Date.now() + 2000;
    for (;;) {
      const res = await onB.delete('/v2/prod/app/manifests/v1');
      if (res.status === 202) break;
      assert.equal(res.status, 403);
      if (Date.now() > deadline2) assert.fail('node B still enforced the deleted rule after 2 s');
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal((await onA.get('/v2/prod/app/manifests/v1')).status, 404);
  });
});
