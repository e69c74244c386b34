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
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const berth = await createApp(config);
  const { log } = berth;
  // stdout is the JSON log stream from here on: nothing else is written to it. A generated admin
  // password is in the data directory's initial-admin-password file (createApp logged where).
  const server = config.tls
    ? https.createServer({ cert: fs.readFileSync(config.tls.cert), key: fs.readFileSync(config.tls.key) }, berth.app)
    : http.createServer(berth.app);
  // Timeouts: a client has 60 s to send its headers, an idle keep-alive connection is closed after
  // 65 s, and a body that stalls for BERTH_BODY_TIMEOUT_SECONDS is cut off (in the app, while the
  // body is read). No overall request limit: a large blob upload may take hours while it moves.
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 0;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Malformed requests at the HTTP level (bad headers, header timeout): a 400 and close, quietly.
    if (socket.writable && !socket.destroyed) socket.end(err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
  } catch (err) {
    // Port in use, or not ours to bind: said in the log (a supervisor restarts us), exit non-zero.
    log.fatal({ err, host: config.host, port: config.port }, 'cannot listen');
    await berth.close().catch(() => undefined);
    process.exit(1);
  }
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
  // The last resort: an error nothing handled means some state may be wrong. Log it (without data),
  // stop taking requests and exit non-zero, so the supervisor (systemd, Kubernetes) starts a clean
  // process. Committed data is safe: blobs are placed by rename and the database is transactional.
  const die = (kind: string) => (err: unknown) => {
    try {
      log.fatal({ err, kind }, 'unexpected error, exiting');
    } catch {
      // the logger itself failed: nothing more to say
    }
    server.close();
    setTimeout(() => process.exit(70), 1_000).unref();
    berth.close().finally(() => process.exit(70));
  };
  process.on('uncaughtException', die('uncaughtException'));
  process.on('unhandledRejection', die('unhandledRejection'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  console.error('berth: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
