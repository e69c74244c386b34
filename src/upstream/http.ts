// The transport of the upstream client: one HTTP(S) exchange over node:http(s), with this
// registry's TLS settings (a private CA, or no verification when marked insecure), time limits,
// redirects followed for reads (a blob GET is often sent on to S3 or a CDN), and the response body
// left as a stream. Knows nothing about registries or credentials beyond the headers it is given.
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { UpstreamError, networkError, safeUrl } from './errors.ts';

export interface TransportOptions {
  /** Skip TLS certificate verification (Harbor's `insecure`). */
  insecure?: boolean;
  /** PEM of a CA the registry's certificate is checked against (in addition to the system's). */
  caCertificate?: string | null;
  /** Time to connect and receive the response headers, in ms. */
  timeoutMs?: number;
  /** Longest pause between two body bytes (either way), in ms. */
  idleTimeoutMs?: number;
  userAgent?: string;
}

export interface Exchange {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body; always consume or destroy it (a kept-alive socket waits for it). */
  body: http.IncomingMessage;
  /** The URL that answered (after redirects). */
  url: URL;
}

export interface SendOptions {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** A Buffer, or a stream of exactly headers['content-length'] bytes. */
  body?: Buffer | Readable;
  /** Follow redirects (GET and HEAD only); Authorization is dropped when the redirect leaves the origin. */
  followRedirects?: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

export class Transport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly timeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly userAgent: string;

  constructor(opts: TransportOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.userAgent = opts.userAgent ?? 'berth';
    // No cap on sockets in use: a blob stream moves at the pace of the client it is served to (a
    // proxy-cache pull), so a pool of N would let N slow anonymous readers hold every connection to
    // the registry and stall everyone else's pulls (Distribution's proxy has no cap either). Idle
    // kept-alive sockets stay capped.
    this.httpAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 16 });
    this.httpsAgent = new https.Agent({
      keepAlive: true,
      maxFreeSockets: 16,
      rejectUnauthorized: !opts.insecure,
      // A private CA joins the system's roots, so a redirect to a public S3 or CDN host still verifies.
      ...(opts.caCertificate ? { ca: [...tls.rootCertificates, opts.caCertificate] } : {}),
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  async send(opts: SendOptions): Promise<Exchange> {
    let url = opts.url;
    let headers = { ...(opts.headers ?? {}) };
    let method = opts.method;
    for (let hop = 0; ; hop++) {
      const res = await this.once(method, url, headers, hop === 0 ? opts.body : undefined);
      const location = res.headers.location;
      if (!opts.followRedirects || !REDIRECTS.has(res.status) || !location || (method !== 'GET' && method !== 'HEAD')) return res;
      res.body.resume();
      if (hop >= MAX_REDIRECTS) throw new UpstreamError('protocol', `too many redirects from ${safeUrl(opts.url)}`, res.status);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new UpstreamError('protocol', `${safeUrl(url)} redirected to a malformed URL`, res.status);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new UpstreamError('protocol', `${safeUrl(url)} redirected to an unsupported scheme`, res.status);
      // A presigned URL carries its own authorization: a second one makes S3 refuse the request,
      // and the registry's credentials must not travel to another host.
      if (next.origin !== url.origin) {
        const { authorization: _drop, Authorization: _Drop, ...rest } = headers;
        headers = rest;
      }
      if (res.status === 303) method = 'GET';
      url = next;
    }
  }

  private once(method: string, url: URL, headers: Record<string, string>, body: Buffer | Readable | undefined): Promise<Exchange> {
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') return Promise.reject(new UpstreamError('protocol', `unsupported URL scheme ${url.protocol}`));
    return new Promise<Exchange>((resolve, reject) => {
      const h: Record<string, string> = { 'user-agent': this.userAgent, ...headers };
      if (Buffer.isBuffer(body)) h['content-length'] = String(body.length);
      else if (!body && (method === 'PUT' || method === 'POST' || method === 'PATCH')) h['content-length'] ??= '0';
      const req = (secure ? https : http).request(url, { method, headers: h, agent: secure ? this.httpsAgent : this.httpAgent });
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(headerTimer);
        req.destroy();
        reject(networkError(err, url));
      };
      // The answer is due within timeoutMs of the request's end: an upload's body may take longer to
      // send (a stall while sending is the idle timeout's).
      let headerTimer: NodeJS.Timeout | undefined;
      const armHeaderTimer = () => {
        if (settled) return;
        headerTimer = setTimeout(() => fail(new UpstreamError('timeout', `${safeUrl(url)} did not answer within ${Math.round(this.timeoutMs / 1000)} s`)), this.timeoutMs);
        headerTimer.unref();
      };
      if (body && !Buffer.isBuffer(body)) req.once('finish', armHeaderTimer);
      else armHeaderTimer();
      let response: http.IncomingMessage | null = null;
      // Idle sockets (either way) after the headers are cut: the body stream errors with the cause.
      req.setTimeout(this.idleTimeoutMs, () => {
        const err = new UpstreamError('timeout', `${safeUrl(url)} stalled for ${Math.round(this.idleTimeoutMs / 1000)} s`);
        if (!settled) fail(err);
        else {
          response?.destroy(err);
          req.destroy();
        }
      });
      req.once('error', fail);
      req.once('response', (res) => {
        if (settled) {
          res.destroy();
          return;
        }
        settled = true;
        response = res;
        clearTimeout(headerTimer);
        // Errors of the body from here on belong to whoever reads it.
        req.removeListener('error', fail);
        req.on('error', (err) => res.destroy(networkError(err, url)));
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
      });
      if (!body) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.once('error', (err) => fail(err));
        body.pipe(req);
      }
    });
  }
}

/** The whole body as a Buffer, refused beyond `limit` bytes (manifests, token and error bodies). */
export async function readBody(res: Exchange, limit: number): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    res.body.destroy();
    throw new UpstreamError('protocol', `${safeUrl(res.url)} sent ${declared} bytes, more than the ${limit} accepted here`, res.status);
  }
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > limit) {
        res.body.destroy();
        throw new UpstreamError('protocol', `${safeUrl(res.url)} sent more than the ${limit} bytes accepted here`, res.status);
      }
      parts.push(chunk);
    }
  } catch (err) {
    throw networkError(err, res.url);
  }
  return Buffer.concat(parts);
}

/** Reads and drops a body (small error bodies), so the socket goes back to the pool. */
export async function drain(res: Exchange, limit = 64 * 1024): Promise<Buffer> {
  try {
    return await readBody(res, limit);
  } catch {
    return Buffer.alloc(0);
  }
}
