// The error writers keep the 4xx a library set, only real bugs become 500s, and a 500's log line
// carries no row data: Prisma quotes the failed call with its arguments in its messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { toAppError, redactUrl } from '../../src/http/errors.ts';
import { createLogger, safeError } from '../../src/http/logger.ts';

function capture() {
  const lines: string[] = [];
  const dest = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { log: createLogger('info', dest as never), lines };
}

const req = { method: 'POST', url: '/api/v2.0/x?password=hunter2&page=1' };

test('a 4xx status set by a library is kept, with its code', () => {
  const { log, lines } = capture();
  const cases: [unknown, number, string][] = [
    [Object.assign(new Error('bad'), { status: 400, expose: true }), 400, 'BAD_REQUEST'],
    [Object.assign(new Error('nope'), { statusCode: 404 }), 404, 'NOT_FOUND'],
    [Object.assign(new Error('big'), { status: 413, type: 'entity.too.large' }), 413, 'PAYLOAD_TOO_LARGE'],
    [Object.assign(new Error('x'), { status: 415, type: 'encoding.unsupported' }), 415, 'BAD_REQUEST'],
    [Object.assign(new Error('File too large'), { name: 'MulterError', code: 'LIMIT_FILE_SIZE' }), 413, 'PAYLOAD_TOO_LARGE'],
    [Object.assign(new Error('Unexpected field'), { name: 'MulterError', code: 'LIMIT_UNEXPECTED_FILE' }), 400, 'BAD_REQUEST'],
    [new Error('Unexpected end of form'), 400, 'BAD_REQUEST'],
    [new URIError('URI malformed'), 400, 'BAD_REQUEST'],
    [new RangeError('Maximum call stack size exceeded'), 400, 'BAD_REQUEST'],
    [Object.assign(new Error('slow down'), { status: 429 }), 429, 'TOOMANYREQUESTS'],
  ];
  for (const [err, status, code] of cases) {
    const e = toAppError(err, log, req);
    assert.equal(e.status, status, String(err));
    assert.equal(e.code, code, String(err));
  }
  assert.equal(lines.length, 0, 'client errors are not logged as unhandled');
  const down = toAppError(Object.assign(new Error('connect ECONNREFUSED'), { name: 'LdapUnavailableError' }), log, req);
  assert.equal(down.status, 503);
  assert.equal(toAppError(Object.assign(new Error('connect ECONNREFUSED'), { name: 'DatabaseUnavailableError' }), log, req).status, 503);
});

test('a real bug is a 500 whose log line has neither the row nor the secrets in the URL', () => {
  const { log, lines } = capture();
  const prismaLike = Object.assign(new Error('\nInvalid `db.user.update()` invocation:\n{ data: { passwordHash: "$scrypt$abc$def" } }\nUnique constraint failed'), { name: 'PrismaClientKnownRequestError', code: 'P2002', meta: { modelName: 'User' } });
  const e = toAppError(prismaLike, log, req);
  assert.equal(e.status, 500);
  assert.equal(lines.length, 1);
  const line = JSON.parse(lines[0]);
  assert.equal(line.err.type, 'PrismaClientKnownRequestError');
  assert.equal(line.err.code, 'P2002');
  assert.equal(line.err.model, 'User');
  assert.doesNotMatch(lines[0], /scrypt|passwordHash|hunter2/);
  assert.match(line.url, /password=\[redacted\]&page=1/);
});

test('secrets are redacted from log fields, and plain errors keep only their first line', () => {
  const { log, lines } = capture();
  log.warn({ password: 'p1', user: { secret: 's1', passwordHash: 'h1' }, ldap: { searchPassword: 'sp1' }, headers: { authorization: 'Basic abc' } }, 'x');
  assert.doesNotMatch(lines[0], /p1|s1|h1|sp1|Basic abc/);
  assert.deepEqual(safeError('first line\nsecond line with data'), { message: 'first line' });
  assert.equal(safeError(new Error('boom\nrow data')).message, 'boom');
  assert.equal(redactUrl('/service/token?scope=x&token=abc'), '/service/token?scope=x&token=[redacted]');
});
