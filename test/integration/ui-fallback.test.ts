// The UI's client-side routes answer a browser's navigation with index.html; anything else that
// is not a real path (a Prometheus scrape of /metrics, a probe of /healthz) is a 404.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeApp, type TestApp } from '../helpers/app.ts';

let t: TestApp;
before(async () => {
  t = await makeApp();
});
after(async () => {
  await t.close();
});

test('unknown paths are 404 unless a browser navigates to a UI route', async () => {
  for (const p of ['/metrics', '/healthz', '/nope/deeper']) {
    const r = await t.request.get(p);
    assert.equal(r.status, 404, p);
    assert.doesNotMatch(r.text, /<html/i, p);
    assert.equal((await t.request.get(p).set('Accept', 'application/json, */*')).status, 404, p);
  }
  if (!fs.existsSync(new URL('../../web/dist/index.html', import.meta.url))) {
    assert.ok(!process.env.CI, 'web/dist is built by npm ci in CI');
    return;
  }
  const nav = await t.request.get('/harbor/projects').set('Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8');
  assert.equal(nav.status, 200);
  assert.match(nav.text, /<html/i);
});
