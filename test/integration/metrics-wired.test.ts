// The sources wired through app.ts: cache statistics, open upload sessions, database query timings.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { Oci } from '../helpers/oci.ts';

let t: TestApp;
let oci: Oci;
before(async () => {
  t = await makeApp({ BERTH_METRICS_ADDR: '127.0.0.1:0' });
  oci = new Oci(t.request, t.adminAuth);
});
after(() => t.close());

const value = (text: string, re: RegExp) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);

test('cache hits and misses, open uploads and database query latency move', async () => {
  const text0 = await t.berth.metrics!.text();
  await oci.pushImage('wired/app', '1.0', 3);
  for (let i = 0; i < 3; i++) assert.equal((await oci.get('/v2/wired/app/manifests/1.0')).status, 200);
  assert.equal((await oci.get('/v2/wired/app/manifests/nope')).status, 404);
  const location = await oci.startUpload('wired/app');
  const text1 = await t.berth.metrics!.text();
  assert.ok(value(text1, /^berth_cache_hits_total\{cache="[a-z_]+"\} (\d+)$/gm) > value(text0, /^berth_cache_hits_total\{cache="[a-z_]+"\} (\d+)$/gm), text1);
  assert.ok(value(text1, /^berth_cache_misses_total\{cache="[a-z_]+"\} (\d+)$/gm) > 0);
  assert.ok(value(text1, /^berth_cache_entries\{cache="manifests"\} (\d+)$/gm) >= 1);
  assert.equal(value(text1, /^berth_uploads_open (\d+)$/gm), 1);
  assert.ok(value(text1, /^berth_db_query_duration_seconds_count\{operation="[^"]+"\} (\d+)$/gm) > 0, text1.split('\n').filter((l) => l.includes('db_query')).join('\n'));
  assert.equal((await oci.delete(location)).status, 204);
  assert.equal(value(await t.berth.metrics!.text(), /^berth_uploads_open (\d+)$/gm), 0);
});
