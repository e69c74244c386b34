// DateTime values as the list stores read them from SQLite (src/db/list-store.ts asDate): every form a
// row may hold is the same instant, in a process far from UTC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asDate, asDateOrNull } from '../../src/db/list-store.ts';

process.env.TZ = 'Asia/Kolkata';

test('ISO text with an offset, SQL CURRENT_TIMESTAMP text (UTC, no zone), unix milliseconds and Dates read as one instant', () => {
  const at = '2026-01-01T10:00:00.000Z';
  for (const v of ['2026-01-01T10:00:00.000+00:00', '2026-01-01 10:00:00', 1767261600000, BigInt(1767261600000), new Date(at)]) assert.equal(asDate(v).toISOString(), at, String(v));
  assert.equal(asDate('2026-01-01 10:00:00.25').toISOString(), '2026-01-01T10:00:00.250Z');
  assert.equal(asDateOrNull(null), null);
  assert.equal(asDateOrNull('2026-01-01 10:00:00')?.toISOString(), at);
});
