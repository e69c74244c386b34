// The login throttle on a fake clock: failures lock the pair (name, address); a name failing from many
// addresses, or an address failing for many names, is only slowed, by a bounded delay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressKey, LoginThrottle, type Verdict } from '../../src/auth/throttle.ts';

function clock() {
  const c = { now: 1_000_000, tick: (ms: number) => (c.now += ms) };
  return c;
}

const lockedFor = (v: Verdict) => (v.locked ? v.retryAfterMs : 0);
const delayOf = (v: Verdict) => (v.locked ? Infinity : v.delayMs);

test('five failures lock the pair for 30 s; each further failure doubles the lock, capped at 15 minutes', () => {
  const c = clock();
  const t = new LoginThrottle({}, () => c.now);
  for (let i = 0; i < 4; i++) assert.equal(t.fail('bob', '10.0.0.1'), 0);
  assert.equal(t.check('bob', '10.0.0.1').locked, false);
  assert.equal(t.fail('bob', '10.0.0.1'), 30_000, 'the fifth failure starts a 30 s lock');
  assert.equal(lockedFor(t.check('bob', '10.0.0.1')), 30_000);
  assert.equal(lockedFor(t.check('BOB', '10.0.0.1')), 30_000, 'names are case-insensitive');
  c.tick(30_000);
  assert.equal(t.check('bob', '10.0.0.1').locked, false, 'the lock ends');
  assert.equal(t.fail('bob', '10.0.0.1'), 60_000, 'the next failure doubles it');
  c.tick(60_000);
  let lock = 0;
  for (let i = 0; i < 12; i++) {
    lock = t.fail('bob', '10.0.0.1');
    c.tick(lock);
  }
  assert.equal(lock, 15 * 60_000, 'capped');
  assert.equal(t.check('bob', '10.0.0.1').locked, false, 'never locked for good');
});

test('a failure during a lock does not start another one (one warning per lock)', () => {
  const c = clock();
  const t = new LoginThrottle({}, () => c.now);
  const started = Array.from({ length: 9 }, () => t.fail('bob', '10.0.0.1')).filter((ms) => ms > 0);
  assert.deepEqual(started, [30_000]);
});

test('a correct password starts the pair afresh', () => {
  const c = clock();
  const t = new LoginThrottle({}, () => c.now);
  for (let i = 0; i < 4; i++) t.fail('bob', '10.0.0.1');
  t.succeed('bob', '10.0.0.1');
  for (let i = 0; i < 4; i++) assert.equal(t.fail('bob', '10.0.0.1'), 0);
  assert.equal(t.check('bob', '10.0.0.1').locked, false);
});

test('many names failing from one address never lock a fresh name there; they only slow it, boundedly', () => {
  const c = clock();
  const t = new LoginThrottle({}, () => c.now);
  for (let i = 0; i < 10; i++) t.fail(`made-up-${i}`, '203.0.113.7');
  const v = t.check('admin', '203.0.113.7');
  assert.equal(v.locked, false);
  for (let i = 10; i < 500; i++) t.fail(`made-up-${i}`, '203.0.113.7');
  const late = t.check('admin', '203.0.113.7');
  assert.equal(late.locked, false, 'a spray of any size never refuses a fresh name');
  assert.ok(delayOf(late) > 0, 'the spraying address is slowed');
  assert.ok(delayOf(late) <= 3_000, 'by at most 3 s');
  assert.equal(delayOf(t.check('admin', '198.51.100.1')), 0, 'other addresses are not slowed');
});

test('one name failing from many addresses is slowed (at most 3 s), never locked from a new address', () => {
  const c = clock();
  const t = new LoginThrottle({}, () => c.now);
  assert.equal(delayOf(t.check('admin', '198.51.100.200')), 0);
  for (let i = 0; i < 5; i++) t.fail('admin', `198.51.100.${i}`);
  const first = delayOf(t.check('admin', '198.51.100.200'));
  assert.ok(first > 0, 'slowed after five failures');
  for (let i = 5; i < 200; i++) t.fail('admin', `198.51.100.${i}`);
  const v = t.check('admin', '198.51.100.200');
  assert.equal(v.locked, false);
  assert.ok(delayOf(v) > first, 'the delay grows with failures');
  assert.ok(delayOf(v) <= 3_000, 'and stays bounded');
  assert.equal(delayOf(t.check('someone-else', '198.51.100.200')), 0, 'other names are not slowed');
});

test('counters are forgotten after five quiet minutes', () => {
  const c = clock();
  const t = new LoginThrottle({}, () => c.now);
  for (let i = 0; i < 20; i++) t.fail('admin', `198.51.100.${i}`);
  for (let i = 0; i < 5; i++) t.fail('bob', '10.0.0.1');
  c.tick(30_000 + 5 * 60_000);
  assert.equal(delayOf(t.check('admin', '198.51.100.200')), 0);
  assert.equal(delayOf(t.check('bob', '10.0.0.1')), 0);
  assert.equal(t.fail('bob', '10.0.0.1'), 0, 'a forgotten pair starts from one failure');
});

test('memory is bounded: cycling names and addresses keeps each table at its cap, and locks are evicted last', () => {
  const c = clock();
  const t = new LoginThrottle({ maxEntries: 1_000 }, () => c.now);
  for (let i = 0; i < 5; i++) t.fail('admin', '10.9.9.9');
  for (let i = 0; i < 20_000; i++) t.fail(`n${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  const s = t.sizes();
  assert.ok(s.pairs <= 1_000 && s.names <= 1_000 && s.addresses <= 1_000, JSON.stringify(s));
  assert.equal(t.check('admin', '10.9.9.9').locked, true, 'the locked pair outlived the unlocked ones');
});

test('addresses as keys: IPv4-mapped IPv6 is IPv4, IPv6 counts by its /64', () => {
  assert.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(addressKey('10.1.2.3'), '10.1.2.3');
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), addressKey('2001:0db8:0001:0002:ffff:1:2:3'));
  assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  const c = clock();
  const t = new LoginThrottle({}, () => c.now);
  for (let i = 1; i <= 5; i++) t.fail('bob', `2001:db8:1:2::${i}`);
  assert.equal(t.check('bob', '2001:db8:1:2::99').locked, true, 'rotating within a /64 does not escape the lock');
  for (let i = 1; i <= 5; i++) t.fail('carol', '::ffff:192.0.2.1');
  assert.equal(t.check('carol', '192.0.2.1').locked, true, 'direct and proxied forms of one IPv4 client are one address');
});
