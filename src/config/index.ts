// Typed configuration. The only module that reads process.env; everything else receives a Config.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface LdapConfig {
  url: string;
  searchDn: string;
  searchPassword: string;
  baseDn: string;
  filter: string;
  uid: string;
  scope: 'base' | 'one' | 'sub';
  timeoutSeconds: number;
  verifyCert: boolean;
  caFile?: string;
  groupBaseDn: string;
  groupFilter: string;
  groupAttributeName: string;
  groupAdminDn: string;
  groupMembershipAttribute: string;
  nestedGroups: boolean;
}

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string;
  externalUrl?: string;
  /** Name of the token service (the JWT audience and the challenge's `service`). */
  serviceName: string;
  adminPassword?: string;
  tls?: { cert: string; key: string };
  uploadTtlSeconds: number;
  logLevel: string;
  /** 'json' (one JSON object per line) or 'pretty' (readable lines; the default on a terminal). */
  logFormat: 'json' | 'pretty';
  tokenTtlSeconds: number;
  ldap?: LdapConfig;
  /** Peers whose X-Forwarded-For / X-Forwarded-Proto are honoured: addresses or CIDRs (loopback by default). */
  trustedProxies: string[];
  /** Key for secrets stored in the database (BERTH_SECRET_KEY); unset: a generated key file in the data directory. */
  secretKey?: string;
  /** A request body that sends no byte for this long is cut off (an upload stays resumable). */
  bodyTimeoutSeconds: number;
  /** Open upload sessions allowed per repository and per principal. */
  maxUploadsPerRepository: number;
  maxUploadsPerPrincipal: number;
  /** Browser sessions kept per user; the oldest is ended when a new one would exceed it. */
  maxSessionsPerUser: number;
  /** Prometheus metrics listener (BERTH_METRICS_ADDR, host:port); unset: no metrics at all. Port 0 picks a free port. */
  metrics?: { host: string; port: number };
  /** Where blobs live: 'fs' (the data directory, the default) or 's3' (BERTH_STORAGE). */
  storage: 'fs' | 's3';
  /** S3-compatible object storage (BERTH_S3_*), when storage is 's3'. The secret is never logged. */
  s3?: S3Config;
}

export interface S3Config {
  endpoint?: string;
  bucket: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
  prefix: string;
  /** Blob GETs answer 307 to a presigned URL valid this many seconds (0: bytes go through Berth). */
  redirectSeconds: number;
}

export class ConfigError extends Error {
  constructor(public readonly variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

/** Parses a comma-separated list of IPv4/IPv6 addresses and CIDRs; throws naming the variable. */
function addressList(env: Env, name: string, def: string): string[] {
  const raw = env[name] === undefined ? def : env[name]!;
  const out: string[] = [];
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [addr, bits, extra] = part.split('/');
    const family = net.isIP(addr);
    const max = family === 4 ? 32 : 128;
    if (!family || extra !== undefined || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > max))) {
      throw new ConfigError(name, `not an IP address or CIDR: "${part}"`);
    }
    out.push(part);
  }
  return out;
}

function readableFile(env: Env, name: string): string | undefined {
  const p = env[name];
  if (!p) return undefined;
  try {
    fs.accessSync(p, fs.constants.R_OK);
  } catch {
    throw new ConfigError(name, `cannot read file "${p}"`);
  }
  return p;
}

