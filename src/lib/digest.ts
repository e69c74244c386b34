// Content digests (OCI image-spec "Digests"): algorithm ":" encoded, sha256 and sha512 supported.
import { createHash, type Hash } from 'node:crypto';

export type DigestAlgorithm = 'sha256' | 'sha512';

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_RE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  digest: string;
}

/** Whether the string has the general digest grammar (any algorithm). */
export function looksLikeDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Parses a digest Berth can verify; returns null for bad grammar, unknown algorithm or wrong length. */
export function parseDigest(s: string): ParsedDigest | null {
  const m = DIGEST_RE.exec(s);
  if (!m) return null;
  const algorithm = m[1] as DigestAlgorithm;
  const hex = m[2];
  const len = ENCODED_LENGTH[algorithm];
  if (len === undefined || hex.length !== len || !/^[a-f0-9]+$/.test(hex)) return null;
  return { algorithm, hex, digest: s };
}

export function newHash(algorithm: DigestAlgorithm = 'sha256'): Hash {
  return createHash(algorithm);
}

export function digestOf(data: Buffer | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}
