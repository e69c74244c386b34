// Importing an image archive (`docker save` tarball or an OCI image-layout tar, either of them plain
// or gzip-compressed) into a repository. The archive is already on disk (multer streams uploads to a
// temp file). The import reads as: unpack → validate → push.
//  1. Unpack: each regular file is written to the import's temp directory under a generated name
//     (never under its name in the archive, so no entry can write outside it) and hashed on the way.
//     Links are kept as aliases inside the archive; devices, fifos, escaping names and duplicates
//     refuse the archive. Every stream's errors are handled where the stream is made, so a lying tar
//     or gzip stream is a 400, never a crash.
//  2. Validate: manifest.json / index.json / oci-layout and every manifest are parsed with size and
//     depth caps; every referenced entry must exist, match its digest and size. Nothing is written to
//     the registry before the whole archive checks out, so a refused import leaves no repository.
//  3. Push: blobs through the normal upload path (hashed, verified, fsynced, linked), then child
//     manifests by digest, then the tagged manifests.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { parseDigest, type DigestAlgorithm } from '../lib/digest.ts';
import { AppError } from '../lib/errors.ts';
import { MAX_MANIFEST_BYTES, MediaTypes, parseManifest, type ParsedManifest } from '../lib/manifest.ts';
import { isValidName, isValidTag } from '../lib/reference.ts';
import type { RegistryService } from './registry-service.ts';

const MAX_ENTRIES = 100_000;
/** manifest.json, index.json, oci-layout and manifests are read into memory: at most this much each. */
const MAX_JSON_BYTES = MAX_MANIFEST_BYTES;
/** Deepest JSON nesting accepted in those files (manifests need about 4 levels). */
const MAX_JSON_DEPTH = 64;
/** Index nesting (index → index → … → image manifest). */
const MAX_INDEX_DEPTH = 4;
/** Link hops followed when resolving a name inside the archive. */
const MAX_LINK_HOPS = 16;
/** Default bound on the bytes an archive may unpack to (the tar stream after gunzip). */
const DEFAULT_MAX_UNPACKED_BYTES = 64 * 1024 * 1024 * 1024;
const REF_NAME = 'org.opencontainers.image.ref.name';
const READ_CHUNK = 1024 * 1024;

/** A name from the archive (or the request) for a message: quoted, escaped, and at most 200 characters. */
function q(s: string): string {
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);
}

function bad(message: string): AppError {
  return new AppError('BAD_REQUEST', undefined, { message });
}

// ---- the unpacked archive ---------------------------------------------------------------------

type Entry =
  | { kind: 'file'; file: string; size: number; sha256: string }
  | { kind: 'dir' }
  /** A symlink or hard link; `target` is the archive name it points at (already checked to stay inside). */
  | { kind: 'link'; target: string };

/** What was unpacked, by normalized archive name. */
class Unpacked {
  readonly entries = new Map<string, Entry>();

  add(name: string, entry: Entry): void {
    const had = this.entries.get(name);
    if (had && !(had.kind === 'dir' && entry.kind === 'dir')) throw bad(`the archive holds ${q(name)} more than once`);
    this.entries.set(name, entry);
  }

  /** The regular file an archive name refers to (following links inside the archive), or a 400. */
  file(name: string, what: string): Extract<Entry, { kind: 'file' }> {
    let current = name;
    for (let hops = 0; hops <= MAX_LINK_HOPS; hops++) {
      const e = this.entries.get(current);
      if (!e) throw bad(`${what} ${q(name)} is missing from the archive`);
      if (e.kind === 'file') return e;
      if (e.kind === 'dir') throw bad(`${what} ${q(name)} is a directory, not a file`);
      current = e.target;
    }
    throw bad(`${what} ${q(name)} is a chain of more than ${MAX_LINK_HOPS} links`);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }
}

/**
 * An archive name as a relative, normalized path ("./a//b/" → "a/b"), or a 400 when it is absolute
 * or climbs out of the archive. `what` names it in the message.
 */
