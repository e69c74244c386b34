// Replication (issue 16) against real registries on loopback: this Berth pushes a multi-arch image
// with a signature referrer to CNCF Distribution (htpasswd Basic auth), manually and on push, and a
// delete here deletes there; a pull-based policy copies only the tags its filter matches from a
// second Berth (token auth); a wrong password fails the execution with a task log naming the
// cause; a stop (here, or from another node through the row) stops; a scheduled policy fires once
// per slot through the job runner; a dead node's execution is marked failed; the API's guards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import pino from 'pino';
import type { z } from 'zod';
import { UpstreamClient, referrersTag } from '../../src/upstream/client.ts';
import { ReplicationStore } from '../../src/db/replication-store.ts';
import { ROUTES, type RouteKey, type RouteSchema } from '../../src/api/schemas.ts';
import { ADMIN_PASSWORD, basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { assertHarborShape } from '../helpers/harbor-shapes.ts';
import { missingDistribution, removeDistribution, startDistribution, type Distribution } from '../helpers/distribution.ts';
import { bytes, EMPTY_JSON, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, sha256 } from '../helpers/oci.ts';

const skip = missingDistribution({ htpasswd: true });
const USER = 'replicator';
const SECRET = 'Dist-pa55-9f2a';
const WRONG = 'Wrong-pa55-4b7d';
const PW = 'Dev-pa55-w0rd1';

let dist: Distribution;
let t: TestApp;
let other: TestApp;
const servers: http.Server[] = [];
let berthUrl: string;
let otherUrl: string;
const clients: UpstreamClient[] = [];
const logLines: string[] = [];
let distId: number;
let wrongId: number;
let otherId: number;

async function listen(app: http.RequestListener): Promise<string> {
  const s = http.createServer(app);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

function client(url: string, username: string, password: string): UpstreamClient {
  const c = new UpstreamClient({ url, timeoutMs: 10_000, credential: { username, password } });
  clients.push(c);
  return c;
}
const here = () => client(berthUrl, 'admin', ADMIN_PASSWORD);
const there = () => client(dist.url, USER, SECRET);

function api(method: 'get' | 'post' | 'put' | 'delete', path: string, body?: unknown, auth: string | null = t.adminAuth) {
  let r = t.request[method](`/api/v2.0${path}`);
  if (auth) r = r.set('Authorization', auth);
  return body === undefined ? r : r.send(body as object);
}

/** The answer fits its route's documented reply exactly. */
function fits(key: RouteKey, res: { status: number; body: unknown; text?: string }): void {
  const reply = (ROUTES[key] as RouteSchema).reply!;
  assert.equal(res.status, reply.status, `${key}: ${res.status} ${res.text}`);
  if (!reply.body || reply.text) return;
  const parsed = (reply.body as z.ZodType).safeParse(res.body);
  assert.ok(parsed.success, `${key}: ${JSON.stringify(res.body).slice(0, 400)}`);
  assert.deepEqual(parsed.data, res.body, `${key} sends only documented fields`);
}

interface Image {
  index: Buffer;
  digest: string;
  children: { body: Buffer; digest: string }[];
  blobs: Map<string, Buffer>;
}

/** A two-platform OCI image (layers of `layerBytes` and 2 KiB). */
function multiArch(seed: number, layerBytes = 4096): Image {
  const blobs = new Map<string, Buffer>();
  const children: Image['children'] = [];
  for (const [i, arch] of (['amd64', 'arm64'] as const).entries()) {
    const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }));
    const layer = bytes(i === 0 ? layerBytes : 2048, seed * 10 + i);
    blobs.set(sha256(config), config);
    blobs.set(sha256(layer), layer);
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length }, layers: [{ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length }] }));
    children.push({ body, digest: sha256(body) });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((c, i) => ({ mediaType: OCI_MANIFEST, digest: c.digest, size: c.body.length, platform: { architecture: i ? 'arm64' : 'amd64', os: 'linux' } })) }));
  return { index, digest: sha256(index), children, blobs };
}

async function pushImage(c: UpstreamClient, repo: string, img: Image, tag: string): Promise<void> {
  for (const [digest, data] of img.blobs) await c.pushBlob(repo, digest, data.length, () => Readable.from([data]));
  for (const child of img.children) await c.putManifest(repo, child.digest, child.body, OCI_MANIFEST);
  await c.putManifest(repo, tag, img.index, OCI_INDEX);
}

