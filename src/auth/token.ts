// The Docker registry token service's signing side: ES256 keys shared by every node, JWTs with a
// `kid` header and a narrowed `access` claim, and a verifier pinned to that algorithm, issuer and
// audience. Verified tokens are cached until they expire, so the hot path pays one signature check
// per token, not per request.
//
// The keys live in the database (Setting "token_signing_keys", sealed with the secret box: the
// plain key is never stored), created once for the whole cluster on the first start; an install
// that had its key in <data>/keys/token-signing.key takes that key, so tokens already issued stay
// valid. A rotation (POST /api/v2.0/system/token-key/rotate) makes a new key current and keeps the
// one before as `previous`: tokens it signed are accepted until they could have expired
// (rotation time + token lifetime), and every node reloads on topic 'signing-keys'.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import type { Action, Principal } from '../access/principal.ts';
import type { Changes } from '../db/changes.ts';
import { AppError } from '../lib/errors.ts';
import { Lru } from '../lib/lru.ts';
import { privateDir, privateFile } from '../lib/private-files.ts';
import { SecretBoxError, type SecretBox } from '../lib/secret-box.ts';

export const TOKEN_ISSUER = 'berth-token-issuer';
const ALGORITHM = 'ES256';
/** The secret box context of the stored key set (authenticated with it). */
const SEAL_CONTEXT = 'token_signing_keys';
/** Seconds of clock difference allowed between nodes (and clients). */
const CLOCK_TOLERANCE = 5;

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: AccessEntry[];
  /** Berth's own claim: the principal, so verification needs no database lookup. */
  berth?: { k: 'user' | 'robot'; id: number; adm: boolean };
}

export interface VerifiedToken {
  principal: Principal | null;
  grants: Map<string, Set<Action>>;
  catalog: boolean;
  exp: number;
}

/** Where the sealed key set is kept (src/db/signing-key-store.ts). */
export interface SigningKeyRows {
  read(): Promise<string | null>;
  /** Stores the value unless one exists; the value stored (the first node's). */
  createOnce(value: string): Promise<string>;
  /** Compare-and-swap; false when the stored value is no longer `expected`. */
  replace(expected: string, next: string): Promise<boolean>;
}

export interface TokenSignerOptions {
  rows: SigningKeyRows;
  box: SecretBox;
  changes: Changes;
  service: string;
  ttlSeconds: number;
  /** The data directory's keys/ of an install from before shared keys: its key is imported once. */
  legacyKeyDir?: string;
  /**
   * When the stored keys do not open with this node's secret key: 'fail' the start (several nodes:
   * replacing them would sign out every other node's tokens), or 'replace' them with a new key
   * (one node: tokens issued before are refused, nothing else is lost).
   */
  unreadable?: 'fail' | 'replace';
  log?: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
}

/** The stored keys were sealed with another secret key. */
class UnreadableKeys extends Error {}

/** The key set as sealed: PKCS#8 PEM private keys, and when the current one took over (ms). */
interface StoredKeys {
  v: 1;
  current: string;
  previous: string | null;
  rotatedAt: number | null;
}

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

interface KeySet {
  sealed: string;
  current: SigningKey;
  previous: SigningKey | null;
  /** Until when (seconds) the previous key's tokens are accepted. */
  previousUntil: number;
}

/** Docker/libtrust key id: base32 of the first 240 bits of the SHA-256 of the DER public key, in groups of 4. */
function libtrustKeyId(pub: KeyObject): string {
  const der = pub.export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const b of hash) bits += b.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i + 5 <= bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return out.match(/.{4}/g)!.join(':');
}

function newKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

function signingKey(pem: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  return { kid: libtrustKeyId(publicKey), privateKey, publicKey };
}

/** The `kid` of a JWT's header, without checking anything; undefined when there is none. */
function kidOf(token: string): string | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot > 1024) return undefined;
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8')) as { kid?: unknown };
    return typeof header.kid === 'string' ? header.kid : undefined;
  } catch {
    return undefined;
  }
}

export class TokenSigner {
  private keys!: KeySet;
  private verified = new Lru<string, VerifiedToken>(5_000, 8 * 1024 * 1024);
  /**
   * Tokens issued within the last `reuseSeconds`, by principal and granted access: docker and CI
   * jobs ask again for the same scope many times a minute, and handing out the same token (its
   * remaining lifetime in expires_in) skips the signature, most of a token request's CPU.
   */
  private issued = new Lru<string, { token: string; iat: number; exp: number }>(5_000, 8 * 1024 * 1024);
  private readonly reuseSeconds: number;
  private readonly service: string;
  private readonly ttlSeconds: number;
  private reloading: Promise<void> | null = null;
  private lastReload = 0;

