// Garbage collection's scenarios as one suite, registered once per engine: SQLite in
// test/integration/gc.test.ts, PostgreSQL in test/integration/gc-postgres.test.ts. What is deleted,
// what is kept, the time window, dry runs, untagged artifacts and their children, files without
// records, blobs pushed again, pushes during a run, a run's progress. The cases run in order on one
// app (each builds on what the ones before left): call it inside a describe, after the before()
// that builds the app.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { TestApp } from '../helpers/app.ts';
import { Oci, OCI_INDEX, OCI_MANIFEST, bytes, sha256 } from '../helpers/oci.ts';

export interface GcEngine {
  /** The app under test, built by the caller's before() (read when a case runs). */
  app(): TestApp;
  /**
   * Dates the links of `repository` and the blob rows of `digests` `hours` back, straight in the
   * engine's database (as if the image had been deleted long ago).
   */
  age(t: TestApp, repository: string, digests: string[], hours: number): Promise<void>;
}

/** Harbor's GC API on the app (admin by default; null: no credentials). */
export function gcApi(t: TestApp) {
  return (method: 'get' | 'post' | 'put', p: string, auth: string | null = t.adminAuth) => {
    const r = t.request[method](`/api/v2.0${p}`);
    return auth ? r.set('Authorization', auth) : r;
  };
}

/** Runs a manual GC on the app and waits for it; returns its history entry and log. */
export async function runGc(t: TestApp, parameters: Record<string, unknown>) {
  const api = gcApi(t);
  const res = await api('post', '/system/gc/schedule').send({ schedule: { type: 'Manual' }, parameters });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const m = /^\/api\/v2\.0\/system\/gc\/(\d+)$/.exec(res.headers.location);
  assert.ok(m, res.headers.location);
  await t.berth.gc.idle();
  const run = await api('get', `/system/gc/${m[1]}`);
  assert.equal(run.status, 200);
  const log = await api('get', `/system/gc/${m[1]}/log`);
  assert.equal(log.status, 200);
  assert.match(log.headers['content-type'], /^text\/plain/);
  return { run: run.body, log: log.text };
}

