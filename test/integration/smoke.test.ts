import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { makeApp } from '../helpers/app.ts';

test('push a blob and a manifest, pull them back', async () => {
  const t = await makeApp();
  try {
    const { request: r, adminAuth: auth } = t;
    assert.equal((await r.get('/v2/')).status, 401);
    assert.equal((await r.get('/v2/').set('Authorization', auth)).status, 200);
    const data = Buffer.from('hello layer');
    const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
    const up = await r.post(`/v2/library/app/blobs/uploads/?digest=${digest}`).set('Authorization', auth).set('Content-Type', 'application/octet-stream').send(data);
    assert.equal(up.status, 201, JSON.stringify(up.body));
    const cfg = Buffer.from('{}');
    const cfgDigest = 'sha256:' + createHash('sha256').update(cfg).digest('hex');
    const s = await r.post('/v2/library/app/blobs/uploads/').set('Authorization', auth);
    assert.equal(s.status, 202);
    const p = await r.patch(s.headers.location).set('Authorization', auth).set('Content-Type', 'application/octet-stream').set('Content-Range', `0-${cfg.length - 1}`).send(cfg);
    assert.equal(p.status, 202, JSON.stringify(p.body));
    const done = await r.put(`${p.headers.location}?digest=${cfgDigest}`).set('Authorization', auth);
    assert.equal(done.status, 201, JSON.stringify(done.body));
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgDigest, size: cfg.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: data.length }] });
    const mp = await r.put('/v2/library/app/manifests/v1').set('Authorization', auth).set('Content-Type', 'application/vnd.oci.image.manifest.v1+json').send(manifest);
    assert.equal(mp.status, 201, JSON.stringify(mp.body));
    const mg = await r.get('/v2/library/app/manifests/v1').set('Authorization', auth).buffer(true).parse((res, cb) => { const c: Buffer[] = []; res.on('data', (d: Buffer) => c.push(d)); res.on('end', () => cb(null, Buffer.concat(c))); });
    assert.equal(mg.status, 200);
    assert.equal(mg.body.toString(), manifest);
    const bg = await r.get(`/v2/library/app/blobs/${digest}`).set('Authorization', auth).buffer(true).parse((res, cb) => { const c: Buffer[] = []; res.on('data', (d: Buffer) => c.push(d)); res.on('end', () => cb(null, Buffer.concat(c))); });
    assert.equal(bg.status, 200);
    assert.equal(bg.body.toString(), 'hello layer');
    const tags = await r.get('/v2/library/app/tags/list').set('Authorization', auth);
    assert.deepEqual(tags.body, { name: 'library/app', tags: ['v1'] });
  } finally {
    await t.close();
  }
});
