// Process entry: configuration, the app, the listener, graceful shutdown.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import v8 from 'node:v8';
import { ConfigError, loadConfig } from './config/index.ts';
import { createApp } from './app.ts';

// Prisma's query compiler is a ~1.6 MB WebAssembly module. V8 would tier its functions up to
// TurboFan in background threads, whose compile memory stays in glibc's per-thread arenas: ~50 MiB
// more resident memory for no measurable gain (the registry's hot paths do not run Prisma queries).
// Liftoff only. Must run before the first Prisma query compiles the module.
v8.setFlagsFromString('--liftoff-only');

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`berth: configuration error: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  fs.mkdirSync(config.dataDir, { recursive: true });
  const berth = await createApp(config);
  const { log } = berth;
  if (berth.generatedAdminPassword) {
    // Printed once, on the first start only; not logged through the structured logger.
    process.stdout.write(`\n  Berth created the built-in user "admin" with the password:\n\n      ${berth.generatedAdminPassword}\n\n  It will not be shown again. Set BERTH_ADMIN_PASSWORD before the first start to choose it.\n\n`);
  }
  const server = config.tls
    ? https.createServer({ cert: fs.readFileSync(config.tls.cert), key: fs.readFileSync(config.tls.key) }, berth.app)
    : http.createServer(berth.app);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 0; // large blob uploads may take long; idle sockets are still timed out
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  log.info({ host: config.host, port, tls: !!config.tls, dataDir: config.dataDir }, 'berth listening');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    server.close(() => {
      berth.close().finally(() => process.exit(0));
    });
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  console.error('berth: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
