// Structured logging (pino): lowercase static messages, data as fields, secrets redacted.
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';

export type Log = Logger;

const SECRET_KEYS = ['password', 'secret', 'authorization', 'cookie', 'token', 'passwordHash', 'secretHash', 'searchPassword', 'ldap_search_password', 'access_secret', 'secretKey'];

/**
 * The process's logger. JSON lines by default (for log shippers); `format: 'pretty'` prints one
 * readable, coloured line per entry (pino-pretty, loaded only then) for people at a terminal.
 */
export function createLogger(level: string, destination?: DestinationStream, format: 'json' | 'pretty' = 'json'): Log {
  const options: pino.LoggerOptions = {
    level,
    base: undefined,
    // Level names and ISO times: what log shippers and people read without a lookup table.
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: safeError, error: safeError },
    // A safety net: the code never puts secrets into log fields (errors go through safeError), and
    // these keys are blanked wherever they appear at the top or in a request's headers. Static
    // paths only: pino's wildcard paths cost ~40 µs per line, more than the request being logged.
    redact: {
      paths: [
        ...SECRET_KEYS,
        ...['req', 'request', 'body', 'user', 'robot', 'config', 'ldap', 'settings'].flatMap((o) => SECRET_KEYS.map((k) => `${o}.${k}`)),
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        'headers.cookie',
      ],
      censor: '[redacted]',
    },
  };
  if (format === 'pretty' && !destination) {
    const pretty = createRequire(import.meta.url)('pino-pretty') as (o: object) => DestinationStream;
    return pino(options, pretty({ sync: true, colorize: !!process.stdout.isTTY, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  // Asynchronous writes to stdout: under load lines are written in batches, not one syscall each
  // (pino flushes them when the process exits).
  const dest = destination ?? pino.destination({ dest: 1, sync: false });
  const log = pino(options, dest);
  JSON_LINES.set(log, dest);
  return log;
}

const JSON_LINES = new WeakMap<Log, DestinationStream>();

/**
 * For the one line per request: a writer of ready-made JSON lines into the logger's own stream,
 * or null when the logger is not a plain JSON one (pretty output, a logger from elsewhere). Going
 * around pino here saves most of its per-line cost, which is more than a cached manifest GET's.
 */
export function jsonLineWriter(log: Log): ((line: string) => void) | null {
  const dest = JSON_LINES.get(log);
  return dest ? (line) => dest.write(line) : null;
}

/**
 * What of an error may be logged: its kind, code, first message line (cut short) and stack frames.
 * Prisma's messages quote the failed call with its arguments (password hashes, secrets, whole rows),
 * so for Prisma errors only the kind, code and model survive.
 */
export function safeError(err: unknown): Record<string, unknown> {
  // A message already taken from an error (`err: e.message`): its first line only.
  if (typeof err === 'string') return { message: err.split('\n')[0].slice(0, 200) };
  if (!(err instanceof Error)) return { type: typeof err };
  const e = err as Error & { code?: unknown; meta?: { modelName?: unknown } };
  const out: Record<string, unknown> = { type: e.name || e.constructor?.name };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
  const frames = (e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 12).map((l) => l.trim());
  if (/^Prisma/.test(out.type as string) || /prisma/i.test(e.message.slice(0, 200))) {
    if (typeof e.meta?.modelName === 'string') out.model = e.meta.modelName;
  } else {
    out.message = e.message.split('\n')[0].slice(0, 200);
  }
  out.stack = frames;
  return out;
}

