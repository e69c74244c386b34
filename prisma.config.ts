// Prisma CLI configuration. Only `prisma generate` runs from the CLI (see PLATFORM notes in the
// README): migrations are produced by scripts/db-diff.ts and applied by the server at start.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
