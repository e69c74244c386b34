// Pure helpers: manifest parsing (src/lib/manifest.ts), the LRU cache (src/lib/lru.ts) and the
// keyed mutex (src/lib/mutex.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '../../src/lib/errors.ts';
import { Lru, approxBytes } from '../../src/lib/lru.ts';
import { MediaTypes, baseMediaType, parseManifest } from '../../src/lib/manifest.ts';
import { KeyedMutex } from '../../src/lib/mutex.ts';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const CONFIG = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('c'), size: 10 };
const LAYER = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('1'), size: 20 };

function parse(m: unknown, type?: string) {
  return parseManifest(Buffer.from(typeof m === 'string' ? m : JSON.stringify(m)), type);
}

function invalid(m: unknown, type?: string): void {
  assert.throws(() => parse(m, type), (e: unknown) => e instanceof AppError && e.code === 'MANIFEST_INVALID', JSON.stringify(m).slice(0, 80));
}

describe('parseManifest', () => {
  test('OCI image manifest: blobs are config and layers, de-duplicated; artifactType falls back to the config type', () => {
    const p = parse({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: CONFIG, layers: [LAYER, LAYER] }, MediaTypes.ociManifest);
    assert.equal(p.mediaType, MediaTypes.ociManifest);
    assert.equal(p.isIndex, false);
    assert.deepEqual(p.blobs, [CONFIG.digest, LAYER.digest]);
    assert.deepEqual(p.manifests, []);
    assert.equal(p.artifactType, CONFIG.mediaType);
    assert.equal(p.configType, CONFIG.mediaType);
    assert.equal(p.subject, null);
    assert.equal(p.annotations, null);
  });

  test('artifactType, subject and annotations are read', () => {
    const subject = { mediaType: MediaTypes.ociManifest, digest: d('5'), size: 99 };
    const p = parse({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, artifactType: 'application/x.sig', config: CONFIG, layers: [], subject, annotations: { k: 'v' } });
    assert.equal(p.artifactType, 'application/x.sig');
    assert.deepEqual(p.subject, subject);
    assert.deepEqual(p.annotations, { k: 'v' });
    assert.deepEqual(p.blobs, [CONFIG.digest]);
  });

  test('the media type comes from Content-Type (parameters ignored), else from the body, else from the shape', () => {
    const body = { schemaVersion: 2, config: CONFIG, layers: [LAYER] };
    assert.equal(parse(body, `${MediaTypes.ociManifest}; charset=utf-8`).mediaType, MediaTypes.ociManifest);
    assert.equal(parse({ ...body, mediaType: MediaTypes.dockerManifest }, 'application/json').mediaType, MediaTypes.dockerManifest);
    assert.equal(parse(body, undefined).mediaType, MediaTypes.ociManifest);
    assert.equal(parse({ schemaVersion: 2, manifests: [] }, undefined).mediaType, MediaTypes.ociIndex);
  });

  test('indexes: children are manifests to check, not blobs; artifactType stays null without one', () => {
    const child = { mediaType: MediaTypes.ociManifest, digest: d('7'), size: 5, platform: { os: 'linux', architecture: 'amd64' } };
    const p = parse({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [child, child] }, MediaTypes.ociIndex);
    assert.equal(p.isIndex, true);
    assert.deepEqual(p.manifests, [child.digest]);
    assert.deepEqual(p.blobs, []);
    assert.equal(p.artifactType, null);
    const list = parse({ schemaVersion: 2, mediaType: MediaTypes.dockerList, manifests: [child] }, MediaTypes.dockerList);
    assert.equal(list.mediaType, MediaTypes.dockerList);
    assert.equal(list.isIndex, true);
  });

  test('foreign layers (with urls) are not required blobs', () => {
    const foreign = { ...LAYER, digest: d('f'), urls: ['https://example.com/x'] };
    const p = parse({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config: CONFIG, layers: [LAYER, foreign] });
    assert.deepEqual(p.blobs, [CONFIG.digest, LAYER.digest]);
  });

  test('invalid manifests', () => {
    const ok = { schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: CONFIG, layers: [LAYER] };
    invalid('not json');
    invalid('[]');
    invalid('null');
    invalid('"string"');
    invalid({ ...ok, schemaVersion: 1 });
    invalid({ ...ok, schemaVersion: '2' });
    invalid({ ...ok, mediaType: MediaTypes.dockerManifest }, MediaTypes.ociManifest);
    invalid({ ...ok, mediaType: 'application/x-unknown' }, 'application/x-unknown');
    invalid({ ...ok, config: undefined });
    invalid({ ...ok, config: 'x' });
    invalid({ ...ok, layers: 'x' });
    invalid({ ...ok, layers: [{ ...LAYER, digest: 'sha256:abc' }] });
    invalid({ ...ok, layers: [{ ...LAYER, size: 1.5 }] });
    invalid({ ...ok, layers: [{ ...LAYER, size: -1 }] });
    invalid({ ...ok, layers: [{ ...LAYER, mediaType: '' }] });
    invalid({ ...ok, layers: [{ ...LAYER, urls: 'x' }] });
    invalid({ ...ok, layers: [{ ...LAYER, annotations: [] }] });
    invalid({ ...ok, manifests: [] });
    invalid({ ...ok, artifactType: '' });
    invalid({ ...ok, annotations: 'x' });
    invalid({ ...ok, subject: { mediaType: MediaTypes.ociManifest, digest: 'nope', size: 1 } });
    invalid({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: {} }, MediaTypes.ociIndex);
    invalid({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [], config: CONFIG }, MediaTypes.ociIndex);
    invalid({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [{ digest: d('1'), size: 1 }] }, MediaTypes.ociIndex);
    invalid({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config: CONFIG }, MediaTypes.dockerManifest);
  });

  test('baseMediaType strips parameters, spaces and case', () => {
    assert.equal(baseMediaType(' Application/JSON ; charset=utf-8'), 'application/json');
    assert.equal(baseMediaType(undefined), '');
  });
});

