// Garbage collection over a few thousand manifests while clients keep using the registry: reads
// are answered while the run is still going (it does not hold the event loop), and manifests
// pushed during the run survive it, also when they bring back what the run had marked as garbage.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { Oci, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, bytes, sha256 } from '../helpers/oci.ts';

const REPO = 'gcscale/app';
const MANIFESTS = 3000;
/** Every third manifest has no tag: with delete_untagged, garbage. */
const untagged = (i: number) => i % 3 === 0;

let t: TestApp;
let oci: Oci;

interface Image {
  i: number;
  digest: string;
  raw: Buffer;
  config: Buffer;
  configDigest: string;
  layer: Buffer;
  layerDigest: string;
}
let images: Image[] = [];

const blobFile = (digest: string) => path.join(t.dataDir, 'storage', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data');

/**
 * Writes the images the way a push stores them (blob rows, links, manifest rows with their bytes,
 * tags, blob files), three hours old, straight into the database: thousands of pushes would take
 * minutes. The repository itself is made by a real push, so the registry knows it.
 */
function fill(repositoryId: number, from = 0): Image[] {
  const out: Image[] = [];
  const old = new Date(Date.now() - 3 * 3600_000).toISOString().replace('Z', '+00:00');
  const db = new Database(path.join(t.dataDir, 'berth.db'));
  const blob = db.prepare('INSERT INTO "Blob" ("digest", "size", "createdAt") VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
  const link = db.prepare('INSERT INTO "BlobLink" ("repositoryId", "digest", "createdAt") VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
  const content = db.prepare('INSERT INTO "ManifestContent" ("digest", "content") VALUES (?, ?) ON CONFLICT DO NOTHING');
  const manifest = db.prepare('INSERT INTO "Manifest" ("repositoryId", "digest", "mediaType", "size", "refs", "pushedAt") VALUES (?, ?, ?, ?, ?, ?)');
  const tag = db.prepare('INSERT INTO "Tag" ("repositoryId", "name", "digest", "createdAt", "updatedAt") VALUES (?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = from; i < from + MANIFESTS; i++) {
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', i }));
      const layer = bytes(64, 1000 + i);
      const configDigest = sha256(config);
      const layerDigest = sha256(layer);
      const raw = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length }, layers: [{ mediaType: OCI_LAYER, digest: layerDigest, size: layer.length }] }),
      );
      const digest = sha256(raw);
      out.push({ i, digest, raw, config, configDigest, layer, layerDigest });
      for (const [d, b] of [
        [configDigest, config],
        [layerDigest, layer],
      ] as const) {
        blob.run(d, b.length, old);
        link.run(repositoryId, d, old);
        fs.mkdirSync(path.dirname(blobFile(d)), { recursive: true });
        fs.writeFileSync(blobFile(d), b);
        fs.utimesSync(blobFile(d), new Date(Date.now() - 3 * 3600_000), new Date(Date.now() - 3 * 3600_000));
      }
      blob.run(digest, raw.length, old);
      link.run(repositoryId, digest, old);
      content.run(digest, raw);
      manifest.run(repositoryId, digest, OCI_MANIFEST, raw.length, JSON.stringify([configDigest, layerDigest]), old);
      if (!untagged(i)) tag.run(repositoryId, `v${i}`, digest, old, old);
    }
  })();
  db.close();
  return out;
}

async function repositoryId(name: string): Promise<number> {
  await oci.pushImage(name, 'seed', 1);
  const db = new Database(path.join(t.dataDir, 'berth.db'), { readonly: true });
  const { id } = db.prepare('SELECT "id" FROM "Repository" WHERE "name" = ?').get(name) as { id: number };
  db.close();
  return id;
}

before(async () => {
  t = await makeApp();
  oci = new Oci(t.request, t.adminAuth);
  images = fill(await repositoryId(REPO));
});
after(async () => {
  await t?.close();
});

