// Secrets stored in the database (the LDAP bind password, later registry credentials) are sealed
// with AES-256-GCM under a key that never enters the database: BERTH_SECRET_KEY, or a key file
// generated once in the data directory. A sealed value is text, so it fits any string column:
//
//   enc:v1:<base64url( 12-byte IV | ciphertext | 16-byte GCM tag )>
//
// The version names the whole recipe (AES-256-GCM, key = HKDF-SHA256 of the key material with
// info "berth secret-box v1"); a new recipe gets a new prefix and old values still open. The caller
// passes a context (e.g. the setting's name) that is authenticated with the value, so a sealed
// value copied into another field does not open there.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const SEALED_PREFIX = 'enc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HKDF_INFO = 'berth secret-box v1';
/** Key material (BERTH_SECRET_KEY or the key file's text) is at least this long. */
export const MIN_KEY_MATERIAL = 32;

/** A sealed value that cannot be opened: another key, a changed byte, or not a sealed value at all. */
export class SecretBoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

export class SecretBox {
  readonly #key: Buffer;

  /** key: 32 bytes (AES-256). */
  constructor(key: Buffer) {
    if (key.length !== 32) throw new RangeError('a secret box key is 32 bytes');
    this.#key = Buffer.from(key);
  }

  /** The box for key material given as text (BERTH_SECRET_KEY or the key file's content). */
  static fromMaterial(material: string): SecretBox {
    return new SecretBox(Buffer.from(hkdfSync('sha256', Buffer.from(material, 'utf8'), Buffer.alloc(0), HKDF_INFO, 32)));
  }

  /** Whether a stored value is sealed (by any version of the recipe). */
  static isSealed(value: unknown): value is string {
    return typeof value === 'string' && /^enc:v\d+:/.test(value);
  }

  seal(plain: string, context = ''): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return SEALED_PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
  }

  /** The plain text of a sealed value; throws SecretBoxError when it cannot be opened. */
  open(sealed: string, context = ''): string {
    if (!SecretBox.isSealed(sealed)) throw new SecretBoxError('not a sealed value');
    if (!sealed.startsWith(SEALED_PREFIX)) throw new SecretBoxError(`unknown sealed value version ${sealed.split(':')[1]}`);
    const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new SecretBoxError('the sealed value cannot be decrypted (truncated)');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretBoxError('the sealed value cannot be decrypted (another key, or changed)');
    }
  }
}

/**
 * The key material: `configured` (BERTH_SECRET_KEY) when given, and then no file is read or made;
 * otherwise the text of `keyFile`, generated on first use (32 random bytes, base64, mode 0600)
 * and tightened to 0600 when found looser. The file's text works as BERTH_SECRET_KEY too, so an
 * admin can move the key out of the data directory by copying it.
 */
export function loadSecretKey(opts: { configured?: string; keyFile: string }): { material: string; source: 'env' | 'file'; created: boolean } {
  if (opts.configured) return { material: opts.configured, source: 'env', created: false };
  const file = opts.keyFile;
  let created = false;
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeSync(fd, randomBytes(32).toString('base64') + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, file); // never replaces a key file that appeared meanwhile
      created = true;
      // The directory entry too: values sealed with this key must never outlive it after a crash.
      const dir = fs.openSync(path.dirname(file), 'r');
      try {
        fs.fsyncSync(dir);
      } finally {
        fs.closeSync(dir);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  fs.chmodSync(file, 0o600);
  const material = fs.readFileSync(file, 'utf8').trim();
  if (material.length < MIN_KEY_MATERIAL) throw new Error(`${file}: the key file holds fewer than ${MIN_KEY_MATERIAL} characters; restore it from a backup or set BERTH_SECRET_KEY`);
  return { material, source: 'file', created };
}
