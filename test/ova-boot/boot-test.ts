// Full appliance test (npm run ova:test, ~10-15 minutes without KVM):
//   1. builds the OVA (ova/build.sh; skip with OVA_SKIP_BUILD=1 to test ova/dist as it is),
//   2. checks its structure, extracts the system disk,
//   3. boots it under QEMU/OVMF (UEFI) with a blank data disk and the OVF properties on an
//      "OVF ENV" ISO (the vSphere ISO transport), VMXNET3 and paravirtual SCSI like the OVF,
//   4. waits for Berth, then: CA download on port 80 and a verified TLS handshake for the host
//      name, the redirect, LDAP settings applied, skopeo push + pull of a multi-arch image with the
//      admin password from the properties (and a wrong password refused), host name on the console,
//   5. powers off and inspects the data disk (formatted, config written, no admin password left),
//   6. boots a fresh copy of the system disk with the same data disk and no properties (an
//      upgrade): the image and the password are still there. Skip with OVA_BOOT_UPGRADE=0.
//   7. boots with bad properties and a blank data disk: the console names each bad property and
//      Berth is not started. OVA_BOOT_ONLY=first|bad runs one scenario.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { checkOva } from '../../ova/scripts/check-ova.ts';
import { tarMembers } from '../../ova/scripts/ova-lib.ts';
import { multiArchLayout } from '../helpers/oci-layout.ts';
import { missingTool } from '../helpers/tools.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const WORK = path.join(REPO, 'ova/work/boot');
const P443 = Number(process.env.OVA_BOOT_HTTPS_PORT ?? 18443);
const P80 = Number(process.env.OVA_BOOT_HTTP_PORT ?? 18080);
const TIMEOUT_S = Number(process.env.OVA_BOOT_TIMEOUT_S ?? 900);
const HOST = 'reg-boot01.example.test';
const PASSWORD = `B0ot'T3st"pw$x&<y>`; // quotes, $, & and <> travel through XML, env files and Basic auth
const t0 = Date.now();
const timings: [string, number][] = [];
const since = (t: number) => ((Date.now() - t) / 1000).toFixed(1);
const log = (m: string) => console.log(`[${since(t0).padStart(6)} s] ${m}`);

async function timed<T>(name: string, f: () => Promise<T> | T): Promise<T> {
  const t = Date.now();
  log(`${name} ...`);
  const r = await f();
  timings.push([name, (Date.now() - t) / 1000]);
  log(`${name}: ${since(t)} s`);
  return r;
}

const xmlAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
function ovfEnv(props: Record<string, string>): string {
  const p = Object.entries(props).map(([k, v]) => `      <Property oe:key="${k}" oe:value="${xmlAttr(v)}"/>`).join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" oe:id="">
   <PlatformSection><Kind>QEMU boot test</Kind></PlatformSection>
   <PropertySection>
${p}
   </PropertySection>
</Environment>
`;
}

function get(url: string, opts: https.RequestOptions = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { rejectUnauthorized: false, timeout: 10_000, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

interface Vm {
  proc: ChildProcess;
  serial: string;
  monitor: string;
}

function boot(name: string, system: string, data: string, iso?: string): Vm {
  const serial = path.join(WORK, `${name}-serial.log`);
  const monitor = path.join(WORK, `${name}-monitor.sock`);
  fs.rmSync(serial, { force: true });
  fs.rmSync(monitor, { force: true });
  // OVA_ACCEL=tcg forces emulation: some hosts offer /dev/kvm whose nested virtualization fails
  // ("KVM internal error. Suberror: 1" at the first boot).
  const accel = process.env.OVA_ACCEL ?? (fs.existsSync('/dev/kvm') && fs.accessSync('/dev/kvm', fs.constants.W_OK) === undefined ? 'kvm' : 'tcg');
  // OVMF cannot boot from PVSCSI: the system disk is on virtio-blk, the data disk on PVSCSI (the
  // OVF's controller, so its driver is exercised); OVA_BOOT_DISK_BUS=virtio puts both on virtio.
  const bus = process.env.OVA_BOOT_DISK_BUS ?? 'pvscsi';
  const args = [
    '-machine', `q35,accel=${accel}`, '-cpu', 'max', '-smp', '2', '-m', process.env.OVA_BOOT_MEM ?? '2048',
    '-bios', '/usr/share/ovmf/OVMF.fd', '-display', 'none', '-serial', `file:${serial}`, '-monitor', `unix:${monitor},server,nowait`,
    // the system disk is used copy-on-write (a pristine system disk at every boot, as after an upgrade)
    '-drive', `file=${system},format=vmdk,if=none,id=hd0,snapshot=on`,
    '-drive', `file=${data},format=raw,if=none,id=hd1`,
    ...(bus === 'pvscsi'
      ? ['-device', 'virtio-blk-pci,drive=hd0,bootindex=0', '-device', 'pvscsi,id=scsi0', '-device', 'scsi-hd,drive=hd1,bus=scsi0.0,scsi-id=1']
      : ['-device', 'virtio-blk-pci,drive=hd0,bootindex=0', '-device', 'virtio-blk-pci,drive=hd1']),
    '-netdev', `user,id=n0,hostname=dhcp-name,hostfwd=tcp:127.0.0.1:${P443}-:443,hostfwd=tcp:127.0.0.1:${P80}-:80`,
    '-device', 'vmxnet3,netdev=n0',
  ];
  if (iso) args.push('-drive', `file=${iso},format=raw,if=none,id=cd0,media=cdrom,readonly=on`, '-device', 'ide-cd,drive=cd0,bus=ide.1');
  log(`qemu (${accel}, ${bus}): ${name}`);
  const proc = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  return { proc, serial, monitor };
}

async function waitHealthy(vm: Vm): Promise<void> {
  const deadline = Date.now() + TIMEOUT_S * 1000;
  for (;;) {
    if (vm.proc.exitCode !== null) throw new Error(`qemu exited (${vm.proc.exitCode}); serial log:\n${tail(vm.serial)}`);
    try {
      const r = await get(`https://127.0.0.1:${P443}/api/v2.0/health`);
      if (r.status === 200) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`Berth not healthy after ${TIMEOUT_S} s; serial log:\n${tail(vm.serial)}`);
    await new Promise((r) => setTimeout(r, 3000));
  }
}

const tail = (f: string, n = 60) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').slice(-n).join('\n') : '(no serial log)');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const running = (vm: Vm) => vm.proc.exitCode === null && vm.proc.signalCode === null;

/** ACPI power button through the QEMU monitor, then wait (polling) for QEMU to exit; SIGKILL after 3 minutes. */
async function powerOff(vm: Vm): Promise<void> {
  if (!running(vm)) return;
  await new Promise<void>((resolve) => {
    const s = net.connect(vm.monitor, () => s.write('system_powerdown\n', () => setTimeout(() => s.destroy(), 1000)));
    s.on('error', (e) => {
      log(`monitor: ${e.message}`);
      resolve();
    });
    s.on('close', () => resolve());
  });
  for (let i = 0; i < 180 && running(vm); i++) await sleep(1000);
  if (running(vm)) {
    log('QEMU did not power off in 3 minutes: killing it');
    vm.proc.kill('SIGKILL');
    while (running(vm)) await sleep(200);
  }
}

function skopeo(args: string[], ok = true): string {
  const r = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 600_000 });
  if (ok && r.status !== 0) throw new Error(`skopeo ${args.join(' ')} failed:\n${r.stderr}`);
  if (!ok && r.status === 0) throw new Error(`skopeo ${args.join(' ')} unexpectedly succeeded`);
  return r.stdout + r.stderr;
}

function debugfsCat(img: string, file: string): string | undefined {
  const r = spawnSync('debugfs', ['-R', `cat ${file}`, img], { encoding: 'utf8' });
  return r.status === 0 && !/File not found/.test(r.stderr) ? r.stdout : undefined;
}

