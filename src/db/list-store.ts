// Prepared read statements for the management API's lists (artifacts, repositories, audit logs,
// members), the way the registry store reads (src/db/registry-store.ts): Prisma costs 100-200 µs of
// CPU per query (query compiler, adapter, a statement prepared anew each time), and a page of the
// Harbor API's lists needs four or five queries.
// - SQLite: a read-only better-sqlite3 connection on the database file, shared by the list stores
//   of one client, each statement prepared once (WAL: readers never block the writer and see every
//   committed write);
// - PostgreSQL: named prepared statements on Berth's own pool (PgSql);
// - an in-memory SQLite (no file for a second connection): the same text through Prisma.
// Statements are written once in SQLite's form (`?` placeholders, src/db/dialect.ts helpers).
import Database from 'better-sqlite3';
import { dialectOf, pgSql, type Db, type PgSql, type SqlArg } from './client.ts';
import type { Dialect } from './dialect.ts';

export type ReadArg = SqlArg | (string | number)[];
export type Row = Record<string, unknown>;

/** Reads rows with statements prepared once. */
export interface ListReader {
  readonly dialect: Dialect;
  /** Every row of the statement (SQLite's form; run in the engine's form). */
  all(sql: string, args: readonly ReadArg[]): Promise<Row[]>;
}

/** Statements cached per connection: the texts are fixed (built only from constant parts), so this stays small. */
const MAX_STATEMENTS = 200;

class SqliteReader implements ListReader {
  readonly dialect: Dialect;
  private conn: Database.Database | null = null;
  private opening: Promise<Database.Database | null> | null = null;
  private stmts = new Map<string, Database.Statement>();

  constructor(private readonly db: Db, private readonly file: string | undefined) {
    this.dialect = dialectOf(db);
  }

  private async open(): Promise<Database.Database | null> {
    let file = this.file?.replace(/^file:/, '');
    if (!file) {
      const rows = (await this.db.$queryRawUnsafe('PRAGMA database_list')) as { name: string; file: string }[];
      file = rows.find((x) => x.name === 'main')?.file;
    }
    if (!file || file === ':memory:') return null;
    const conn = new Database(file, { readonly: true, fileMustExist: true });
    conn.pragma('busy_timeout = 5000');
    this.conn = conn;
    return conn;
  }

  async all(sql: string, args: readonly ReadArg[]): Promise<Row[]> {
    const conn = this.conn ?? (await (this.opening ??= this.open().catch(() => null)));
    if (!conn) return (await this.db.$queryRawUnsafe(sql, ...args)) as Row[];
    let st = this.stmts.get(sql);
    if (!st) {
      st = conn.prepare(sql);
      if (this.stmts.size < MAX_STATEMENTS) this.stmts.set(sql, st);
    }
    return st.all(...(args as unknown[])) as Row[];
  }

  close(): void {
    this.conn?.close();
    this.conn = null;
    this.opening = null;
    this.stmts.clear();
  }
}

class PgReader implements ListReader {
  readonly dialect: Dialect;
  private texts = new Map<string, string>();
  constructor(private readonly pg: PgSql, db: Db) {
    this.dialect = dialectOf(db);
  }
  async all(sql: string, args: readonly ReadArg[]): Promise<Row[]> {
    let text = this.texts.get(sql);
    if (text === undefined) {
      text = this.dialect.text(sql);
      if (this.texts.size < MAX_STATEMENTS) this.texts.set(sql, text);
    }
    return (await this.pg.query(text, args)).rows;
  }
}

const readers = new WeakMap<Db, ListReader>();

/** The list reader of a client (one per client, shared by the list stores); `file`: the SQLite file when known. */
export function listReader(db: Db, file?: string): ListReader {
  let r = readers.get(db);
  if (!r) {
    const pg = pgSql(db);
    r = pg ? new PgReader(pg, db) : new SqliteReader(db, file);
    readers.set(db, r);
  }
  return r;
}

/** Closes the client's SQLite read connection, if one was opened (the pg pool is closed with the client). */
export function closeListReader(db: Db): void {
  const r = readers.get(db);
  if (r instanceof SqliteReader) r.close();
  readers.delete(db);
}

/**
 * A DateTime column's value as a Date. SQLite keeps text: ISO with an offset as Prisma writes it,
 * or SQL's CURRENT_TIMESTAMP form (UTC without a zone, from a column default), or unix milliseconds;
 * PostgreSQL's pool and Prisma give Dates.
 */
export function asDate(v: unknown): Date {
  if (v instanceof Date) return v;
  if (typeof v === 'string') return new Date(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?$/.test(v) ? `${v.replace(' ', 'T')}Z` : v);
  return new Date(typeof v === 'bigint' ? Number(v) : (v as number));
}

/** A nullable DateTime column's value. */
export function asDateOrNull(v: unknown): Date | null {
  return v === null || v === undefined ? null : asDate(v);
}

/** `x LIKE` pattern that matches `value` anywhere, its wildcards taken literally (use with ESCAPE '\'). */
export function containsPattern(value: string): string {
  return `%${value.replace(/[\\%_]/g, (c) => '\\' + c)}%`;
}

/** A project membership with the name of its user or group (the members' page). */
export interface MemberListRow {
  id: number;
  projectId: number;
  roleId: number;
  userId: number | null;
  groupId: number | null;
  /** The user's name (userId set) or the group's. */
  entityName: string;
}

/**
 * A project's members, oldest membership first, optionally only those whose name contains a text
 * (case-sensitive, as Harbor's entityname): one page and the count, each one indexed statement over
 * the project's members only.
 */
export class MemberListStore {
  private readonly sql: ListReader;
  constructor(db: Db) {
    this.sql = listReader(db);
  }

  private where(projectId: number, entityName: string | undefined): { sql: string; args: ReadArg[] } {
    const name = 'COALESCE(u."username", g."name")';
    // Case-sensitive substring on both engines (LIKE ignores case on SQLite).
    const has = this.sql.dialect.engine === 'postgresql' ? `strpos(${name}, ?) > 0` : `instr(${name}, ?) > 0`;
    return entityName ? { sql: `m."projectId" = ? AND ${has}`, args: [projectId, entityName] } : { sql: 'm."projectId" = ?', args: [projectId] };
  }

  async page(projectId: number, entityName: string | undefined, offset: number, limit: number): Promise<{ total: number; rows: MemberListRow[] }> {
    const w = this.where(projectId, entityName);
    const from = `FROM "Member" m LEFT JOIN "User" u ON u."id" = m."userId" LEFT JOIN "UserGroup" g ON g."id" = m."groupId" WHERE ${w.sql}`;
    const [counted, rows] = await Promise.all([
      this.sql.all(`SELECT COUNT(*) AS n ${from}`, w.args),
      this.sql.all(`SELECT m."id", m."projectId", m."roleId", m."userId", m."groupId", COALESCE(u."username", g."name") AS "entityName" ${from} ORDER BY m."id" LIMIT ? OFFSET ?`, [...w.args, limit, offset]),
    ]);
    return {
      total: Number(counted[0]?.n ?? 0),
      rows: rows.map((r) => ({
        id: Number(r.id),
        projectId: Number(r.projectId),
        roleId: Number(r.roleId),
        userId: r.userId == null ? null : Number(r.userId),
        groupId: r.groupId == null ? null : Number(r.groupId),
        entityName: r.entityName as string,
      })),
    };
  }
}
