// One access-log line per request, at info, when the answer is finished: method, path (query values
// that may carry secrets blanked), status, duration, bytes in and out, who, and from where.
// Cheap on the hot paths: one 'finish' listener and one pino call per request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { redactUrl } from './errors.ts';
import { jsonLineWriter, type Log } from './logger.ts';
import { clientAddress } from './raw.ts';

const WHO = Symbol('berth.principal');
/** Socket byte counters when the connection's previous request finished. */
const MARK = Symbol('berth.bytes');
type Marked = { [MARK]?: [number, number] };

/** Records who made the request, for its access-log line (called where credentials are checked). */
export function notePrincipal(req: IncomingMessage, name: string | null | undefined): void {
  if (name) (req as unknown as Record<symbol, string>)[WHO] = name;
}

export function accessLogger(log: Log): (req: IncomingMessage, res: ServerResponse) => void {
  if (!log.isLevelEnabled('info')) return () => undefined;
  const raw = jsonLineWriter(log);
  return (req, res) => {
    const start = process.hrtime.bigint();
    const socket = req.socket;
    res.once('finish', () => {
      const [readBefore, writtenBefore] = (socket as Marked)[MARK] ?? [0, 0];
      const read = socket.bytesRead;
      const written = socket.bytesWritten;
      (socket as Marked)[MARK] = [read, written];
      const path = redactUrl(req.url);
      const ms = Math.round(Number(process.hrtime.bigint() - start) / 1e4) / 100;
      // Socket counters since the connection's previous answer, headers included.
      const bytesIn = read - readBefore;
      const bytesOut = written - writtenBefore;
      const principal = (req as unknown as Record<symbol, string>)[WHO] ?? null;
      const client = clientAddress(req);
      if (raw) {
        raw(`{"level":"info","time":"${new Date().toISOString()}","method":${JSON.stringify(req.method)},"path":${JSON.stringify(path)},"status":${res.statusCode},"ms":${ms},"in":${bytesIn},"out":${bytesOut},"principal":${principal === null ? 'null' : JSON.stringify(principal)},"client":${JSON.stringify(client)},"msg":"request"}\n`);
      } else {
        log.info({ method: req.method, path, status: res.statusCode, ms, in: bytesIn, out: bytesOut, principal, client }, 'request');
      }
    });
  };
}
