// The registry's direct writes share Prisma's SQLite connection: they must wait out an open Prisma
// transaction (never land inside it, never fail with "cannot start a transaction within a
// transaction"), and store dates exactly as Prisma reads them back. Real SQLite files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Db } from '../../src/db/client.ts';
import { RegistryStore } from '../../src/db/registry-store.ts';

let tmp: string;
let db: Db;
let store: RegistryStore;
let repoId: number;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-direct-'));
  const file = path.join(tmp, 'berth.db');
  db = await openDatabase(`file:${file}`);
  store = new RegistryStore(db, { file });
  repoId = await store.ensureRepository('p/r', null);
});
after(async () => {
  store.close();
  await db.$disconnect();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const digest = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`;

test('a direct write waits for an open Prisma transaction and is not rolled back with it', async () => {
  const events: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const tx = db
    .$transaction(async (t) => {
      await t.project.create({ data: { name: 'rolled-back' } });
      events.push('tx wrote');
      await held;
      throw new Error('roll back');
    })
    .catch((e: Error) => events.push(`tx ${e.message}`));
  await new Promise((r) => setTimeout(r, 20));
  const write = store.linkBlob(repoId, digest(1), 10).then(() => events.push('direct committed'));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(events, ['tx wrote'], 'the direct write must wait while the transaction is open');
  release();
  await Promise.all([tx, write]);
  assert.deepEqual(events.sort(), ['direct committed', 'tx roll back', 'tx wrote']);
  assert.equal(await db.project.count({ where: { name: 'rolled-back' } }), 0);
  assert.equal(await store.linkedBlobSize(repoId, digest(1)), 10);
});

test('concurrent direct writes and Prisma transactions all land', async () => {
  const jobs: Promise<unknown>[] = [];
  for (let i = 0; i < 40; i++) {
    jobs.push(store.linkBlob(repoId, digest(100 + i), i));
    if (i % 5 === 0) jobs.push(db.$transaction([db.project.create({ data: { name: `p${i}` } })]));
  }
  await Promise.all(jobs);
  assert.equal(await db.blobLink.count({ where: { repositoryId: repoId, digest: { gte: digest(100), lte: digest(139) } } }), 40);
  assert.equal(await db.project.count({ where: { name: { startsWith: 'p' } } }), 8);
});

test('dates written directly read back through Prisma as the moment of the write', async () => {
  const before = Date.now();
  await store.putManifest(repoId, { digest: digest(7), mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: null, configType: null, size: 2, subject: null, annotations: null, refs: [], content: Buffer.from('{}') }, 'v1');
  const tag = await db.tag.findUnique({ where: { repositoryId_name: { repositoryId: repoId, name: 'v1' } } });
  assert.ok(tag);
  assert.ok(tag.createdAt instanceof Date);
  assert.ok(Math.abs(tag.createdAt.getTime() - before) < 5_000, `${tag.createdAt.toISOString()} vs ${new Date(before).toISOString()}`);
  const newest = await db.manifest.findFirst({ where: { repositoryId: repoId }, orderBy: { pushedAt: 'desc' } });
  assert.equal(newest?.digest, digest(7));
});
