// Composition root: builds every part once from the configuration and wires them together.
// Tests call createApp with their own config (and overrides) and drive `app` with supertest.
import express from 'express';
import fs from 'node:fs';
import type { RequestListener } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config, LdapConfig } from './config/index.ts';
import type { RepositoryPolicy } from './access/principal.ts';
import { apiRouter } from './api/router.ts';
import { isTokenUrl, tokenHandler } from './api/token.ts';
import { sessionRouter } from './api/session-routes.ts';
import { SessionStore } from './auth/session.ts';
import { BrowserSessionStore } from './db/session-store.ts';
import { SigningKeyStore } from './db/signing-key-store.ts';
import { SettingStore } from './db/setting-store.ts';
import { UserStore } from './db/user-store.ts';
import { RobotStore } from './db/robot-store.ts';
import { ProjectStore } from './db/project-store.ts';
import { ArtifactsService } from './services/artifacts.ts';
import { ImportService } from './services/import.ts';
import { PullStats } from './services/pull-stats.ts';
import { basicAuthenticator, tokenAuthenticator, type Authenticator, type PasswordCheck } from './auth/authenticator.ts';
import type { LdapDirectory } from './auth/ldap.ts';
import { TokenSigner } from './auth/token.ts';
import { isPostgresUrl, openDatabase, pgSql, startupStep, type Db } from './db/client.ts';
import { LocalChanges, type Changes } from './db/changes.ts';
import { lockDataDirectory } from './db/data-lock.ts';
import { RegistryStore } from './db/registry-store.ts';
import { closeListReader } from './db/list-store.ts';
import { UploadSessionStore } from './db/upload-session-store.ts';
import { createLogger, type Log } from './http/logger.ts';
import { ProxyTrust, useProxyTrust } from './http/raw.ts';
import { watchBodyIdle } from './http/timeouts.ts';
import { accessLogger } from './http/access-log.ts';
import { projectOf } from './lib/reference.ts';
import { isRegistryUrl, registryHandler } from './registry/router.ts';
import { AccessService } from './services/access-service.ts';
import { AuditService } from './services/audit.ts';
import { IdentityService } from './services/identity.ts';
import { MembersService } from './services/members.ts';
import { ProjectsService } from './services/projects.ts';
import { RegistryService } from './services/registry-service.ts';
import { ImmutableTagsService } from './services/immutable-tags.ts';
import { ImmutableRuleStore } from './db/immutable-rule-store.ts';
import { RetentionService } from './services/retention.ts';
import { RetentionStore } from './db/retention-store.ts';
import { ArtifactStore } from './db/artifact-store.ts';
import { RobotsService } from './services/robots.ts';
import { SettingsService } from './services/settings.ts';
import { RegistriesService } from './services/registries.ts';
import { AppError } from './lib/errors.ts';
import { ProxyCacheService } from './services/proxy-cache.ts';
import { RegistryEndpointStore } from './db/registry-endpoint-store.ts';
import { SecretBox, loadSecretKey } from './lib/secret-box.ts';
import { privateDir } from './lib/private-files.ts';
import { UsersService } from './services/users.ts';
import { GcService } from './services/gc.ts';
import { QuotaService } from './services/quotas.ts';
import { GcStore } from './db/gc-store.ts';
import { ClusterLocks, RUN_KEYS } from './db/cluster-lock.ts';
import { JobStore } from './db/job-store.ts';
import { JobRunner } from './services/jobs.ts';
import { LocalEnd, ReplicationService } from './services/replication.ts';
import { ReplicationStore } from './db/replication-store.ts';
import { BlobStore } from './storage/blob-store.ts';
import type { StorageDriver } from './storage/driver/driver.ts';
import { openDriver } from './storage/driver/open.ts';
import { UploadStore } from './storage/uploads.ts';
import type { Metrics } from './metrics/metrics.ts';

export interface AppOverrides {
  driver?: StorageDriver;
  log?: Log;
  policy?: RepositoryPolicy;
  /** 'token' (default): Docker token service with Basic also accepted; 'basic': Basic only. */
  auth?: 'token' | 'basic';
}

