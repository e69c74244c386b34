import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedExclusiveLock } from '../../src/lib/rwlock.ts';

const tick = () => new Promise((r) => setImmediate(r));

test('shared holders run together; exclusive waits for them and runs alone', async () => {
  const lock = new SharedExclusiveLock();
  const events: string[] = [];
  let releaseA!: () => void;
  let releaseB!: () => void;
  const a = lock.shared(async () => {
    events.push('a+');
    await new Promise<void>((r) => (releaseA = r));
    events.push('a-');
  });
  const b = lock.shared(async () => {
    events.push('b+');
    await new Promise<void>((r) => (releaseB = r));
    events.push('b-');
  });
  await tick();
  assert.deepEqual(events, ['a+', 'b+']);
  const x = lock.exclusive(async () => {
    events.push('x+');
    await tick();
    events.push('x-');
  });
  // A shared request after a waiting exclusive one waits too (writer preference).
  const c = lock.shared(async () => {
    events.push('c');
  });
  await tick();
  releaseA();
  await a;
  await tick();
  assert.ok(!events.includes('x+'), 'exclusive must wait for every shared holder');
  releaseB();
  await Promise.all([b, x, c]);
  assert.deepEqual(events, ['a+', 'b+', 'a-', 'b-', 'x+', 'x-', 'c']);
});

test('a task that throws releases the lock', async () => {
  const lock = new SharedExclusiveLock();
  await assert.rejects(lock.exclusive(async () => Promise.reject(new Error('boom'))), /boom/);
  await assert.rejects(lock.shared(async () => Promise.reject(new Error('bang'))), /bang/);
  assert.equal(await lock.exclusive(async () => 1), 1);
  assert.equal(await lock.shared(async () => 2), 2);
});

test('exclusive holders run one after another', async () => {
  const lock = new SharedExclusiveLock();
  let inside = 0;
  let most = 0;
  await Promise.all(
    Array.from({ length: 5 }, () =>
      lock.exclusive(async () => {
        inside++;
        most = Math.max(most, inside);
        await tick();
        inside--;
      }),
    ),
  );
  assert.equal(most, 1);
});
