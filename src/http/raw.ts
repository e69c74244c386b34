// Plain node:http plumbing for the /v2 API, which runs outside Express: every registry request
// is one anchored route match, so Express's router, request decoration and res.json only add
// per-request CPU on the hottest paths (manifest GET, blob HEAD, listing pages). clientAddress and
// requestProtocol are the one trust-proxy rule (loopback only) for every route, Express's too.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { isReleasing } from '../lib/chunk-pool.ts';

/** A loopback peer, the only proxy trusted to set X-Forwarded-* (a reverse proxy on the same host). */
function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

/** The client's address: the peer, or behind a loopback proxy the last untrusted X-Forwarded-For hop. */
export function clientAddress(req: IncomingMessage): string {
  const peer = req.socket.remoteAddress ?? '';
  const fwd = req.headers['x-forwarded-for'];
  if (!fwd || !isLoopback(peer)) return peer;
  const hops = (Array.isArray(fwd) ? fwd.join(',') : fwd).split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) if (!isLoopback(hops[i])) return hops[i];
  return hops[0] ?? peer;
}

/** 'https' on a TLS socket or behind a loopback proxy that says so; else 'http'. */
export function requestProtocol(req: IncomingMessage): string {
  if ((req.socket as TLSSocket).encrypted) return 'https';
  const proto = req.headers['x-forwarded-proto'];
  if (typeof proto === 'string' && isLoopback(req.socket.remoteAddress)) return proto.split(',')[0].trim() || 'http';
  return 'http';
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
 * Streams a body to the response, one chunk at a time: the next chunk is written once the socket
 * has taken the previous one, which is then released back to its pool (when the stream pools its
 * chunks), so a blob download allocates nothing per chunk. Resolves when the response ended;
 * rejects (after destroying both sides) when either side failed or the client went away.
 */
export async function sendStream(body: Readable, res: ServerResponse): Promise<void> {
  const releasing = isReleasing(body) ? body : null;
  let closed: (() => void) | null = null;
  const gone = new Promise<never>((_, reject) => {
    closed = () => reject(new Error('client went away'));
    res.once('close', closed);
  });
  gone.catch(() => undefined);
  const written = (chunk: Buffer) => new Promise<void>((resolve, reject) => res.write(chunk, (err) => (err ? reject(err) : resolve())));
  try {
    for await (const chunk of body) {
      await Promise.race([written(chunk as Buffer), gone]);
      releasing?.release(chunk as Buffer);
    }
    await Promise.race([new Promise<void>((resolve) => res.end(resolve)), gone]);
  } catch (e) {
    body.destroy();
    res.destroy();
    throw e;
  } finally {
    if (closed) res.off('close', closed);
  }
}
