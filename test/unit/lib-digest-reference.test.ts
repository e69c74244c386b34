// Pure helpers: digests (src/lib/digest.ts) and the name/tag grammar (src/lib/reference.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { digestOf, looksLikeDigest, newHash, parseDigest } from '../../src/lib/digest.ts';
import { MAX_NAME_LENGTH, NAME_PATTERN, isValidName, isValidTag, projectOf } from '../../src/lib/reference.ts';

const HEX64 = 'a'.repeat(64);
const HEX128 = 'b'.repeat(128);

describe('digest', () => {
  test('parseDigest accepts sha256 and sha512 with lowercase hex of the right length', () => {
    assert.deepEqual(parseDigest(`sha256:${HEX64}`), { algorithm: 'sha256', hex: HEX64, digest: `sha256:${HEX64}` });
    assert.deepEqual(parseDigest(`sha512:${HEX128}`), { algorithm: 'sha512', hex: HEX128, digest: `sha512:${HEX128}` });
  });

  test('parseDigest rejects bad grammar, wrong length, uppercase, unknown algorithms', () => {
    for (const s of [
      '', 'sha256', `sha256:`, `:${HEX64}`, `sha256:${HEX64.slice(1)}`, `sha256:${HEX64}0`, `sha256:${HEX64.toUpperCase()}`,
      `sha512:${HEX64}`, `sha256:${HEX128}`, `md5:${'0'.repeat(32)}`, `SHA256:${HEX64}`, `sha256:${'g'.repeat(64)}`,
      `sha256:${HEX64}\n`, ` sha256:${HEX64}`, `constructor:${HEX64}`, `toString:${HEX64}`, `__proto__:${HEX64}`,
    ]) {
      assert.equal(parseDigest(s), null, JSON.stringify(s));
    }
  });

  test('looksLikeDigest checks only the general grammar', () => {
    assert.ok(looksLikeDigest('sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564'));
    assert.ok(looksLikeDigest('multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8'));
    assert.ok(!looksLikeDigest('latest'));
    assert.ok(!looksLikeDigest('sha256:'));
    assert.ok(!looksLikeDigest('Sha256:abc'));
  });

  test('digestOf and newHash agree with node:crypto', () => {
    const data = Buffer.from('hello world');
    assert.equal(digestOf(data), 'sha256:' + createHash('sha256').update(data).digest('hex'));
    assert.equal(digestOf('hello world', 'sha512'), 'sha512:' + createHash('sha512').update(data).digest('hex'));
    assert.equal(digestOf(''), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(newHash().update(data).digest('hex'), createHash('sha256').update(data).digest('hex'));
    assert.equal(newHash('sha512').update(data).digest('hex').length, 128);
    assert.ok(parseDigest(digestOf(data)));
    assert.ok(parseDigest(digestOf(data, 'sha512')));
  });
});

describe('reference grammar', () => {
  test('valid repository names', () => {
    for (const n of ['a', 'library/alpine', 'a/b/c/d/e', 'a.b', 'a_b', 'a__b', 'a-b', 'a---b', '0/1', 'x.y_z__w-v/q', 'a'.repeat(MAX_NAME_LENGTH)]) {
      assert.ok(isValidName(n), n);
    }
  });

  test('invalid repository names', () => {
    for (const n of ['', 'A', 'a/B', '/a', 'a/', 'a//b', '-a', 'a-', '.a', 'a.', 'a..b', 'a___b', 'a_.b', '_a', 'a/_b', 'a b', 'a:b', 'a@b', 'a'.repeat(MAX_NAME_LENGTH + 1), 'a/../b', 'ä']) {
      assert.ok(!isValidName(n), JSON.stringify(n));
    }
  });

  test('NAME_PATTERN matches the spec regular expression on a corpus of names', () => {
    const spec = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
    const ours = new RegExp(`^${NAME_PATTERN}$`);
    const alphabet = ['a', '0', '.', '_', '-', '/'];
    // Every string of length <= 5 over a small alphabet.
    let names = [''];
    for (let len = 1; len <= 5; len++) {
      names = names.flatMap((n) => alphabet.map((c) => n + c));
      for (const n of names) assert.equal(ours.test(n), spec.test(n), JSON.stringify(n));
    }
  });

  test('NAME_PATTERN is linear on hostile input (no catastrophic backtracking)', () => {
    const ours = new RegExp(`^/${NAME_PATTERN}/manifests/([^/]+)$`);
    const hostile = '/' + 'a-'.repeat(5000) + '!/manifests/x';
    assert.equal(ours.test(hostile), false);
    const hostile2 = '/' + 'a_'.repeat(5000) + '_/manifests/x';
    assert.equal(ours.test(hostile2), false);
  });

  test('tags', () => {
    for (const tag of ['latest', 'v1.2.3', '_x', 'A', '0', 'a'.repeat(128), 'sha256-' + HEX64]) assert.ok(isValidTag(tag), tag);
    for (const tag of ['', '-a', '.a', 'a'.repeat(129), 'a/b', 'a:b', 'a+b', 'a b', 'ä']) assert.ok(!isValidTag(tag), JSON.stringify(tag));
  });

  test('projectOf is the first path component', () => {
    assert.equal(projectOf('library/alpine'), 'library');
    assert.equal(projectOf('a/b/c'), 'a');
    assert.equal(projectOf('solo'), 'solo');
  });
});
