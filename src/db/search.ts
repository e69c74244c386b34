// Name searches ("contains, any case") for the stores that page through Prisma.
import { dialectOf, type Db } from './client.ts';
import { containsPattern } from './list-store.ts';

const WILDCARD = /[\\%_]/;

/**
 * A Prisma where-part: `column` of `table` contains `value`, any case, with LIKE's wildcards in
 * `value` taken literally. Prisma's `contains` passes `%` and `_` through into its LIKE (a search
 * for "%" matched every name), so the rare search holding one asks for the ids with an escaped LIKE.
 */
export async function nameContains(db: Db, table: 'User' | 'UserGroup' | 'Project' | 'Registry' | 'ReplicationPolicy', column: string, value: string): Promise<Record<string, unknown>> {
  const d = dialectOf(db);
  if (!WILDCARD.test(value)) return { [column]: d.contains(value) };
  const rows = await db.$queryRawUnsafe<{ id: number | bigint }[]>(d.text(`SELECT "id" FROM "${table}" WHERE "${column}" ${d.ilike} ? ESCAPE '\\'`), containsPattern(value));
  return { id: { in: rows.map((r) => Number(r.id)) } };
}
