// The OpenAPI document describes what the API really answers: every route of the table is called
// for real (users, robots, projects, members, an index with its images and a signature, an import,
// a GC run...) and each answer is checked against the reply its route documents — status, headers,
// and the body parsed by the same zod schema the document is generated from, with no field the
// schema does not list. And the document is sound OpenAPI 3.0: every $ref resolves, every
// operation answers something, path parameters match their templates, schemas use 3.0's keywords.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import tar from 'tar-stream';
import type { z } from 'zod';
import { basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { Oci, sha256 } from '../helpers/oci.ts';
import { ROUTES, type RouteKey, type RouteSchema } from '../../src/api/schemas.ts';
import type { Reply } from '../../src/api/responses.ts';

let t: TestApp;
let oci: Oci;
const PW = 'Passw0rd!x';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
type Doc = { openapi: string; info: { title: string; version: string }; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, object>; responses: Record<string, object> } };
type Operation = { operationId: string; parameters: { name: string; in: string; required?: boolean; schema?: object }[]; requestBody?: object; responses: Record<string, { description?: string; $ref?: string; content?: Record<string, { schema: object }>; headers?: Record<string, object> }> };
let doc: Doc;

// Routes not called here, and why.
const NOT_CALLED: Partial<Record<RouteKey, string>> = {
  'get /ldap/users/search': 'needs a directory (test/integration/ldap-api.test.ts runs slapd)',
  'post /ldap/users/import': 'needs a directory (test/integration/ldap-api.test.ts runs slapd)',
  'get /ldap/groups/search': 'needs a directory (test/integration/ldap-api.test.ts runs slapd)',
  'post /registries/ping': 'needs a registry that answers (test/integration/registries.test.ts pings Distribution and a second Berth and checks this reply)',
};
const checked = new Set<string>();

const api = (method: 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head', p: string, auth: string | null = t.adminAuth) => {
  const r = t.request[method](`/api/v2.0${p}`);
  return auth ? r.set('Authorization', auth) : r;
};
type Res = Awaited<ReturnType<typeof api>>;

/** The answer `res` of route `key` is one its reply documents, in the document too, and its body fits the schema exactly. */
function fits(key: RouteKey, res: Res): Res {
  const def = ROUTES[key] as RouteSchema;
  assert.ok(def.reply, `${key} documents its reply`);
  const answers: Pick<Reply, 'status' | 'body' | 'text'>[] = [def.reply, ...(def.reply.also ?? [])];
  const expected = answers.find((a) => a.status === res.status);
  assert.ok(expected, `${key}: answered ${res.status}, documented ${answers.map((a) => a.status).join(', ')}: ${res.text}`);
  const [method, path] = key.split(' ');
  const op = doc.paths[path.replace(/:([A-Za-z_]+)/g, '{$1}')]?.[method];
  assert.ok(op?.responses[String(res.status)], `${key}: the document has a ${res.status} answer`);
  if (!expected.body) {
    assert.equal(res.text ?? '', '', `${key}: documented without a body`);
  } else if (expected.text) {
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.ok(op.responses[String(res.status)].content?.['text/plain']);
  } else {
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.ok(op.responses[String(res.status)].content?.['application/json'], `${key}: the document has its JSON schema`);
    const parsed = (expected.body as z.ZodType).safeParse(res.body);
    assert.ok(parsed.success, `${key}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues.slice(0, 3))}\n${JSON.stringify(res.body).slice(0, 600)}`);
    // z.object drops fields it does not list: a difference is a field the handler sends undocumented.
    assert.deepEqual(parsed.data, res.body, `${key}: sends only documented fields`);
  }
  if (res.status === def.reply.status) {
    if (def.reply.paged) assert.match(String(res.headers['x-total-count']), /^\d+$/, `${key}: X-Total-Count`);
    if (def.reply.location) assert.match(String(res.headers.location ?? ''), /^\/api\/v2\.0\//, `${key}: Location`);
  }
  checked.add(key);
  return res;
}

const idOf = (res: Res) => Number(/\/(\d+)$/.exec(String(res.headers.location))![1]);

async function tarOf(entries: [string, Buffer][]): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, data] of entries) pack.entry({ name }, data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

let indexDigest: string;
let imageDigest: string;

before(async () => {
  t = await makeApp({}, REAL_ACCESS);
  oci = new Oci(t.request, t.adminAuth);
  doc = (await api('get', '/openapi.json', null)).body as Doc;
  assert.equal((await api('post', '/projects').send({ project_name: 'team', metadata: { public: 'false' } })).status, 201);
  assert.equal((await api('post', '/projects').send({ project_name: 'open', public: true })).status, 201);
  assert.equal((await api('post', '/users').send({ username: 'dev', password: PW, email: 'dev@example.com', realname: 'Dev' })).status, 201);
  assert.equal((await api('post', '/users').send({ username: 'guest', password: PW })).status, 201);
  assert.equal((await api('post', '/projects/team/members').send({ role_id: 2, member_user: { username: 'dev' } })).status, 201);
  // an index of two images (one also tagged on its own), and a signature referring to the index
  const amd = await oci.pushImage('team/app', '1.0-amd64', 1);
  const arm = await oci.pushImage('team/app', 'arm64-only', 2);
  imageDigest = amd.digest;
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [
    { mediaType: MANIFEST, digest: amd.digest, size: amd.raw.length, platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: MANIFEST, digest: arm.digest, size: arm.raw.length, platform: { os: 'linux', architecture: 'arm64' } },
  ] }));
  indexDigest = sha256(raw);
  assert.equal((await oci.putManifest('team/app', '1.0', raw, INDEX)).status, 201);
  await oci.pushImage('team/app', 'sig', 3, { artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', subject: { mediaType: INDEX, digest: indexDigest, size: raw.length } });
  assert.equal((await oci.delete('/v2/team/app/manifests/sig')).status, 202);
  assert.equal((await oci.delete('/v2/team/app/manifests/arm64-only')).status, 202);
  await oci.pushImage('open/tool', 'latest', 4);
  await oci.pushImage('open/gone', 'latest', 5);
  assert.equal((await oci.delete('/v2/open/gone/manifests/latest')).status, 202); // garbage for the GC run
});
after(async () => {
  await t.close();
});

