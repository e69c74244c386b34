// /api/v2.0/health reports the database and the storage as Harbor does, and a node that cannot
// reach one of them answers 503, so a load balancer takes it out until they answer again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, type TestApp } from '../helpers/app.ts';
import { MemoryDriver } from '../../src/storage/driver/memory.ts';

class FlakyDriver extends MemoryDriver {
  down = false;
  override async stat(path: string) {
    if (this.down) throw new Error('connect ECONNREFUSED 10.0.0.9:7480');
    return super.stat(path);
  }
}

let t: TestApp;
const driver = new FlakyDriver();
before(async () => {
  t = await makeApp({}, { driver });
});
after(async () => {
  await t.close();
});

const component = (body: { components: { name: string; status: string }[] }, name: string) => body.components.find((c) => c.name === name)?.status;

test('healthy: 200 with every component healthy', async () => {
  const r = await t.request.get('/api/v2.0/health');
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'healthy');
  assert.equal(component(r.body, 'database'), 'healthy');
  assert.equal(component(r.body, 'storage'), 'healthy');
});

test('storage unreachable: 503, storage unhealthy; back to 200 when it answers again', async () => {
  driver.down = true;
  const r = await t.request.get('/api/v2.0/health');
  assert.equal(r.status, 503);
  assert.equal(r.body.status, 'unhealthy');
  assert.equal(component(r.body, 'storage'), 'unhealthy');
  assert.equal(component(r.body, 'database'), 'healthy');
  driver.down = false;
  assert.equal((await t.request.get('/api/v2.0/health')).status, 200);
});