/** Builds the configuration from environment variables; throws ConfigError naming the bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(env.BERTH_DATA_DIR || './data');
  const port = int(env, 'BERTH_PORT', 5000, 0, 65535);
  const host = env.BERTH_HOST || '0.0.0.0';

  let databaseUrl = env.BERTH_DATABASE_URL || `file:${path.join(dataDir, 'berth.db')}`;
  if (/^postgres(ql)?:\/\//i.test(databaseUrl)) {
    // PostgreSQL (the password, if any, is in the URL: never echoed back, see redactDatabaseUrl).
    let u: URL;
    try {
      u = new URL(databaseUrl);
    } catch {
      throw new ConfigError('BERTH_DATABASE_URL', 'is not a valid postgresql://user:password@host:port/database URL');
    }
    if (!u.hostname && !u.searchParams.get('host')) throw new ConfigError('BERTH_DATABASE_URL', 'a postgresql:// URL needs a host');
  } else if (/^file:/.test(databaseUrl)) {
    databaseUrl = `file:${path.resolve(dataDir, databaseUrl.slice(5))}`;
  } else {
    throw new ConfigError('BERTH_DATABASE_URL', `must be a SQLite "file:<path>" or a "postgresql://user:password@host:port/database" URL, got "${databaseUrl.replace(/\/\/[^@]*@/, '//***@')}"`);
  }

  let externalUrl = env.BERTH_EXTERNAL_URL || undefined;
  if (externalUrl) {
    let u: URL;
    try {
      u = new URL(externalUrl);
    } catch {
      throw new ConfigError('BERTH_EXTERNAL_URL', `not a URL: "${externalUrl}"`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError('BERTH_EXTERNAL_URL', 'must start with http:// or https://');
    externalUrl = externalUrl.replace(/\/+$/, '');
  }

  const cert = readableFile(env, 'BERTH_TLS_CERT');
  const key = readableFile(env, 'BERTH_TLS_KEY');
  if (!!cert !== !!key) throw new ConfigError(cert ? 'BERTH_TLS_KEY' : 'BERTH_TLS_CERT', 'BERTH_TLS_CERT and BERTH_TLS_KEY must be set together');

  const adminPassword = env.BERTH_ADMIN_PASSWORD || undefined;
  if (adminPassword !== undefined && adminPassword.length < 8) throw new ConfigError('BERTH_ADMIN_PASSWORD', 'must be at least 8 characters');

  const logLevel = env.BERTH_LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) throw new ConfigError('BERTH_LOG_LEVEL', `unknown level "${logLevel}"`);

  return {
    host,
    port,
    dataDir,
    databaseUrl,
    externalUrl,
    serviceName: env.BERTH_SERVICE_NAME || 'berth-registry',
    adminPassword,
    tls: cert && key ? { cert, key } : undefined,
    uploadTtlSeconds: int(env, 'BERTH_UPLOAD_TTL_SECONDS', 24 * 3600, 60, 30 * 24 * 3600),
    tokenTtlSeconds: int(env, 'BERTH_TOKEN_TTL_SECONDS', 1800, 30, 24 * 3600),
    logLevel,
    logFormat: logFormat(env),
    ldap: loadLdap(env),
    trustedProxies: addressList(env, 'BERTH_TRUSTED_PROXIES', '127.0.0.0/8,::1'),
    secretKey: secretKey(env),
    bodyTimeoutSeconds: int(env, 'BERTH_BODY_TIMEOUT_SECONDS', 60, 5, 3600),
    maxUploadsPerRepository: int(env, 'BERTH_MAX_UPLOADS_PER_REPOSITORY', 100, 1, 100_000),
    maxUploadsPerPrincipal: int(env, 'BERTH_MAX_UPLOADS_PER_PRINCIPAL', 500, 1, 1_000_000),
    maxSessionsPerUser: int(env, 'BERTH_MAX_SESSIONS_PER_USER', 20, 1, 10_000),
    metrics: hostPort(env, 'BERTH_METRICS_ADDR'),
    ...storage(env),
  };
}

function storage(env: Env): { storage: 'fs' | 's3'; s3?: S3Config } {
  const kind = env.BERTH_STORAGE || 'fs';
  if (kind !== 'fs' && kind !== 's3') throw new ConfigError('BERTH_STORAGE', `must be fs or s3, got "${kind}"`);
  if (kind === 'fs') return { storage: 'fs' };
  const bucket = env.BERTH_S3_BUCKET;
  if (!bucket) throw new ConfigError('BERTH_S3_BUCKET', 'must be set when BERTH_STORAGE=s3');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new ConfigError('BERTH_S3_BUCKET', `not a valid bucket name: "${bucket}"`);
  const endpoint = env.BERTH_S3_ENDPOINT || undefined;
  if (endpoint !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(endpoint);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) throw new ConfigError('BERTH_S3_ENDPOINT', `must be an http:// or https:// URL, got "${endpoint}"`);
  }
  const accessKeyId = env.BERTH_S3_ACCESS_KEY_ID || undefined;
  const secretAccessKey = env.BERTH_S3_SECRET_ACCESS_KEY || undefined;
  if (!!accessKeyId !== !!secretAccessKey) {
    throw new ConfigError(accessKeyId ? 'BERTH_S3_SECRET_ACCESS_KEY' : 'BERTH_S3_ACCESS_KEY_ID', 'BERTH_S3_ACCESS_KEY_ID and BERTH_S3_SECRET_ACCESS_KEY must be set together (or neither: the SDK\'s default credential chain)');
  }
  const prefix = (env.BERTH_S3_PREFIX ?? '').replace(/^\/+|\/+$/g, '');
  return {
    storage: 's3',
    s3: {
      endpoint,
      bucket,
      region: env.BERTH_S3_REGION || 'us-east-1',
      accessKeyId,
      secretAccessKey,
      forcePathStyle: bool(env, 'BERTH_S3_FORCE_PATH_STYLE', endpoint !== undefined),
      prefix: prefix ? prefix + '/' : '',
      redirectSeconds: bool(env, 'BERTH_S3_REDIRECT', false) ? 300 : 0,
    },
  };
}

/** host:port (a name, an IPv4 address or a bracketed IPv6 address, and a port 0-65535); unset: undefined. */
function hostPort(env: Env, name: string): { host: string; port: number } | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(raw);
  const host = m?.[1] ?? m?.[2];
  if (!m || !host || (m[1] !== undefined && net.isIPv6(host) === false) || Number(m[3]) > 65535) {
    throw new ConfigError(name, `must be host:port, e.g. 127.0.0.1:9090 or [::1]:9090, got "${raw}"`);
  }
  return { host, port: Number(m[3]) };
}