describe('Lru', () => {
  test('evicts the least recently used entry; get refreshes recency', () => {
    const c = new Lru<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    assert.equal(c.get('a'), 1);
    c.set('c', 3);
    assert.equal(c.get('b'), undefined);
    assert.equal(c.get('a'), 1);
    assert.equal(c.get('c'), 3);
    assert.equal(c.size, 2);
  });

  test('recency stays right when the same key is read again and again, and after deletes', () => {
    const c = new Lru<string, number>(3);
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    for (let i = 0; i < 3; i++) assert.equal(c.get('a'), 1); // a is the newest now
    c.set('d', 4); // evicts b
    assert.equal(c.get('b'), undefined);
    c.delete('d'); // the newest goes
    assert.equal(c.get('c'), 3); // c newest, then a
    c.set('e', 5);
    c.set('f', 6); // evicts a, the oldest
    assert.equal(c.get('a'), undefined);
    assert.deepEqual([c.get('c'), c.get('e'), c.get('f')], [3, 5, 6]);
    c.clear();
    c.set('g', 7);
    assert.equal(c.get('g'), 7);
    assert.equal(c.size, 1);
  });

  test('set replaces a value and counts as a use', () => {
    const c = new Lru<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    c.set('a', 10);
    c.set('c', 3);
    assert.equal(c.get('a'), 10);
    assert.equal(c.get('b'), undefined);
  });

  test('weight bound: evicts until the total fits; weights are released on delete and replace', () => {
    const c = new Lru<string, string>(100, 10, (v) => v.length);
    c.set('a', 'xxxx');
    c.set('b', 'yyyy');
    c.set('c', 'zzzz'); // 12 > 10: a goes
    assert.equal(c.get('a'), undefined);
    assert.equal(c.size, 2);
    c.set('b', 'y'); // b now weighs 1: total 5
    c.set('d', 'wwww'); // 9
    assert.equal(c.size, 3);
    assert.equal(c.get('c'), 'zzzz');
    c.delete('c');
    c.set('e', 'vvvvv'); // 1 + 4 + 5 = 10 fits
    assert.equal(c.size, 3);
  });

  test('a value heavier than the whole cache is not stored, and does not leave a stale older value', () => {
    const c = new Lru<string, string>(10, 5, (v) => v.length);
    c.set('k', 'old');
    c.set('k', 'much too heavy');
    assert.equal(c.get('k'), undefined);
    assert.equal(c.size, 0);
    c.set('other', 'ok');
    assert.equal(c.get('other'), 'ok');
  });

  test('deleteWhere and clear', () => {
    const c = new Lru<string, number>(10, 100, (v) => v);
    c.set('1\u0000a', 10);
    c.set('1\u0000b', 20);
    c.set('2\u0000a', 30);
    c.deleteWhere((k) => k.startsWith('1\u0000'));
    assert.equal(c.size, 1);
    assert.equal(c.get('2\u0000a'), 30);
    c.set('x', 70); // total 100 fits only if deleted weights were released
    assert.equal(c.get('2\u0000a'), 30);
    c.clear();
    assert.equal(c.size, 0);
    c.set('y', 100);
    assert.equal(c.get('y'), 100);
  });
});

describe('Lru bounded by bytes', () => {
  test('by default an entry weighs its key and value: long keys evict by bytes long before the entry cap', () => {
    const lru = new Lru<string, string>(100_000, 64 * 1024);
    const long = (i: number) => `token-${i}-`.padEnd(2_000, 'x'); // ~4 KB each as a JS string
    for (let i = 0; i < 100; i++) lru.set(long(i), 'v');
    assert.ok(lru.size < 20, `kept ${lru.size} entries of ~4 KB in a 64 KiB budget`);
    assert.equal(lru.get(long(99)), 'v', 'the newest stays');
    assert.equal(lru.get(long(0)), undefined, 'the oldest went');
    const short = new Lru<string, number>(100_000, 64 * 1024);
    for (let i = 0; i < 100; i++) short.set(`k${i}`, i);
    assert.equal(short.size, 100, 'small entries are not held back');
  });

  test('approxBytes counts strings, buffers, arrays and objects', () => {
    assert.ok(approxBytes('a'.repeat(1000)) >= 2000);
    assert.ok(approxBytes(Buffer.alloc(5000)) >= 5000);
    assert.ok(approxBytes({ name: 'x'.repeat(500), groups: ['a', 'b'] }) >= 1000);
    assert.ok(approxBytes([1, 2, 3]) > approxBytes([]));
  });
});

describe('KeyedMutex', () => {
  test('runs tasks for one key one after another, in order, even when some fail', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = m.run('k', async () => {
      log.push('1 start');
      await gate;
      log.push('1 end');
      throw new Error('boom');
    });
    const second = m.run('k', async () => {
      log.push('2');
      return 2;
    });
    const other = m.run('other', async () => {
      log.push('other');
      return 'o';
    });
    assert.equal(await other, 'o');
    assert.deepEqual(log, ['1 start', 'other']);
    release();
    await assert.rejects(first, /boom/);
    assert.equal(await second, 2);
    assert.deepEqual(log, ['1 start', 'other', '1 end', '2']);
  });
});
