// Parsing and validation of the manifest formats Berth stores: Docker schema 2 (image and list),
// OCI image manifest and index (including artifacts). Pure: existence of references is checked by the service.
import { AppError } from './errors.ts';
import { parseDigest } from './digest.ts';

export const MediaTypes = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

export const MANIFEST_MEDIA_TYPES: readonly string[] = Object.values(MediaTypes);
const INDEX_TYPES = new Set<string>([MediaTypes.dockerList, MediaTypes.ociIndex]);

/** Maximum manifest size accepted (the spec's suggested 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: Record<string, unknown>;
}

export interface ParsedManifest {
  mediaType: string;
  isIndex: boolean;
  /** Blobs that must be linked in the repository (config and layers). */
  blobs: string[];
  /** Child manifests that must exist in the repository (index entries). */
  manifests: string[];
  subject: Descriptor | null;
  artifactType: string | null;
  configType: string | null;
  annotations: Record<string, string> | null;
  raw: Record<string, unknown>;
}

/** Deepest nesting of objects and arrays accepted in a manifest (real ones nest four or five levels). */
export const MAX_MANIFEST_DEPTH = 64;

function invalid(reason: string): AppError {
  return new AppError('MANIFEST_INVALID', { reason });
}

/**
 * Whether JSON text nests objects and arrays deeper than `limit` (brackets inside strings do not
 * count). A scan over the bytes before JSON.parse: anything that walks the parsed value
 * recursively (JSON.stringify, a database driver, a logger) overflows the stack on deep input.
 */
export function jsonDepthExceeds(text: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/** Annotations: an object whose values are all strings (OCI image spec, annotations.md). */
function checkAnnotations(v: unknown, where: string): void {
  if (v === undefined) return;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${where} must be an object`);
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw invalid(`${where}["${k.slice(0, 100)}"] must be a string`);
  }
}

function descriptor(v: unknown, where: string): Descriptor {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalid(`${where} is not a descriptor object`);
  const d = v as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || !d.mediaType) throw invalid(`${where}.mediaType is missing`);
  if (typeof d.digest !== 'string' || !parseDigest(d.digest)) throw invalid(`${where}.digest is not a valid digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`${where}.size must be a non-negative integer`);
  if (d.urls !== undefined && (!Array.isArray(d.urls) || d.urls.some((u) => typeof u !== 'string'))) throw invalid(`${where}.urls must be an array of strings`);
  checkAnnotations(d.annotations, `${where}.annotations`);
  return d as unknown as Descriptor;
}

/** Strips parameters (`; charset=...`) and case from a Content-Type value. */
export function baseMediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

/**
 * Parses a manifest body. `contentType` is the request's Content-Type; when it is absent or generic
 * the body's own mediaType decides. Throws MANIFEST_INVALID with a reason.
 */
export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  if (jsonDepthExceeds(body, MAX_MANIFEST_DEPTH)) throw invalid(`body nests objects and arrays deeper than ${MAX_MANIFEST_DEPTH} levels`);
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('body is not valid JSON');
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalid('body is not a JSON object');
  const m = raw as Record<string, unknown>;
  if (m.schemaVersion !== 2) throw invalid(m.schemaVersion === 1 ? 'Docker schema 1 manifests are not supported' : 'schemaVersion must be 2');

  const header = baseMediaType(contentType);
  const declared = typeof m.mediaType === 'string' ? m.mediaType : undefined;
  let mediaType: string;
  if (MANIFEST_MEDIA_TYPES.includes(header)) {
    if (declared !== undefined && declared !== header) throw invalid(`mediaType "${declared}" does not match Content-Type "${header}"`);
    mediaType = header;
  } else if (declared && MANIFEST_MEDIA_TYPES.includes(declared)) {
    mediaType = declared;
  } else if (!declared && Array.isArray(m.manifests)) {
    mediaType = MediaTypes.ociIndex;
  } else if (!declared && m.config) {
    mediaType = MediaTypes.ociManifest;
  } else {
    throw invalid(`unsupported manifest media type "${header || declared || ''}"`);
  }

  const isIndex = INDEX_TYPES.has(mediaType);
  if (isIndex && (m.config !== undefined || m.layers !== undefined)) throw invalid('an index cannot have config or layers');
  if (!isIndex && m.manifests !== undefined) throw invalid('an image manifest cannot have manifests');
  const subject = m.subject === undefined ? null : descriptor(m.subject, 'subject');
  if (m.artifactType !== undefined && (typeof m.artifactType !== 'string' || !m.artifactType)) throw invalid('artifactType must be a non-empty string');
  checkAnnotations(m.annotations, 'annotations');
  const annotations = (m.annotations as Record<string, string> | undefined) ?? null;

  if (isIndex) {
    if (!Array.isArray(m.manifests)) throw invalid('manifests must be an array');
    const children = m.manifests.map((d, i) => descriptor(d, `manifests[${i}]`));
    return {
      mediaType,
      isIndex,
      blobs: [],
      manifests: [...new Set(children.map((c) => c.digest))],
      subject,
      artifactType: (m.artifactType as string | undefined) ?? null,
      configType: null,
      annotations,
      raw: m,
    };
  }
  const config = descriptor(m.config, 'config');
  if (m.layers !== undefined && !Array.isArray(m.layers)) throw invalid('layers must be an array');
  const layers = ((m.layers as unknown[] | undefined) ?? []).map((d, i) => descriptor(d, `layers[${i}]`));
  if (mediaType === MediaTypes.dockerManifest && layers.length === 0 && m.layers === undefined) throw invalid('layers is required');
  // Non-distributable (foreign) layers carry urls and are not pushed to the registry.
  const blobs = [config, ...layers.filter((l) => !(l.urls && l.urls.length))].map((d) => d.digest);
  return {
    mediaType,
    isIndex,
    blobs: [...new Set(blobs)],
    manifests: [],
    subject,
    artifactType: (m.artifactType as string | undefined) ?? config.mediaType,
    configType: config.mediaType,
    annotations,
    raw: m,
  };
}
