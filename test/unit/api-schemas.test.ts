// The API's input helpers on their own: validate()'s 400 messages, the id and paging grammar,
// Harbor's q parser, and that every schema of the route table renders as OpenAPI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { AppError } from '../../src/lib/errors.ts';
import { parseQuery } from '../../src/api/common.ts';
import { idParam, MAX_ID, ROUTES } from '../../src/api/schemas.ts';
import { validate } from '../../src/api/validate.ts';

const badRequest = (fn: () => unknown, message: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof AppError && e.status === 400 && e.code === 'BAD_REQUEST' && message.test(e.message));

test('validate() returns the parsed value or a 400 naming the field', () => {
  const s = z.object({ a: z.object({ b: z.string() }) });
  assert.deepEqual(validate(s, { a: { b: 'x' }, extra: 1 }, 'body'), { a: { b: 'x' } });
  badRequest(() => validate(s, { a: { b: 5 } }, 'body'), /^a\.b: .*expected string, received number/);
  badRequest(() => validate(s, [], 'body'), /^body: .*expected object, received array/);
  badRequest(() => validate(s, null, 'body'), /^body: /);
});

test('ids are positive whole numbers the database can hold, written plainly', () => {
  assert.equal(idParam.parse('1'), 1);
  assert.equal(idParam.parse(String(MAX_ID)), MAX_ID);
  for (const bad of ['0', '-1', '01', '1e3', '1.0', ' 1', '0x10', String(MAX_ID + 1), '99999999999999999999', '']) assert.equal(idParam.safeParse(bad).success, false, bad);
});

test('paging defaults to page 1 of 10, allows at most 100, and refuses repeats', () => {
  const q = ROUTES['get /users'].query;
  const ok = q.parse({});
  assert.equal(ok.page, 1);
  assert.equal(ok.page_size, 10);
  assert.equal(q.parse({ page: '3', page_size: '100' }).page_size, 100);
  for (const bad of [{ page: '1e300' }, { page: ['1', '2'] }, { page_size: '101' }, { page_size: '0' }, { page: 'abc' }]) assert.equal(q.safeParse(bad).success, false, JSON.stringify(bad));
});

test("Harbor's q: exact and fuzzy values, escapes decoded, a bad escape is a 400, no prototype keys", () => {
  assert.deepEqual({ ...parseQuery('name=~ab,public=true') }, { name: { fuzzy: 'ab' }, public: { exact: 'true' } });
  assert.deepEqual({ ...parseQuery('name=a%2Cb') }, { name: { exact: 'a,b' } });
  assert.deepEqual({ ...parseQuery(undefined) }, {});
  badRequest(() => parseQuery('name=%ZZ'), /^q: /);
  const q = parseQuery('__proto__=x');
  assert.equal(Object.getPrototypeOf(q), null);
  assert.deepEqual(q.__proto__, { exact: 'x' });
  // through the route schema too
  assert.equal(ROUTES['get /projects'].query.safeParse({ q: 'name=%ZZ' }).success, false);
});

test('every schema of the route table renders as OpenAPI 3.0', () => {
  for (const [key, def] of Object.entries(ROUTES) as [string, { params?: z.ZodType; query?: z.ZodType; body?: z.ZodType }][]) {
    for (const s of [def.params, def.query, def.body]) {
      if (!s) continue;
      const js = z.toJSONSchema(s, { io: 'input', target: 'openapi-3.0', unrepresentable: 'any' }) as { type?: string };
      assert.equal(js.type, 'object', key);
    }
  }
});
