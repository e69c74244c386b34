// Derives prisma/postgresql/schema.prisma from prisma/schema.prisma: the same models with provider
// postgresql, its client generated into src/generated/prisma-pg. One generated client cannot serve
// both engines (Prisma refuses adapter-pg on a client generated for sqlite), so db:generate makes two.
// The derived file is committed: it is also the snapshot the next PostgreSQL migration is diffed from
// (scripts/db-diff.mjs). Usage: node scripts/pg-schema.mjs [--check]  (--check: exit 1 when stale)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'prisma/schema.prisma');
const target = path.join(root, 'prisma/postgresql/schema.prisma');

/** The PostgreSQL schema text for a SQLite schema text; throws when a line to replace is missing. */
export function pgSchema(text) {
  const provider = /(datasource db \{[^}]*provider\s*=\s*)"sqlite"/;
  const output = /output(\s*)=\s*"\.\.\/src\/generated\/prisma"/;
  if (!provider.test(text) || !output.test(text)) throw new Error('prisma/schema.prisma: the datasource provider "sqlite" or the client output "../src/generated/prisma" line was not found');
  return '// GENERATED from ../schema.prisma by scripts/pg-schema.mjs: do not edit (npm run db:generate)\n' +
    text.replace(provider, '$1"postgresql"').replace(output, 'output$1= "../../src/generated/prisma-pg"');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = pgSchema(fs.readFileSync(source, 'utf8'));
  const old = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
  if (process.argv.includes('--check')) {
    if (old !== out) {
      console.error('prisma/postgresql/schema.prisma is stale; run npm run db:generate');
      process.exit(1);
    }
  } else if (old !== out) {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, out);
    console.log('wrote prisma/postgresql/schema.prisma');
  }
}