/** A cosign-like signature: an OCI artifact whose subject is the image, pushed by digest. */
async function pushSignature(c: UpstreamClient, repo: string, img: Image, seed: number): Promise<string> {
  const empty = Buffer.from('{}');
  const sig = Buffer.from(JSON.stringify({ signature: `sig-${seed}` }));
  await c.pushBlob(repo, sha256(empty), empty.length, () => Readable.from([empty]));
  await c.pushBlob(repo, sha256(sig), sig.length, () => Readable.from([sig]));
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      config: { mediaType: EMPTY_JSON, digest: sha256(empty), size: empty.length },
      layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: sha256(sig), size: sig.length }],
      subject: { mediaType: OCI_INDEX, digest: img.digest, size: img.index.length },
    }),
  );
  await c.putManifest(repo, sha256(body), body, OCI_MANIFEST);
  return sha256(body);
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function createPolicy(body: object): Promise<number> {
  const r = await api('post', '/replication/policies', body);
  fits('post /replication/policies', r);
  return Number(String(r.headers.location).split('/').pop());
}

async function run(policyId: number): Promise<number> {
  const r = await api('post', '/replication/executions', { policy_id: policyId });
  fits('post /replication/executions', r);
  return Number(String(r.headers.location).split('/').pop());
}

/** The execution once it has ended. */
async function ended(id: number): Promise<{ status: string; status_text: string; total: number; succeed: number; failed: number; stopped: number; trigger: string }> {
  return until(`execution ${id} to end`, async () => {
    const r = await api('get', `/replication/executions/${id}`);
    fits('get /replication/executions/:id', r);
    assertHarborShape('ReplicationExecution', r.body);
    return r.body.status !== 'InProgress' && r.body;
  });
}

async function tasks(id: number): Promise<{ id: number; status: string; src_resource: string; dst_resource: string; operation: string }[]> {
  const r = await api('get', `/replication/executions/${id}/tasks`);
  fits('get /replication/executions/:id/tasks', r);
  for (const task of r.body) assertHarborShape('ReplicationTask', task);
  return r.body;
}

async function taskLog(id: number, taskId: number): Promise<string> {
  const r = await api('get', `/replication/executions/${id}/tasks/${taskId}/log`);
  fits('get /replication/executions/:id/tasks/:task_id/log', r);
  assert.match(String(r.headers['content-type']), /text\/plain/);
  return r.text;
}

before(async () => {
  if (skip) return;
  dist = await startDistribution({ users: { [USER]: SECRET } });
  const log = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) });
  t = await makeApp({}, { ...REAL_ACCESS, log });
  other = await makeApp({}, REAL_ACCESS);
  berthUrl = await listen(t.berth.app);
  otherUrl = await listen(other.berth.app);
  for (const name of ['team', 'events', 'slow']) assert.equal((await api('post', '/projects', { project_name: name })).status, 201);
  assert.equal((await other.request.post('/api/v2.0/projects').set('Authorization', other.adminAuth).send({ project_name: 'src' })).status, 201);
  const reg = async (body: object) => Number(String((await api('post', '/registries', body)).headers.location).split('/').pop());
  distId = await reg({ name: 'dist', type: 'docker-registry', url: dist.url, credential: { type: 'basic', access_key: USER, access_secret: SECRET } });
  wrongId = await reg({ name: 'dist-wrong', type: 'docker-registry', url: dist.url, credential: { type: 'basic', access_key: USER, access_secret: WRONG } });
  otherId = await reg({ name: 'other-berth', type: 'harbor', url: otherUrl, credential: { type: 'basic', access_key: 'admin', access_secret: ADMIN_PASSWORD } });
  assert.equal((await api('post', '/users', { username: 'dev', password: PW, email: 'dev@example.com', realname: 'Dev' })).status, 201);
});

after(async () => {
  for (const c of clients) c.close();
  if (skip) return;
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  await t.close();
  await other.close();
  await removeDistribution(dist);
});