function logFormat(env: Env): 'json' | 'pretty' {
  const raw = env.BERTH_LOG_FORMAT;
  if (raw === undefined || raw === '') return process.stdout.isTTY ? 'pretty' : 'json';
  if (raw !== 'json' && raw !== 'pretty') throw new ConfigError('BERTH_LOG_FORMAT', `must be json or pretty, got "${raw}"`);
  return raw;
}

function secretKey(env: Env): string | undefined {
  const k = env.BERTH_SECRET_KEY;
  if (k === undefined || k === '') return undefined;
  if (k.length < 32) throw new ConfigError('BERTH_SECRET_KEY', 'must be at least 32 characters (e.g. `openssl rand -base64 32`)');
  return k;
}

function loadLdap(env: Env): LdapConfig | undefined {
  const url = env.BERTH_LDAP_URL;
  if (!url) return undefined;
  if (!/^ldaps?:\/\/[^\s]+$/.test(url)) throw new ConfigError('BERTH_LDAP_URL', `must be ldap://host[:port] or ldaps://host[:port], got "${url}"`);
  const baseDn = env.BERTH_LDAP_BASE_DN;
  if (!baseDn) throw new ConfigError('BERTH_LDAP_BASE_DN', 'required when BERTH_LDAP_URL is set');
  const scopeRaw = (env.BERTH_LDAP_SCOPE || 'sub').toLowerCase();
  const scopeMap: Record<string, LdapConfig['scope']> = { '0': 'base', base: 'base', '1': 'one', one: 'one', onelevel: 'one', '2': 'sub', sub: 'sub', subtree: 'sub' };
  const scope = scopeMap[scopeRaw];
  if (!scope) throw new ConfigError('BERTH_LDAP_SCOPE', `must be base, one or sub (or Harbor's 0, 1, 2), got "${scopeRaw}"`);
  return {
    url,
    searchDn: env.BERTH_LDAP_SEARCH_DN || '',
    searchPassword: env.BERTH_LDAP_SEARCH_PASSWORD || '',
    baseDn,
    filter: env.BERTH_LDAP_FILTER || '',
    uid: env.BERTH_LDAP_UID || 'uid',
    scope,
    timeoutSeconds: int(env, 'BERTH_LDAP_TIMEOUT', 5, 1, 300),
    verifyCert: bool(env, 'BERTH_LDAP_VERIFY_CERT', true),
    caFile: readableFile(env, 'BERTH_LDAP_CA_FILE'),
    groupBaseDn: env.BERTH_LDAP_GROUP_BASE_DN || '',
    groupFilter: env.BERTH_LDAP_GROUP_FILTER || '',
    groupAttributeName: env.BERTH_LDAP_GROUP_ATTRIBUTE_NAME || 'cn',
    groupAdminDn: env.BERTH_LDAP_GROUP_ADMIN_DN || '',
    groupMembershipAttribute: env.BERTH_LDAP_GROUP_MEMBERSHIP_ATTRIBUTE || 'memberOf',
    nestedGroups: bool(env, 'BERTH_LDAP_NESTED_GROUPS', false),
  };
}
