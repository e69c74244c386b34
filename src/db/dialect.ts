// Where Berth's own SQL differs between SQLite and PostgreSQL: one small object per engine.
// Statements are written once, in SQLite's form with `?` placeholders and the helpers below for the
// parts that differ; `text()` turns them into the engine's form once, when the statement is defined.
import type { SqlArg } from './client.ts';

export type Engine = 'sqlite' | 'postgresql';

export interface Dialect {
  readonly engine: Engine;
  /** The statement in this engine's placeholders (`?` stays on SQLite, becomes `$1, $2…` on PostgreSQL). */
  text(sql: string): string;
  /** `col IN <one list parameter>` (a `?` to pass listArg(values) to). */
  inList(col: string, type: 'int' | 'text'): string;
  /** The argument for an inList placeholder: a JSON text for SQLite's json_each, an array for PostgreSQL. */
  listArg(values: readonly (string | number)[]): SqlArg | (string | number)[];
  /** `a >= b` for DateTime columns (SQLite keeps them as text, compared as dates through julianday). */
  dateAtLeast(a: string, b: string): string;
  /** `a < b` for DateTime columns. */
  dateBefore(a: string, b: string): string;
  /** A DateTime argument as Prisma stores it on this engine. */
  date(d?: Date): string;
  /** Case-insensitive LIKE (SQLite's LIKE is, PostgreSQL's is not). */
  readonly ilike: string;
  /** SUM of an integer column as an integer (PostgreSQL's SUM(bigint) is numeric, read as a string). */
  sumInt(expr: string): string;
  /** A Prisma `contains` filter that ignores case on both engines (SQLite's client has no `mode`). */
  contains(value: string): { contains: string; mode?: 'insensitive' };
  /** A Prisma `startsWith` filter that ignores case on both engines. */
  startsWith(value: string): { startsWith: string; mode?: 'insensitive' };
}

export const sqlite: Dialect = {
  engine: 'sqlite',
  text: (sql) => sql,
  inList: (col) => `${col} IN (SELECT value FROM json_each(?))`,
  listArg: (values) => JSON.stringify(values),
  dateAtLeast: (a, b) => `julianday(${a}) >= julianday(${b})`,
  dateBefore: (a, b) => `julianday(${a}) < julianday(${b})`,
  // Prisma's SQLite adapter writes DateTime as this text; comparisons with its rows need the same form.
  date: (d = new Date()) => d.toISOString().replace('Z', '+00:00'),
  ilike: 'LIKE',
  sumInt: (expr) => `SUM(${expr})`,
  contains: (value) => ({ contains: value }),
  startsWith: (value) => ({ startsWith: value }),
};

export const postgresql: Dialect = {
  engine: 'postgresql',
  text: (sql) => {
    // Berth's statements hold no `?` inside string literals, so every `?` is a placeholder.
    let i = 0;
    return sql.replace(/\?/g, () => `$${++i}`);
  },
  inList: (col, type) => `${col} = ANY(?::${type === 'int' ? 'int' : 'text'}[])`,
  listArg: (values) => [...values],
  dateAtLeast: (a, b) => `${a} >= ${b}`,
  dateBefore: (a, b) => `${a} < ${b}`,
  // Columns are timestamp(3) without time zone, read back as UTC: an ISO text keeps the process's
  // time zone out of it (a JS Date would be written in local time by pg).
  date: (d = new Date()) => d.toISOString(),
  ilike: 'ILIKE',
  sumInt: (expr) => `SUM(${expr})::bigint`,
  contains: (value) => ({ contains: value, mode: 'insensitive' }),
  startsWith: (value) => ({ startsWith: value, mode: 'insensitive' }),
};