describe('push-based replication to Distribution', { skip }, () => {
  test('a manual run copies a multi-arch image and its signature digest for digest', async () => {
    const img = multiArch(1, 300 * 1024);
    await pushImage(here(), 'team/app', img, 'v1');
    const sig = await pushSignature(here(), 'team/app', img, 1);
    const id = await createPolicy({ name: 'to-dist', dest_registry: { id: distId }, filters: [{ type: 'name', value: 'team/**' }], trigger: { type: 'manual' } });
    const got = await api('get', `/replication/policies/${id}`);
    fits('get /replication/policies/:id', got);
    // Harbor's field names and types, down to the nested registries, credentials, filters and trigger.
    assertHarborShape('ReplicationPolicy', got.body);
    for (const side of [got.body.src_registry, got.body.dest_registry]) {
      assertHarborShape('Registry', side);
      if (side.credential) assertHarborShape('RegistryCredential', side.credential);
    }
    for (const f of got.body.filters) assertHarborShape('ReplicationFilter', f);
    assertHarborShape('ReplicationTrigger', got.body.trigger);
    assert.equal(got.body.src_registry.id, 0);
    assert.equal(got.body.dest_registry.credential.access_secret, '*****');

    const exec = await ended(await run(id));
    assert.equal(exec.status, 'Succeed', exec.status_text);
    assert.equal(exec.trigger, 'manual');
    assert.deepEqual([exec.total, exec.succeed, exec.failed], [1, 1, 0]);
    const [task] = await tasks((await api('get', `/replication/executions?policy_id=${id}`)).body[0].id);
    assert.deepEqual([task.status, task.src_resource, task.dst_resource], ['Succeed', 'team/app:v1', 'team/app:v1']);

    const d = there();
    assert.equal((await d.getManifest('team/app', 'v1'))?.digest, img.digest);
    for (const c of img.children) assert.equal((await d.getManifest('team/app', c.digest))?.digest, c.digest);
    assert.equal((await d.getManifest('team/app', sig))?.digest, sig, 'the signature is copied with its subject');
    // Distribution 2.8 has no referrers API: the signature is listed under the fallback tag.
    const fallback = await d.getManifest('team/app', referrersTag(img.digest));
    assert.ok(fallback && JSON.parse(fallback.body.toString()).manifests.some((m: { digest: string }) => m.digest === sig));
    assert.deepEqual(await d.referrers('team/app', img.digest).then((r) => r.map((x) => x.digest)), [sig]);
  });

  test('event-based: a push is copied on its own, and a delete here deletes there (replicate_deletion)', async () => {
    const id = await createPolicy({ name: 'on-push', dest_registry: { id: distId }, filters: [{ type: 'name', value: 'events/**' }], trigger: { type: 'event_based' }, replicate_deletion: true });
    const img = multiArch(2);
    await pushImage(here(), 'events/app', img, 'v1');
    const sig = await pushSignature(here(), 'events/app', img, 2);
    const d = there();
    await until('the tag at Distribution', async () => (await d.headManifest('events/app', 'v1'))?.digest === img.digest);
    await until('the signature at Distribution', async () => (await d.headManifest('events/app', sig)) !== null);
    assert.equal((await d.getManifest('events/app', img.children[1].digest))?.digest, img.children[1].digest);
    const list = await api('get', `/replication/executions?policy_id=${id}&trigger=event_based`);
    fits('get /replication/executions', list);
    assert.ok(list.body.length >= 1);
    for (const e of list.body) assert.equal((await ended(e.id)).status, 'Succeed');

    const del = await t.request.delete(`/v2/events/app/manifests/${img.digest}`).set('Authorization', t.adminAuth);
    assert.equal(del.status, 202, del.text);
    await until('the image deleted at Distribution', async () => (await d.headManifest('events/app', img.digest)) === null);
    const deletions = (await api('get', `/replication/executions?policy_id=${id}`)).body;
    const last = await ended(deletions[0].id);
    assert.equal(last.status, 'Succeed');
    const [task] = await tasks(deletions[0].id);
    assert.equal(task.operation, 'deletion');
  });

  test('untagged artifacts go when the tag filter matches "" (no filter), not under v*', async () => {
    assert.equal((await api('post', '/projects', { project_name: 'loose' })).status, 201);
    const tagged = multiArch(4);
    const loose = multiArch(5);
    await pushImage(here(), 'loose/app', tagged, 'v1');
    await pushImage(here(), 'loose/app', loose, 'tmp');
    const del = await t.request.delete('/v2/loose/app/manifests/tmp').set('Authorization', t.adminAuth);
    assert.equal(del.status, 202, del.text);
    const onlyV = await createPolicy({ name: 'loose-v', dest_registry: { id: distId }, dest_namespace: 'v-only', dest_namespace_replace_count: 0, filters: [{ type: 'name', value: 'loose/**' }, { type: 'tag', value: 'v*' }] });
    assert.equal((await ended(await run(onlyV))).total, 1);
    assert.equal(await there().headManifest('v-only/loose/app', loose.digest), null);
    const all = await createPolicy({ name: 'loose-all', dest_registry: { id: distId }, filters: [{ type: 'name', value: 'loose/**' }] });
    const exec = await ended(await run(all));
    assert.equal(exec.status, 'Succeed', exec.status_text);
    assert.equal(exec.total, 2, 'the tag and the untagged index (its children go with it)');
    assert.equal((await there().headManifest('loose/app', loose.digest))?.digest, loose.digest);
    assert.equal((await there().headManifest('loose/app', 'v1'))?.digest, tagged.digest);
  });

  test('a wrong password: the execution fails and the task log names the cause, never the password', async () => {
    const id = await createPolicy({ name: 'bad-password', dest_registry: { id: wrongId }, filters: [{ type: 'name', value: 'team/app' }] });
    const exec = await ended(await run(id));
    assert.equal(exec.status, 'Failed');
    assert.deepEqual([exec.total, exec.failed], [1, 1]);
    const execId = (await api('get', `/replication/executions?policy_id=${id}`)).body[0].id;
    const [task] = await tasks(execId);
    assert.equal(task.status, 'Failed');
    const text = await taskLog(execId, task.id);
    assert.match(text, /unauthorized/);
    assert.match(text, /credentials of user "replicator" were refused/);
    assert.ok(!text.includes(WRONG) && !logLines.join('').includes(WRONG), 'the password is shown');
    assert.ok(!logLines.join('').includes(SECRET));
  });

  test('a stopped execution stops (PUT here; and a stop saved by another node)', async () => {
    const img = multiArch(3, 300 * 1024);
    await pushImage(here(), 'slow/app', img, 'v1');
    const id = await createPolicy({ name: 'slow', dest_registry: { id: distId }, filters: [{ type: 'name', value: 'slow/**' }], speed: 1 });
    for (const how of ['api', 'row'] as const) {
      const execId = await run(id);
      await until('the task to start', async () => (await tasks(execId))[0]?.status === 'InProgress');
      const taskId = (await tasks(execId))[0].id;
      await until('the log of the running task', async () => /copying slow\/app:v1/.test(await taskLog(execId, taskId)));
      assert.equal((await tasks(execId))[0].status, 'InProgress', 'the log is readable while the task runs');
      if (how === 'api') fits('put /replication/executions/:id', await api('put', `/replication/executions/${execId}`));
      else assert.ok(await new ReplicationStore(t.berth.db).stopExecution(execId));
      await until('the task to stop', async () => (await tasks(execId))[0].status === 'Stopped');
      await t.berth.replication.settled(execId);
      const exec = await ended(execId);
      assert.equal(exec.status, 'Stopped');
      assert.equal(exec.stopped, 1);
      assert.equal(await there().headManifest('slow/app', 'v1'), null);
    }
  });
});

