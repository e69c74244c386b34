// The token-signing key is the cluster's: kept sealed in the database (never the plain key), an
// older install's key file imported so its tokens stay valid, shared by every node on PostgreSQL,
// and rotated by a system admin (POST /api/v2.0/system/token-key/rotate): tokens of the previous
// key keep working until they expire, new ones carry the new kid, and a second rotation drops the
// oldest key at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import supertest from 'supertest';
import { createApp, type BerthApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/index.ts';
import { ADMIN_PASSWORD, basic, makeApp, REAL_ACCESS, type TestApp } from '../helpers/app.ts';
import { missingPostgres, startPostgres, type TestPostgres } from '../helpers/pg.ts';

type Request = ReturnType<typeof supertest>;
const ADMIN = basic('admin', ADMIN_PASSWORD);
const SECRET = 'the-same-secret-key-on-every-node-0123456789';

async function tokenFrom(request: Request, auth = ADMIN): Promise<string> {
  const res = await request.get('/service/token?service=berth-registry&scope=registry:catalog:*').set('Authorization', auth);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.token as string;
}

const kidOf = (token: string) => String(jwt.decode(token, { complete: true })!.header.kid);
/** What /v2 answers a Bearer token with (200: accepted, 401: refused). */
const v2 = async (request: Request, token: string) => (await request.get('/v2/').set('Authorization', `Bearer ${token}`)).status;
const keyInfo = async (request: Request) => {
  const res = await request.get('/api/v2.0/system/token-key').set('Authorization', ADMIN);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body as { kid: string; previous_kid: string | null };
};
const rotate = async (request: Request, auth: string | null = ADMIN) => {
  const r = request.post('/api/v2.0/system/token-key/rotate');
  return auth ? r.set('Authorization', auth) : r;
};

describe('the token-signing key on SQLite', () => {
  let dataDir: string;
  let pem: string;
  const boot = () => createApp(loadConfig({ BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD, BERTH_LOG_LEVEL: 'silent' }), REAL_ACCESS);
  before(() => {
    // An install from before shared keys: its key in <data>/keys/token-signing.key.
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-token-keys-'));
    fs.mkdirSync(path.join(dataDir, 'keys'), { mode: 0o700 });
    pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    fs.writeFileSync(path.join(dataDir, 'keys', 'token-signing.key'), pem, { mode: 0o600 });
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  test('an existing key file is imported (its tokens stay valid) and stored sealed, never in plain', async () => {
    const berth: BerthApp = await boot();
    try {
      const token = await tokenFrom(supertest(berth.app));
      jwt.verify(token, createPublicKey(pem), { algorithms: ['ES256'] }); // signed with the imported key
      const row = await berth.db.setting.findUnique({ where: { key: 'token_signing_keys' } });
      assert.ok(row, 'the key set is a Setting row');
      assert.match(JSON.parse(row.value) as string, /^enc:v1:/, 'sealed with the secret box');
    } finally {
      await berth.close();
    }
    const db = Buffer.concat(['berth.db', 'berth.db-wal'].map((f) => path.join(dataDir, f)).filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)));
    const body = pem.replace(/-----[^-]+-----|\s/g, '');
    assert.ok(!db.includes(body) && !db.includes(Buffer.from(body, 'base64')), 'the private key is not in the database files');
    for (const line of pem.split('\n').filter((l) => l.length >= 40)) assert.ok(!db.includes(line), 'no line of the PEM is in the database files');
    assert.ok(!db.includes('PRIVATE KEY'));
  });

  test('a system admin rotates the key: old tokens keep working, new ones carry the new kid; a second rotation drops the oldest key', async () => {
    const berth = await boot();
    try {
      const request = supertest(berth.app);
      assert.equal((await request.post('/api/v2.0/users').set('Authorization', ADMIN).send({ username: 'dev', password: 'Passw0rd!x' })).status, 201);
      const old = await tokenFrom(request);
      const before = await keyInfo(request);
      assert.equal(before.kid, kidOf(old));
      assert.equal(before.previous_kid, null);

      assert.equal((await rotate(request, null)).status, 401);
      assert.equal((await rotate(request, basic('dev', 'Passw0rd!x'))).status, 403, 'system admins only');
      assert.equal((await request.get('/api/v2.0/system/token-key').set('Authorization', basic('dev', 'Passw0rd!x'))).status, 403);
      assert.equal((await keyInfo(request)).kid, before.kid, 'a refused rotation changes nothing');

      const first = await rotate(request);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.notEqual(first.body.kid, before.kid);
      assert.equal(first.body.previous_kid, before.kid);
      assert.match(first.body.kid, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
      assert.deepEqual(await keyInfo(request), first.body);
      const fresh = await tokenFrom(request);
      assert.equal(kidOf(fresh), first.body.kid, 'new tokens carry the new kid');
      assert.equal(await v2(request, fresh), 200);
      assert.equal(await v2(request, old), 200, 'tokens of the previous key stay valid until they expire');

      const second = await rotate(request);
      assert.equal(second.body.previous_kid, first.body.kid);
      assert.equal(await v2(request, old), 401, 'two rotations: the oldest key is dropped');
      assert.equal(await v2(request, fresh), 200);
    } finally {
      await berth.close();
    }
    // The rotated keys are the stored ones: after a restart the same key signs.
    const again = await boot();
    try {
      const request = supertest(again.app);
      const info = await keyInfo(request);
      assert.equal(kidOf(await tokenFrom(request)), info.kid);
      assert.notEqual(info.previous_kid, null);
    } finally {
      await again.close();
    }
  });
});

describe('the token-signing key across two nodes on PostgreSQL', { skip: missingPostgres() }, () => {
  let pgServer: TestPostgres;
  let url: string;
  let node1: TestApp;
  let node2: TestApp;
  before(async () => {
    pgServer = await startPostgres();
    url = await pgServer.createDatabase();
    // Started at once: one key is created for both.
    [node1, node2] = await Promise.all([makeApp({ BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: SECRET }, REAL_ACCESS), makeApp({ BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: SECRET }, REAL_ACCESS)]);
  });
  after(async () => {
    await node1?.close();
    await node2?.close();
    await pgServer?.stop();
  });

  test('a token from node 1 is accepted by node 2, and the other way round', async () => {
    assert.equal((await keyInfo(node1.request)).kid, (await keyInfo(node2.request)).kid);
    assert.equal(await v2(node2.request, await tokenFrom(node1.request)), 200);
    assert.equal(await v2(node1.request, await tokenFrom(node2.request)), 200);
    assert.equal(await v2(node2.request, 'not-a-token'), 401);
  });

  test('a rotation on node 2 reaches node 1: its new tokens carry the new kid, old tokens stay valid on both', async () => {
    const old = await tokenFrom(node1.request);
    const rotated = await rotate(node2.request);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const deadline = Date.now() + 1_000;
    while ((await keyInfo(node1.request)).kid !== rotated.body.kid && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await keyInfo(node1.request), rotated.body, 'node 1 reloaded the keys');
    const fresh = await tokenFrom(node1.request);
    assert.equal(kidOf(fresh), rotated.body.kid);
    assert.equal(await v2(node2.request, fresh), 200);
    assert.equal(await v2(node1.request, old), 200);
    assert.equal(await v2(node2.request, old), 200);
  });

  test('the Setting row holds the keys sealed; a node with another BERTH_SECRET_KEY refuses to start', async () => {
    const rows = await node1.berth.db.setting.findMany();
    const row = rows.find((r) => r.key === 'token_signing_keys');
    assert.ok(row);
    assert.match(JSON.parse(row.value) as string, /^enc:v1:/);
    assert.ok(!JSON.stringify(rows).includes('PRIVATE KEY'));
    await assert.rejects(makeApp({ BERTH_DATABASE_URL: url, BERTH_SECRET_KEY: 'another-secret-key-0123456789-0123456789' }, REAL_ACCESS), /BERTH_SECRET_KEY/);
    assert.equal(await v2(node2.request, await tokenFrom(node1.request)), 200, 'the refused node changed nothing');
  });
});
