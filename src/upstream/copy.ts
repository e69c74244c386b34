// Copies an artifact from one registry to another by digest, as replication does: an index's
// children first, then its own manifest; an image's blobs (config and layers) first, then its
// manifest. Blobs and manifests the destination already has are skipped (HEAD), blobs another
// repository of the destination holds are mounted when the caller names candidates, and what is
// pushed is the source's exact bytes, so every digest (and so every signature and referrer) stays
// valid. Blobs stream from source to destination through a verifying stream: a source that lies
// about a digest fails the copy before the destination commits the blob.
import { pipeline } from 'node:stream';
import { MediaTypes, parseManifest, type Descriptor } from '../lib/manifest.ts';
import { UpstreamError } from './errors.ts';
import { referrersTag, type UpstreamClient } from './client.ts';
import { Throttle } from './throttle.ts';

/** What a copy needs of either end: an UpstreamClient, or this Berth's own registry behind the same methods (replication). */
export type CopyClient = Pick<UpstreamClient, 'getManifest' | 'headManifest' | 'putManifest' | 'headBlob' | 'getBlob' | 'pushBlob' | 'referrers' | 'referrersApi'>;

export interface CopyEnd {
  client: CopyClient;
  repository: string;
}

export interface CopyOptions {
  /** Repositories of the destination that may hold the blobs already (the first one is offered as a mount source). */
  mountFrom?: string[];
  /** Upload in PATCHes of this many bytes instead of one PUT. */
  chunkSize?: number;
  /** Also copy the manifests that refer to each copied manifest (signatures, SBOMs). */
  referrers?: boolean;
  /** Bandwidth limit of each blob transfer (a policy's speed: see speedToBytesPerSecond). */
  bytesPerSecond?: number | null;
  /** Called before each blob and manifest is handled (for task logs and stop checks). */
  onStep?: (step: CopyStep) => void | Promise<void>;
}

export type CopyStep =
  | { kind: 'blob'; digest: string; size: number; action: 'skipped' | 'mounted' | 'uploaded' }
  | { kind: 'manifest'; digest: string; action: 'skipped' | 'pushed' };

export interface CopyResult {
  /** The digest of the top manifest (what `reference` named at the source). */
  digest: string;
  mediaType: string;
  manifestsPushed: number;
  manifestsSkipped: number;
  blobsUploaded: number;
  blobsMounted: number;
  blobsSkipped: number;
  bytesUploaded: number;
}

const MAX_DEPTH = 8;

/**
 * Copies `reference` (a tag or a digest) from `src` to `dst`. With a tag, the destination gets the
 * same tag (pointing at the same digest) unless `destTag` says otherwise (null: no tag, digest only).
 */
