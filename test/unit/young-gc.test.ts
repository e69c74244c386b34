// src/lib/young-gc.ts: a minor GC after every 8 MiB of request body, without exposing gc().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { bodyBytesReceived } from '../../src/lib/young-gc.ts';

async function minorGcs(fn: () => void): Promise<number> {
  let n = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) n++;
  });
  obs.observe({ entryTypes: ['gc'] });
  fn();
  await new Promise((r) => setTimeout(r, 50)); // gc entries are delivered asynchronously
  obs.disconnect();
  return n;
}

test('a minor GC runs once 8 MiB of body was received, not before', async () => {
  assert.equal(await minorGcs(() => bodyBytesReceived(1024)), 0, 'no GC for a small body');
  assert.ok((await minorGcs(() => bodyBytesReceived(8 * 1024 * 1024))) >= 1, 'a minor GC after 8 MiB');
});

test('gc() stays out of the global scope', () => {
  bodyBytesReceived(8 * 1024 * 1024);
  assert.equal((globalThis as { gc?: unknown }).gc, undefined);
});
