// The engines behind `npm run bench -- --backend=pg-s3`: a throwaway PostgreSQL and a throwaway
// single-node Ceph cluster with radosgw, both on loopback. Ported from test/helpers/pg.ts and
// test/helpers/rgw.ts (the bench runs under plain node, not tsx), with two differences: the
// memstore OSD is sized for the bench's bytes (it holds them in RAM), and when another Ceph
// cluster is running on the machine (only one can), the bench waits for it to end instead of failing.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './servers.mjs';

const log = (...a) => console.error('[bench]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- PostgreSQL --------------------------------------------------------------------------------

function pgBinDir() {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  return versions.length ? path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0], 'bin') : null;
}

/** Why --backend=pg-s3 cannot run here (a missing binary), or null. */
export function pgS3Unavailable() {
  if (!pgBinDir()) return 'PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install -y postgresql)';
  for (const bin of ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'monmaptool', 'ceph-authtool', 'ceph']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed (apt-get install -y ceph-mon ceph-osd radosgw)`;
  }
  return null;
}

/**
 * PostgreSQL 13+ from Debian's binaries in a temp directory on a free port. Durability stays as
 * the defaults set it (fsync on, synchronous commit), as a production database runs, unlike the
 * tests' throwaway instance. As root, initdb and the server run as the `postgres` user.
 * Returns { url (of a fresh database "berth"), pid (the postmaster), dir, stop() }.
 */
export async function startPostgres() {
  const bin = pgBinDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-pg-'));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd, args) => execFileSync(asRoot ? 'runuser' : cmd, asRoot ? ['-u', 'postgres', '--', cmd, ...args] : args, { stdio: 'pipe' });
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  run(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8']);
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      run(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'pg.log'), '-w', '-o', `-k ${dir} -c listen_addresses=127.0.0.1 -p ${port} -c max_connections=100`, 'start']);
      break;
    } catch (e) {
      if (attempt >= 2) throw new Error(`PostgreSQL did not start: ${fs.existsSync(path.join(dir, 'pg.log')) ? fs.readFileSync(path.join(dir, 'pg.log'), 'utf8') : e.message}`);
    }
  }
  const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:${port}/postgres` });
  await c.connect();
  try {
    await c.query('CREATE DATABASE berth');
  } finally {
    await c.end();
  }
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/berth`,
    pid,
    dir,
    async stop() {
      try {
        run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** user+system CPU of a process and all its live descendants (PostgreSQL forks a backend per connection). */
export function treePids(root) {
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      (children.get(ppid) ?? children.set(ppid, []).get(ppid)).push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

// ---- Ceph + radosgw ----------------------------------------------------------------------------

const ACCESS = 'BERTHBENCHACCESS';
const SECRET = 'berth-bench-secret-' + randomUUID().slice(0, 8);

function cephConf(dir, fsid, monPort, rgwPort, memstoreBytes) {
  return `[global]
