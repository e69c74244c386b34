// Builds OCI image layouts (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
// on disk from generated content, for real clients (skopeo, podman) to copy from. Layers are
// deterministic tar.gz files written by a tiny ustar writer; large layers are streamed to disk
// from a seeded AES-CTR keystream and never held in memory.
import { createCipheriv, createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';

export const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

export interface LayerInfo extends Descriptor {
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
}

export interface ImageInfo {
  manifest: Descriptor;
  config: Descriptor;
  layers: LayerInfo[];
}

export interface Layout {
  dir: string;
  tag: string;
  /** The descriptor index.json points at for `tag` (an index or a manifest). */
  top: Descriptor;
  /** Per platform (or the single image). */
  images: ImageInfo[];
  /** Every blob digest in the layout (manifests, configs, layers, index). */
  blobs: string[];
  /** `oci:<dir>:<tag>` for skopeo/podman. */
  ref: string;
  remove(): void;
}

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** sha256 digest of a file, streamed. */
export async function fileDigest(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(c as Buffer);
  return 'sha256:' + h.digest('hex');
}

// ---- a tiny, deterministic ustar writer ---------------------------------------------------------

export interface TarEntry {
  name: string;
  /** File content, or the size of a streamed keystream file (see `seed`). */
  content?: Buffer;
  size?: number;
  seed?: string;
  type?: 'file' | 'dir';
  mode?: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function tarHeader(e: { name: string; size: number; type: 'file' | 'dir'; mode: number }): Buffer {
  const h = Buffer.alloc(512, 0);
  const name = e.type === 'dir' && !e.name.endsWith('/') ? e.name + '/' : e.name;
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(e.mode, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii'); // uid
  h.write(octal(0, 8), 116, 8, 'ascii'); // gid
  h.write(octal(e.type === 'dir' ? 0 : e.size, 12), 124, 12, 'ascii');
  h.write(octal(0, 12), 136, 12, 'ascii'); // mtime: epoch, for determinism
  h.write('        ', 148, 8, 'ascii'); // checksum placeholder
  h.write(e.type === 'dir' ? '5' : '0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write('root', 265, 32, 'ascii');
  h.write('root', 297, 32, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** A deterministic pseudo-random byte stream of `size` bytes (AES-256-CTR keystream of `seed`). */
async function* keystream(seed: string, size: number): AsyncGenerator<Buffer> {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(1024 * 1024, 0);
  let left = size;
  while (left > 0) {
    const n = Math.min(left, zeros.length);
    yield cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n));
    left -= n;
  }
}

async function* tarStream(entries: TarEntry[]): AsyncGenerator<Buffer> {
  for (const e of entries) {
    const type = e.type ?? 'file';
    const size = type === 'dir' ? 0 : e.content ? e.content.length : (e.size ?? 0);
    yield tarHeader({ name: e.name, size, type, mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644) });
    if (type === 'dir' || size === 0) continue;
    if (e.content) yield e.content;
    else yield* keystream(e.seed ?? e.name, size);
    const pad = (512 - (size % 512)) % 512;
    if (pad) yield Buffer.alloc(pad, 0);
  }
  yield Buffer.alloc(1024, 0); // two zero blocks end the archive
}

function hashing(hash: Hash, count: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      count.n += chunk.length;
      cb(null, chunk);
    },
  });
}

// ---- layouts --------------------------------------------------------------------------------------

class LayoutWriter {
  readonly blobs = new Set<string>();
  constructor(readonly dir: string) {
    fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }

