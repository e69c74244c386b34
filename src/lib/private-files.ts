// File modes for what only Berth may read: the data directory (0700) and the files that hold
// secrets or everything at once (database, signing keys, secret key: 0600). Made that way when
// created, and tightened at start for installs made before (or by hand with looser modes).
import fs from 'node:fs';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates the directory 0700 if missing, and tightens it to 0700 if it exists. Returns false when
 * it is not ours to change (EPERM: e.g. a mount point owned by root), for the caller to warn.
 */
export function privateDir(dir: string): boolean {
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  try {
    tighten(dir, PRIVATE_DIR_MODE);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EPERM') return false;
    throw e;
  }
}

/** Tightens an existing file to 0600; a missing file is fine (nothing to protect yet). */
export function privateFile(file: string): void {
  try {
    tighten(file, PRIVATE_FILE_MODE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Creates the file empty with mode 0600 when it does not exist yet (so it is never readable by others), then tightens it. */
export function ensurePrivateFile(file: string): void {
  fs.closeSync(fs.openSync(file, 'a', PRIVATE_FILE_MODE));
  tighten(file, PRIVATE_FILE_MODE);
}

function tighten(p: string, mode: number): void {
  if ((fs.statSync(p).mode & 0o777) !== mode) fs.chmodSync(p, mode);
}