export async function copyArtifact(src: CopyEnd, dst: CopyEnd, reference: string, opts: CopyOptions = {}, destTag?: string | null): Promise<CopyResult> {
  const top = await src.client.getManifest(src.repository, reference);
  if (!top) throw new UpstreamError('not-found', `${src.repository}:${reference} does not exist at the source`, 404);
  const result: CopyResult = { digest: top.digest, mediaType: top.mediaType, manifestsPushed: 0, manifestsSkipped: 0, blobsUploaded: 0, blobsMounted: 0, blobsSkipped: 0, bytesUploaded: 0 };
  const seen = new Set<string>();

  const copyBlob = async (digest: string, size: number) => {
    if (seen.has(digest)) return;
    seen.add(digest);
    if ((await dst.client.headBlob(dst.repository, digest)) !== null) {
      result.blobsSkipped++;
      await opts.onStep?.({ kind: 'blob', digest, size, action: 'skipped' });
      return;
    }
    // One POST: a mount when the candidate repository holds the blob, an upload session otherwise.
    const mountFrom = opts.mountFrom?.find((r) => r !== dst.repository);
    const source = async () => {
      const blob = (await src.client.getBlob(src.repository, digest, size)).stream;
      if (!opts.bytesPerSecond) return blob;
      const slow = new Throttle(opts.bytesPerSecond);
      pipeline(blob, slow, () => undefined);
      return slow;
    };
    const how = await dst.client.pushBlob(dst.repository, digest, size, source, { chunkSize: opts.chunkSize, mountFrom });
    if (how === 'mounted') {
      result.blobsMounted++;
      await opts.onStep?.({ kind: 'blob', digest, size, action: 'mounted' });
      return;
    }
    result.blobsUploaded++;
    result.bytesUploaded += size;
    await opts.onStep?.({ kind: 'blob', digest, size, action: 'uploaded' });
  };

  // A destination without the referrers API finds a manifest's referrers under the fallback tag
  // "sha256-<hex>" (OCI distribution spec), which whoever pushes a referrer there maintains.
  let dstHasReferrersApi: boolean | undefined;
  const listReferrer = async (subject: string, desc: Descriptor) => {
    dstHasReferrersApi ??= (await dst.client.referrersApi(dst.repository, subject)) !== null;
    if (dstHasReferrersApi) return;
    const tag = referrersTag(subject);
    const current = await dst.client.getManifest(dst.repository, tag);
    let index: { schemaVersion?: number; mediaType?: string; manifests?: Descriptor[] } = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
    if (current) {
      try {
        index = JSON.parse(current.body.toString('utf8')) as typeof index;
      } catch {
        throw new UpstreamError('protocol', `the referrers tag ${tag} of ${dst.repository} at the destination is not JSON`);
      }
    }
    if (!Array.isArray(index.manifests)) index.manifests = [];
    if (index.manifests.some((d) => d.digest === desc.digest)) return;
    index.manifests.push(Object.fromEntries(Object.entries(desc).filter(([, v]) => v !== undefined)) as unknown as Descriptor);
    await dst.client.putManifest(dst.repository, tag, Buffer.from(JSON.stringify(index)), MediaTypes.ociIndex);
  };

  const copyManifest = async (digest: string, known: { body: Buffer; mediaType: string } | null, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) throw new UpstreamError('protocol', `manifests nested deeper than ${MAX_DEPTH} levels at ${digest}`);
    if (seen.has(digest)) return;
    seen.add(digest);
    const there = await dst.client.headManifest(dst.repository, digest);
    if (there) {
      // A registry only holds a manifest whose references it holds: nothing below it to copy.
      result.manifestsSkipped++;
      await opts.onStep?.({ kind: 'manifest', digest, action: 'skipped' });
    } else {
      const m = known ?? (await src.client.getManifest(src.repository, digest));
      if (!m) throw new UpstreamError('not-found', `${src.repository}@${digest} is listed but does not exist at the source`, 404);
      let parsed;
      try {
        parsed = parseManifest(m.body, m.mediaType);
      } catch (err) {
        throw new UpstreamError('protocol', `${src.repository}@${digest}: ${(err as Error).message}`);
      }
      const raw = parsed.raw as { manifests?: { digest: string }[]; config?: { digest: string; size: number }; layers?: { digest: string; size: number; urls?: string[] }[] };
      if (parsed.isIndex) {
        for (const child of raw.manifests ?? []) await copyManifest(child.digest, null, depth + 1);
      } else {
        const blobs = [...(raw.config ? [raw.config] : []), ...(raw.layers ?? [])];
        // Foreign layers (with urls) are fetched from their URLs by clients, not from registries.
        for (const b of blobs) if (!(b as { urls?: string[] }).urls?.length) await copyBlob(b.digest, b.size);
      }
      await dst.client.putManifest(dst.repository, digest, m.body, m.mediaType);
      if (parsed.subject) await listReferrer(parsed.subject.digest, { mediaType: m.mediaType, digest, size: m.body.length, artifactType: parsed.artifactType ?? parsed.configType ?? undefined, annotations: parsed.annotations ?? undefined });
      result.manifestsPushed++;
      await opts.onStep?.({ kind: 'manifest', digest, action: 'pushed' });
    }
    if (opts.referrers) {
      for (const r of await src.client.referrers(src.repository, digest)) await copyManifest(r.digest, null, depth + 1);
    }
  };

  await copyManifest(top.digest, top, 0);
  const tag = destTag === undefined ? (reference.includes(':') ? null : reference) : destTag;
  if (tag) await dst.client.putManifest(dst.repository, tag, top.body, top.mediaType);
  return result;
}