export interface BerthApp {
  /** The request listener: /v2 on plain node:http, everything else through Express. */
  app: RequestListener;
  config: Config;
  db: Db;
  log: Log;
  registry: RegistryService;
  users: UsersService;
  identity: IdentityService;
  access: AccessService;
  projects: ProjectsService;
  audit: AuditService;
  tokens: TokenSigner;
  uploads: UploadStore;
  gc: GcService;
  /** Scheduled jobs, once per cluster (GC schedule, upkeep). */
  jobs: JobRunner;
  pulls: PullStats;
  settings: SettingsService;
  /** Registry endpoints and their upstream clients (proxy cache, replication). */
  registries: RegistriesService;
  /** The proxy-cache read path (pulls in projects whose upstream is a registry endpoint). */
  proxyCache: ProxyCacheService;
  /** Replication policies, executions and their triggers. */
  replication: ReplicationService;
  /** Tag retention policies and their runs. */
  retention: RetentionService;
  /** Change announcements between nodes: every cache subscribes, every change publishes (src/db/changes.ts). */
  changes: Changes;
  /** Prometheus metrics and their listener (BERTH_METRICS_ADDR); null when not configured. */
  metrics: Metrics | null;
  close(): Promise<void>;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), fs.existsSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../package.json')) ? '..' : '../..');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<BerthApp> {
  const log = overrides.log ?? createLogger(config.logLevel, undefined, config.logFormat);
  // The data directory is Berth's alone (0700; the database and keys in it are 0600), tightened
  // here for installs made before or by hand; the secret key never enters the database.
  if (!privateDir(config.dataDir)) log.warn({ dataDir: config.dataDir }, 'data directory mode cannot be changed (not its owner); it should be 0700');
  const secretKey = loadSecretKey({ configured: config.secretKey, keyFile: path.join(config.dataDir, 'secret.key') });
  if (secretKey.created) log.info({ keyFile: path.join(config.dataDir, 'secret.key') }, 'secret key file created; back it up with the database');
  // SQLite: one process per data directory (a second one would diverge); PostgreSQL: any number.
  const dataLock = isPostgresUrl(config.databaseUrl) ? null : lockDataDirectory(config.dataDir);
  // Metrics load prom-client only when configured; the listener binds at the end of createApp.
  // Their sources are read at scrape time, so they may name parts built further down.
  const metrics: Metrics | null = config.metrics
    ? await (await import('./metrics/metrics.ts')).createMetrics({ db: (): Db => db, version: VERSION, cacheStats: () => registry.cacheStats(), openUploads: () => uploads.openSessions, ...config.metrics })
    : null;
  const db = await openDatabase(config.databaseUrl, { log, onQuery: metrics?.dbQuery }).catch((e: unknown) => {
    dataLock?.release();
    throw e;
  });
  // Before every service: each cache subscribes to it when built. PostgreSQL: LISTEN/NOTIFY between
  // the nodes (pg-changes.ts loads pg only then); SQLite: one process, direct calls.
  const sql = pgSql(db);
  const changes: Changes = sql
    ? await (await import('./db/pg-changes.ts')).PgChanges.open({ url: config.databaseUrl, sql, log })
    : new LocalChanges((err, topic) => log.warn({ topic, err: (err as Error)?.message }, 'cache listener failed'));
  // PostgreSQL: the push/GC interlock and the one-GC-run lock for every node (advisory locks on
  // connections of their own); SQLite: in this process (RegistryService's own lock).
  const clusterLocks = sql ? await ClusterLocks.open(config.databaseUrl, { log }) : null;
  const settings = new SettingsService(new SettingStore(db), config, { box: SecretBox.fromMaterial(secretKey.material), log }, changes);
  await settings.load();

  // Storage
  const driver = overrides.driver ?? (await openDriver(config, log));
  const blobs = new BlobStore(driver);
  // PostgreSQL (any number of nodes): upload sessions as database rows, so any node continues any
  // session; SQLite (one process): info.json next to the bytes, the running hash in memory.
  const uploads: UploadStore = new UploadStore(driver, blobs, { perRepository: config.maxUploadsPerRepository, perOwner: config.maxUploadsPerPrincipal }, {
    ...(sql ? { records: new UploadSessionStore(db), node: `${os.hostname()}:${process.pid}` } : {}),
  });

  // Directory (rebuilt when the LDAP settings change)
  // The LDAP modules (passport-ldapauth, ldapts) load only when a directory is configured.
  const newDirectory = async (cfg: LdapConfig) => new (await import('./auth/ldap.ts')).LdapDirectory(cfg, log);
  let directory: LdapDirectory | null = null;
  const buildDirectory = async () => {
    const old = directory;
    const cfg = settings.ldap();
    directory = cfg ? await newDirectory(cfg) : null;
    void old?.close();
  };
  await buildDirectory();
  settings.onChange(() => buildDirectory().catch((err) => log.error({ err: (err as Error).message }, 'ldap configuration failed')));


  // Identity and access
  const userStore = new UserStore(db);
  const robotStore = new RobotStore(db);
  const projectStore = new ProjectStore(db);
  // The retention is read at each purge: a change saved on any node applies without a restart.
  const audit = new AuditService(db, { get retentionDays() { return settings.auditRetentionDays(); }, maxRows: 1_000_000, log });
  const access = new AccessService({ projects: projectStore, users: userStore, robots: robotStore }, { creationRestriction: () => settings.projectCreationRestriction(), changes });
  const identity = new IdentityService({
    users: userStore,
    robots: robotStore,
    log,
    directory: () => directory,
    onLogin: (username, ok, clientAddress) => audit.record({ username, operation: ok ? 'login' : 'login_failed', resource: username, resourceType: 'user', clientAddress }),
    changes,
  });
  const sessions = new SessionStore(new BrowserSessionStore(db), changes, { maxPerUser: config.maxSessionsPerUser });
  const users = new UsersService({
    users: userStore,
    forgetCredentials: () => identity.forget(),
    invalidateAccess: () => access.invalidate(),
    // Stops the sessions on this node at once; the rows go and every node hears of it shortly after.
    endSessions: (userId, keep) => sessions.endUser(userId, keep),
    dataDir: config.dataDir,
    log,
  });
  await startupStep(db, () => users.ensureAdmin(config.adminPassword));
  const onChange = (resourceType: string) => (e: { username: string; operation: string; resource: string }) => audit.record({ ...e, resourceType });
  const projects = new ProjectsService({
    projects: projectStore,
    access,
    creationRestriction: () => settings.projectCreationRestriction(),
    registryExists: (id) => registries.get(id).then(() => true, (e: unknown) => { if (e instanceof AppError && e.code === 'NOT_FOUND') return false; throw e; }),
    onChange: onChange('project'),
  });
  await startupStep(db, () => projects.ensure('library', true));
  const members = new MembersService({ db, projects: projectStore, users: userStore, access, identity, directory: () => directory, onChange: onChange('member') });
  const robots = new RobotsService({ robots: robotStore, access, forgetCredentials: () => identity.forget(), onChange: onChange('robot') });
  // Registry endpoints (proxy cache upstreams, replication targets): credentials sealed like the LDAP password.
  const registries = new RegistriesService({ store: new RegistryEndpointStore(db), box: SecretBox.fromMaterial(secretKey.material), log, onChange: onChange('registry') });
  // The signing keys are the cluster's, in the database (sealed); an older install's key file is imported.
  const tokens = await TokenSigner.open({
    rows: new SigningKeyStore(db),
    box: SecretBox.fromMaterial(secretKey.material),
    changes,
    service: config.serviceName,
    ttlSeconds: config.tokenTtlSeconds,
    legacyKeyDir: path.join(config.dataDir, 'keys'),
    unreadable: isPostgresUrl(config.databaseUrl) ? 'fail' : 'replace',
    log,
  });
  const checkPassword: PasswordCheck = (u, p, addr) => identity.login(u, p, addr);
  const login: PasswordCheck = metrics ? metrics.wrapLogin(checkPassword) : checkPassword;

  const store = new RegistryStore(db, { file: config.databaseUrl.replace(/^file:/, '') });
  const quotas = new QuotaService({ db, projectId: async (name) => (await access.project(name))?.id ?? null, changes });
  let replicationHook: ReplicationService | null = null;
  // Harbor's immutable tag rules: every write and delete of a tag goes through the registry service.
  const immutableTags = new ImmutableTagsService(new ImmutableRuleStore(db), { changes });
  const registry = new RegistryService({
    store,
    blobs,
    uploads,
    changes,
    projectIdFor: async (repo) => (await access.project(projectOf(repo)))?.id ?? null,
    admit: (repo, digest, size, write) => quotas.admit(repo, digest, size, write),
    immutable: immutableTags,
    writes: clusterLocks?.writeLock(),
    blobRedirectSeconds: config.s3?.redirectSeconds,
    onEvent: (e) => {
      metrics?.registryEvent(e.type);
      if (e.type === 'delete') audit.record({ username: '', operation: e.type, resource: `${e.repository}${e.tag ? ':' + e.tag : e.digest ? '@' + e.digest : ''}`, resourceType: 'artifact' });
      // Event-based replication (built below; never waits, never throws).
      replicationHook?.onRegistryEvent(e);
    },
  });
  // Scheduled jobs run once per cluster: each node's timers fire, one node claims the slot.
  const jobs = new JobRunner({ store: new JobStore(db), log });
  const proxyCache = new ProxyCacheService({
    registry,
    upstream: (id) => registries.client(id),
    log,
    // A blob larger than what the project's quota has left is refused before it is downloaded.
    room: async (repo) => {
      const p = await access.project(projectOf(repo));
      const limit = p ? await quotas.limit(p.id) : -1;
      return p && limit >= 0 ? Math.max(0, limit - (await quotas.usage(p.id))) : null;
    },
  });
  const gc = new GcService({ store: new GcStore(db), registry, blobs, log, runLock: clusterLocks?.tryLock(RUN_KEYS.gc), once: (job, slot, fn) => jobs.runSlot(job, slot, fn), changes });
  await gc.start();
  // Replication policies: executions on this node, schedules claimed once per cluster, dead nodes' runs failed.
  const replicationStore = new ReplicationStore(db);
  const replication = new ReplicationService({
    store: replicationStore,
    client: (id) => registries.client(id),
    registryExists: async (id) => (await registries.get(id).catch(() => null)) !== null,
    // A proxy-cache project holds what its upstream has: replication does not write into it either.
    local: new LocalEnd(registry, (name) => projects.ensure(name, false), async (name) => !!(await access.project(name))?.registryId),
    log,
    node: jobs.node,
    once: (job, slot, fn) => jobs.runSlot(job, slot, fn),
    singleNode: !sql,
    onChange: onChange('replication_policy'),
  });
  replicationHook = replication;
  await replication.start();
  const policy = overrides.policy ?? access;
  // One list reader for the artifact lists and for retention's reads of a repository's artifacts.
  const artifactStore = new ArtifactStore(db);
  const artifacts = new ArtifactsService({ db, blobs, registry, changes, store: artifactStore });
  // Tag retention: runs delete through the artifacts service; schedules claimed once per cluster.
  const retention = new RetentionService({
    store: new RetentionStore(db),
    artifactStore,
    artifacts,
    projects: projectStore,
    log,
    node: jobs.node,
    once: (job, slot, fn) => jobs.runSlot(job, slot, fn),
  });
  await retention.start();
  const tmpDir = path.join(config.dataDir, 'tmp');
  fs.rmSync(tmpDir, { recursive: true, force: true }); // leftovers of interrupted imports
  const importer = new ImportService({
    registry,
    tmpDir,
    onImported: (e) => {
      for (const t of e.tags) audit.record({ username: e.actor, operation: 'import', resource: `${e.repository}:${t.tag}`, resourceType: 'artifact' });
    },
  });
  const pulls = new PullStats(db, log);
  const authn: Authenticator =
    overrides.auth === 'basic' ? basicAuthenticator(login) : tokenAuthenticator({ check: login, tokens, service: config.serviceName, externalUrl: config.externalUrl });

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const registryApi = registryHandler({
    registry,
    proxy: {
      cache: proxyCache,
      project: async (repository) => {
        const p = await access.project(projectOf(repository));
        return p?.registryId ? { name: p.name, registryId: p.registryId } : null;
      },
    },
    authn,
    policy,
    log,
    baseUrl: config.externalUrl ?? '',
    onPull: (identity, repository, reference, digest) => {
      pulls.record(repository, digest);
      metrics?.pulled();
      audit.record({ username: identity.principal?.name ?? 'anonymous', operation: 'pull', resource: `${repository}:${reference}`, resourceType: 'artifact' });
    },
    onPush: (identity, repository, reference) => {
      metrics?.pushed();
      audit.record({ username: identity.principal?.name ?? '', operation: 'push', resource: `${repository}:${reference}`, resourceType: 'artifact' });
    },
  });
  const tokenApi = tokenHandler({ tokens, policy, login, service: config.serviceName, log });
  app.use(
    '/api/v2.0',
    apiRouter({
      db,
      log,
      storageHealthy: async () => {
        await driver.stat('health-check');
        return true;
      },
      login,
      projects,
      members,
      access,
      users,
      robots,
      settings,
      identity,
      directory: () => directory,
      directoryFor: newDirectory,
      version: VERSION,
      externalUrl: config.externalUrl,
      dataDir: config.dataDir,
      sessions,
      artifacts,
      importer,
      tmpDir,
      maxImportBytes: 64 * 1024 * 1024 * 1024,
      artifactCount: (projectId) => artifacts.projectArtifactCount(projectId),
      audit,
      gc,
      quotas,
      tokens,
      registries,
      replication,
      immutableTags,
      retention,
    }),
  );
  app.use('/c', sessionRouter({ login, sessions, log, secureCookies: !!config.tls || !!config.externalUrl?.startsWith('https:') }));

  // The web UI (built into web/dist): static files, and index.html for client-side routes.
  const webDist = path.join(ROOT, 'web', 'dist');
  if (fs.existsSync(path.join(webDist, 'index.html'))) {
    app.use(express.static(webDist, { index: 'index.html', maxAge: '1h', setHeaders: (res, file) => {
      if (file.endsWith('index.html')) res.setHeader('Cache-Control', 'no-cache');
    } }));
    // Client-side routes: index.html for a browser's navigation only. A probe or scraper asking
    // for /metrics or /healthz must get a 404, not a page that says 200.
    app.get(/^\/(?!v2\/|v2$|api\/|service\/|c\/).*/, (req, res, next) => {
      if (!/\btext\/html\b/.test(req.headers.accept ?? '')) return next();
      res.setHeader('Cache-Control', 'no-cache');
      res.sendFile(path.join(webDist, 'index.html'));
    });
  }
  app.use((_req, res) => {
    res.status(404).json({ errors: [{ code: 'NOT_FOUND', message: 'no such page' }] });
  });

  // Background upkeep, once per cluster: expired upload sessions, audit retention, expired sessions.
  const upkeepMs = Math.min(config.uploadTtlSeconds * 1000, 3_600_000) / 4;
  jobs.every('uploads.expire', upkeepMs, () => uploads.purgeExpired(config.uploadTtlSeconds));
  jobs.every('audit.purge', upkeepMs, () => audit.purge());
  jobs.every('sessions.purge', upkeepMs, () => sessions.purgeExpired());
  // Registry endpoints' status (healthy/unhealthy), as Harbor's regular health check keeps it.
  // Replication executions whose node stopped refreshing them are marked Failed (never stuck InProgress).
  jobs.every('replication.reap', 60_000, () => replication.reap());
  jobs.every('registries.health', 5 * 60_000, () => registries.checkHealth());
  jobs.start();

  const bodyIdleMs = config.bodyTimeoutSeconds * 1000;
  const logAccess = accessLogger(log);
  const proxies = new ProxyTrust(config.trustedProxies);
  const berth: BerthApp = {
    app: (req, res) => {
      useProxyTrust(req, proxies);
      watchBodyIdle(req, bodyIdleMs);
      logAccess(req, res);
      metrics?.observe(req, res);
      const url = req.url ?? '';
      if (isRegistryUrl(url)) return registryApi(req, res);
      if (isTokenUrl(url)) return void tokenApi(req, res);
      return app(req, res);
    },
    config,
    db,
    log,
    registry,
    users,
    identity,
    access,
    projects,
    audit,
    tokens,
    uploads,
    pulls,
    settings,
    registries,
    proxyCache,
    replication,
    retention,
    changes,
    gc,
    jobs,
    metrics,
    async close() {
      await retention.close();
      await replication.close();
      await jobs.close();
      await metrics?.close();
      await gc.close();
      registries.close();
      await audit.close();
      await pulls.close();
      store.close();
      closeListReader(db);
      await directory?.close();
      await changes.close();
      await clusterLocks?.close();
      await db.$disconnect();
      driver.close?.();
      dataLock?.release();
    },
  };
  if (metrics) {
    // A metrics address that cannot be bound fails the start, as the main port does.
    await metrics.listen().catch(async (err: unknown) => {
      log.fatal({ host: config.metrics!.host, port: config.metrics!.port, err: (err as Error).message }, 'cannot listen for metrics (BERTH_METRICS_ADDR)');
      await berth.close().catch(() => undefined);
      throw err;
    });
    log.info({ address: metrics.address }, 'metrics listening (GET /metrics)');
  }
  return berth;
}