async function main(): Promise<void> {
  const skip = missingTool('qemu-system-x86_64', 'qemu-img', 'xorriso', 'skopeo', 'debugfs', 'tar');
  if (skip) {
    console.log(skip);
    return;
  }
  assert.ok(fs.existsSync('/usr/share/ovmf/OVMF.fd'), 'OVMF firmware missing: apt-get install ovmf');
  fs.mkdirSync(WORK, { recursive: true });

  if (process.env.OVA_SKIP_BUILD !== '1') {
    await timed('build (npm run ova)', () => {
      execFileSync('bash', [path.join(REPO, 'ova/build.sh')], { stdio: 'inherit', cwd: REPO });
    });
  }
  const dist = path.join(REPO, 'ova/dist');
  const ova = fs.readdirSync(dist).filter((f) => f.endsWith('.ova')).map((f) => path.join(dist, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  assert.ok(ova, 'no OVA in ova/dist');
  log(`OVA ${ova} (${(fs.statSync(ova).size / 2 ** 20).toFixed(0)} MiB)`);
  await timed('structure check', async () => {
    const r = await checkOva(ova);
    assert.deepEqual(r.failed, []);
    log(`${r.passed.length} structural checks passed`);
  });
  const vmdkName = tarMembers(ova).find((m) => m.name.endsWith('.vmdk'))!.name;
  const system = path.join(WORK, 'system.vmdk');
  const data = path.join(WORK, 'data.raw');
  const iso = path.join(WORK, 'ovf-env.iso');
  await timed('prepare disks and OVF ENV ISO', () => {
    execFileSync('tar', ['-xf', ova, '-C', WORK, vmdkName]);
    fs.renameSync(path.join(WORK, vmdkName), system);
    fs.rmSync(data, { force: true });
    execFileSync('truncate', ['-s', '4G', data]);
    const envDir = path.join(WORK, 'ovf-env');
    fs.rmSync(envDir, { recursive: true, force: true });
    fs.mkdirSync(envDir);
    fs.writeFileSync(path.join(envDir, 'ovf-env.xml'), ovfEnv({
      hostname: HOST,
      admin_password: PASSWORD,
      external_url: `https://localhost:${P443}`,
      ntp: '10.0.2.2',
      dns_search: 'example.test',
      ldap_url: 'ldaps://10.0.2.2:1636',
      ldap_base_dn: 'ou=people,dc=example,dc=test',
      ldap_uid: 'uid',
      ldap_verify_cert: 'false',
    }));
    fs.rmSync(iso, { force: true });
    execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-r', '-J', '-V', 'OVF ENV', '-o', iso, envDir]);
  });

  const layout = await multiArchLayout({ seed: 'ova-boot' });
  const certDir = path.join(WORK, 'certs');
  const repo = `localhost:${P443}/library/ova-boot`;
  const only = process.env.OVA_BOOT_ONLY; // e.g. "bad" to run one scenario
  let vm: Vm;
  if (!only || only === 'first') {
  vm = boot('first', system, data, iso);
  try {
    await timed('first boot to healthy Berth', () => waitHealthy(vm));
    await timed('checks against the running appliance', async () => {
      // the appliance CA on port 80, and a TLS handshake verified against it for the host name
      const ca = await get(`http://127.0.0.1:${P80}/ca.crt`);
      assert.equal(ca.status, 200);
      assert.match(ca.body, /-----BEGIN CERTIFICATE-----/);
      fs.rmSync(certDir, { recursive: true, force: true });
      fs.mkdirSync(certDir);
      fs.writeFileSync(path.join(certDir, 'ca.crt'), ca.body);
      for (const servername of [HOST, 'reg-boot01', 'localhost']) {
        const h = await get(`https://127.0.0.1:${P443}/api/v2.0/health`, { ca: ca.body, rejectUnauthorized: true, servername });
        assert.equal(h.status, 200, `verified TLS as ${servername}`);
      }
      // port 80 redirects to the external URL, keeping the path
      const red = await get(`http://127.0.0.1:${P80}/v2/`);
      assert.equal(red.status, 308);
      assert.equal(red.headers.location, `https://localhost:${P443}/v2/`);
      // LDAP properties reached Berth
      const info = JSON.parse((await get(`https://127.0.0.1:${P443}/api/v2.0/systeminfo`)).body);
      assert.equal(info.auth_mode, 'ldap_auth');
      // the admin password from the properties, and only it
      const auth = (pw: string) => ({ headers: { authorization: 'Basic ' + Buffer.from(`admin:${pw}`).toString('base64') } });
      const me = await get(`https://127.0.0.1:${P443}/api/v2.0/users/current`, auth(PASSWORD));
      assert.equal(me.status, 200, `admin login with the property password: ${me.body}`);
      assert.equal(JSON.parse(me.body).username, 'admin');
      assert.equal((await get(`https://127.0.0.1:${P443}/api/v2.0/users/current`, auth('wrong-password'))).status, 401);
      const infoAuthed = JSON.parse((await get(`https://127.0.0.1:${P443}/api/v2.0/systeminfo`, auth(PASSWORD))).body);
      assert.equal(infoAuthed.external_url, `https://localhost:${P443}`);
      // push and pull with skopeo, TLS verified with the downloaded CA
      const creds = `admin:${PASSWORD}`;
      skopeo(['copy', '--all', '--dest-creds', creds, '--dest-cert-dir', certDir, layout.ref, `docker://${repo}:v1`]);
      skopeo(['inspect', '--raw', '--creds', 'admin:wrong-password', '--cert-dir', certDir, `docker://${repo}:v1`], false);
      const raw = skopeo(['inspect', '--raw', '--creds', creds, '--cert-dir', certDir, `docker://${repo}:v1`]);
      assert.equal(JSON.parse(raw).manifests.length, 2);
      const pulled = path.join(WORK, 'pulled');
      fs.rmSync(pulled, { recursive: true, force: true });
      skopeo(['copy', '--all', '--src-creds', creds, '--src-cert-dir', certDir, `docker://${repo}:v1`, `oci:${pulled}:v1`]);
      const idx = JSON.parse(fs.readFileSync(path.join(pulled, 'index.json'), 'utf8'));
      assert.equal(idx.manifests[0].digest, layout.top.digest, 'pulled the pushed index, digest for digest');
      for (const b of layout.blobs) assert.ok(fs.existsSync(path.join(pulled, 'blobs/sha256', b.slice(7))), `blob ${b} pulled`);
      // the host name from the properties took effect (console login prompt and setup log)
      const deadline = Date.now() + 60_000;
      while (!new RegExp(`^${HOST.split('.')[0]} login:`, 'm').test(fs.readFileSync(vm.serial, 'utf8')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2000));
      const serial = fs.readFileSync(vm.serial, 'utf8');
      assert.match(serial, new RegExp(`^${HOST.split('.')[0]} login:`, 'm'), 'console login prompt shows the host name');
      assert.match(serial, /berth-setup: property source: OVF environment ISO/);
      assert.match(serial, /berth-setup: formatting blank disk/);
      assert.ok(!serial.includes(PASSWORD), 'the password never reaches the console');
    });
  } finally {
    await timed('power off', () => powerOff(vm));
  }

  await timed('inspect the data disk', () => {
    const hdr = execFileSync('dumpe2fs', ['-h', data], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.match(hdr, /Filesystem volume name:\s+berth-data/);
    execFileSync('e2fsck', ['-fn', data], { stdio: 'pipe' });
    const env = debugfsCat(data, '/config/berth.env');
    assert.ok(env, 'berth.env on the data disk');
    assert.match(env, /^BERTH_PORT='443'$/m);
    assert.match(env, /^BERTH_LDAP_URL='ldaps:\/\/10\.0\.2\.2:1636'$/m);
    assert.ok(!env.includes('BERTH_ADMIN_PASSWORD') && !env.includes('B0ot'), 'no admin password in berth.env');
    assert.equal(debugfsCat(data, '/config/firstrun.env'), undefined, 'firstrun.env (admin password) deleted after the first start');
    assert.ok(!(debugfsCat(data, '/config/appliance.conf') ?? '').includes('B0ot'), 'saved properties hold no secret');
    const ls = execFileSync('debugfs', ['-R', 'ls -l /data', data], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.match(ls, /berth\.db/);
    assert.match(ls, /storage/);
  });

  }
  if (!only && process.env.OVA_BOOT_UPGRADE !== '0') {
    vm = boot('upgrade', system, data);
    try {
      await timed('second boot: fresh system disk + existing data disk, no properties', () => waitHealthy(vm));
      await timed('checks after the system disk swap', async () => {
        const raw = skopeo(['inspect', '--raw', '--creds', `admin:${PASSWORD}`, '--cert-dir', certDir, `docker://${repo}:v1`]);
        assert.equal(JSON.parse(raw).manifests.length, 2, 'image still there, same CA, same admin password');
        const serial = fs.readFileSync(vm.serial, 'utf8');
        assert.match(serial, /property source: properties saved on the data disk/);
        assert.doesNotMatch(serial, /formatting blank disk/);
      });
    } finally {
      await timed('power off', () => powerOff(vm));
    }
  }
  if (!only || only === 'bad') {
    // bad properties: clear messages on the console naming each property, Berth not started
    const badIso = path.join(WORK, 'ovf-env-bad.iso');
    const badDir = path.join(WORK, 'ovf-env-bad');
    const badData = path.join(WORK, 'data-bad.raw');
    fs.rmSync(badDir, { recursive: true, force: true });
    fs.mkdirSync(badDir);
    fs.writeFileSync(path.join(badDir, 'ovf-env.xml'), ovfEnv({ hostname: 'bad_host!', ip: '10.0.2.300/24', admin_password: 'short', ldap_url: 'ldaps://dc.example.test' }));
    fs.rmSync(badIso, { force: true });
    execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-r', '-J', '-V', 'OVF ENV', '-o', badIso, badDir]);
    fs.rmSync(badData, { force: true });
    execFileSync('truncate', ['-s', '1G', badData]);
    vm = boot('bad', system, badData, badIso);
    try {
      await timed('boot with bad properties to the setup failure', async () => {
        const deadline = Date.now() + TIMEOUT_S * 1000;
        while (!/Berth is not started/.test(fs.existsSync(vm.serial) ? fs.readFileSync(vm.serial, 'utf8') : '') && Date.now() < deadline) {
          if (!running(vm)) throw new Error(`qemu exited; serial log:\n${tail(vm.serial)}`);
          await sleep(3000);
        }
        await sleep(5000);
        const serial = fs.readFileSync(vm.serial, 'utf8');
        assert.match(serial, /configuration FAILED/);
        for (const k of ['hostname', 'ip', 'admin_password', 'ldap_base_dn']) assert.match(serial, new RegExp(`ERROR: property ${k}: `), `console names ${k}`);
        assert.ok(!serial.includes('"short"'), 'the bad password is not echoed');
        await assert.rejects(get(`https://127.0.0.1:${P443}/api/v2.0/health`), 'Berth is not serving');
      });
    } finally {
      await timed('power off', () => powerOff(vm));
    }
    fs.rmSync(badData, { force: true });
  }
  layout.remove();
  console.log('\nOVA boot test passed. Timings:');
  for (const [n, s] of timings) console.log(`  ${n.padEnd(70)} ${s.toFixed(1).padStart(7)} s`);
  console.log(`  ${'total'.padEnd(70)} ${since(t0).padStart(7)} s`);
}

let finished = false;
process.on('exit', (code) => {
  if (!finished && code === 0) {
    console.error('boot test ended without finishing');
    process.exitCode = 1;
  }
});
const keepAlive = setInterval(() => {}, 10_000);
main().then(
  () => {
    finished = true;
    clearInterval(keepAlive);
  },
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