describe('pull-based replication from a second Berth', { skip }, () => {
  test('only the tags the filter matches are copied, under dest_namespace', async () => {
    const o = client(otherUrl, 'admin', ADMIN_PASSWORD);
    const imgs = [multiArch(11), multiArch(12), multiArch(13)];
    await pushImage(o, 'src/app', imgs[0], 'v1.0');
    await pushImage(o, 'src/app', imgs[1], 'v2.0');
    await pushImage(o, 'src/app', imgs[2], 'dev');
    const id = await createPolicy({
      name: 'from-other',
      src_registry: { id: otherId },
      filters: [
        { type: 'name', value: 'src/**' },
        { type: 'tag', value: 'v*', decoration: 'matches' },
      ],
      dest_namespace: 'mirror',
      dest_namespace_replace_count: 1,
    });
    const exec = await ended(await run(id));
    assert.equal(exec.status, 'Succeed', exec.status_text);
    assert.equal(exec.total, 2);
    const h = here();
    assert.equal((await h.headManifest('mirror/app', 'v1.0'))?.digest, imgs[0].digest);
    assert.equal((await h.headManifest('mirror/app', 'v2.0'))?.digest, imgs[1].digest);
    assert.equal(await h.headManifest('mirror/app', 'dev'), null);
    assert.deepEqual((await h.tags('mirror/app')).sort(), ['v1.0', 'v2.0']);
  });
});

