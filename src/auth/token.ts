// The Docker registry token service's signing side: an ES256 key pair generated on first start and
// kept in the data directory, JWTs with a `kid` header and a narrowed `access` claim, and a verifier
// pinned to that algorithm, issuer and audience. Verified tokens are cached until they expire, so
// the hot path pays one signature check per token, not per request.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import type { Action, Principal } from '../access/principal.ts';
import { Lru } from '../lib/lru.ts';
import { privateDir, privateFile } from '../lib/private-files.ts';

export const TOKEN_ISSUER = 'berth-token-issuer';
const ALGORITHM = 'ES256';

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

export class TokenSigner {
  readonly kid: string;
  private readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  private verified = new Lru<string, VerifiedToken>(5_000);
  /**
   * Tokens issued within the last `reuseSeconds`, by principal and granted access: docker and CI
   * jobs ask again for the same scope many times a minute, and handing out the same token (its
   * remaining lifetime in expires_in) skips the signature, most of a token request's CPU.
   */
  private issued = new Lru<string, { token: string; iat: number; exp: number }>(5_000);
  private readonly reuseSeconds: number;

  constructor(keyDir: string, private readonly service: string, private readonly ttlSeconds: number) {
    const keyFile = path.join(keyDir, 'token-signing.key');
    if (!fs.existsSync(keyFile)) {
      fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const tmp = `${keyFile}.tmp`;
      fs.writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      fs.renameSync(tmp, keyFile);
    }
    // An install made before, or copied with looser modes: the signing key is 0600 in a 0700 dir.
    privateDir(keyDir);
    privateFile(keyFile);
    this.privateKey = createPrivateKey(fs.readFileSync(keyFile));
    this.publicKey = createPublicKey(this.privateKey);
    this.kid = libtrustKeyId(this.publicKey);
    this.reuseSeconds = Math.min(60, Math.floor(ttlSeconds / 10));
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
    const token = jwt.sign(claims, this.privateKey, { algorithm: ALGORITHM, keyid: this.kid, noTimestamp: true });
    this.issued.set(key, { token, iat: now, exp: claims.exp });
    return { token, expiresIn: this.ttlSeconds, issuedAt: new Date(now * 1000).toISOString() };
  }

  /** Verifies a token (signature, algorithm, issuer, audience, expiry); null when invalid. */
  verify(token: string): VerifiedToken | null {
    const hit = this.verified.get(token);
    const nowSec = Date.now() / 1000;
    if (hit) {
      if (hit.exp > nowSec) return hit;
      this.verified.delete(token);
      return null;
    }
    let claims: TokenClaims;
    try {
      claims = jwt.verify(token, this.publicKey, { algorithms: [ALGORITHM], issuer: TOKEN_ISSUER, audience: this.service, clockTolerance: 5 }) as TokenClaims;
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