function archiveName(raw: string, what: string): string {
  if (raw.includes('\0')) throw bad(`${what} ${q(raw)} contains a NUL byte`);
  if (raw.startsWith('/')) throw bad(`${what} ${q(raw)} is an absolute path: it would escape the archive`);
  const name = path.posix.normalize(raw).replace(/\/+$/, '');
  if (name === '..' || name.startsWith('../')) throw bad(`${what} ${q(raw)} climbs out of the archive: it would escape the import directory`);
  return name === '.' ? '' : name;
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/**
 * Writes one tar entry's bytes to `target`, hashing them; resolves once the file is closed (also
 * when it fails, so the caller may remove the directory afterwards).
 */
async function writeEntry(stream: AsyncIterable<Buffer>, target: string): Promise<{ size: number; sha256: string }> {
  const out = fs.createWriteStream(target, { flags: 'wx', mode: 0o600 });
  const closed = new Promise<void>((resolve) => out.once('close', resolve));
  let failed: Error | null = null;
  out.on('error', (e) => (failed ??= e));
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of stream) {
      if (failed) throw failed;
      size += chunk.length;
      hash.update(chunk);
      if (!out.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            out.off('drain', done);
            out.off('close', done);
            resolve();
          };
          out.on('drain', done);
          out.on('close', done);
        });
      }
    }
    out.end();
    await closed;
    if (failed) throw failed;
    return { size, sha256: `sha256:${hash.digest('hex')}` };
  } catch (e) {
    out.destroy();
    await closed;
    throw e;
  }
}

/** Reads a tar entry to its end without keeping it. */
function drain(stream: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
    stream.on('close', () => reject(new Error('the archive ended inside an entry'))); // no-op after 'end'
    stream.resume();
  });
}

/**
 * Unpacks a tar (or tar.gz) into `dir`: regular files under generated names, everything else as
 * entries of the returned index. A malformed archive is a 400; one that unpacks to more than
 * `maxBytes` a 413. Resolves or rejects only after every file it opened is closed.
 */
export async function unpack(archive: string, dir: string, maxBytes = DEFAULT_MAX_UNPACKED_BYTES): Promise<Unpacked> {
  // Loaded on first use: most registries never import an archive, and the module costs memory.
  const tar = (await import('tar-stream')).default;
  const gzip = await isGzip(archive);
  const unpacked = new Unpacked();
  // A refusal decided here (bad entry, too large); it wins over the stream errors it causes.
  let refusal: AppError | null = null;
  let sourceError: Error | null = null;
  let fileError: Error | null = null;
  let gzipError: Error | null = null;
  let current: Promise<void> = Promise.resolve();
  let count = 0;

  // tar-stream itself refuses pax and GNU long-name headers over 4 MiB (it holds them in memory).
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    // Attached before anything async: a lying header makes the entry (and the extractor) emit an
    // error, and an error without a listener would end the process. The pipeline below reports it.
    stream.on('error', () => undefined);
    current = entry(header, stream as unknown as Readable).then(
      () => next(),
      (e: unknown) => {
        if (e instanceof AppError) refusal ??= e;
        else if ((e as NodeJS.ErrnoException).syscall) fileError ??= e as Error; // writing the temp file (disk full): ours
        next(e as Error);
      },
    );
  });

  async function entry(header: { name: string; type: string | null; linkname?: string | null }, stream: Readable): Promise<void> {
    if (++count > MAX_ENTRIES) throw bad(`the archive has more than ${MAX_ENTRIES} entries`);
    const name = archiveName(header.name, 'entry');
    switch (header.type) {
      case 'file':
      case 'contiguous-file': {
        if (!name) throw bad('the archive has a file entry without a name');
        const file = path.join(dir, `e${count}`);
        const { size, sha256 } = await writeEntry(stream as unknown as AsyncIterable<Buffer>, file);
        unpacked.add(name, { kind: 'file', file, size, sha256 });
        return;
      }
      case 'directory':
        await drain(stream);
        if (name) unpacked.add(name, { kind: 'dir' });
        return;
      case 'symlink': {
        // Relative to the link's own directory, as the file system would resolve it.
        const target = header.linkname ?? '';
        if (target.startsWith('/')) throw bad(`symlink ${q(name)} points at the absolute path ${q(target)}, outside the archive`);
        const resolved = archiveName(path.posix.join(path.posix.dirname(name), target), `symlink ${q(name)} target`);
        await drain(stream);
        unpacked.add(name, { kind: 'link', target: resolved });
        return;
      }
      case 'link': {
        // Hard links name their target relative to the archive's root.
        const target = archiveName((header.linkname ?? '').replace(/^(\.\/)+/, ''), `hard link ${q(name)} target`);
        await drain(stream);
        unpacked.add(name, { kind: 'link', target });
        return;
      }
      case 'character-device':
      case 'block-device':
        throw bad(`the archive holds a device (${q(name)}); image archives hold only files, directories and links`);
      case 'fifo':
        throw bad(`the archive holds a fifo (${q(name)}); image archives hold only files, directories and links`);
      default:
        throw bad(`the archive holds ${q(name)} of an unsupported entry type (${header.type ?? 'unknown'})`);
    }
  }

  const source = fs.createReadStream(archive, { highWaterMark: READ_CHUNK });
  // A stream also emits the errors the pipeline destroys it with: keep only those it caused itself.
  source.on('error', (e: NodeJS.ErrnoException) => {
    if (e.syscall) sourceError ??= e;
  });
  const gunzip = gzip ? zlib.createGunzip() : null;
  gunzip?.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code?.startsWith('Z_')) gzipError ??= e;
  });
  let total = 0;
  const guard = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      if (total > maxBytes) {
        refusal ??= new AppError('PAYLOAD_TOO_LARGE', undefined, { message: `the archive unpacks to more than ${maxBytes} bytes (the limit)` });
        return cb(refusal);
      }
      cb(null, chunk);
    },
  });

  try {
    await (gunzip ? pipeline(source, gunzip, guard, extract) : pipeline(source, guard, extract));
    await current;
  } catch (e) {
    await current.catch(() => undefined);
    if (refusal) throw refusal;
    // Reading the upload or writing the temp files failed: not the client's fault.
    if (sourceError ?? fileError) throw (sourceError ?? fileError)!;
    if (gzipError) throw bad(`the archive is not valid gzip: ${(gzipError as Error).message}`);
    if (e instanceof AppError) throw e;
    throw bad(`not a readable tar archive: ${(e as Error).message}`);
  }
  return unpacked;
}

