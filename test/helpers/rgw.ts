// A throwaway single-node Ceph cluster (1 mon, 1 memstore OSD, no auth) with radosgw on loopback,
// for the S3 tests (Debian's ceph-mon, ceph-osd, radosgw; ~15 s to start). Only one such cluster
// runs per machine (a second one's OSD never comes up), so every test that needs it lives in
// test/e2e/s3.test.ts, which starts it once. Every slow step has a timeout: a stuck Ceph command
// would otherwise hang the suite (radosgw-admin waits forever for an OSD that is not there).
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './server.ts';

export interface Rgw {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  stop(): Promise<void>;
}

const ACCESS = 'BERTHTESTACCESS';
const SECRET = 'berth-test-secret-' + randomUUID().slice(0, 8);

/** Why radosgw cannot run here (a missing binary), or null when it can. */
export function rgwUnavailable(): string | null {
  for (const bin of ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'monmaptool', 'ceph-authtool', 'ceph']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed (apt-get install -y ceph-mon ceph-osd radosgw)`;
  }
  return null;
}

function conf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
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
memstore device bytes = 1073741824
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

/** Runs a command to completion within `seconds`; throws with its output otherwise. */
function run(cmd: string, args: string[], seconds: number): string {
  const r = spawnSync('timeout', ['-k', '2', String(seconds), cmd, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

async function until(what: string, seconds: number, ok: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`radosgw harness: ${what} not ready after ${seconds} s`);
}

/**
 * Starts the cluster; a start that fails (Ceph 16.2's memstore sometimes comes up with another fsid
 * than it was made with, or the monitor answers EPERM while settling; more often on a loaded
 * machine) is stopped, thrown away and tried again, up to three times.
 */
export async function startRgw(): Promise<Rgw> {
  // A second cluster never gets its OSD up while another runs: say so instead of timing out.
  const running = ['radosgw', 'ceph-osd', 'ceph-mon'].map((name) => spawnSync('pgrep', ['-a', '-x', name], { encoding: 'utf8' }).stdout?.trim()).filter(Boolean).join('; ');
  if (running) throw new Error(`another Ceph cluster is running on this machine (only one can): ${running}`);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce();
    } catch (e) {
      // Seen here: the OSD refused by the monitor (wrong fsid), or `osd new` answered EPERM while the
      // monitor was still settling. A fresh cluster in a new directory starts.
      if (attempt >= 3) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function startOnce(): Promise<Rgw> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgw.berth-'));
  for (const d of ['mon', 'osd/ceph-0', 'run', 'log', 'rgw']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const monPort = await freePort();
  const rgwPort = await freePort();
  const fsid = randomUUID();
  const cfg = path.join(dir, 'ceph.conf');
  fs.writeFileSync(cfg, conf(dir, fsid, monPort, rgwPort));
  const C = ['-c', cfg];
  const pids: number[] = [];
  const daemon = (cmd: string, args: string[], log: string) => {
    const out = fs.openSync(path.join(dir, 'log', log), 'w');
    const p = spawn(cmd, args, { stdio: ['ignore', out, out], detached: true });
    p.unref();
    pids.push(p.pid!);
  };
  const stop = async () => {
    for (const pid of pids.reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    run('ceph-authtool', ['--create-keyring', path.join(dir, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], 20);
    run('monmaptool', ['--create', '--addv', 'a', `[v1:127.0.0.1:${monPort}]`, '--fsid', fsid, path.join(dir, 'monmap')], 20);
    run('ceph-mon', [...C, '--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap'), '--keyring', path.join(dir, 'keyring')], 30);
    daemon('ceph-mon', [...C, '-i', 'a', '-f'], 'mon.out');
    await until('ceph-mon', 30, () => spawnSync('timeout', ['5', 'ceph', ...C, '-s']).status === 0);
    // The OSD gets its uuid at mkfs (without one, Ceph 16.2's memstore writes an all-zero fsid that
    // the monitor refuses as "wrong fsid") and is registered with the same uuid.
    const osdUuid = randomUUID();
    run('ceph-osd', [...C, '-i', '0', '--mkfs', '--osd-uuid', osdUuid], 60);
    run('ceph', [...C, 'osd', 'new', osdUuid, '0'], 30);
    daemon('ceph-osd', [...C, '-i', '0', '-f'], 'osd.out');
    await until('ceph-osd', 60, () => {
      if (/wrong fsid/.test(fs.readFileSync(path.join(dir, 'log', 'osd.out'), 'utf8'))) throw new Error('radosgw harness: the monitor refused the OSD (wrong fsid)');
      return /1 up/.test(spawnSync('timeout', ['5', 'ceph', ...C, 'osd', 'stat'], { encoding: 'utf8' }).stdout ?? '');
    });
    daemon('radosgw', [...C, '-n', 'client.rgw.a', '-f'], 'rgw.out');
    await until('radosgw', 90, async () => {
      try {
        return (await fetch(`http://127.0.0.1:${rgwPort}/`)).ok;
      } catch {
        return false;
      }
    });
    run('radosgw-admin', [...C, 'user', 'create', '--uid=berth', '--display-name=berth', `--access-key=${ACCESS}`, `--secret-key=${SECRET}`], 60);
  } catch (e) {
    const logs = ['mon.out', 'osd.out', 'rgw.out'].map((f) => {
      try {
        return `--- ${f}\n${fs.readFileSync(path.join(dir, 'log', f), 'utf8').slice(-2000)}`;
      } catch {
        return '';
      }
    });
    await stop();
    throw new Error(`${(e as Error).message}\n${logs.join('\n')}`);
  }
  return { endpoint: `http://127.0.0.1:${rgwPort}`, accessKeyId: ACCESS, secretAccessKey: SECRET, dir, stop };
}
