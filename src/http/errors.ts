// The two error middlewares: OCI's {"errors":[{code,message,detail}]} on /v2, Harbor's
// {"errors":[{code,message}]} on /api. 5xx details are logged with the request id, never sent.
import type { ErrorRequestHandler } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError } from '../lib/errors.ts';
import type { Log } from './logger.ts';
import { sendJson } from './raw.ts';

function toAppError(err: unknown, log: Log, req: { method?: string; originalUrl?: string; url?: string }): AppError {
  if (err instanceof AppError) return err;
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string };
  // body-parser and friends: malformed JSON, too large
  if (e?.type === 'entity.parse.failed') return new AppError('BAD_REQUEST', undefined, { message: 'malformed JSON body' });
  if (e?.type === 'entity.too.large') return new AppError('PAYLOAD_TOO_LARGE');
  if ((e as NodeJS.ErrnoException)?.code === 'ECONNRESET' || e?.message === 'aborted') return new AppError('BLOB_UPLOAD_INVALID', undefined, { message: 'request aborted' });
  log.error({ err, method: req.method, url: req.originalUrl ?? req.url }, 'unhandled error');
  return new AppError('UNKNOWN');
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
const ociShape = (e: AppError) => ({ errors: [{ code: e.status >= 500 ? 'UNKNOWN' : e.code, message: e.message, detail: e.status >= 500 ? null : (e.detail ?? null) }] });

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
const harborShape = (e: AppError) => ({ errors: [{ code: HARBOR_CODES[e.status] ?? 'UNKNOWN', message: e.status >= 500 ? 'internal server error' : e.message }] });

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
};
