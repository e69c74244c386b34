// Starting the two registries on loopback with fresh storage, and reading their CPU time and
// memory from /proc (the stable figures on a shared, noisy machine).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import http from 'node:http';

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** user+system CPU time of a process, in milliseconds. */
export function cpuMs(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after "(comm)": state is f[0]; utime is field 14 of the whole line, i.e. f[11]; stime f[12]
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** { rss, hwm } in MiB (VmRSS, VmHWM = peak RSS since start). */
export function memMiB(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

const hwmSeen = new Map();

/** Peak RSS in MiB since the process started, across resetPeak() windows. */
export function peakMiB(pid) {
  const h = Math.max(memMiB(pid).hwm, hwmSeen.get(pid) ?? 0);
  hwmSeen.set(pid, h);
  return h;
}

/**
 * Starts a new VmHWM window (Linux: `5` to /proc/<pid>/clear_refs), so that memMiB(pid).hwm is the
 * peak since now; peakMiB(pid) still gives the peak since start. False where that is refused.
 */
export function resetPeak(pid) {
  peakMiB(pid);
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** BERTH_ENV="K=V K2=V2": extra environment for the Berth under test (e.g. malloc tunables). */
function extraEnv() {
  return Object.fromEntries((process.env.BERTH_ENV ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

/** BERTH_NODE_ARGS="--flag ...": extra node flags for the Berth under test (e.g. --trace-gc). */
function extraNodeArgsFromEnv() {
  return (process.env.BERTH_NODE_ARGS ?? '').split(' ').filter(Boolean);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(port, proc, name, logFile) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}; see ${logFile}`);
    const status = await new Promise((resolve) => {
      const r = http.get({ host: '127.0.0.1', port, path: '/v2/' }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      r.on('error', () => resolve(0));
    });
    if (status === 200 || status === 401) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not answer on port ${port}; see ${logFile}`);
}

function stopper(proc) {
  return () =>
    new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      proc.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      proc.kill('SIGTERM');
    });
}

/**
 * Compiles Berth as `npm run build` does, into bench/results/dist (so a stale or concurrently
 * rebuilt dist/ never skews a run), with the package root files it expects beside it.
 * Returns the entry file.
 */
export function buildBerth(root) {
  const out = path.join(root, 'bench', 'results', 'dist');
  fs.mkdirSync(out, { recursive: true });
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', out, '--tsBuildInfoFile', path.join(out, '.tsbuildinfo'), '--sourceMap', 'false'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('tsc failed');
  for (const f of ['package.json', 'prisma']) {
    const link = path.join(out, f);
    if (!fs.existsSync(link)) fs.symlinkSync(path.join(root, f), link);
  }
  return path.join(out, 'src', 'main.js');
}

/** The environment assignments and node flags of package.json's start script ("A=1 node --flag dist/src/main.js"). */
export function startCommand(root) {
  const words = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.start.split(/\s+/).filter(Boolean);
  while (words[0] === 'exec' || words[0] === 'env') words.shift();
  const env = {};
  while (/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) {
    const [k, ...v] = words.shift().split('=');
    env[k] = v.join('=');
  }
  if (words[0] !== 'node') throw new Error(`unexpected start script: ${words.join(' ')}`);
  return { env, nodeArgs: words.slice(1, -1) };
}

/**
 * Berth as `npm start` runs it (its environment and node flags, then <entry>, compiled), or from
 * source with tsx (node --import tsx src/main.ts; tsx's loader thread adds memory). One process
 * either way, so /proc/<pid> is the server. Authentication is on, as always; the admin password is
 * chosen here. extraNodeArgs (profiling), then BERTH_NODE_ARGS, come after the start script's flags.
 */
export async function startBerth({ root, dir, password, entry, extraNodeArgs = [], env = {} }) {
  const port = await freePort();
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const logFile = path.join(dir, 'berth.log');
  const out = fs.openSync(logFile, 'w');
  const start = startCommand(root);
  const args = entry ? [entry] : ['--import', 'tsx', 'src/main.ts'];
  const proc = spawn(process.execPath, [...start.nodeArgs, ...extraNodeArgs, ...extraNodeArgsFromEnv(), ...args], {
    cwd: root,
    env: { ...process.env, ...start.env, ...env, ...extraEnv(), BERTH_HOST: '127.0.0.1', BERTH_PORT: String(port), BERTH_DATA_DIR: dataDir, BERTH_ADMIN_PASSWORD: password },
    stdio: ['ignore', out, out],
  });
  await waitReady(port, proc, 'berth', logFile);
  return { name: 'berth', port, pid: proc.pid, proc, dir, logFile, stop: stopper(proc) };
}

export function distributionBinary() {
  const r = spawnSync('sh', ['-c', 'command -v docker-registry'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/**
 * CNCF Distribution (Debian's docker-registry 2.8.2) without auth, its default. Its per-request
 * logging is turned down (warn, no access log) so that it is the strongest baseline, not a strawman.
 * s3 ({ endpoint, bucket, accessKeyId, secretAccessKey }): its S3 driver on that bucket instead of
 * the filesystem, with redirects off (Berth serves the bytes too unless BERTH_S3_REDIRECT is set)
 * and 8 MiB parts (Berth's part size). The bucket must exist: Distribution does not create it.
 */
export async function startDistribution({ bin, dir, s3 }) {
  const port = await freePort();
  const storage = path.join(dir, 'storage');
  fs.mkdirSync(storage, { recursive: true });
  const config = path.join(dir, 'config.yml');
  const driver = s3
    ? [
        '  s3:',
        `    accesskey: ${s3.accessKeyId}`,
        `    secretkey: ${s3.secretAccessKey}`,
        '    region: us-east-1',
        `    regionendpoint: ${s3.endpoint}`,
        `    bucket: ${s3.bucket}`,
        `    secure: ${s3.endpoint.startsWith('https:')}`,
        '    v4auth: true',
        '    chunksize: 8388608',
        '    rootdirectory: /',
        '  redirect:',
        '    disable: true',
      ]
    : ['  filesystem:', `    rootdirectory: ${storage}`];
  fs.writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  cache:',
      '    blobdescriptor: inmemory',
      ...driver,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const logFile = path.join(dir, 'distribution.log');
  const out = fs.openSync(logFile, 'w');
  // Its aws-sdk-go v1 panics at start when AWS_CA_BUNDLE is set (docs/scale-out.md §9).
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  const proc = spawn(bin, ['serve', config], { stdio: ['ignore', out, out], env });
  await waitReady(port, proc, 'distribution', logFile);
  return { name: 'distribution', port, pid: proc.pid, proc, dir, logFile, stop: stopper(proc) };
}