  blobPath(digest: string): string {
    return path.join(this.dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  putJson(mediaType: string, value: unknown): Descriptor {
    const bytes = Buffer.from(JSON.stringify(value));
    const digest = sha256(bytes);
    fs.writeFileSync(this.blobPath(digest), bytes);
    this.blobs.add(digest);
    return { mediaType, digest, size: bytes.length };
  }

  /** Writes a gzip-compressed tar layer, streamed, hashing both the tar (diff id) and the gzip (digest). */
  async putLayer(entries: TarEntry[]): Promise<LayerInfo> {
    const tmp = path.join(this.dir, `layer-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
    const diff = createHash('sha256');
    const blob = createHash('sha256');
    const raw = { n: 0 };
    const gz = { n: 0 };
    await pipeline(tarStream(entries), hashing(diff, raw), zlib.createGzip({ level: 1 }), hashing(blob, gz), fs.createWriteStream(tmp));
    const digest = 'sha256:' + blob.digest('hex');
    await fsp.rename(tmp, this.blobPath(digest));
    this.blobs.add(digest);
    return { mediaType: MT.layerGzip, digest, size: gz.n, diffId: 'sha256:' + diff.digest('hex') };
  }

  putImage(arch: string, layers: LayerInfo[], labels: Record<string, string> = {}): ImageInfo {
    const config = this.putJson(MT.config, {
      created: '2024-01-01T00:00:00Z',
      architecture: arch,
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], Labels: labels },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `berth-test layer ${i}` })),
    });
    const manifest = this.putJson(MT.manifest, {
      schemaVersion: 2,
      mediaType: MT.manifest,
      config,
      layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
    });
    return { manifest: { ...manifest, platform: { architecture: arch, os: 'linux' } }, config, layers };
  }

  finish(tag: string, top: Descriptor, images: ImageInfo[]): Layout {
    const entry = { mediaType: top.mediaType, digest: top.digest, size: top.size, annotations: { 'org.opencontainers.image.ref.name': tag } };
    fs.writeFileSync(path.join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: [entry] }));
    const dir = this.dir;
    return {
      dir,
      tag,
      top,
      images,
      blobs: [...this.blobs].sort(),
      ref: `oci:${dir}:${tag}`,
      remove: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function smallFiles(prefix: string, n: number, seed: string): TarEntry[] {
  const out: TarEntry[] = [{ name: prefix, type: 'dir' }];
  for (let i = 0; i < n; i++) {
    out.push({ name: `${prefix}/file-${i}.txt`, content: Buffer.from(`${seed} file ${i}\n`.repeat(50 + i)) });
  }
  return out;
}

/**
 * A multi-arch image: an OCI index with linux/amd64 and linux/arm64 manifests that share one base
 * layer and have one layer of their own each. `seed` varies the content (so two calls with
 * different seeds share nothing).
 */
export async function multiArchLayout(opts: { dir?: string; tag?: string; seed?: string } = {}): Promise<Layout> {
  const seed = opts.seed ?? 'berth';
  const w = new LayoutWriter(opts.dir ?? tempDir('berth-oci-multi-'));
  const shared = await w.putLayer([...smallFiles('etc', 3, `${seed} shared`), { name: 'etc/os-release', content: Buffer.from(`NAME="Berth test ${seed}"\n`) }]);
  const images: ImageInfo[] = [];
  for (const arch of ['amd64', 'arm64']) {
    const own = await w.putLayer([...smallFiles(`opt/${arch}`, 4, `${seed} ${arch}`), { name: `opt/${arch}/blob.bin`, size: 200_000, seed: `${seed}-${arch}` }]);
    images.push(w.putImage(arch, [shared, own], { 'org.berth.test': seed }));
  }
  const index = w.putJson(MT.index, { schemaVersion: 2, mediaType: MT.index, manifests: images.map((i) => i.manifest) });
  return w.finish(opts.tag ?? 'v1', index, images);
}

/** A single-arch (linux/amd64) image with a small layer and a large pseudo-random layer of `largeBytes`. */
export async function largeLayerLayout(opts: { dir?: string; tag?: string; seed?: string; largeBytes?: number } = {}): Promise<Layout> {
  const seed = opts.seed ?? 'berth-large';
  const w = new LayoutWriter(opts.dir ?? tempDir('berth-oci-large-'));
  const small = await w.putLayer(smallFiles('etc', 2, seed));
  const large = await w.putLayer([{ name: 'data', type: 'dir' }, { name: 'data/random.bin', size: opts.largeBytes ?? 64 * 1024 * 1024, seed }]);
  const image = w.putImage('amd64', [small, large], { 'org.berth.test': seed });
  const top: Descriptor = { mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.size };
  return w.finish(opts.tag ?? 'v1', top, [image]);
}

/** Every blob digest under <dir>/blobs/sha256, verified against its content (throws on a mismatch). */
export async function layoutBlobs(dir: string): Promise<string[]> {
  const root = path.join(dir, 'blobs', 'sha256');
  const out: string[] = [];
  for (const name of fs.readdirSync(root).sort()) {
    const actual = await fileDigest(path.join(root, name));
    if (actual !== `sha256:${name}`) throw new Error(`blob ${name} in ${dir} has content ${actual}`);
    out.push(actual);
  }
  return out;
}

/** The descriptor index.json of a layout gives for `tag`. */
export function layoutTop(dir: string, tag: string): Descriptor {
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const d = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!d) throw new Error(`tag ${tag} not in ${dir}/index.json`);
  return d;
}
