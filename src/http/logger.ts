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
    // Secrets never reach the log, whatever object carries them (one or two levels down).
    redact: {
      paths: [
        ...SECRET_KEYS,
        ...SECRET_KEYS.map((k) => `*.${k}`),
        ...SECRET_KEYS.map((k) => `*.*.${k}`),
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
  return destination ? pino(options, destination) : pino(options);
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

