// The one error table. Codes are the OCI distribution spec's (plus a few of Harbor's for the
// management API); each carries its HTTP status and default message. Anything below the HTTP edge
// throws AppError; the edge writes it in the wire shape of its API (OCI on /v2, Harbor on /api).
export const ERRORS = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  TAG_INVALID: { status: 400, message: 'invalid tag' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  // management API (Harbor's codes)
  BAD_REQUEST: { status: 400, message: 'bad request' },
  NOT_FOUND: { status: 404, message: 'resource not found' },
  CONFLICT: { status: 409, message: 'resource already exists' },
  FORBIDDEN: { status: 403, message: 'forbidden' },
  PRECONDITION: { status: 412, message: 'precondition failed' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'payload too large' },
  UNAVAILABLE: { status: 503, message: 'a service Berth depends on is unavailable' },
  UNKNOWN: { status: 500, message: 'internal server error' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class AppError extends Error {
  readonly status: number;

  constructor(
    public readonly code: ErrorCode,
    public readonly detail?: unknown,
    options: { status?: number; message?: string; headers?: Record<string, string> } = {},
  ) {
    super(options.message ?? ERRORS[code].message);
    this.name = 'AppError';
    this.status = options.status ?? ERRORS[code].status;
    this.headers = options.headers;
  }

  readonly headers?: Record<string, string>;
}
