// Pushing into a project that does not exist: whoever may create projects (system admins; every
// user when project creation is open to everyone) is told so and what to do, with Basic credentials
// and with a token the token service narrowed to nothing; everyone else gets today's denial, which
// does not say whether the project exists. The last part runs real skopeo against a Berth process,
// to see that the message reaches the person pushing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN_PASSWORD, basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { sha256 } from '../helpers/oci.ts';
import { multiArchLayout, tempDir } from '../helpers/oci-layout.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { missingTool } from '../helpers/tools.ts';
import { run } from '../e2e/exec.ts';

let t: TestApp;
const PW = 'Passw0rd!x';
const MISSING = 'project "nosuch" does not exist; create it first';
const MANIFEST = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('{}'), size: 2 }, layers: [] });

const api = (method: 'post' | 'put', p: string, auth: string = t.adminAuth) => t.request[method](`/api/v2.0${p}`).set('Authorization', auth);

/** A bearer token from the token service for push and pull on `repo`, and what it grants. */
async function bearer(auth: string, repo: string): Promise<{ header: string; actions: string[] }> {
  const res = await t.request.get(`/service/token?service=berth-registry&scope=${encodeURIComponent(`repository:${repo}:pull,push`)}`).set('Authorization', auth);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const claims = JSON.parse(Buffer.from(res.body.token.split('.')[1], 'base64url').toString()) as { access: { name: string; actions: string[] }[] };
  return { header: `Bearer ${res.body.token}`, actions: claims.access.find((a) => a.name === repo)?.actions ?? [] };
}

/** The registry's answers to the first steps of a push (blob check, upload, manifest) and a pull. */
async function attempt(repo: string, auth: string) {
  const head = await t.request.head(`/v2/${repo}/blobs/${sha256('{}')}`).set('Authorization', auth);
  const upload = await t.request.post(`/v2/${repo}/blobs/uploads/`).set('Authorization', auth);
  const manifest = await t.request.put(`/v2/${repo}/manifests/1.0`).set('Authorization', auth).set('Content-Type', 'application/vnd.oci.image.manifest.v1+json').send(MANIFEST);
  const pull = await t.request.get(`/v2/${repo}/manifests/1.0`).set('Authorization', auth);
  return { head, upload, manifest, pull };
}

const err = (res: { status: number; body: { errors?: { code: string; message: string }[] } }) => [res.status, res.body.errors?.[0]?.code, res.body.errors?.[0]?.message];

before(async () => {
  t = await makeApp({}, REAL_ACCESS);
  assert.equal((await api('post', '/users').send({ username: 'dev', password: PW })).status, 201);
  assert.equal((await api('post', '/projects').send({ project_name: 'secret', metadata: { public: 'false' } })).status, 201);
});
after(async () => {
  await t.close();
});

