// The two error middlewares: OCI's {"errors":[{code,message,detail}]} on /v2, Harbor's
// {"errors":[{code,message}]} on /api. 5xx details are logged with the request id, never sent.
import type { ErrorRequestHandler } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, ERRORS, type ErrorCode } from '../lib/errors.ts';
import type { Log } from './logger.ts';
import { sendJson } from './raw.ts';

/** The error code for a 4xx status that a library (Express, body-parser, multer, http-errors) set. */
const CODE_FOR_STATUS: Record<number, ErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'UNSUPPORTED',
  409: 'CONFLICT',
  412: 'PRECONDITION',
  413: 'PAYLOAD_TOO_LARGE',
  416: 'RANGE_INVALID',
  429: 'TOOMANYREQUESTS',
};

/** multer's limits and malformed multipart bodies: the client's fault, with their own codes. */
const MULTER_STATUS: Record<string, number> = { LIMIT_FILE_SIZE: 413, LIMIT_FIELD_VALUE: 413, LIMIT_PART_COUNT: 413, LIMIT_FILE_COUNT: 413, LIMIT_FIELD_COUNT: 413, LIMIT_FIELD_KEY: 413 };

/**
 * Any thrown value as an AppError. Only a real bug becomes a 500: a 4xx status that a library
 * attached is kept, and the 500's log line carries the error's kind and place, never its message
 * text beyond the first line (Prisma puts whole rows, hashes included, into its messages).
 */
export function toAppError(err: unknown, log: Log, req: { method?: string; originalUrl?: string; url?: string }): AppError {
  if (err instanceof AppError) return err;
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string; name?: string; code?: string; expose?: boolean };
  // body-parser and friends: malformed JSON, too large
  if (e?.type === 'entity.parse.failed') return new AppError('BAD_REQUEST', undefined, { message: 'malformed JSON body' });
  if (e?.type === 'entity.too.large') return new AppError('PAYLOAD_TOO_LARGE');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return new AppError('BAD_REQUEST', undefined, { status: 415, message: 'unsupported body encoding' });
  if ((e as NodeJS.ErrnoException)?.code === 'ECONNRESET' || e?.message === 'aborted' || e?.type === 'request.aborted') return new AppError('BLOB_UPLOAD_INVALID', undefined, { message: 'request aborted' });
  if (e?.name === 'MulterError') {
    const status = MULTER_STATUS[e.code ?? ''] ?? 400;
    return new AppError(status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST', undefined, { message: `upload refused: ${String(e.message ?? 'malformed multipart body').slice(0, 200)}` });
  }
  if (e?.message === 'Multipart: Boundary not found' || e?.message === 'Unexpected end of form' || e?.message === 'Malformed part header') {
    return new AppError('BAD_REQUEST', undefined, { message: `malformed multipart body: ${e.message}` });
  }
  // The directory (or another service Berth depends on) is down: not a bug, and not the client's fault.
  if (e?.name === 'LdapUnavailableError') {
    log.warn({ err, method: req.method, url: redactUrl(req.originalUrl ?? req.url) }, 'ldap unavailable');
    return new AppError('UNAVAILABLE', undefined, { message: 'the LDAP directory is unavailable; try again later or ask an administrator' });
  }
  if (e?.name === 'DatabaseUnavailableError') {
    log.warn({ reason: (e as { reason?: string }).reason, method: req.method, url: redactUrl(req.originalUrl ?? req.url) }, 'database unavailable');
    return new AppError('UNAVAILABLE', undefined, { message: 'the database is unavailable; try again later' });
  }
  if (err instanceof URIError) return new AppError('BAD_REQUEST', undefined, { message: 'malformed percent-encoding in the URL' });
  // Recursion on input (JSON nested thousands deep) is the input's fault; answer it, do not die.
  if (err instanceof RangeError && /call stack/i.test(err.message)) return new AppError('BAD_REQUEST', undefined, { message: 'input nested too deeply' });
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 0;
  if (status >= 400 && status < 500) {
    const code = CODE_FOR_STATUS[status] ?? 'BAD_REQUEST';
    return new AppError(code, undefined, { status, message: e.expose && e.message ? String(e.message).slice(0, 200) : undefined });
  }
  log.error({ err, method: req.method, url: redactUrl(req.originalUrl ?? req.url) }, 'unhandled error');
  return new AppError('UNKNOWN');
}

/** A URL for the log: query values that may carry secrets are blanked. */
export function redactUrl(url: string | undefined): string | undefined {
  if (!url) return url;
  const q = url.indexOf('?');
  if (q < 0) return url;
  return url.slice(0, q) + '?' + url.slice(q + 1).replace(/((?:^|&)(?:password|secret|token|access_token|refresh_token|code|key)=)[^&]*/gi, '$1[redacted]');
}

/** One error middleware; `shape` decides the wire body of its API. */
function errorHandler(log: Log, shape: (e: AppError) => object): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const e = toAppError(err, log, req);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (e.headers) res.set(e.headers);
    res.status(e.status).json(shape(e));
  };
}

/** OCI: {"errors":[{code, message, detail}]}; 5xx details are never sent. */
const ociShape = (e: AppError) => {
  const hidden = e.status >= 500 && e.status !== 503;
  return { errors: [{ code: hidden ? 'UNKNOWN' : e.code, message: hidden ? ERRORS.UNKNOWN.message : e.message, detail: hidden ? null : (e.detail ?? null) }] };
};

/** An error writer for plain node:http requests (the registry and the token service run outside Express). */
function rawErrorWriter(log: Log, shape: (e: AppError) => object): (err: unknown, req: IncomingMessage, res: ServerResponse) => void {
  return (err, req, res) => {
    const e = toAppError(err, log, req);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (e.headers) for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
    sendJson(res, e.status, shape(e));
  };
}

/** The /v2 error writer. */
export function ociErrorWriter(log: Log) {
  return rawErrorWriter(log, ociShape);
}

/** Harbor: {"errors":[{code, message}]} with Harbor's codes. */
const harborShape = (e: AppError) => ({ errors: [{ code: HARBOR_CODES[e.status] ?? 'UNKNOWN', message: e.status >= 500 && e.status !== 503 ? 'internal server error' : e.message }] });

export function harborErrorHandler(log: Log): ErrorRequestHandler {
  return errorHandler(log, harborShape);
}

/** The Harbor-shaped error writer for the token service. */
export function harborErrorWriter(log: Log) {
  return rawErrorWriter(log, harborShape);
}

const HARBOR_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  412: 'PRECONDITION',
  413: 'PAYLOAD_TOO_LARGE',
  416: 'BAD_REQUEST',
  429: 'TOO_MANY_REQUESTS',
  500: 'UNKNOWN',
  503: 'SERVICE_UNAVAILABLE',
};