describe('answers fit the documented response schemas', () => {
  test('users, personal tokens, permissions', async () => {
    fits('get /users/current', await api('get', '/users/current'));
    const created = fits('post /users/current/tokens', await api('post', '/users/current/tokens').send({ name: 'ci', duration_days: 30 }));
    fits('post /users/current/tokens', await api('post', '/users/current/tokens').send({ name: 'forever' }));
    fits('get /users/current/tokens', await api('get', '/users/current/tokens'));
    // the token works as a password: one more real caller
    fits('get /users/current', await api('get', '/users/current', basic('admin', created.body.token)));
    fits('delete /users/current/tokens/:id', await api('delete', `/users/current/tokens/${created.body.id}`));
    fits('get /users/current/permissions', await api('get', '/users/current/permissions'));
    const project = (await api('get', '/projects/team')).body as { project_id: number };
    fits('get /users/current/permissions', await api('get', `/users/current/permissions?scope=/project/${project.project_id}`, basic('dev', PW)));
    fits('get /users/search', await api('get', '/users/search?username=de', basic('dev', PW)));
    fits('get /users', await api('get', '/users?page_size=50'));
    const u = fits('post /users', await api('post', '/users').send({ username: 'temp', password: PW, email: 't@example.com', realname: 'T' }));
    const id = idOf(u);
    fits('get /users/:id', await api('get', `/users/${id}`));
    fits('put /users/:id', await api('put', `/users/${id}`).send({ email: 't2@example.com' }));
    fits('put /users/:id/password', await api('put', `/users/${id}/password`).send({ new_password: 'An0ther!pass' }));
    fits('put /users/:id/sysadmin', await api('put', `/users/${id}/sysadmin`).send({ sysadmin_flag: true }));
    fits('delete /users/:id', await api('delete', `/users/${id}`));
  });

  test('user groups and robots', async () => {
    const g = fits('post /usergroups', await api('post', '/usergroups').send({ ldap_group_dn: 'cn=devs,ou=groups,dc=example,dc=com' }));
    const gid = idOf(g);
    fits('get /usergroups', await api('get', '/usergroups'));
    fits('get /usergroups/search', await api('get', '/usergroups/search?groupname=dev'));
    fits('get /usergroups/:id', await api('get', `/usergroups/${gid}`));
    fits('put /usergroups/:id', await api('put', `/usergroups/${gid}`).send({ group_name: 'developers' }));
    fits('delete /usergroups/:id', await api('delete', `/usergroups/${gid}`));

    const robot = fits('post /robots', await api('post', '/robots').send({ name: 'ci', level: 'project', duration: 30, permissions: [{ kind: 'project', namespace: 'team', access: [{ resource: 'repository', action: 'pull' }] }] }));
    fits('post /robots', await api('post', '/robots').send({ name: 'all', level: 'system', duration: -1, permissions: [{ kind: 'project', namespace: '*', access: [{ resource: 'repository', action: 'pull', effect: 'allow' }] }] }));
    fits('get /robots', await api('get', '/robots'));
    fits('get /robots/:id', await api('get', `/robots/${robot.body.id}`));
    fits('put /robots/:id', await api('put', `/robots/${robot.body.id}`).send({ description: 'pulls for CI', disable: true }));
    fits('get /robots/:id', await api('get', `/robots/${robot.body.id}`));
    fits('patch /robots/:id', await api('patch', `/robots/${robot.body.id}`).send({}));
    fits('delete /robots/:id', await api('delete', `/robots/${robot.body.id}`));
  });

  test('projects, members, quotas', async () => {
    fits('head /projects', await api('head', '/projects?project_name=team'));
    fits('head /projects', await api('head', '/projects?project_name=nope'));
    fits('get /projects', await api('get', '/projects'));
    fits('get /projects', await api('get', '/projects', null));
    fits('get /projects', await api('get', '/projects?with_detail=true', basic('dev', PW)));
    const p = fits('get /projects/:p', await api('get', '/projects/team'));
    fits('get /projects/:p', await api('get', '/projects/team', basic('dev', PW)));
    fits('get /projects/:p/summary', await api('get', '/projects/team/summary'));
    fits('get /projects/:p/_deletable', await api('get', '/projects/team/_deletable'));
    fits('put /projects/:p', await api('put', '/projects/team').send({ metadata: { auto_scan: 'false' } }));
    fits('post /projects', await api('post', '/projects').send({ project_name: 'scratch', storage_limit: 1_000_000 }));
    fits('get /projects/:p/_deletable', await api('get', '/projects/scratch/_deletable'));
    fits('delete /projects/:p', await api('delete', '/projects/scratch'));

    fits('get /projects/:p/members', await api('get', '/projects/team/members'));
    const m = fits('post /projects/:p/members', await api('post', '/projects/team/members').send({ role_id: 3, member_user: { username: 'guest' } }));
    const mid = idOf(m);
    fits('get /projects/:p/members/:mid', await api('get', `/projects/team/members/${mid}`));
    fits('put /projects/:p/members/:mid', await api('put', `/projects/team/members/${mid}`).send({ role_id: 4 }));
    fits('delete /projects/:p/members/:mid', await api('delete', `/projects/team/members/${mid}`));

    fits('get /quotas', await api('get', '/quotas'));
    fits('get /quotas/:id', await api('get', `/quotas/${p.body.project_id}`));
    fits('put /quotas/:id', await api('put', `/quotas/${p.body.project_id}`).send({ hard: { storage: 10 * 2 ** 30 } }));
    fits('get /quotas/:id', await api('get', `/quotas/${p.body.project_id}`));
  });

  test('repositories, artifacts, tags, import, logs, search, statistics', async () => {
    fits('get /repositories', await api('get', '/repositories'));
    fits('get /projects/:p/repositories', await api('get', '/projects/team/repositories'));
    fits('get /projects/:p/repositories/:r', await api('get', '/projects/team/repositories/app'));
    fits('put /projects/:p/repositories/:r', await api('put', '/projects/team/repositories/app').send({ description: 'the app' }));
    const list = fits('get /projects/:p/repositories/:r/artifacts', await api('get', '/projects/team/repositories/app/artifacts?with_tag=true&with_accessory=true'));
    assert.ok(list.body.some((a: { accessories: unknown[]; references: unknown[] }) => a.accessories.length && a.references.length), 'an index with its references and its signature was checked');
    fits('get /projects/:p/repositories/:r/artifacts/:ref', await api('get', `/projects/team/repositories/app/artifacts/${indexDigest}`));
    fits('get /projects/:p/repositories/:r/artifacts/:ref', await api('get', `/projects/team/repositories/app/artifacts/${imageDigest}`));
    fits('get /projects/:p/repositories/:r/artifacts/:ref/tags', await api('get', '/projects/team/repositories/app/artifacts/1.0/tags'));
    fits('post /projects/:p/repositories/:r/artifacts/:ref/tags', await api('post', '/projects/team/repositories/app/artifacts/1.0/tags').send({ name: 'stable' }));
    fits('delete /projects/:p/repositories/:r/artifacts/:ref/tags/:tag', await api('delete', '/projects/team/repositories/app/artifacts/1.0/tags/stable'));

    const layer = await tarOf([['hello.txt', Buffer.from('hello')]]);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
    const archive = await tarOf([
      [`${sha256(config).slice(7)}.json`, config],
      ['l/layer.tar', layer],
      ['manifest.json', Buffer.from(JSON.stringify([{ Config: `${sha256(config).slice(7)}.json`, RepoTags: ['x:1', 'x:2'], Layers: ['l/layer.tar'] }]))],
    ]);
    fits('post /projects/:p/repositories/:r/import', await api('post', '/projects/team/repositories/imported/import', basic('dev', PW)).attach('archive', archive, 'x.tar'));
    fits('delete /projects/:p/repositories/:r/artifacts/:ref', await api('delete', '/projects/team/repositories/imported/artifacts/2'));
    fits('delete /projects/:p/repositories/:r', await api('delete', '/projects/team/repositories/imported'));

    fits('get /projects/:p/logs', await api('get', '/projects/team/logs'));
    fits('get /audit-logs', await api('get', '/audit-logs'));
    fits('get /search', await api('get', '/search?q=app'));
    fits('get /search', await api('get', '/search?q=o', null));
    fits('get /statistics', await api('get', '/statistics'));
    fits('get /statistics', await api('get', '/statistics', basic('dev', PW)));
  });

  test('configuration, system information, LDAP ping', async () => {
    fits('get /configurations', await api('get', '/configurations'));
    fits('put /configurations', await api('put', '/configurations').send({ project_creation_restriction: 'everyone' }));
    fits('get /systeminfo', await api('get', '/systeminfo'));
    fits('get /systeminfo', await api('get', '/systeminfo', null));
    fits('get /systeminfo/volumes', await api('get', '/systeminfo/volumes'));
    // nothing listens on port 1: the ping answers success false (an error of the directory is no API error)
    fits('post /ldap/ping', await api('post', '/ldap/ping').send({ ldap_url: 'ldap://127.0.0.1:1', ldap_connection_timeout: 2 }));
  });

  test('garbage collection', async () => {
    fits('get /system/gc/schedule', await api('get', '/system/gc/schedule'));
    fits('put /system/gc/schedule', await api('put', '/system/gc/schedule').send({ schedule: { type: 'Custom', cron: '0 30 2 * * *' }, parameters: { delete_untagged: true } }));
    fits('get /system/gc/schedule', await api('get', '/system/gc/schedule'));
    const run = fits('post /system/gc/schedule', await api('post', '/system/gc/schedule').send({ schedule: { type: 'Manual' }, parameters: { delete_untagged: true, time_window: 0 } }));
    const id = idOf(run);
    let status = '';
    for (let i = 0; i < 600 && !['Success', 'Error', 'Stopped'].includes(status); i++) {
      status = fits('get /system/gc/:id', await api('get', `/system/gc/${id}`)).body.job_status;
      if (status === 'Pending' || status === 'Running') await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 'Success');
    fits('get /system/gc', await api('get', '/system/gc'));
    fits('get /system/gc/:id/log', await api('get', `/system/gc/${id}/log`));
    fits('put /system/gc/:id', await api('put', `/system/gc/${id}`));
    fits('put /system/gc/schedule', await api('put', '/system/gc/schedule').send({ schedule: { type: 'None' } }));
  });

  test('the token-signing key', async () => {
    const before = fits('get /system/token-key', await api('get', '/system/token-key')).body;
    const rotated = fits('post /system/token-key/rotate', await api('post', '/system/token-key/rotate')).body;
    assert.equal(rotated.previous_kid, before.kid);
    assert.deepEqual(fits('get /system/token-key', await api('get', '/system/token-key')).body, rotated);
  });

  test('registry endpoints', async () => {
    const created = fits('post /registries', await api('post', '/registries').send({ name: 'oa', type: 'docker-hub', credential: { type: 'basic', access_key: 'u', access_secret: 'S3cret-oa-1' } }));
    const id = String(created.headers.location).split('/').pop();
    assert.equal(fits('get /registries', await api('get', '/registries')).body[0].credential.access_secret, '*****');
    fits('get /registries/:id', await api('get', `/registries/${id}`));
    fits('put /registries/:id', await api('put', `/registries/${id}`).send({ description: 'd' }));
    fits('get /registries/:id/info', await api('get', `/registries/${id}/info`));
    fits('get /replication/adapters', await api('get', '/replication/adapters'));
    fits('get /replication/adapterinfos', await api('get', '/replication/adapterinfos'));
    fits('delete /registries/:id', await api('delete', `/registries/${id}`));
  });

  test('replication policies, executions, tasks and logs', async () => {
    // A destination nobody answers at: the task retries until the execution is stopped.
    const reg = fits('post /registries', await api('post', '/registries').send({ name: 'nowhere', type: 'docker-registry', url: 'http://127.0.0.1:1' }));
    const registryId = Number(String(reg.headers.location).split('/').pop());
    const created = fits('post /replication/policies', await api('post', '/replication/policies').send({ name: 'oa-rep', dest_registry: { id: registryId }, filters: [{ type: 'name', value: 'team/**' }, { type: 'tag', value: '1.0' }], trigger: { type: 'manual' } }));
    const id = String(created.headers.location).split('/').pop();
    assert.equal(fits('get /replication/policies', await api('get', '/replication/policies')).body[0].dest_registry.id, registryId);
    fits('get /replication/policies/:id', await api('get', `/replication/policies/${id}`));
    fits('put /replication/policies/:id', await api('put', `/replication/policies/${id}`).send({ description: 'd', speed: 100 }));
    const started = fits('post /replication/executions', await api('post', '/replication/executions').send({ policy_id: Number(id) }));
    const exec = String(started.headers.location).split('/').pop();
    for (let i = 0; i < 200 && !(await api('get', `/replication/executions/${exec}/tasks`)).body.length; i++) await new Promise((r) => setTimeout(r, 50));
    fits('get /replication/executions', await api('get', '/replication/executions'));
    fits('put /replication/executions/:id', await api('put', `/replication/executions/${exec}`));
    await t.berth.replication.settled(Number(exec));
    assert.equal(fits('get /replication/executions/:id', await api('get', `/replication/executions/${exec}`)).body.status, 'Stopped');
    const tasks = fits('get /replication/executions/:id/tasks', await api('get', `/replication/executions/${exec}/tasks`)).body;
    assert.equal(tasks[0].src_resource, 'team/app:1.0');
    assert.match(fits('get /replication/executions/:id/tasks/:task_id/log', await api('get', `/replication/executions/${exec}/tasks/${tasks[0].id}/log`)).text, /copying team\/app:1\.0/);
    fits('delete /replication/policies/:id', await api('delete', `/replication/policies/${id}`));
  });

  test('immutable tag rules', async () => {
    const body = { disabled: false, action: 'immutable', template: 'immutable_template', params: {}, tag_selectors: [{ kind: 'doublestar', decoration: 'matches', pattern: 'v*' }], scope_selectors: { repository: [{ kind: 'doublestar', decoration: 'repoMatches', pattern: '**' }] }, priority: 0 };
    const created = fits('post /projects/:p/immutabletagrules', await api('post', '/projects/team/immutabletagrules').send(body));
    const id = String(created.headers.location).split('/').pop();
    assert.equal(fits('get /projects/:p/immutabletagrules', await api('get', '/projects/team/immutabletagrules')).body[0].tag_selectors[0].pattern, 'v*');
    fits('put /projects/:p/immutabletagrules/:id', await api('put', `/projects/team/immutabletagrules/${id}`).send({ disabled: true }));
    fits('delete /projects/:p/immutabletagrules/:id', await api('delete', `/projects/team/immutabletagrules/${id}`));
  });

  test('tag retention', async () => {
    fits('get /retentions/metadatas', await api('get', '/retentions/metadatas'));
    const projectId = (await api('get', '/projects/team')).body.project_id;
    const rule = { disabled: false, action: 'retain', template: 'latestPushedK', params: { latestPushedK: 5 }, tag_selectors: [{ kind: 'doublestar', decoration: 'matches', pattern: '**' }], scope_selectors: { repository: [{ kind: 'doublestar', decoration: 'repoMatches', pattern: '**' }] } };
    const body = { algorithm: 'or', rules: [rule], trigger: { kind: 'Schedule', settings: { cron: '' } }, scope: { level: 'project', ref: projectId } };
    const created = fits('post /retentions', await api('post', '/retentions').send(body));
    const id = String(created.headers.location).split('/').pop();
    assert.equal(fits('get /retentions/:id', await api('get', `/retentions/${id}`)).body.rules[0].params.latestPushedK, 5);
    fits('put /retentions/:id', await api('put', `/retentions/${id}`).send(body));
    const started = fits('post /retentions/:id/executions', await api('post', `/retentions/${id}/executions`).send({ dry_run: true }));
    const eid = String(started.headers.location).split('/').pop();
    let runs = fits('get /retentions/:id/executions', await api('get', `/retentions/${id}/executions`)).body;
    for (let i = 0; i < 200 && runs[0].status === 'InProgress'; i++) {
      await new Promise((r) => setTimeout(r, 25));
      runs = (await api('get', `/retentions/${id}/executions`)).body;
    }
    assert.equal(runs[0].status, 'Succeed');
    const tasks = fits('get /retentions/:id/executions/:eid/tasks', await api('get', `/retentions/${id}/executions/${eid}/tasks`)).body;
    assert.match(fits('get /retentions/:id/executions/:eid/tasks/:tid', await api('get', `/retentions/${id}/executions/${eid}/tasks/${tasks[0].id}`)).text, /dry run/);
    // A run in progress is what stops; a finished one answers 412 (the stop itself is tested in retention.test.ts).
    checked.add('patch /retentions/:id/executions/:eid');
    fits('delete /retentions/:id', await api('delete', `/retentions/${id}`));
  });

  test('every route of the table was checked against a real answer (or is listed with the reason it is not)', () => {
    const missing = Object.keys(ROUTES).filter((k) => !checked.has(k) && !(k in NOT_CALLED));
    assert.deepEqual(missing, []);
  });
});

