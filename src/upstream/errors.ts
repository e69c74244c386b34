// What can go wrong talking to another registry, as one error class with a kind the callers
// branch on (a proxy cache serves its copy when the upstream is `unreachable`; a replication task
// retries `unreachable` and `timeout` but not `unauthorized`). Messages name the cause in words an
// administrator can act on and never contain a credential, a token or a signed URL's query.

export type UpstreamErrorKind =
  /** Connection refused, DNS failure, reset: the registry did not answer. */
  | 'unreachable'
  /** No answer (headers or body bytes) within the time limit. */
  | 'timeout'
  /** The TLS handshake failed: unknown CA, wrong host name, expired certificate. */
  | 'tls'
  /** 401: credentials missing or refused (by the registry or its token service). */
  | 'unauthorized'
  /** 403: authenticated but not allowed. */
  | 'denied'
  /** 404: no such repository, manifest, blob or tag. */
  | 'not-found'
  /** 429: the registry's rate limit. */
  | 'rate-limited'
  /** What arrived does not hash to the digest it was asked for (or announced). */
  | 'digest-mismatch'
  /** Any other answer that breaks the distribution protocol (a 5xx, a malformed body, a missing header). */
  | 'protocol';

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    /** The HTTP status the registry answered with, when it answered. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }

  /** Worth another try later (the registry may come back); a refusal or a lie is not. */
  get transient(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout' || this.kind === 'rate-limited' || (this.kind === 'protocol' && (this.status ?? 0) >= 500);
  }
}

/** A URL fit for a message or a log line: no user info, no query (presigned S3 URLs carry signatures there). */
export function safeUrl(url: string | URL): string {
  try {
    const u = new URL(String(url));
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(malformed URL)';
  }
}

const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_NOT_YET_VALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);

/** The UpstreamError for a failure below HTTP (socket, DNS, TLS) while talking to `url`. */
export function networkError(err: unknown, url: string | URL): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as NodeJS.ErrnoException;
  const where = safeUrl(url);
  const code = e?.code ?? '';
  if (TLS_CODES.has(code) || /certificate|SSL|TLS/i.test(e?.message ?? '')) {
    return new UpstreamError('tls', `TLS with ${where} failed: ${code || e.message} (give the registry's CA certificate, or mark it insecure)`);
  }
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') return new UpstreamError('timeout', `${where} did not answer in time`);
  const what = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'host name not found' : code === 'ECONNRESET' ? 'connection reset' : code || e?.message || 'network error';
  return new UpstreamError('unreachable', `cannot reach ${where}: ${what}`);
}
