// One access-log line per request, at info, when the answer is finished: method, path (query values
// that may carry secrets blanked), status, duration, bytes in and out, who, and from where.
// Cheap on the hot paths: one 'finish' listener and one pino call per request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { redactUrl } from './errors.ts';
import type { Log } from './logger.ts';
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
  return (req, res) => {
    const start = process.hrtime.bigint();
    const socket = req.socket;
    res.once('finish', () => {
      const [readBefore, writtenBefore] = (socket as Marked)[MARK] ?? [0, 0];
      const read = socket.bytesRead;
      const written = socket.bytesWritten;
      (socket as Marked)[MARK] = [read, written];
      log.info(
        {
          method: req.method,
          path: redactUrl(req.url),
          status: res.statusCode,
          ms: Math.round(Number(process.hrtime.bigint() - start) / 1e4) / 100,
          // Socket counters since the connection's previous answer, headers included.
          in: read - readBefore,
          out: written - writtenBefore,
          principal: (req as unknown as Record<symbol, string>)[WHO] ?? null,
          client: clientAddress(req),
        },
        'request',
      );
    });
  };
}