/** Registers the scenarios (ten cases, in order) in the current describe. */
export function gcScenarios(engine: GcEngine): void {
  const t = () => engine.app();
  let oci: Oci;
  const api = (method: 'get' | 'post' | 'put', p: string) => gcApi(t())(method, p);
  const gc = (parameters: Record<string, unknown>) => runGc(t(), parameters);
  const blobFile = (digest: string) => path.join(t().dataDir, 'storage', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data');

  let shared: Awaited<ReturnType<Oci['pushImage']>>;
  let doomed: Awaited<ReturnType<Oci['pushImage']>>;

  before(() => {
    oci = new Oci(t().request, t().adminAuth);
  });

  test('setup: an image in two repositories, and images deleted from one', async () => {
    shared = await oci.pushImage('gc/one', 'keep', 1);
    assert.equal((await oci.pushImage('gc/two', 'keep', 1)).digest, shared.digest);
    doomed = await oci.pushImage('gc/one', 'gone', 5);
    assert.equal((await oci.delete(`/v2/gc/one/manifests/${shared.digest}`)).status, 202);
    assert.equal((await oci.delete(`/v2/gc/one/manifests/${doomed.digest}`)).status, 202);
    assert.ok(fs.existsSync(blobFile(doomed.layerDigest)));
  });

  test('within the time window (default 2 hours) nothing is collected', async () => {
    const { run, log } = await gc({});
    assert.equal(run.job_status, 'Success');
    assert.equal(run.blobs_deleted, 0);
    assert.equal(JSON.parse(run.job_parameters).time_window, 2);
    assert.match(log, /time_window=2h/);
    assert.ok(fs.existsSync(blobFile(doomed.layerDigest)));
    assert.equal((await oci.head(`/v2/gc/one/blobs/${doomed.layerDigest}`)).status, 200);
  });

  test('a dry run reports what it would delete and deletes nothing', async () => {
    const { run, log } = await gc({ time_window: 0, dry_run: true });
    assert.equal(run.job_status, 'Success');
    assert.equal(run.blobs_deleted, 2, log); // the deleted image's config and layer
    assert.ok(run.freed_bytes >= doomed.layer.length + doomed.config.length);
    assert.match(log, new RegExp(`blob ${doomed.layerDigest} \\(\\d+ bytes\\) would be deleted`));
    assert.ok(fs.existsSync(blobFile(doomed.layerDigest)));
    assert.equal((await oci.head(`/v2/gc/one/blobs/${doomed.layerDigest}`)).status, 200);
  });

  test('unreferenced blobs are deleted; blobs another repository uses are kept', async () => {
    const { run, log } = await gc({ time_window: 0 });
    assert.equal(run.job_status, 'Success', log);
    assert.equal(run.blobs_deleted, 2, log);
    assert.ok(run.freed_bytes >= doomed.layer.length + doomed.config.length);
    assert.match(log, new RegExp(`blob ${doomed.layerDigest} \\(${doomed.layer.length} bytes\\) deleted`));
    for (const d of [doomed.layerDigest, doomed.configDigest]) {
      assert.equal(fs.existsSync(blobFile(d)), false, d);
      assert.equal((await oci.head(`/v2/gc/one/blobs/${d}`)).status, 404);
    }
    // gc/one no longer refers to the shared layer: its link is gone, the bytes stay for gc/two
    assert.equal((await oci.head(`/v2/gc/one/blobs/${shared.layerDigest}`)).status, 404);
    assert.ok(fs.existsSync(blobFile(shared.layerDigest)));
    const m = await oci.get('/v2/gc/two/manifests/keep').set('Accept', OCI_MANIFEST);
    assert.equal(m.status, 200);
    const layer = await oci.getBytes(`/v2/gc/two/blobs/${shared.layerDigest}`);
    assert.equal(layer.status, 200);
    assert.equal(sha256(layer.body), shared.layerDigest);
  });

  test('a collected blob can be pushed again', async () => {
    assert.equal(await oci.pushBlob('gc/one', doomed.layer), doomed.layerDigest);
    const got = await oci.getBytes(`/v2/gc/one/blobs/${doomed.layerDigest}`);
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), doomed.layerDigest);
  });

  test('delete_untagged: untagged manifests go, children of a tagged index and accessories of a kept subject stay', async () => {
    const old = await oci.pushImage('gc/untagged', 'x', 7);
    const current = await oci.pushImage('gc/untagged', 'x', 8); // moves the tag: seed 7 is untagged now
    const sig = await oci.pushImage('gc/untagged', 'sig', 9, { artifactType: 'application/example.sig', subject: { mediaType: OCI_MANIFEST, digest: current.digest, size: current.raw.length } });
    assert.equal((await oci.delete('/v2/gc/untagged/manifests/sig')).status, 202); // untagged, but its subject is kept
    const child = await oci.pushImage('gc/untagged', 'child', 10);
    assert.equal((await oci.delete('/v2/gc/untagged/manifests/child')).status, 202);
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: child.digest, size: child.raw.length, platform: { os: 'linux', architecture: 'amd64' } }] }));
    assert.equal((await oci.putManifest('gc/untagged', 'multi', index, OCI_INDEX)).status, 201);

    const { run, log } = await gc({ time_window: 0, delete_untagged: true });
    assert.equal(run.job_status, 'Success', log);
    assert.equal(run.manifests_deleted, 1, log);
    assert.match(log, new RegExp(`untagged manifest gc/untagged@${old.digest} deleted`));
    assert.equal((await oci.get(`/v2/gc/untagged/manifests/${old.digest}`).set('Accept', OCI_MANIFEST)).status, 404);
    assert.equal(fs.existsSync(blobFile(old.layerDigest)), false);
    for (const d of [current.digest, sig.digest, child.digest, sha256(index)]) {
      assert.equal((await oci.get(`/v2/gc/untagged/manifests/${d}`).set('Accept', `${OCI_MANIFEST}, ${OCI_INDEX}`)).status, 200, d);
    }
    for (const d of [current.layerDigest, sig.layerDigest, child.layerDigest]) assert.equal((await oci.head(`/v2/gc/untagged/blobs/${d}`)).status, 200, d);
    const referrers = await oci.get(`/v2/gc/untagged/referrers/${current.digest}`);
    assert.equal(referrers.body.manifests.length, 1);
  });

  test('files without a record (a crash between rename and commit) are deleted once older than the window', async () => {
    const stray = bytes(3000, 42);
    const oldFile = blobFile(sha256(stray));
    fs.mkdirSync(path.dirname(oldFile), { recursive: true });
    fs.writeFileSync(oldFile, stray);
    const hourAgo = new Date(Date.now() - 3600_000);
    fs.utimesSync(oldFile, hourAgo, hourAgo);
    const fresh = bytes(3000, 43);
    const freshFile = blobFile(sha256(fresh));
    fs.mkdirSync(path.dirname(freshFile), { recursive: true });
    fs.writeFileSync(freshFile, fresh);

    const { run, log } = await gc({ time_window: 0.5 });
    assert.equal(run.job_status, 'Success', log);
    assert.match(log, new RegExp(`blob ${sha256(stray)} \\(3000 bytes\\) had no record, deleted`));
    assert.equal(fs.existsSync(oldFile), false);
    assert.ok(fs.existsSync(freshFile));
  });

  test('pushing a blob again renews it: a run keeps it although its link is older than the window', async () => {
    const img = await oci.pushImage('gc/again', 'v1', 12);
    assert.equal((await oci.delete(`/v2/gc/again/manifests/${img.digest}`)).status, 202);
    // Age the repository's links by three hours, as if the image had been deleted long ago.
    await engine.age(t(), 'gc/again', [img.layerDigest, img.configDigest], 3);
    assert.equal(await oci.pushBlob('gc/again', img.layer), img.layerDigest); // a new push of the same layer
    const { run, log } = await gc({});
    assert.equal(run.job_status, 'Success', log);
    assert.equal(fs.existsSync(blobFile(img.configDigest)), false, 'the config nobody pushed again is collected');
    assert.equal((await oci.head(`/v2/gc/again/blobs/${img.layerDigest}`)).status, 200);
    assert.ok(fs.existsSync(blobFile(img.layerDigest)));
  });

  test('pushes wait while a run holds the store, then succeed', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // A run that cannot start its transaction until the shared holder below lets go.
    const holder = t().berth.registry.writes.shared(() => held);
    const res = await api('post', '/system/gc/schedule').send({ schedule: { type: 'Manual' }, parameters: { time_window: 0 } });
    assert.equal(res.status, 201);
    const again = await api('post', '/system/gc/schedule').send({ schedule: { type: 'Manual' } });
    assert.equal(again.status, 409);
    assert.equal(again.body.errors[0].code, 'CONFLICT');
    const running = await api('get', res.headers.location.replace('/api/v2.0', ''));
    assert.equal(running.body.job_status, 'Running');
    // A push that arrives now waits for the run (writer preference), and completes after it.
    const push = oci.pushImage('gc/during', 'v1', 11);
    release();
    await holder;
    const pushed = await push;
    await t().berth.gc.idle();
    assert.equal((await oci.getBytes(`/v2/gc/during/blobs/${pushed.layerDigest}`)).status, 200);
    assert.equal((await oci.get('/v2/gc/during/manifests/v1').set('Accept', OCI_MANIFEST)).status, 200);
  });

  test('a run in progress reports how far it has got; its log ends with how many objects it scanned', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const holder = t().berth.registry.writes.shared(() => held); // keeps the run from getting past its start
    const res = await api('post', '/system/gc/schedule').send({ schedule: { type: 'Manual' }, parameters: { dry_run: true, time_window: 0 } });
    assert.equal(res.status, 201);
    const id = Number(/(\d+)$/.exec(res.headers.location)![1]);
    let v = await t().berth.gc.get(id);
    for (let i = 0; v.status !== 'Running' && i < 200; i++) {
      await new Promise((r) => setTimeout(r, 10));
      v = await t().berth.gc.get(id);
    }
    assert.equal(v.status, 'Running');
    assert.ok(v.progress, 'a running run has progress');
    assert.equal(v.progress.scanned, 0);
    release();
    await holder;
    await t().berth.gc.idle();
    const done = await t().berth.gc.get(id);
    assert.equal(done.status, 'Success');
    assert.equal(done.progress, undefined, 'a finished run has its counts, not progress');
    const log = (await api('get', `/system/gc/${id}/log`)).text;
    const scanned = Number(/would delete \d+ untagged manifest\(s\) and \d+ blob\(s\), freeing \d+ bytes \((\d+) objects scanned\)/.exec(log)?.[1]);
    // the images pushed above: their manifests, tags, links and blob rows, and the blob files
    assert.ok(scanned >= 20, log);
  });
}