describe('pushing into a project that does not exist', () => {
  test('the admin with Basic credentials is told, on every step that has a body', async () => {
    const r = await attempt('nosuch/app', t.adminAuth);
    // HEAD has no body: 404 makes a client go on to the upload, whose answer says it.
    assert.equal(r.head.status, 404);
    assert.deepEqual(err(r.upload), [404, 'NAME_UNKNOWN', MISSING]);
    assert.deepEqual(err(r.manifest), [404, 'NAME_UNKNOWN', MISSING]);
    assert.deepEqual(err(r.pull), [404, 'NAME_UNKNOWN', 'project "nosuch" does not exist']);
  });

  test('the admin with a token is told too (the token service grants nothing there)', async () => {
    const tok = await bearer(t.adminAuth, 'nosuch/app');
    assert.deepEqual(tok.actions, []);
    const r = await attempt('nosuch/app', tok.header);
    assert.equal(r.head.status, 404);
    assert.deepEqual(err(r.upload), [404, 'NAME_UNKNOWN', MISSING]);
    assert.deepEqual(err(r.manifest), [404, 'NAME_UNKNOWN', MISSING]);
  });

  test('a single-segment name names its project', async () => {
    const r = await t.request.post('/v2/alpine/blobs/uploads/').set('Authorization', t.adminAuth);
    assert.deepEqual(err(r), [404, 'NAME_UNKNOWN', 'project "alpine" does not exist; create it first']);
  });

  test('when every user may create projects a user is told too; nobody else ever is', async () => {
    const dev = basic('dev', PW);
    assert.equal((await api('put', '/configurations').send({ project_creation_restriction: 'everyone' })).status, 200);
    try {
      assert.deepEqual(err((await attempt('nosuch/app', dev)).upload), [404, 'NAME_UNKNOWN', MISSING]);
      assert.deepEqual(err((await attempt('nosuch/app', (await bearer(dev, 'nosuch/app')).header)).upload), [404, 'NAME_UNKNOWN', MISSING]);
      // An existing project the user is not in stays a plain denial.
      assert.deepEqual(err((await attempt('secret/app', dev)).upload), [403, 'DENIED', 'requested access to the resource is denied']);
      // Robots never create projects: a robot with push everywhere gets the plain denial.
      const robot = await api('post', '/robots').send({ name: 'ci', level: 'system', duration: -1, permissions: [{ kind: 'project', namespace: '*', access: [{ resource: 'repository', action: 'push' }, { resource: 'repository', action: 'pull' }] }] });
      assert.equal(robot.status, 201, JSON.stringify(robot.body));
      assert.deepEqual(err((await attempt('nosuch/app', basic(robot.body.name, robot.body.secret))).upload), [403, 'DENIED', 'requested access to the resource is denied']);
    } finally {
      assert.equal((await api('put', '/configurations').send({ project_creation_restriction: 'adminonly' })).status, 200);
    }
    // Project creation for admins only again: the user learns nothing, the same answers as for a
    // private project, with Basic credentials and with tokens.
    const missing = await attempt('nosuch/app', dev);
    const hidden = await attempt('secret/app', dev);
    for (const step of ['upload', 'manifest', 'pull'] as const) {
      assert.deepEqual(err(missing[step]), [403, 'DENIED', 'requested access to the resource is denied'], step);
      assert.deepEqual(err(missing[step]), err(hidden[step]), step);
    }
    assert.equal(missing.head.status, hidden.head.status);
    const a = await attempt('nosuch/app', (await bearer(dev, 'nosuch/app')).header);
    const b = await attempt('secret/app', (await bearer(dev, 'secret/app')).header);
    assert.deepEqual(err(a.upload), [401, 'UNAUTHORIZED', 'token does not grant this access']);
    assert.deepEqual(err(a.upload), err(b.upload));
    assert.equal(a.head.status, b.head.status);
    // Anonymous callers are asked to sign in, as before.
    const anon = await t.request.post('/v2/nosuch/app/blobs/uploads/');
    assert.equal(anon.status, 401);
    assert.match(anon.headers['www-authenticate'], /^Bearer realm=/);
  });

  test('once the admin creates the project, the same push goes through', async () => {
    assert.deepEqual(err(await t.request.post('/v2/nosuch/app/blobs/uploads/').set('Authorization', t.adminAuth)), [404, 'NAME_UNKNOWN', MISSING]);
    assert.equal((await api('post', '/projects').send({ project_name: 'nosuch', metadata: { public: 'false' } })).status, 201);
    const res = await t.request.post('/v2/nosuch/app/blobs/uploads/').set('Authorization', t.adminAuth);
    assert.equal(res.status, 202);
  });
});

describe('what skopeo prints', { skip: missingTool('skopeo') }, () => {
  let srv: ServerProcess;
  let work: string;
  let ref: string;
  let env: Record<string, string>;
  before(async () => {
    work = tempDir('berth-missing-project-');
    env = { REGISTRY_AUTH_FILE: path.join(work, 'auth.json') };
    fs.writeFileSync(env.REGISTRY_AUTH_FILE, '{"auths":{}}');
    const [server, layout] = await Promise.all([startServer({ env: { BERTH_LOG_LEVEL: 'warn' } }), multiArchLayout({ dir: path.join(work, 'img'), seed: `missing-${process.pid}` })]);
    srv = server;
    ref = layout.ref;
    const res = await fetch(`${srv.url}/api/v2.0/users`, { method: 'POST', headers: { authorization: basic('admin', ADMIN_PASSWORD), 'content-type': 'application/json' }, body: JSON.stringify({ username: 'dev', password: PW }) });
    assert.equal(res.status, 201);
  });
  after(async () => {
    await srv?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (srv) fs.rmSync(srv.dataDir, { recursive: true, force: true });
  });

  const copy = (creds: string) => run('skopeo', ['copy', '--all', '--dest-tls-verify=false', '--dest-creds', creds, ref, `docker://${srv.host}/nosuch/app:1.0`], { env });

  test('the admin reads that the project is missing and what to do; a user reads nothing about it', async () => {
    const admin = await copy(`admin:${ADMIN_PASSWORD}`);
    assert.notEqual(admin.code, 0);
    assert.ok(admin.stderr.includes('project \\"nosuch\\" does not exist; create it first') || admin.stderr.includes(MISSING), admin.stderr);
    const dev = await copy(`dev:${PW}`);
    assert.notEqual(dev.code, 0);
    assert.doesNotMatch(dev.stderr, /does not exist|create it/, dev.stderr);
    assert.match(dev.stderr, /requested access to the resource is denied/);
  });
});