fsid = ${fsid}
mon host = v1:127.0.0.1:${monPort}
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr2 = false
public addr = 127.0.0.1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = ${memstoreBytes}
mon data = ${dir}/mon/$cluster-$id
osd data = ${dir}/osd/$cluster-$id
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
keyring = ${dir}/keyring
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
`;
}

function runT(cmd, args, seconds) {
  const r = spawnSync('timeout', ['-k', '2', String(seconds), cmd, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

async function until(what, seconds, ok) {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    if (await ok()) return;
    await sleep(200);
  }
  throw new Error(`radosgw: ${what} not ready after ${seconds} s`);
}

function cephRunning() {
  return ['radosgw', 'ceph-osd', 'ceph-mon']
    .map((name) => spawnSync('pgrep', ['-a', '-x', name], { encoding: 'utf8' }).stdout?.trim())
    .filter(Boolean)
    .join('; ');
}

/**
 * A single-node Ceph (1 mon, 1 memstore OSD of memstoreBytes, no auth) and radosgw on loopback,
 * with one S3 user. Waits up to waitSeconds for another cluster on the machine to end first.
 * Returns { endpoint, accessKeyId, secretAccessKey, pid (radosgw), osdPid, dir, stop() }.
 */
export async function startRgw({ memstoreBytes, waitSeconds = 900 }) {
  const end = Date.now() + waitSeconds * 1000;
  const waitForOthers = async () => {
    for (let running = cephRunning(); running; running = cephRunning()) {
      if (Date.now() > end) throw new Error(`another Ceph cluster is still running on this machine (only one can): ${running}`);
      log(`another Ceph cluster is running (only one per machine), waiting: ${running.split('\n')[0]}`);
      await sleep(10_000);
    }
  };
  for (let attempt = 1; ; attempt++) {
    await waitForOthers();
    try {
      return await startRgwOnce(memstoreBytes);
    } catch (e) {
      // Ours is stopped by now: a cluster still running is someone else's that started at the same
      // moment (its OSD and ours then never both come up). Wait for it, then try again.
      const raced = cephRunning();
      if (attempt >= 5 || (!raced && !/wrong fsid/.test(e.message))) throw e;
      log(raced ? `radosgw: another Ceph cluster started at the same time as ours; waiting for it, then attempt ${attempt + 1}` : `radosgw: the monitor refused the OSD (wrong fsid, a Ceph 16.2 memstore quirk on a loaded machine); attempt ${attempt + 1}`);
    }
  }
}

async function startRgwOnce(memstoreBytes) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgw.berth-bench-'));
  for (const d of ['mon', 'osd/ceph-0', 'run', 'log', 'rgw']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const monPort = await freePort();
  const rgwPort = await freePort();
  const fsid = randomUUID();
  const cfg = path.join(dir, 'ceph.conf');
  fs.writeFileSync(cfg, cephConf(dir, fsid, monPort, rgwPort, memstoreBytes));
  const C = ['-c', cfg];
  const pids = {};
  const daemon = (name, cmd, args) => {
    const out = fs.openSync(path.join(dir, 'log', `${name}.out`), 'w');
    const p = spawn(cmd, args, { stdio: ['ignore', out, out], detached: true });
    p.unref();
    pids[name] = p.pid;
  };
  const stop = async () => {
    for (const name of ['rgw', 'osd', 'mon']) {
      try {
        if (pids[name]) process.kill(pids[name], 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(300);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    runT('ceph-authtool', ['--create-keyring', path.join(dir, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], 20);
    runT('monmaptool', ['--create', '--addv', 'a', `[v1:127.0.0.1:${monPort}]`, '--fsid', fsid, path.join(dir, 'monmap')], 20);
    runT('ceph-mon', [...C, '--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap'), '--keyring', path.join(dir, 'keyring')], 30);
    daemon('mon', 'ceph-mon', [...C, '-i', 'a', '-f']);
    await until('ceph-mon', 30, () => spawnSync('timeout', ['5', 'ceph', ...C, '-s']).status === 0);
    const osdUuid = randomUUID();
    runT('ceph-osd', [...C, '-i', '0', '--mkfs', '--osd-uuid', osdUuid], 60);
    runT('ceph', [...C, 'osd', 'new', osdUuid, '0'], 30);
    daemon('osd', 'ceph-osd', [...C, '-i', '0', '-f']);
    await until('ceph-osd', 60, () => {
      if (/wrong fsid/.test(fs.readFileSync(path.join(dir, 'log', 'osd.out'), 'utf8'))) throw new Error('radosgw: the monitor refused the OSD (wrong fsid)');
      return /1 up/.test(spawnSync('timeout', ['5', 'ceph', ...C, 'osd', 'stat'], { encoding: 'utf8' }).stdout ?? '');
    });
    daemon('rgw', 'radosgw', [...C, '-n', 'client.rgw.a', '-f']);
    await until('radosgw', 90, async () => {
      try {
        return (await fetch(`http://127.0.0.1:${rgwPort}/`)).ok;
      } catch {
        return false;
      }
    });
    runT('radosgw-admin', [...C, 'user', 'create', '--uid=bench', '--display-name=bench', `--access-key=${ACCESS}`, `--secret-key=${SECRET}`], 60);
  } catch (e) {
    const logs = ['mon.out', 'osd.out', 'rgw.out'].map((f) => {
      try {
        return `--- ${f}\n${fs.readFileSync(path.join(dir, 'log', f), 'utf8').slice(-2000)}`;
      } catch {
        return '';
      }
    });
    await stop();
    throw new Error(`${e.message}\n${logs.join('\n')}`);
  }
  return { endpoint: `http://127.0.0.1:${rgwPort}`, accessKeyId: ACCESS, secretAccessKey: SECRET, pid: pids.rgw, osdPid: pids.osd, dir, stop };
}

/** Creates a bucket through the AWS SDK (Distribution does not create its own). */
export async function createBucket(rgw, bucket) {
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const s3 = new S3Client({ endpoint: rgw.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    s3.destroy();
  }
}

/** Why a PostgreSQL-only bench (bench/list-scale.mjs --backend=pg) cannot run here, or null. */
export function pgUnavailable() {
  return pgBinDir() ? null : 'PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install -y postgresql)';
}

/** One more fresh database on a server from startPostgres(); returns its URL. */
export async function createDatabase(server, name) {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: server.url.replace(/\/[^/]*$/, '/postgres') });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
  } finally {
    await c.end();
  }
  return server.url.replace(/\/[^/]*$/, `/${name}`);
}
