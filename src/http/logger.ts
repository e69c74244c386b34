// Structured logging (pino): lowercase static messages, data as fields, secrets redacted.
import { pino, type Logger } from 'pino';

export type Log = Logger;

export function createLogger(level: string): Log {
  return pino({
    level,
    base: undefined,
    redact: { paths: ['password', '*.password', 'secret', '*.secret', 'authorization', '*.authorization', 'token', '*.token'], censor: '[redacted]' },
  });
}