describe('garbage collection at scale', () => {
  test('reads are answered while a run is in progress, and manifests pushed during the run survive it', async () => {
    const res = await t.request.post('/api/v2.0/system/gc/schedule').set('Authorization', t.adminAuth).send({ schedule: { type: 'Manual' }, parameters: { delete_untagged: true } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const id = Number(/(\d+)$/.exec(res.headers.location)![1]);
    let finished = false;
    const ended = t.berth.gc.idle().then(() => (finished = true));

    // A client pulling throughout: for each answer, how far the run had got when it arrived.
    const scannedAtAnswer: number[] = [];
    const reader = (async () => {
      while (!finished) {
        const r = await oci.get('/v2/');
        assert.equal(r.status, 200);
        const run = await t.berth.gc.get(id);
        if (run.status === 'Running' && run.progress) scannedAtAnswer.push(run.progress.scanned);
      }
    })();

    // A client pushing throughout: it tags untagged manifests again (pushes their bytes under a
    // new tag), bringing back what the run may already have marked as garbage.
    const revived: Image[] = [];
    const writer = (async () => {
      for (const img of images.filter((m) => untagged(m.i))) {
        if (finished) break;
        const r = await oci.putManifest(REPO, `revived-${img.i}`, img.raw, OCI_MANIFEST);
        if (r.status !== 201) continue; // the run deleted it first: it is garbage, as marked
        revived.push(img);
      }
    })();

    await Promise.all([ended, reader, writer]);
    const run = await t.berth.gc.get(id);
    assert.equal(run.status, 'Success');
    // Reads were answered in the middle of the run, not only before or after it: at several
    // points of its progress, after it had begun scanning and before it had scanned everything.
    const midway = new Set(scannedAtAnswer.filter((n) => n > 0));
    assert.ok(midway.size >= 2, `answers while the run was scanning: ${[...midway].join(', ')}`);
    const log = await t.berth.gc.log(id);
    const total = Number(/\((\d+) objects scanned\)/.exec(log)?.[1]);
    assert.ok(total >= 3 * MANIFESTS, log.slice(-500));
    assert.ok([...midway].some((n) => n < total));

    // What was pushed during the run is all there: the manifest, its tag, its config and layer.
    assert.ok(revived.length > 0);
    for (const img of revived) {
      const m = await oci.get(`/v2/${REPO}/manifests/revived-${img.i}`).set('Accept', OCI_MANIFEST);
      assert.equal(m.status, 200, `revived-${img.i}`);
      assert.equal(m.headers['docker-content-digest'], img.digest);
      for (const [d, b] of [
        [img.configDigest, img.config],
        [img.layerDigest, img.layer],
      ] as const) {
        const got = await oci.getBytes(`/v2/${REPO}/blobs/${d}`);
        assert.equal(got.status, 200, `${d} of revived-${img.i}`);
        assert.ok(Buffer.from(got.body).equals(b));
      }
    }
    // The rest is as the rules say: tagged images kept, untagged ones not brought back collected.
    const back = new Set(revived.map((m) => m.i));
    const gone = images.filter((m) => untagged(m.i) && !back.has(m.i));
    assert.ok(gone.length > 0);
    // (a revived manifest may have been deleted first and pushed again: then it counts too)
    assert.ok(run.manifestsDeleted >= gone.length && run.manifestsDeleted <= gone.length + revived.length, `${run.manifestsDeleted} deleted`);
    for (const img of gone.slice(0, 50)) {
      assert.equal((await oci.get(`/v2/${REPO}/manifests/${img.digest}`).set('Accept', OCI_MANIFEST)).status, 404);
      assert.equal(fs.existsSync(blobFile(img.layerDigest)), false);
    }
    for (const img of images.filter((m) => !untagged(m.i)).slice(0, 50)) {
      assert.equal((await oci.get(`/v2/${REPO}/manifests/v${img.i}`).set('Accept', OCI_MANIFEST)).status, 200);
      assert.equal((await oci.head(`/v2/${REPO}/blobs/${img.layerDigest}`)).status, 200);
    }
  });

  test('a run stopped midway ends as Stopped with what it deleted consistent; the next run finishes the job', async () => {
    const name = 'gcscale/stopped';
    const more = fill(await repositoryId(name), MANIFESTS);
    const res = await t.request.post('/api/v2.0/system/gc/schedule').set('Authorization', t.adminAuth).send({ schedule: { type: 'Manual' }, parameters: { delete_untagged: true } });
    assert.equal(res.status, 201);
    const id = Number(/(\d+)$/.exec(res.headers.location)![1]);
    for (let v = await t.berth.gc.get(id); v.status === 'Running' || v.status === 'Pending'; v = await t.berth.gc.get(id)) {
      if ((v.progress?.manifests ?? 0) > 0) {
        assert.equal((await t.request.put(`/api/v2.0/system/gc/${id}`).set('Authorization', t.adminAuth)).status, 200);
        break;
      }
      await new Promise((r) => setImmediate(r));
    }
    await t.berth.gc.idle();
    const stopped = await t.berth.gc.get(id);
    assert.equal(stopped.status, 'Stopped');
    const doomed = more.filter((m) => untagged(m.i));
    assert.ok(stopped.manifestsDeleted > 0 && stopped.manifestsDeleted < doomed.length, `${stopped.manifestsDeleted} deleted`);
    assert.match(await t.berth.gc.log(id), /garbage collection stopped in \d+ ms/);
    // Whatever it got to, what is tagged is whole.
    for (const img of more.filter((m) => !untagged(m.i)).slice(0, 30)) {
      assert.equal((await oci.get(`/v2/${name}/manifests/v${img.i}`).set('Accept', OCI_MANIFEST)).status, 200);
      assert.equal((await oci.getBytes(`/v2/${name}/blobs/${img.configDigest}`)).status, 200);
    }
    const res2 = await t.request.post('/api/v2.0/system/gc/schedule').set('Authorization', t.adminAuth).send({ schedule: { type: 'Manual' }, parameters: { delete_untagged: true } });
    assert.equal(res2.status, 201);
    await t.berth.gc.idle();
    const next = await t.berth.gc.get(Number(/(\d+)$/.exec(res2.headers.location)![1]));
    assert.equal(next.status, 'Success');
    assert.equal(stopped.manifestsDeleted + next.manifestsDeleted, doomed.length);
    for (const img of doomed.slice(-30)) assert.equal(fs.existsSync(blobFile(img.layerDigest)), false);
  });
});