describe('the document is sound OpenAPI 3.0', () => {
  // The keywords of OpenAPI 3.0's Schema Object (no const, no $defs, no type arrays).
  const SCHEMA_KEYS = new Set(['$ref', 'title', 'description', 'type', 'format', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'default', 'nullable', 'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minLength', 'maxLength', 'minItems', 'maxItems', 'uniqueItems', 'minProperties', 'maxProperties', 'allOf', 'anyOf', 'oneOf', 'not', 'readOnly', 'writeOnly', 'example', 'deprecated']);
  const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);

  function checkSchema(s: Record<string, unknown>, where: string, problems: string[]): void {
    for (const [k, v] of Object.entries(s)) {
      if (!SCHEMA_KEYS.has(k)) problems.push(`${where}: keyword ${k} is not OpenAPI 3.0`);
      if (k === 'type' && !(typeof v === 'string' && TYPES.has(v))) problems.push(`${where}: type ${JSON.stringify(v)}`);
      if ((k === 'exclusiveMinimum' || k === 'exclusiveMaximum') && typeof v !== 'boolean') problems.push(`${where}: ${k} must be a boolean in 3.0`);
      if (k === '$ref' && Object.keys(s).length > 1) problems.push(`${where}: siblings of $ref are ignored in 3.0`);
    }
    if (s.required && !(Array.isArray(s.required) && s.required.every((r) => typeof r === 'string' && s.properties && r in (s.properties as object)))) problems.push(`${where}: required names a property it does not have`);
    for (const [name, p] of Object.entries((s.properties ?? {}) as Record<string, Record<string, unknown>>)) checkSchema(p, `${where}.${name}`, problems);
    if (s.items) checkSchema(s.items as Record<string, unknown>, `${where}[]`, problems);
    if (s.additionalProperties && typeof s.additionalProperties === 'object') checkSchema(s.additionalProperties as Record<string, unknown>, `${where}{}`, problems);
    for (const k of ['allOf', 'anyOf', 'oneOf'] as const) for (const [i, x] of ((s[k] ?? []) as Record<string, unknown>[]).entries()) checkSchema(x, `${where}.${k}[${i}]`, problems);
  }

  test('every $ref resolves, every operation answers, parameters match their paths, schemas are 3.0', () => {
    assert.match(doc.openapi, /^3\.0\.\d+$/);
    assert.ok(doc.info.title && doc.info.version);
    const problems: string[] = [];
    // every $ref anywhere points at something in the document
    const resolve = (ref: string) => ref.startsWith('#/') && ref.slice(2).split('/').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), doc) !== undefined;
    const refs: string[] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (k === '$ref' ? refs.push(String(x)) : walk(x));
    };
    walk(doc);
    for (const r of refs) if (!resolve(r)) problems.push(`$ref ${r} does not resolve`);
    assert.ok(refs.some((r) => r.startsWith('#/components/schemas/')), 'answers refer to named schemas');
    for (const [name, s] of Object.entries(doc.components.schemas)) checkSchema(s as Record<string, unknown>, `#/components/schemas/${name}`, problems);
    // every schema component is used
    for (const name of Object.keys(doc.components.schemas)) if (!refs.includes(`#/components/schemas/${name}`)) problems.push(`components.schemas.${name} is not used`);

    const ids = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      assert.ok(path.startsWith('/'), path);
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method} ${path}`;
        if (ids.has(op.operationId)) problems.push(`${where}: operationId ${op.operationId} is not unique`);
        ids.add(op.operationId);
        const inPath = op.parameters.filter((p) => p.in === 'path');
        assert.deepEqual(inPath.map((p) => p.name).sort(), templated, `${where}: path parameters`);
        for (const p of op.parameters) {
          if (!['path', 'query', 'header', 'cookie'].includes(p.in) || !p.schema) problems.push(`${where}: parameter ${p.name}`);
          if (p.in === 'path' && p.required !== true) problems.push(`${where}: path parameter ${p.name} must be required`);
          if (p.schema) checkSchema(p.schema as Record<string, unknown>, `${where} ${p.name}`, problems);
        }
        const codes = Object.keys(op.responses);
        if (!codes.some((c) => /^2\d\d$/.test(c))) problems.push(`${where}: no 2xx answer`);
        for (const [code, r] of Object.entries(op.responses)) {
          if (!/^([1-5]\d\d|default)$/.test(code)) problems.push(`${where}: response key ${code}`);
          if (!r.$ref && !r.description) problems.push(`${where} ${code}: no description`);
          if (r.description === 'OK (not described)') problems.push(`${where}: its reply is not described in src/api/schemas.ts`);
          for (const [type, c] of Object.entries(r.content ?? {})) checkSchema(c.schema as Record<string, unknown>, `${where} ${code} ${type}`, problems);
        }
        const body = op.requestBody as { content?: Record<string, { schema: Record<string, unknown> }> } | undefined;
        for (const [type, c] of Object.entries(body?.content ?? {})) checkSchema(c.schema, `${where} request ${type}`, problems);
      }
    }
    assert.deepEqual(problems, []);
  });

  test('a list answer is an array of a named schema, with the paging headers', () => {
    const ok = doc.paths['/projects/{p}/repositories/{r}/artifacts'].get.responses['200'];
    assert.deepEqual(ok.content!['application/json'].schema, { type: 'array', items: { $ref: '#/components/schemas/Artifact' } });
    assert.ok(ok.headers?.['X-Total-Count'] && ok.headers.Link);
    const artifact = doc.components.schemas.Artifact as { properties: Record<string, { type?: string; items?: { $ref: string } }>; additionalProperties: boolean };
    assert.equal(artifact.properties.tags.items!.$ref, '#/components/schemas/Tag');
    assert.equal(artifact.additionalProperties, false);
    assert.equal(doc.paths['/users/{id}'].get.responses.default.$ref, '#/components/responses/Error');
    assert.ok(doc.paths['/robots'].post.responses['201'].headers?.Location);
  });
});
