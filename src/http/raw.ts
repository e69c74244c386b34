// Plain node:http plumbing for the /v2 API, which runs outside Express: every registry request
// is one anchored route match, so Express's router, request decoration and res.json only add
// per-request CPU on the hottest paths (manifest GET, blob HEAD, listing pages). clientAddress and
// requestProtocol are the one trust-proxy rule (BERTH_TRUSTED_PROXIES) for every route, Express's too.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { finished, type Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { isReleasing } from '../lib/chunk-pool.ts';

/** The reverse proxies and load balancers whose X-Forwarded-For and X-Forwarded-Proto are believed. */
export class ProxyTrust {
  private readonly list = new BlockList();

  /** `entries`: addresses or CIDRs (as config's BERTH_TRUSTED_PROXIES checked them). */
  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const [addr, bits] = e.split('/');
      const family = isIP(addr);
      if (!family) throw new Error(`not an IP address or CIDR: "${e}"`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
  }

  /** Whether `addr` (an IP, IPv4-mapped IPv6 included) is a trusted proxy. */
  trusts(addr: string | undefined): boolean {
    if (!addr) return false;
    const family = isIP(addr);
    if (family === 4) return this.list.check(addr, 'ipv4');
    if (family !== 6) return false;
    // A peer of a dual-stack socket is ::ffff:a.b.c.d; the list may name it as a.b.c.d.
    if (addr.length > 7 && addr.slice(0, 7).toLowerCase() === '::ffff:' && isIP(addr.slice(7)) === 4) return this.list.check(addr.slice(7), 'ipv4');
    return this.list.check(addr, 'ipv6');
  }
}

/** The default: a reverse proxy on the same host (loopback). */
export const LOOPBACK_PROXIES = new ProxyTrust(['127.0.0.0/8', '::1']);

const TRUST = Symbol('berth.proxyTrust');
type TrustingRequest = IncomingMessage & { [TRUST]?: ProxyTrust };

/**
 * Binds the app's proxy trust to a request, once, at the top of the request listener; clientAddress
 * and requestProtocol then answer by it (a request never bound, as in unit tests, trusts loopback).
 * It only stores a reference: the headers are read when someone asks.
 */
export function useProxyTrust(req: IncomingMessage, trust: ProxyTrust): void {
  (req as TrustingRequest)[TRUST] = trust;
}

/** An X-Forwarded-For hop as an address: "a.b.c.d", "a.b.c.d:port", "v6", "[v6]:port"; '' when none. */
function hopAddress(hop: string): string {
  if (isIP(hop)) return hop;
  if (hop.startsWith('[')) {
    const close = hop.indexOf(']');
    const inner = close > 0 ? hop.slice(1, close) : '';
    return isIP(inner) === 6 ? inner : '';
  }
  const colon = hop.indexOf(':');
  if (colon > 0 && hop.indexOf(':', colon + 1) < 0 && isIP(hop.slice(0, colon)) === 4) return hop.slice(0, colon);
  return '';
}

/**
 * The client's address: the peer, or when the peer is a trusted proxy, X-Forwarded-For walked from
 * the right past trusted hops; the first untrusted hop is the client (hops further left are whatever
 * the client claimed). A hop that is not an address ends the walk at the last trusted one.
 */
export function clientAddress(req: IncomingMessage): string {
  const peer = req.socket.remoteAddress ?? '';
  const fwd = req.headers['x-forwarded-for'];
  if (!fwd) return peer;
  const trust = (req as TrustingRequest)[TRUST] ?? LOOPBACK_PROXIES;
  if (!trust.trusts(peer)) return peer;
  const list = Array.isArray(fwd) ? fwd.join(',') : fwd;
  let known = peer;
  let end = list.length;
  while (end > 0) {
    const comma = list.lastIndexOf(',', end - 1);
    const hop = list.slice(comma + 1, end).trim();
    end = comma < 0 ? 0 : comma;
    if (!hop) continue;
    const addr = hopAddress(hop);
    if (!addr) return known;
    if (!trust.trusts(addr)) return addr;
    known = addr;
  }
  return known;
}