  private constructor(private readonly o: TokenSignerOptions) {
    this.service = o.service;
    this.ttlSeconds = o.ttlSeconds;
    this.reuseSeconds = Math.min(60, Math.floor(o.ttlSeconds / 10));
  }

  /**
   * The signer with the cluster's keys: read from the database, or created there once (from the
   * legacy key file when there is one). Fails with a clear message when the stored keys do not open
   * with this node's secret key (nodes need the same BERTH_SECRET_KEY).
   */
  static async open(o: TokenSignerOptions): Promise<TokenSigner> {
    const signer = new TokenSigner(o);
    const legacyFile = o.legacyKeyDir ? path.join(o.legacyKeyDir, 'token-signing.key') : null;
    const legacy = legacyFile && fs.existsSync(legacyFile) ? legacyFile : null;
    if (legacy) {
      // The old key file stays (a downgrade still finds it), private as before: 0600 in a 0700 dir.
      privateDir(o.legacyKeyDir!);
      privateFile(legacy);
    }
    let sealed = await o.rows.read();
    if (sealed === null) {
      const pem = legacy ? fs.readFileSync(legacy, 'utf8') : newKeyPem();
      signingKey(pem); // a damaged key file stops the start here, before it is shared
      const mine = signer.seal({ v: 1, current: pem, previous: null, rotatedAt: null });
      sealed = await o.rows.createOnce(mine);
      if (sealed === mine) o.log?.info({ imported: !!legacy }, legacy ? 'token-signing key imported into the database from the key file' : 'token-signing key created');
    }
    try {
      signer.install(sealed);
    } catch (e) {
      if (!(e instanceof UnreadableKeys) || o.unreadable !== 'replace') throw e;
      const fresh = signer.seal({ v: 1, current: newKeyPem(), previous: null, rotatedAt: null });
      if (!(await o.rows.replace(sealed, fresh))) throw e;
      signer.install(fresh);
      o.log?.warn({ kid: signer.kid, hint: 'BERTH_SECRET_KEY or <data dir>/secret.key changed' }, 'token-signing keys sealed with another secret key were replaced by a new key; tokens issued before are refused');
    }
    o.changes.subscribe('signing-keys', () => void signer.reload());
    return signer;
  }

  /** The key id of the current key (the JWT header's `kid`). */
  get kid(): string {
    return this.keys.current.kid;
  }

  /** The key id of the previous key while its tokens are accepted, else null. */
  get previousKid(): string | null {
    return this.keys.previous && Date.now() / 1000 < this.keys.previousUntil ? this.keys.previous.kid : null;
  }

  get publicKey(): KeyObject {
    return this.keys.current.publicKey;
  }

  get expiresIn(): number {
    return this.ttlSeconds;
  }

  sign(principal: Principal | null, access: AccessEntry[]): { token: string; expiresIn: number; issuedAt: string } {
    const now = Math.floor(Date.now() / 1000);
    const key = `${principal ? `${principal.kind}:${principal.id}:${principal.name}:${principal.sysadmin ? 1 : 0}` : ''}|${JSON.stringify(access)}`;
    const hit = this.issued.get(key);
    if (hit && now - hit.iat < this.reuseSeconds) return { token: hit.token, expiresIn: hit.exp - now, issuedAt: new Date(hit.iat * 1000).toISOString() };
    const claims: TokenClaims = {
      iss: TOKEN_ISSUER,
      sub: principal?.name ?? '',
      aud: this.service,
      exp: now + this.ttlSeconds,
      nbf: now - 5,
      iat: now,
      jti: randomBytes(16).toString('hex'),
      access,
      ...(principal ? { berth: { k: principal.kind, id: principal.id, adm: principal.sysadmin } } : {}),
    };
    const current = this.keys.current;
    const token = jwt.sign(claims, current.privateKey, { algorithm: ALGORITHM, keyid: current.kid, noTimestamp: true });
    this.issued.set(key, { token, iat: now, exp: claims.exp });
    return { token, expiresIn: this.ttlSeconds, issuedAt: new Date(now * 1000).toISOString() };
  }