// ---- reading JSON from the archive ------------------------------------------------------------

/** Whether a parsed JSON value nests deeper than `max` (iterative: hostile depth cannot overflow the stack). */
function nestsDeeper(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Object.values(v as object)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

async function readBounded(entry: Extract<Entry, { kind: 'file' }>, what: string): Promise<Buffer> {
  if (entry.size > MAX_JSON_BYTES) throw bad(`${what} is ${entry.size} bytes, larger than the ${MAX_JSON_BYTES / (1024 * 1024)} MiB accepted`);
  return fsp.readFile(entry.file);
}

function parseJson(bytes: Buffer, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw bad(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (nestsDeeper(value, MAX_JSON_DEPTH)) throw bad(`${what} is nested too deeply (more than ${MAX_JSON_DEPTH} levels)`);
  return value;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The tag part of an archive's name for an image: "3.19" from "docker.io/library/alpine:3.19" or
 * from a bare "3.19" (OCI ref.name). Null when it names no valid tag.
 */
function tagPart(ref: string): string | null {
  const colon = ref.lastIndexOf(':');
  const candidate = colon > ref.lastIndexOf('/') ? ref.slice(colon + 1) : ref;
  return isValidTag(candidate) ? candidate : null;
}

/** Refuses an archive that gives one tag to two images (which one the tag got would be an accident of order). */
function onceEach(tags: string[], where: string): void {
  const seen = new Set<string>();
  for (const t of tags) {
    if (seen.has(t)) throw bad(`${where} gives the tag ${q(t)} to more than one image`);
    seen.add(t);
  }
}

// ---- the plan ---------------------------------------------------------------------------------

interface Blob {
  digest: string;
  file: string;
  size: number;
}

/** What an import will push, in order, once the whole archive has been validated. */
interface Plan {
  blobs: Map<string, Blob>;
  /** Child manifests, pushed by digest, children before parents. */
  manifests: Map<string, { digest: string; mediaType: string; file: string }>;
  /** Tagged manifests: the bytes are read again from `file` when pushed. */
  tagged: { tag: string; mediaType: string; file?: string; bytes?: Buffer }[];
}

export interface ImportResult {
  /** The digest of the first tagged manifest. */
  digest: string;
  /** Every tag the import set, with the manifest digest it points at. */
  tags: { tag: string; digest: string }[];
}

export class ImportService {
  private readonly maxUnpackedBytes: number;

  constructor(private readonly deps: { registry: RegistryService; tmpDir: string; /** Bound on the unpacked (gunzipped) tar stream; 64 GiB by default. */ maxUnpackedBytes?: number; /** Told of every import that succeeded (the audit log). */ onImported?: (e: { actor: string; repository: string; tags: { tag: string; digest: string }[] }) => void }) {
    this.maxUnpackedBytes = deps.maxUnpackedBytes ?? DEFAULT_MAX_UNPACKED_BYTES;
  }

  /**
   * Refuses a repository name or tag that /v2 would refuse (400). importImages checks this too;
   * call it first to refuse before receiving the archive.
   */
  checkTarget(repository: string, tag: string | undefined): void {
    if (!isValidName(repository)) throw bad(`invalid repository name ${q(repository)}: lowercase letters, digits and separators (. _ __ -) in components joined by "/", as /v2 accepts`);
    if (tag !== undefined && !isValidTag(tag)) throw bad('invalid tag: up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"');
  }

  /** Imports the archive at `file` into repository:tag; returns the digest of the tagged manifest. */
  async importArchive(repository: string, tag: string, file: string): Promise<string> {
    return (await this.importImages(repository, tag, file)).digest;
  }

  /**
   * Imports the archive at `file` into `repository`. With a tag, the archive's image for that tag
   * (or its first image) gets it; without one, every image keeps the tags the archive gives it
   * (docker save's RepoTags, OCI's org.opencontainers.image.ref.name; only their tag part: the
   * repository is always `repository`), and an archive that names none is a 400.
   */
  async importImages(repository: string, tag: string | undefined, file: string, actor = ''): Promise<ImportResult> {
    const result = await this.unpackAndPush(repository, tag, file);
    this.deps.onImported?.({ actor, repository, tags: result.tags });
    return result;
  }

  private async unpackAndPush(repository: string, tag: string | undefined, file: string): Promise<ImportResult> {
    this.checkTarget(repository, tag);
    await fsp.mkdir(this.deps.tmpDir, { recursive: true });
    const dir = await fsp.mkdtemp(path.join(this.deps.tmpDir, 'import-'));
    try {
      const archive = await unpack(file, dir, this.maxUnpackedBytes);
      let plan: Plan;
      if (archive.has('index.json')) plan = await this.planOciLayout(archive, tag);
      else if (archive.has('manifest.json')) plan = await this.planDockerSave(archive, tag);
      else throw bad('the archive is neither an OCI image layout (index.json) nor a docker save tarball (manifest.json)');
      return await this.push(repository, plan);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  private async push(repository: string, plan: Plan): Promise<ImportResult> {
    for (const b of plan.blobs.values()) await this.pushBlobFile(repository, b);
    for (const m of plan.manifests.values()) await this.deps.registry.putManifest(repository, m.digest, m.mediaType, await fsp.readFile(m.file));
    const tags: ImportResult['tags'] = [];
    for (const t of plan.tagged) {
      const bytes = t.bytes ?? (await fsp.readFile(t.file!));
      tags.push({ tag: t.tag, digest: (await this.deps.registry.putManifest(repository, t.tag, t.mediaType, bytes)).digest });
    }
    return { digest: tags[0].digest, tags };
  }

  private async pushBlobFile(repository: string, blob: Blob): Promise<void> {
    const parsed = parseDigest(blob.digest)!;
    if ((await this.deps.registry.blobSize(repository, blob.digest)) === blob.size) return;
    const session = await this.deps.registry.startUpload(repository, true);
    const body = fs.createReadStream(blob.file, { highWaterMark: READ_CHUNK });
    try {
      await this.deps.registry.completeUpload(repository, session.uuid, parsed, body);
    } catch (e) {
      body.destroy();
      await this.deps.registry.cancelUpload(repository, session.uuid).catch(() => undefined);
      if (e instanceof AppError && e.code === 'DIGEST_INVALID') throw bad(`blob ${blob.digest} in the archive does not match its digest`);
      throw e;
    }
  }

  /** The archive's digest of an entry, in the algorithm of `expected`. */
  private async entryDigest(entry: Extract<Entry, { kind: 'file' }>, algorithm: DigestAlgorithm): Promise<string> {
    if (algorithm === 'sha256') return entry.sha256;
    const h = createHash(algorithm);
    for await (const chunk of fs.createReadStream(entry.file, { highWaterMark: READ_CHUNK })) h.update(chunk as Buffer);
    return `${algorithm}:${h.digest('hex')}`;
  }

  // ---- OCI image layout ----

  private async planOciLayout(archive: Unpacked, tag: string | undefined): Promise<Plan> {
    if (archive.has('oci-layout')) {
      const layout = parseJson(await readBounded(archive.file('oci-layout', 'oci-layout'), 'oci-layout'), 'oci-layout');
      if (!isObject(layout) || typeof layout.imageLayoutVersion !== 'string') throw bad('oci-layout must be a JSON object with an imageLayoutVersion');
      if (!/^1\.\d+\.\d+$/.test(layout.imageLayoutVersion)) throw bad(`oci-layout: image layout version ${layout.imageLayoutVersion} is not supported (1.x is)`);
    }
    const index = parseJson(await readBounded(archive.file('index.json', 'index.json'), 'index.json'), 'index.json');
    if (!isObject(index)) throw bad('index.json must be a JSON object');
    if (!Array.isArray(index.manifests)) throw bad('index.json: manifests must be an array');
    if (!index.manifests.length) throw bad('index.json lists no manifests');
    const entries = index.manifests.map((d, i) => this.descriptor(d, `index.json manifests[${i}]`));
    const names = entries.map((e, i) => {
      const ref = e.annotations?.[REF_NAME];
      if (ref === undefined) return null;
      if (typeof ref !== 'string' || tagPart(ref) === null) throw bad(`index.json manifests[${i}]: ${REF_NAME} ${JSON.stringify(ref)} names no valid tag`);
      return tagPart(ref);
    });

    let chosen: { desc: Desc; tags: string[] }[];
    if (tag !== undefined) {
      const i = names.indexOf(tag);
      chosen = [{ desc: entries[i < 0 ? 0 : i], tags: [tag] }];
    } else {
      chosen = entries.map((desc, i) => ({ desc, tags: names[i] ? [names[i]!] : [] })).filter((c) => c.tags.length);
      if (!chosen.length) throw bad(`no ?tag= given and index.json names no tag (no ${REF_NAME} annotation)`);
      onceEach(chosen.map((c) => c.tags).flat(), 'index.json');
    }

    const plan: Plan = { blobs: new Map(), manifests: new Map(), tagged: [] };
    const seen = new Set<string>();
    for (const c of chosen) {
      const top = await this.planManifest(archive, plan, seen, c.desc, 0);
      for (const t of c.tags) plan.tagged.push({ tag: t, mediaType: top.mediaType, file: top.file });
    }
    return plan;
  }

  private descriptor(v: unknown, where: string): Desc {
    if (!isObject(v)) throw bad(`${where} is not a descriptor object`);
    if (typeof v.digest !== 'string' || !parseDigest(v.digest)) throw bad(`${where}: digest ${JSON.stringify(v.digest)} is not a valid digest`);
    if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw bad(`${where}: size must be a non-negative integer`);
    if (v.mediaType !== undefined && typeof v.mediaType !== 'string') throw bad(`${where}: mediaType must be a string`);
    if (v.annotations !== undefined && !isObject(v.annotations)) throw bad(`${where}: annotations must be an object`);
    return v as unknown as Desc;
  }

  /** The blob a descriptor points at, checked against its digest and size. */
  private async blob(archive: Unpacked, desc: Desc, where: string): Promise<Blob> {
    const d = parseDigest(desc.digest);
    if (!d) throw bad(`${where}: digest ${JSON.stringify(desc.digest)} is not a valid digest`);
    const entry = archive.file(`blobs/${d.algorithm}/${d.hex}`, `blob ${desc.digest} (${where})`);
    if ((await this.entryDigest(entry, d.algorithm)) !== d.digest) throw bad(`blob ${desc.digest} (${where}) does not match its digest`);
    if (entry.size !== desc.size) throw bad(`blob ${desc.digest} (${where}) is ${entry.size} bytes but its descriptor's size is ${desc.size}`);
    return { digest: d.digest, file: entry.file, size: entry.size };
  }

  /** Validates a manifest (and, recursively, what it references) and adds it to the plan. */
  private async planManifest(archive: Unpacked, plan: Plan, seen: Set<string>, desc: Desc, depth: number): Promise<{ mediaType: string; file: string }> {
    if (depth > MAX_INDEX_DEPTH) throw bad(`indexes in the archive are nested more than ${MAX_INDEX_DEPTH} deep`);
    const where = depth === 0 ? 'index.json' : `manifest ${desc.digest}`;
    const blob = await this.blob(archive, desc, where);
    const what = `manifest ${desc.digest}`;
    const bytes = await readBounded({ kind: 'file', file: blob.file, size: blob.size, sha256: '' }, what);
    parseJson(bytes, what);
    let m: ParsedManifest;
    try {
      m = parseManifest(bytes, desc.mediaType);
    } catch (e) {
      if (e instanceof AppError) throw bad(`${what} in the archive is invalid: ${(e.detail as { reason?: string } | undefined)?.reason ?? e.message}`);
      throw e;
    }
    if (!seen.has(blob.digest)) {
      seen.add(blob.digest);
      if (m.isIndex) {
        const children = (m.raw.manifests as unknown[]).map((c, i) => this.descriptor(c, `${what} manifests[${i}]`));
        for (const c of children) {
          const child = await this.planManifest(archive, plan, seen, c, depth + 1);
          if (!plan.manifests.has(c.digest)) plan.manifests.set(c.digest, { digest: c.digest, mediaType: child.mediaType, file: child.file });
        }
      } else {
        const config = this.descriptor(m.raw.config, `${what} config`);
        const layers = ((m.raw.layers as unknown[] | undefined) ?? []).map((l, i) => this.descriptor(l, `${what} layers[${i}]`));
        for (const [i, b] of [config, ...layers].entries()) {
          if (i > 0 && Array.isArray(b.urls) && b.urls.length) continue; // foreign layer: not in the archive
          const found = await this.blob(archive, b, i === 0 ? `${what} config` : `${what} layers[${i - 1}]`);
          plan.blobs.set(found.digest, found);
        }
      }
    }
    return { mediaType: m.mediaType, file: blob.file };
  }

  // ---- docker save ----

  private async planDockerSave(archive: Unpacked, tag: string | undefined): Promise<Plan> {
    const list = parseJson(await readBounded(archive.file('manifest.json', 'manifest.json'), 'manifest.json'), 'manifest.json');
    if (!Array.isArray(list)) throw bad('manifest.json must be a JSON array of images');
    if (!list.length) throw bad('manifest.json lists no image');
    const images = list.map((v, i) => {
      const where = `manifest.json [${i}]`;
      if (!isObject(v)) throw bad(`${where} is not an object`);
      if (typeof v.Config !== 'string' || !v.Config) throw bad(`${where}: Config must be the path of the image config in the archive`);
      if (!Array.isArray(v.Layers) || v.Layers.some((l) => typeof l !== 'string' || !l)) throw bad(`${where}: Layers must be an array of paths in the archive`);
      if (v.RepoTags !== undefined && v.RepoTags !== null && (!Array.isArray(v.RepoTags) || v.RepoTags.some((r) => typeof r !== 'string'))) throw bad(`${where}: RepoTags must be an array of strings`);
      const tags = ((v.RepoTags as string[] | null | undefined) ?? []).map((r) => {
        const t = tagPart(r);
        if (t === null) throw bad(`${where}: RepoTags entry ${JSON.stringify(r)} names no valid tag`);
        return t;
      });
      return { where, config: v.Config, layers: v.Layers as string[], tags };
    });

    let chosen: { image: (typeof images)[number]; tags: string[] }[];
    if (tag !== undefined) {
      chosen = [{ image: images.find((im) => im.tags.includes(tag)) ?? images[0], tags: [tag] }];
    } else {
      chosen = images.filter((im) => im.tags.length).map((image) => ({ image, tags: [...new Set(image.tags)] }));
      if (!chosen.length) throw bad('no ?tag= given and manifest.json names no tag (RepoTags is empty)');
      onceEach(chosen.map((c) => c.tags).flat(), 'manifest.json');
    }

    const plan: Plan = { blobs: new Map(), manifests: new Map(), tagged: [] };
    for (const { image, tags } of chosen) {
      const entry = (p: string, what: string): Blob => {
        const e = archive.file(archiveName(p, `${image.where} ${what} path`), `${image.where} ${what}`);
        return { digest: e.sha256, file: e.file, size: e.size };
      };
      const config = entry(image.config, 'Config');
      plan.blobs.set(config.digest, config);
      const layers = [];
      for (const [i, p] of image.layers.entries()) {
        const b = entry(p, `Layers[${i}]`);
        plan.blobs.set(b.digest, b);
        layers.push({ mediaType: await layerMediaType(b.file), digest: b.digest, size: b.size });
      }
      const bytes = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size }, layers }),
      );
      for (const t of tags) plan.tagged.push({ tag: t, mediaType: MediaTypes.ociManifest, bytes });
    }
    return plan;
  }
}

interface Desc {
  digest: string;
  size: number;
  mediaType?: string;
  urls?: unknown;
  annotations?: Record<string, unknown>;
}

/** A docker save layer's media type, from its first bytes: gzip, zstd or a plain tar. */
async function layerMediaType(file: string): Promise<string> {
  const fh = await fsp.open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'application/vnd.oci.image.layer.v1.tar+gzip';
    if (bytesRead === 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'application/vnd.oci.image.layer.v1.tar+zstd';
    return 'application/vnd.oci.image.layer.v1.tar';
  } finally {
    await fh.close();
  }
}