/** 'https' on a TLS socket or when a trusted proxy says so (X-Forwarded-Proto); else 'http'. */
export function requestProtocol(req: IncomingMessage): string {
  if ((req.socket as TLSSocket).encrypted) return 'https';
  const proto = req.headers['x-forwarded-proto'];
  if (typeof proto !== 'string') return 'http';
  if (!((req as TrustingRequest)[TRUST] ?? LOOPBACK_PROXIES).trusts(req.socket.remoteAddress)) return 'http';
  // The first value is the client's side of the first proxy; only the two schemes mean anything.
  const first = proto.split(',')[0].trim().toLowerCase();
  return first === 'https' ? 'https' : 'http';
}

/** A JSON answer, as Express's res.json writes it (the HEAD body is dropped by node:http). */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendJsonText(res, status, JSON.stringify(body));
}

/** A JSON answer already serialized (kept by a cache). */
export function sendJsonText(res: ServerResponse, status: number, text: string | Buffer): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/**
 * Bytes a download of fresh buffers (S3's) may have queued on the socket (beyond what the kernel
 * took) before reading from the body pauses until the socket drained. The socket's own
 * highWaterMark (16 KiB) is smaller than one chunk, so honouring write()'s return value alone would
 * serialize chunk after chunk (256 KiB here measured ~8% more CPU per MiB than 2 MiB).
 */
const QUEUED_MAX = 2 * 1024 * 1024;

/**
 * Streams a body to the response without waiting for each write: chunks that arrive while the
 * socket is busy queue up (to QUEUED_MAX, then the body pauses until 'drain') and go out together
 * in one writev, and chunks that arrive in one turn of the event loop (the reads of one poll) are
 * corked into one write. A stream that pools its chunks (the filesystem's) sends one at a time
 * and gets each back once the socket has taken it, so a download allocates nothing per chunk.
 * Resolves when the response ended; rejects (after destroying both sides) when either side failed,
 * the body ended early, or the client went away.
 */
export function sendStream(body: Readable, res: ServerResponse): Promise<void> {
  const releasing = isReleasing(body) ? body : null;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let corked = false;
    let waiting = false;
    const uncork = () => {
      if (!corked) return;
      corked = false;
      res.uncork();
    };
    // finished() knows every way a readable stops, also one that stopped before this call.
    const unwatch = finished(body, { writable: false }, (err) => (err ? fail(err) : onEnd()));
    const cleanup = () => {
      unwatch();
      body.off('data', onData);
      body.on('error', ignore); // a late error from a stream we no longer read must not crash
      res.off('drain', onDrain);
      res.off('close', onClose);
      res.off('error', fail);
    };
    function fail(e: Error): void {
      if (settled) return;
      settled = true;
      cleanup();
      body.destroy();
      res.destroy();
      reject(e);
    }
    function onData(chunk: Buffer): void {
      if (releasing) {
        // Pooled chunks (the filesystem's 1 MiB ones, one read per loop turn): one at a time, the
        // next read once the socket took this one, so a download holds two pool buffers at most.
        body.pause();
        res.write(chunk, (err) => {
          if (err) return; // the response failed: 'close' ends this
          releasing.release(chunk);
          body.resume();
        });
        return;
      }
      if (!corked) {
        corked = true;
        res.cork();
        setImmediate(uncork);
      }
      res.write(chunk);
      if (!waiting && res.writableLength > QUEUED_MAX) {
        waiting = true;
        body.pause();
        res.once('drain', onDrain);
      }
    }
    function onDrain(): void {
      waiting = false;
      body.resume();
    }
    function onEnd(): void {
      uncork();
      res.end((err?: Error | null) => {
        if (err) return fail(err);
        if (settled) return;
        settled = true;
        cleanup();
        resolve();
      });
    }
    function onClose(): void {
      fail(new Error('client went away'));
    }
    if (res.destroyed) return onClose();
    res.on('close', onClose);
    res.on('error', fail);
    body.on('data', onData);
  });
}

function ignore(): void {}