  /** Verifies a token (key by `kid`, signature, algorithm, issuer, audience, expiry); null when invalid. */
  verify(token: string): VerifiedToken | null {
    const hit = this.verified.get(token);
    const nowSec = Date.now() / 1000;
    if (hit) {
      if (hit.exp > nowSec) return hit;
      this.verified.delete(token);
      return null;
    }
    const kid = kidOf(token);
    const { current, previous, previousUntil } = this.keys;
    const key = kid === undefined || kid === current.kid ? current : previous && kid === previous.kid ? (nowSec < previousUntil ? previous : null) : undefined;
    if (!key) {
      // A key this node has not loaded yet (a rotation whose announcement is still on its way) is
      // looked up in the background, at most once a second; this token is refused for now.
      if (key === undefined) this.reloadSoon();
      return null;
    }
    let claims: TokenClaims;
    try {
      claims = jwt.verify(token, key.publicKey, { algorithms: [ALGORITHM], issuer: TOKEN_ISSUER, audience: this.service, clockTolerance: CLOCK_TOLERANCE }) as TokenClaims;
    } catch {
      return null;
    }
    const grants = new Map<string, Set<Action>>();
    let catalog = false;
    for (const a of claims.access ?? []) {
      if (a.type === 'repository') {
        const set = grants.get(a.name) ?? new Set<Action>();
        for (const act of a.actions) if (act === 'pull' || act === 'push' || act === 'delete') set.add(act);
        grants.set(a.name, set);
      } else if (a.type === 'registry' && a.name === 'catalog' && a.actions.includes('*')) {
        catalog = true;
      }
    }
    const principal: Principal | null = claims.berth ? { kind: claims.berth.k, id: claims.berth.id, name: claims.sub, sysadmin: claims.berth.adm } : null;
    const v: VerifiedToken = { principal, grants, catalog, exp: claims.exp };
    this.verified.set(token, v);
    return v;
  }

  /**
   * A new current key for the whole cluster; the current one becomes the previous (its tokens stay
   * valid until they expire; the key before it is dropped). Every node is told to reload.
   */
  async rotate(by?: string): Promise<{ kid: string; previousKid: string }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const stored = await this.o.rows.read();
      if (stored === null) throw new Error('no token-signing key stored');
      const now = this.open(stored);
      const next = this.seal({ v: 1, current: newKeyPem(), previous: now.current, rotatedAt: Date.now() });
      if (await this.o.rows.replace(stored, next)) {
        this.install(next);
        await this.o.changes.publish('signing-keys');
        this.o.log?.info({ kid: this.kid, previousKid: this.keys.previous!.kid, by }, 'token-signing key rotated');
        return { kid: this.kid, previousKid: this.keys.previous!.kid };
      }
      // Another node rotated meanwhile: rotate on top of its result.
    }
    throw new AppError('CONFLICT', undefined, { message: 'the token-signing key is being rotated elsewhere; try again' });
  }

  /** Reads the key set again (topic 'signing-keys'); keeps the loaded one when that fails. */
  reload(): Promise<void> {
    this.reloading ??= (async () => {
      try {
        this.lastReload = Date.now();
        const stored = await this.o.rows.read();
        if (stored !== null && stored !== this.keys.sealed) this.install(stored);
      } catch (err) {
        this.o.log?.error({ err: (err as Error).message }, 'token-signing keys could not be reloaded');
      } finally {
        this.reloading = null;
      }
    })();
    return this.reloading;
  }

  private reloadSoon(): void {
    if (!this.reloading && Date.now() - this.lastReload >= 1_000) void this.reload();
  }

  private install(sealed: string): void {
    const stored = this.open(sealed);
    const previous = stored.previous ? signingKey(stored.previous) : null;
    this.keys = {
      sealed,
      current: signingKey(stored.current),
      previous,
      previousUntil: previous && stored.rotatedAt !== null ? stored.rotatedAt / 1000 + this.ttlSeconds + CLOCK_TOLERANCE : 0,
    };
    // New tokens carry the new key; tokens of a dropped key must not stay accepted from the cache.
    this.issued.clear();
    this.verified.clear();
  }

  private seal(keys: StoredKeys): string {
    return this.o.box.seal(JSON.stringify(keys), SEAL_CONTEXT);
  }

  private open(sealed: string): StoredKeys {
    try {
      return JSON.parse(this.o.box.open(sealed, SEAL_CONTEXT)) as StoredKeys;
    } catch (e) {
      if (e instanceof SecretBoxError) {
        throw new UnreadableKeys('the token-signing keys in the database cannot be decrypted with this node\'s secret key: every node needs the same BERTH_SECRET_KEY (or a copy of the first node\'s <data dir>/secret.key)');
      }
      throw e;
    }
  }
}

/** Parses `type:name:actions` scopes (names may contain ':' only in the type's resource class syntax). */
export function parseScope(scope: string): AccessEntry | null {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return null;
  let type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope.slice(last + 1).split(',').filter(Boolean);
  const cls = /^([a-z0-9]+)\([a-z0-9]+\)$/.exec(type); // repository(plugin) resource class
  if (cls) type = cls[1];
  if (!type || !name) return null;
  return { type, name, actions };
}