describe('triggers and failures', { skip }, () => {
  test('a scheduled policy runs once per slot through the job runner', async () => {
    const id = await createPolicy({ name: 'nightly', dest_registry: { id: distId }, filters: [{ type: 'name', value: 'team/app' }], trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 3 * * *' } } });
    const slot = new Date('2026-12-07T03:00:00Z');
    assert.equal(await t.berth.replication.fireSchedule(id, slot), true);
    assert.equal(await t.berth.replication.fireSchedule(id, slot), false, 'a slot runs once');
    const list = (await api('get', `/replication/executions?policy_id=${id}`)).body;
    assert.equal(list.length, 1);
    assert.equal(list[0].trigger, 'scheduled');
    assert.equal((await ended(list[0].id)).status, 'Succeed');
  });

  test("an execution whose node died is marked failed, never left InProgress", async () => {
    const policy = (await api('get', '/replication/policies?name=to-dist')).body[0].id;
    const store = new ReplicationStore(t.berth.db);
    const id = await store.createExecution(policy, 'manual', 'a-dead-node', new Date(Date.now() - 10 * 60_000));
    assert.deepEqual(await t.berth.replication.reap(), [id]);
    const exec = await ended(id);
    assert.equal(exec.status, 'Failed');
    assert.match(exec.status_text, /node running this execution stopped/);
  });
});

describe('the API', { skip }, () => {
  test('anonymous 401, a developer 403, malformed input 400, unknown ids 404', async () => {
    assert.equal((await api('get', '/replication/policies', undefined, null)).status, 401);
    assert.equal((await api('get', '/replication/executions', undefined, null)).status, 401);
    const dev = basic('dev', PW);
    assert.equal((await api('get', '/replication/policies', undefined, dev)).status, 403);
    assert.equal((await api('post', '/replication/policies', { name: 'x', dest_registry: { id: distId } }, dev)).status, 403);
    assert.equal((await api('post', '/replication/executions', { policy_id: 1 }, dev)).status, 403);
    const bad: object[] = [
      {},
      { name: 'x' },
      { name: 'x', src_registry: { id: distId }, dest_registry: { id: otherId } },
      { name: 'x', dest_registry: { id: 999_999 } },
      { name: 'x', dest_registry: { id: distId }, trigger: { type: 'sometimes' } },
      { name: 'x', dest_registry: { id: distId }, trigger: { type: 'scheduled', trigger_settings: { cron: '0 3 * * *' } } },
      { name: 'x', src_registry: { id: distId }, trigger: { type: 'event_based' } },
      { name: 'x', dest_registry: { id: distId }, filters: [{ type: 'label', value: ['a'] }] },
      { name: 'x', dest_registry: { id: distId }, filters: [{ type: 'name', value: 'a/{b' }] },
      { name: 'x', dest_registry: { id: distId }, speed: 'fast' },
      { name: 'x', dest_registry: 'dist' },
    ];
    for (const b of bad) {
      const r = await api('post', '/replication/policies', b);
      assert.equal(r.status, 400, `${JSON.stringify(b)}: ${r.status} ${r.text}`);
      assert.ok(r.body.errors[0].message, JSON.stringify(r.body));
    }
    await createPolicy({ name: 'dup', dest_registry: { id: distId }, filters: [{ type: 'label', value: [] }] });
    assert.equal((await api('post', '/replication/policies', { name: 'dup', dest_registry: { id: distId } })).status, 409);
    assert.equal((await api('post', '/replication/executions', { policy_id: 'one' })).status, 400);
    assert.equal((await api('post', '/replication/executions', { policy_id: 999_999 })).status, 400);
    assert.equal((await api('get', '/replication/executions?page_size=1000')).status, 400);
    assert.equal((await api('get', '/replication/executions/abc')).status, 400);
    assert.equal((await api('get', '/replication/executions/999999')).status, 404);
    assert.equal((await api('get', '/replication/executions/999999/tasks')).status, 404);
    assert.equal((await api('get', '/replication/executions/1/tasks/999999/log')).status, 404);
    assert.equal((await api('get', '/replication/policies/999999')).status, 404);
  });

  test('list, page, change and delete policies', async () => {
    for (const n of ['p-a', 'p-b', 'p-c']) await createPolicy({ name: n, dest_registry: { id: distId }, enabled: false });
    const page = await api('get', '/replication/policies?name=p-&page=1&page_size=2');
    fits('get /replication/policies', page);
    assert.equal(page.headers['x-total-count'], '3');
    assert.match(String(page.headers.link), /rel="next"/);
    const id = page.body[0].id;
    fits('put /replication/policies/:id', await api('put', `/replication/policies/${id}`, { description: 'nightly', dest_namespace: 'ns', dest_namespace_replace_count: 0 }));
    const got = (await api('get', `/replication/policies/${id}`)).body;
    assert.deepEqual([got.description, got.dest_namespace, got.dest_namespace_replace_count, got.name, got.enabled], ['nightly', 'ns', 0, 'p-a', false]);
    assert.equal((await api('post', '/replication/executions', { policy_id: id })).status, 400, 'a disabled policy does not run');
    fits('delete /replication/policies/:id', await api('delete', `/replication/policies/${id}`));
    assert.equal((await api('get', `/replication/policies/${id}`)).status, 404);
  });
});
