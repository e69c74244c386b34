// What services, stores and drivers log through: pino's shape, without its type (they know no HTTP
// and no logger setup; src/http/logger.ts makes the process's logger, which fits this).

export interface ServiceLog {
  debug?(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
