// Composition root: builds every part once from the configuration and wires them together.
// Tests call createApp with their own config (and overrides) and drive `app` with supertest.
import express from 'express';
import path from 'node:path';
import type { Config } from './config/index.ts';
import { adminOnlyPolicy, type RepositoryPolicy } from './access/principal.ts';
import { basicAuthenticator, type Authenticator } from './auth/authenticator.ts';
import { openDatabase, type Db } from './db/client.ts';
import { RegistryStore } from './db/registry-store.ts';
import { createLogger, type Log } from './http/logger.ts';
import { registryRouter } from './registry/router.ts';
import { RegistryService } from './services/registry-service.ts';
import { UsersService } from './services/users.ts';
import { BlobStore } from './storage/blob-store.ts';
import type { StorageDriver } from './storage/driver/driver.ts';
import { FsDriver } from './storage/driver/fs.ts';
import { UploadStore } from './storage/uploads.ts';

export interface AppOverrides {
  driver?: StorageDriver;
  log?: Log;
  policy?: RepositoryPolicy;
}

export interface BerthApp {
  app: express.Express;
  config: Config;
  db: Db;
  log: Log;
  registry: RegistryService;
  users: UsersService;
  uploads: UploadStore;
  /** Set only on the first start when no admin password was configured. */
  generatedAdminPassword: string | null;
  close(): Promise<void>;
}

export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<BerthApp> {
  const log = overrides.log ?? createLogger(config.logLevel);
  const db = await openDatabase(config.databaseUrl);
  const driver = overrides.driver ?? new FsDriver(path.join(config.dataDir, 'storage'));
  const blobs = new BlobStore(driver);
  const uploads = new UploadStore(driver, blobs);
  const users = new UsersService({ db, log });
  const generatedAdminPassword = await users.ensureAdmin(config.adminPassword);
  const registry = new RegistryService({ store: new RegistryStore(db), blobs, uploads });
  const policy = overrides.policy ?? adminOnlyPolicy;
  const authn: Authenticator = basicAuthenticator((u, p) => users.authenticateLocal(u, p));

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', 'loopback');
  app.use('/v2', registryRouter({ registry, authn, policy, log, baseUrl: config.externalUrl ?? '' }));
  app.get('/api/v2.0/health', (_req, res) => {
    res.json({ status: 'healthy', components: [{ name: 'core', status: 'healthy' }, { name: 'database', status: 'healthy' }, { name: 'storage', status: 'healthy' }] });
  });

  // Expired upload sessions are removed in the background.
  const purge = setInterval(() => {
    uploads.purgeExpired(config.uploadTtlSeconds).catch((err) => log.warn({ err }, 'upload purge failed'));
  }, Math.min(config.uploadTtlSeconds * 1000, 3_600_000) / 4);
  purge.unref();

  return {
    app,
    config,
    db,
    log,
    registry,
    users,
    uploads,
    generatedAdminPassword,
    async close() {
      clearInterval(purge);
      await db.$disconnect();
    },
  };
}
