// Builds the Prisma client over SQLite (better-sqlite3 driver adapter) after applying migrations.
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaClient } from '../generated/prisma/client.ts';
import { migrateSqlite } from './migrate.ts';

export type Db = PrismaClient;

export async function openDatabase(databaseUrl: string): Promise<Db> {
  migrateSqlite(databaseUrl);
  const adapter = new PrismaBetterSqlite3({ url: databaseUrl, timeout: 5000 });
  const prisma = new PrismaClient({ adapter });
  // One connection: these hold for every query. FULL makes a committed push survive power loss too.
  await prisma.$queryRawUnsafe('PRAGMA synchronous = FULL');
  await prisma.$queryRawUnsafe('PRAGMA foreign_keys = ON');
  return prisma;
}
