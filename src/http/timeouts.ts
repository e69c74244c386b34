// Idle timeout on request bodies: a client that stops sending in the middle of a body is cut off
// after `ms` without a byte, so stalled uploads cannot hold sockets and memory for ever. Only
// while the body is read: a slow answer (an import being unpacked, a large blob being verified)
// is not the client's fault. What an upload received before the cut stays, so it can resume.
import type { IncomingMessage } from 'node:http';

export function watchBodyIdle(req: IncomingMessage, ms: number): void {
  const h = req.headers;
  const len = h['content-length'];
  if ((len === undefined || len === '0') && h['transfer-encoding'] === undefined) return;
  const socket = req.socket;
  // node:http destroys a socket whose timeout fires when no request or response listens for it.
  socket.setTimeout(ms);
  const done = () => {
    req.off('end', done);
    req.off('close', done);
    // Unless node:http has meanwhile armed its keep-alive timeout (the answer went out first).
    if (!socket.destroyed && socket.timeout === ms) socket.setTimeout(0);
  };
  req.once('end', done);
  req.once('close', done);
}
