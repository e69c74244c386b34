// Tag retention through the Harbor API (/retentions): who may manage it, what a dry run reports,
// what a real run deletes (through the same path as the API, so immutable tags stay), the runs'
// history, tasks and logs; on SQLite and on PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { Oci } from '../helpers/oci.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';
import { assertHarborShape } from '../helpers/harbor-shapes.ts';
import { ArtifactStore } from '../../src/db/artifact-store.ts';
import { ProjectStore } from '../../src/db/project-store.ts';
import { RetentionStore } from '../../src/db/retention-store.ts';
import { RetentionService } from '../../src/services/retention.ts';

const PW = 'Passw0rd!x';

const sel = (decoration: string, pattern: string, extras?: string) => ({ kind: 'doublestar', decoration, pattern, ...(extras ? { extras } : {}) });
const rule = (template: string, n: number | null, tags: ReturnType<typeof sel>, repos = '**') => ({
  disabled: false,
  action: 'retain',
  template,
  params: n === null ? {} : { [template]: n },
  tag_selectors: [tags],
  scope_selectors: { repository: [sel('repoMatches', repos)] },
});

for (const engine of [
  { name: 'sqlite', skip: false as string | false },
  { name: 'postgresql', skip: missingPostgres() },
]) {
  describe(`tag retention on ${engine.name}`, { skip: engine.skip }, () => {
    let pg: TestPostgres | undefined;
    let t: TestApp;
    let oci: Oci;
    let projectId: number;
    let otherId: number;
    let policyId: number;
    const pushed: Record<string, string> = {};
    const api = (method: 'get' | 'post' | 'put' | 'delete' | 'patch', p: string, auth: string | null = t.adminAuth) => {
      const r = t.request[method](`/api/v2.0${p}`);
      return auth ? r.set('Authorization', auth) : r;
    };
    const tags = async (repo: string) => ((await oci.get(`/v2/${repo}/tags/list`)).body.tags ?? []).sort();
    /** Waits for the execution to end; its final row. */
    const finished = async (pid: number, eid: number) => {
      for (let i = 0; i < 400; i++) {
        const list = (await api('get', `/retentions/${pid}/executions?page_size=100`)).body as { id: number; status: string }[];
        const e = list.find((x) => x.id === eid);
        if (e && e.status !== 'InProgress') return e;
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.fail(`execution ${eid} did not end`);
    };
    const run = async (dryRun: boolean) => {
      const res = await api('post', `/retentions/${policyId}/executions`).send({ dry_run: dryRun });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const eid = Number(/\/executions\/(\d+)$/.exec(res.headers.location)![1]);
      return finished(policyId, eid);
    };

    before(async () => {
      const env: Record<string, string> = {};
      if (engine.name === 'postgresql') {
        pg = await startPostgres();
        env.BERTH_DATABASE_URL = await pg.createDatabase();
      }
      t = await makeApp(env, REAL_ACCESS);
      oci = new Oci(t.request, t.adminAuth);
      for (const [name, pub] of [['keep', false], ['mine', false]] as const) assert.equal((await api('post', '/projects').send({ project_name: name, metadata: { public: String(pub) } })).status, 201);
      projectId = (await api('get', '/projects/keep')).body.project_id;
      otherId = (await api('get', '/projects/mine')).body.project_id;
      for (const u of ['dev', 'guest', 'outsider']) assert.equal((await api('post', '/users').send({ username: u, password: PW })).status, 201);
      assert.equal((await api('post', '/projects/keep/members').send({ role_id: 2, member_user: { username: 'dev' } })).status, 201);
      assert.equal((await api('post', '/projects/keep/members').send({ role_id: 3, member_user: { username: 'guest' } })).status, 201);
      assert.equal((await api('post', '/projects/mine/members').send({ role_id: 1, member_user: { username: 'outsider' } })).status, 201);
      let seed = 600;
      for (const tag of ['v1', 'v2', 'v3', 'v4', 'v5', 'v6']) pushed[`app:${tag}`] = (await oci.pushImage('keep/app', tag, seed++)).digest;
      for (const tag of ['rel-1', 'rel-2']) pushed[`release:${tag}`] = (await oci.pushImage('keep/release', tag, seed++)).digest;
      for (const tag of ['x1', 'x2']) pushed[`other:${tag}`] = (await oci.pushImage('keep/other', tag, seed++)).digest;
      await oci.pushImage('mine/app', 'v1', seed++);
    });
    after(async () => {
      await t?.close();
      await pg?.stop();
    });

    test('metadata for signed-in callers; creating is for project members with the right, checked on the project by id', async () => {
      assert.equal((await api('get', '/retentions/metadatas', null)).status, 401);
      const meta = await api('get', '/retentions/metadatas', basic('guest', PW));
      assert.equal(meta.status, 200);
      assert.deepEqual(meta.body.templates.map((x: { rule_template: string }) => x.rule_template), ['latestPushedK', 'latestPulledN', 'nDaysSinceLastPush', 'nDaysSinceLastPull', 'always']);
      const body = {
        algorithm: 'or',
        rules: [rule('latestPushedK', 2, sel('matches', '**'), 'app'), rule('always', null, sel('matches', 'rel-*'))],
        trigger: { kind: 'Schedule', settings: { cron: '' } },
        scope: { level: 'project', ref: projectId },
      };
      assert.equal((await api('post', '/retentions', null).send(body)).status, 401);
      assert.equal((await api('post', '/retentions', basic('guest', PW)).send(body)).status, 403);
      // An admin of another project cannot reach this one (it looks like no project at all)...
      assert.equal((await api('post', '/retentions', basic('outsider', PW)).send(body)).status, 404);
      // ...not even by asking for the project by name through the header that switches names and ids.
      assert.equal((await api('post', '/retentions', basic('outsider', PW)).set('X-Is-Resource-Name', 'true').send(body)).status, 404);
      const created = await api('post', '/retentions', basic('dev', PW)).send(body); // Harbor lets developers manage retention
      assert.equal(created.status, 201, JSON.stringify(created.body));
      policyId = Number(/\/retentions\/(\d+)$/.exec(created.headers.location)![1]);
      assert.equal((await api('get', '/projects/keep')).body.metadata.retention_id, String(policyId));
      assert.equal((await api('post', '/retentions').send(body)).status, 409, 'one policy per project');
      const got = await api('get', `/retentions/${policyId}`, basic('guest', PW));
      assert.equal(got.status, 403, 'guests have no retention rights');
      const mine = await api('get', `/retentions/${policyId}`);
      assert.equal(mine.status, 200);
      assert.deepEqual(mine.body.scope, { level: 'project', ref: projectId });
      assert.deepEqual(mine.body.rules.map((r: { id: number; template: string }) => [r.id, r.template]), [[1, 'latestPushedK'], [2, 'always']]);
      // Field by field against Harbor's definitions.
      assertHarborShape('RetentionPolicy', mine.body);
      assertHarborShape('RetentionRule', mine.body.rules[0]);
      assertHarborShape('RetentionSelector', mine.body.rules[0].tag_selectors[0]);
      assertHarborShape('RetentionRuleTrigger', mine.body.trigger);
      assertHarborShape('RetentionPolicyScope', mine.body.scope);
      assertHarborShape('RetentionMetadata', meta.body);
      assertHarborShape('RetentionRuleMetadata', meta.body.templates[0]);
      assertHarborShape('RetentionSelectorMetadata', meta.body.tag_selectors[0]);
      assert.equal((await api('get', `/retentions/${policyId}`, basic('outsider', PW))).status, 404);
      assert.equal((await api('get', '/retentions/999999')).status, 404);
      assert.equal((await api('get', '/retentions/999999', null)).status, 401);
    });

    test('robots: one without tag-retention rights is refused; one with them reads and runs, but only in its project', async () => {
      const robot = async (name: string, access: { resource: string; action: string }[]) => {
        const res = await api('post', '/robots').send({ name, level: 'project', duration: -1, permissions: [{ kind: 'project', namespace: 'keep', access }] });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return basic(res.body.name, res.body.secret);
      };
      const plain = await robot('ret-plain', [{ resource: 'repository', action: 'pull' }]);
      const keeper = await robot('ret-keeper', ['read', 'list', 'operate'].map((action) => ({ resource: 'tag-retention', action })));
      // It may not even read the (private) project: the policy looks like none at all.
      assert.equal((await api('get', `/retentions/${policyId}`, plain)).status, 404);
      assert.equal((await api('post', `/retentions/${policyId}/executions`, plain).send({ dry_run: true })).status, 404);
      assert.equal((await api('get', `/retentions/${policyId}`, keeper)).status, 200);
      assert.equal((await api('get', `/retentions/${policyId}/executions`, keeper)).status, 200);
      assert.equal((await api('put', `/retentions/${policyId}`, keeper).send({ rules: [], scope: { level: 'project', ref: projectId } })).status, 403, 'no update right');
      const other = { algorithm: 'or', rules: [], trigger: { kind: 'Schedule', settings: { cron: '' } }, scope: { level: 'project', ref: otherId } };
      assert.equal((await api('post', '/retentions', keeper).send(other)).status, 404, 'another project is not its own');
    });

    test('bad policies are refused naming the field', async () => {
      const base = { algorithm: 'or', trigger: { kind: 'Schedule', settings: { cron: '' } }, scope: { level: 'project', ref: otherId } };
      const refused = async (rules: unknown[], field: RegExp, extra: object = {}) => {
        const res = await api('post', '/retentions').send({ ...base, rules, ...extra });
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.match(res.body.errors[0].message, field);
      };
      await refused([rule('keepEverything', 1, sel('matches', '**'))], /rules\[0\]\.template/);
      await refused([rule('latestPushedK', -1, sel('matches', '**'))], /rules\[0\]\.params\.latestPushedK/);
      await refused([rule('latestPushedK', 1, sel('sometimes', '**'))], /tag_selectors\[0\]\.decoration/);
      await refused([rule('latestPushedK', 1, sel('matches', '{unclosed'))], /tag_selectors\[0\]\.pattern/);
      await refused([rule('latestPushedK', 1, sel('matches', '**', 'not json'))], /extras/);
      await refused(Array.from({ length: 16 }, () => rule('always', null, sel('matches', '**'))), /at most 15/);
      await refused([], /trigger\.settings\.cron/, { trigger: { kind: 'Schedule', settings: { cron: '* * * * * *' } } });
      await refused([], /trigger\.settings\.cron/, { trigger: { kind: 'Schedule', settings: { cron: '0 0 3 * *' } } });
      await refused([], /scope\.ref/, { scope: { level: 'project' } });
      assert.equal((await api('post', '/retentions').send({ ...base, rules: 'all' })).status, 400);
      assert.equal((await api('put', `/retentions/${policyId}`).send({ ...base, rules: [] })).status, 400, 'a policy stays with its project');
    });

    test('a dry run reports what it would delete and deletes nothing', async () => {
      const e = await run(true);
      assert.equal(e.status, 'Succeed');
      const tasks = (await api('get', `/retentions/${policyId}/executions/${(e as { id: number }).id}/tasks`)).body as { id: number; repository: string; total: number; retained: number; status: string }[];
      assert.deepEqual(
        tasks.map((x) => [x.repository, x.total, x.retained, x.status]),
        [
          ['keep/app', 6, 2, 'Succeed'],
          ['keep/other', 2, 0, 'Succeed'],
          ['keep/release', 2, 2, 'Succeed'],
        ],
      );
      assertHarborShape('RetentionExecution', e as Record<string, unknown>);
      assertHarborShape('RetentionExecutionTask', tasks[0] as unknown as Record<string, unknown>);
      const log = await api('get', `/retentions/${policyId}/executions/${(e as { id: number }).id}/tasks/${tasks[0].id}`);
      assert.equal(log.status, 200);
      assert.match(log.headers['content-type'], /text\/plain/);
      assert.match(log.text, new RegExp(`would delete ${pushed['app:v1']} \\[v1\\]`));
      assert.match(log.text, new RegExp(`kept ${pushed['app:v6']} \\[v6\\] by rule 1`));
      assert.deepEqual(await tags('keep/app'), ['v1', 'v2', 'v3', 'v4', 'v5', 'v6']);
      assert.deepEqual(await tags('keep/other'), ['x1', 'x2']);
    });

    test('a real run deletes what no rule keeps, but never an immutable tag; other projects are untouched', async () => {
      const imm = await api('post', '/projects/keep/immutabletagrules').send({
        disabled: false,
        action: 'immutable',
        template: 'immutable_template',
        tag_selectors: [sel('matches', 'v1')],
        scope_selectors: { repository: [sel('repoMatches', 'app')] },
      });
      assert.equal(imm.status, 201, JSON.stringify(imm.body));
      const e = (await run(false)) as { id: number; status: string; dry_run: boolean; trigger: string };
      assert.deepEqual([e.status, e.dry_run, e.trigger], ['Succeed', false, 'MANUAL']);
      assert.deepEqual(await tags('keep/app'), ['v1', 'v5', 'v6']);
      assert.deepEqual(await tags('keep/release'), ['rel-1', 'rel-2']);
      assert.deepEqual(await tags('keep/other'), []);
      assert.deepEqual(await tags('mine/app'), ['v1']);
      assert.equal((await oci.get(`/v2/keep/app/manifests/${pushed['app:v2']}`)).status, 404);
      const tasks = (await api('get', `/retentions/${policyId}/executions/${e.id}/tasks`)).body as { id: number; repository: string; retained: number }[];
      const app = tasks.find((x) => x.repository === 'keep/app')!;
      assert.equal(app.retained, 3);
      const log = (await api('get', `/retentions/${policyId}/executions/${e.id}/tasks/${app.id}`)).text;
      assert.match(log, new RegExp(`kept ${pushed['app:v1']} \\[v1\\]: .*immutable`));
      assert.match(log, new RegExp(`deleted ${pushed['app:v2']} \\[v2\\]`));
      // Runs newest first, with Harbor's paging headers.
      const list = await api('get', `/retentions/${policyId}/executions?page=1&page_size=1`);
      assert.equal(list.headers['x-total-count'], '2');
      assert.equal(list.body[0].id, e.id);
      assert.equal((await api('patch', `/retentions/${policyId}/executions/${e.id}`).send({ action: 'stop' })).status, 412, 'a finished run cannot be stopped');
      assert.equal((await api('get', `/retentions/${policyId}/executions/${e.id}/tasks/999999`)).status, 404);
      assert.equal((await api('get', `/retentions/${policyId}/executions/999999/tasks`)).status, 404);
    });

    test('a stop from another node ends a run between two deletions; nothing after it is deleted', async () => {
      // A second node's service on the same database, whose deletions wait until let go.
      let release: () => void = () => undefined;
      const deleted: string[] = [];
      const node2 = new RetentionService({
        store: new RetentionStore(t.berth.db),
        artifactStore: new ArtifactStore(t.berth.db),
        artifacts: {
          deleteArtifact: async (_repo: string, digest: string) => {
            deleted.push(digest);
            await new Promise<void>((r) => (release = r));
          },
        },
        projects: new ProjectStore(t.berth.db),
        log: { info: () => undefined, warn: () => undefined, error: () => undefined },
        node: 'node-2',
        heartbeatMs: 0,
      });
      let seed = 700;
      for (const tag of ['s1', 's2', 's3']) await oci.pushImage('keep/stoppable', tag, seed++);
      const body = { algorithm: 'or', rules: [rule('latestPushedK', 0, sel('matches', '**'), 'stoppable')], trigger: { kind: 'Schedule', settings: { cron: '' } } };
      assert.equal((await api('put', `/retentions/${policyId}`).send(body)).status, 200);
      const eid = await node2.trigger(policyId, false);
      for (let i = 0; i < 400 && !deleted.length; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(deleted.length, 1, 'the first deletion is under way');
      assert.equal((await api('post', `/retentions/${policyId}/executions`).send({ dry_run: true })).status, 409, 'one run of a policy at a time');
      assert.equal((await api('patch', `/retentions/${policyId}/executions/${eid}`).send({ action: 'stop' })).status, 200); // through node 1
      release();
      await node2.close();
      assert.equal(deleted.length, 1, 'nothing was deleted after the stop');
      const e = (await api('get', `/retentions/${policyId}/executions?page_size=100`)).body.find((x: { id: number }) => x.id === eid);
      assert.equal(e.status, 'Stopped');
      const task = (await api('get', `/retentions/${policyId}/executions/${eid}/tasks`)).body[0];
      assert.deepEqual([task.repository, task.status], ['keep/stoppable', 'Stopped']);
    });

    test('a schedule is saved and shown; deleting the policy clears the project\'s retention_id', async () => {
      const body = { algorithm: 'or', rules: [rule('always', null, sel('matches', '**'))], trigger: { kind: 'Schedule', settings: { cron: '0 0 3 * * *' } }, scope: { level: 'project', ref: projectId } };
      assert.equal((await api('put', `/retentions/${policyId}`, basic('guest', PW)).send(body)).status, 403);
      assert.equal((await api('put', `/retentions/${policyId}`).send(body)).status, 200);
      assert.equal((await api('get', `/retentions/${policyId}`)).body.trigger.settings.cron, '0 0 3 * * *');
      assert.equal((await api('delete', `/retentions/${policyId}`, basic('outsider', PW))).status, 404);
      assert.equal((await api('delete', `/retentions/${policyId}`)).status, 200);
      assert.equal((await api('get', `/retentions/${policyId}`)).status, 404);
      assert.equal((await api('get', '/projects/keep')).body.metadata.retention_id, undefined);
    });
  });
}
