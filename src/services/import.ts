// Importing an image archive (`docker save` tarball or an OCI image-layout tar) into a repository.
// The archive is already on disk (multer streams uploads to a temp file); it is unpacked to a temp
// directory entry by entry, each blob is pushed through the normal upload path (hashed, verified,
// fsynced, linked), and the manifest last, so a failed import leaves no tag behind.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseDigest } from '../lib/digest.ts';
import { AppError } from '../lib/errors.ts';
import { MediaTypes } from '../lib/manifest.ts';
import { isValidTag } from '../lib/reference.ts';
import type { RegistryService } from './registry-service.ts';

const MAX_ENTRIES = 100_000;

async function fileDigest(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Unpacks regular files of a tar into dir, refusing paths that escape it. */
export async function unpack(archive: string, dir: string): Promise<void> {
  // Loaded on first use: most registries never import an archive, and the module costs memory.
  const tar = (await import('tar-stream')).default;
  const extract = tar.extract();
  let entries = 0;
  extract.on('entry', (header, stream, next) => {
    entries++;
    const name = path.posix.normalize(header.name.replace(/^\.\/+/, ''));
    if (entries > MAX_ENTRIES || name.startsWith('..') || path.isAbsolute(name) || header.type !== 'file') {
      stream.resume();
      stream.on('end', next);
      return;
    }
    const target = path.join(dir, name);
    fsp
      .mkdir(path.dirname(target), { recursive: true })
      .then(() => pipeline(stream, fs.createWriteStream(target)))
      .then(() => next(), next);
  });
  try {
    await pipeline(fs.createReadStream(archive, { highWaterMark: 1024 * 1024 }), extract);
  } catch (e) {
    throw new AppError('BAD_REQUEST', undefined, { message: `not a readable tar archive: ${(e as Error).message}` });
  }
}

export class ImportService {
  constructor(private readonly deps: { registry: RegistryService; tmpDir: string }) {}

  /** Imports the archive at `file` into repository:tag; returns the digest of the tagged manifest. */
  async importArchive(repository: string, tag: string, file: string): Promise<string> {
    if (!isValidTag(tag)) throw new AppError('BAD_REQUEST', undefined, { message: 'invalid tag' });
    await fsp.mkdir(this.deps.tmpDir, { recursive: true });
    const dir = await fsp.mkdtemp(path.join(this.deps.tmpDir, 'import-'));
    try {
      await unpack(file, dir);
      if (fs.existsSync(path.join(dir, 'index.json'))) return await this.importOciLayout(repository, tag, dir);
      if (fs.existsSync(path.join(dir, 'manifest.json'))) return await this.importDockerSave(repository, tag, dir);
      throw new AppError('BAD_REQUEST', undefined, { message: 'the archive is neither an OCI image layout (index.json) nor a docker save tarball (manifest.json)' });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  private async pushBlobFile(repository: string, file: string, digest?: string): Promise<{ digest: string; size: number }> {
    const d = digest ?? (await fileDigest(file));
    const parsed = parseDigest(d);
    if (!parsed) throw new AppError('BAD_REQUEST', undefined, { message: `invalid digest ${d}` });
    const size = (await fsp.stat(file)).size;
    if ((await this.deps.registry.blobSize(repository, d)) === size) return { digest: d, size };
    const session = await this.deps.registry.startUpload(repository);
    try {
      await this.deps.registry.completeUpload(repository, session.uuid, parsed, fs.createReadStream(file, { highWaterMark: 1024 * 1024 }));
    } catch (e) {
      await this.deps.registry.cancelUpload(repository, session.uuid).catch(() => undefined);
      if (e instanceof AppError && e.code === 'DIGEST_INVALID') throw new AppError('BAD_REQUEST', undefined, { message: `blob ${d} in the archive does not match its digest` });
      throw e;
    }
    return { digest: d, size };
  }

  private blobPath(dir: string, digest: string): string {
    const d = parseDigest(digest);
    if (!d) throw new AppError('BAD_REQUEST', undefined, { message: `invalid digest in archive: ${digest}` });
    const p = path.join(dir, 'blobs', d.algorithm, d.hex);
    if (!fs.existsSync(p)) throw new AppError('BAD_REQUEST', undefined, { message: `blob ${digest} is missing from the archive` });
    return p;
  }

  /** Pushes a manifest (and, recursively, what it references) by digest; returns its media type. */
  private async pushManifestTree(repository: string, dir: string, desc: { digest: string; mediaType?: string }, depth = 0): Promise<{ mediaType: string; bytes: Buffer }> {
    if (depth > 4) throw new AppError('BAD_REQUEST', undefined, { message: 'index nesting too deep' });
    const bytes = await fsp.readFile(this.blobPath(dir, desc.digest));
    const m = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: { digest: string; mediaType?: string }[]; config?: { digest: string }; layers?: { digest: string; urls?: string[] }[] };
    const mediaType = desc.mediaType ?? m.mediaType ?? (m.manifests ? MediaTypes.ociIndex : MediaTypes.ociManifest);
    if (m.manifests) {
      for (const c of m.manifests) await this.pushManifestTree(repository, dir, c, depth + 1);
    } else {
      const blobs = [m.config, ...(m.layers ?? []).filter((l) => !l.urls?.length)].filter((x): x is { digest: string } => !!x);
      for (const b of blobs) await this.pushBlobFile(repository, this.blobPath(dir, b.digest), b.digest);
    }
    if (depth > 0) await this.deps.registry.putManifest(repository, desc.digest, mediaType, bytes);
    return { mediaType, bytes };
  }

  private async importOciLayout(repository: string, tag: string, dir: string): Promise<string> {
    const index = JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests?: { digest: string; mediaType?: string; annotations?: Record<string, string> }[] };
    const entries = index.manifests ?? [];
    if (!entries.length) throw new AppError('BAD_REQUEST', undefined, { message: 'index.json lists no manifests' });
    const top = entries.find((e) => e.annotations?.['org.opencontainers.image.ref.name'] === tag) ?? entries[0];
    const { mediaType, bytes } = await this.pushManifestTree(repository, dir, top);
    return (await this.deps.registry.putManifest(repository, tag, mediaType, bytes)).digest;
  }

  private async importDockerSave(repository: string, tag: string, dir: string): Promise<string> {
    const list = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')) as { Config: string; RepoTags?: string[]; Layers: string[] }[];
    const entry = list?.[0];
    if (!entry?.Config || !Array.isArray(entry.Layers)) throw new AppError('BAD_REQUEST', undefined, { message: 'manifest.json has no image' });
    const inside = (p: string) => {
      const full = path.join(dir, path.posix.normalize(p));
      if (!full.startsWith(dir + path.sep) || !fs.existsSync(full)) throw new AppError('BAD_REQUEST', undefined, { message: `${p} is missing from the archive` });
      return full;
    };
    const config = await this.pushBlobFile(repository, inside(entry.Config));
    const layers = [];
    for (const l of entry.Layers) {
      const file = inside(l);
      const head = Buffer.alloc(2);
      const fh = await fsp.open(file, 'r');
      await fh.read(head, 0, 2, 0);
      await fh.close();
      const gz = head[0] === 0x1f && head[1] === 0x8b;
      const b = await this.pushBlobFile(repository, file);
      layers.push({ mediaType: gz ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar', digest: b.digest, size: b.size });
    }
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size }, layers }),
    );
    return (await this.deps.registry.putManifest(repository, tag, MediaTypes.ociManifest, manifest)).digest;
  }
}
