// berth-setup: runs at every boot before the network and Berth (berth-setup.service).
//  1. finds the data disk (label berth-data; else formats a *blank* second disk) and mounts it at /var/lib/berth;
//  2. on the first boot of this system disk: reads the appliance properties (OVF environment via
//     VMware guestinfo or the "OVF ENV" ISO, guestinfo.berth.* keys, /etc/berth/appliance.conf, or
//     the properties saved on the data disk), validates all of them, and only then applies them:
//     hostname, network, NTP, TLS, Berth's environment, console password. A bad value stops here
//     with a message on the console and in the journal; Berth is not started half-configured.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { normalizePem, PROPERTIES, validateProperties } from './properties.ts';
import { GUESTINFO_PREFIX, parseConfFile, parseOvfEnvironment, redactConfFile } from './sources.ts';
import {
  berthEnv, certNames, DATA_LABEL, hostnameFiles, listen, PATHS, renderEnvFile, renderFirstrunEnv, renderHttp80, renderNetwork,
  renderSavedProperties, renderTimesyncd,
} from './render.ts';
import { checkTlsPair, ensureCa, issueServerCert } from './tls.ts';

const log = (msg: string) => console.log(`berth-setup: ${msg}`);
const problems: string[] = [];
const fail = (msg: string) => {
  problems.push(msg);
  console.log(`berth-setup: ERROR: ${msg}`);
};

function run(cmd: string, args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  return { code: r.status ?? -1, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() || (r.error?.message ?? '') };
}

function write(file: string, content: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, content, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

function berthIds(): { uid: number; gid: number } {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('berth:'));
  if (!line) throw new Error('user berth missing from the image');
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

// ---- data disk ----------------------------------------------------------------------------

function isBlank(dev: string): string | undefined {
  const children = run('lsblk', ['-nrpo', 'NAME', dev]).out.split('\n').filter(Boolean);
  if (children.length > 1) return 'has partitions';
  const probe = run('blkid', ['-p', '-o', 'export', dev]);
  if (probe.code === 0) return `holds ${/TYPE=(\S+)/.exec(probe.out)?.[1] ?? /PTTYPE=(\S+)/.exec(probe.out)?.[1] ?? 'a signature'}`;
  const fd = fs.openSync(dev, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    if (buf.subarray(0, n).some((b) => b !== 0)) return 'is not empty (non-zero data in the first MiB)';
  } finally {
    fs.closeSync(fd);
  }
  return undefined;
}

function ensureDataDisk(): boolean {
  run('udevadm', ['settle', '--timeout=20']);
  if (run('mountpoint', ['-q', PATHS.dataMount]).code === 0) return true;
  let dev = run('blkid', ['-o', 'device', '-t', `LABEL=${DATA_LABEL}`]).out.split('\n')[0] ?? '';
  if (!dev) {
    const rootSrc = run('findmnt', ['-no', 'SOURCE', '/']).out;
    const rootDisk = run('lsblk', ['-nrpo', 'PKNAME', rootSrc]).out.split('\n')[0];
    const disks = run('lsblk', ['-dnrpo', 'NAME,TYPE,RO']).out.split('\n').map((l) => l.split(' '))
      .filter(([name, type, ro]) => type === 'disk' && ro === '0' && name !== rootDisk && !/\/(loop|ram|zram)/.test(name!))
      .map(([name]) => name!);
    for (const d of disks) {
      const why = isBlank(d);
      if (why) {
        log(`disk ${d} ${why} and is not labelled ${DATA_LABEL}: left untouched`);
        continue;
      }
      log(`formatting blank disk ${d} as the data disk (ext4, label ${DATA_LABEL})`);
      const r = run('mkfs.ext4', ['-q', '-L', DATA_LABEL, '-m', '1', d]);
      if (r.code !== 0) {
        fail(`mkfs.ext4 ${d} failed: ${r.err}`);
        return false;
      }
      dev = d;
      break;
    }
  }
  if (!dev) {
    fail(`no data disk: attach a blank disk (it is formatted on boot) or the ${DATA_LABEL} disk of a previous Berth appliance`);
    return false;
  }
  const fsck = run('fsck.ext4', ['-p', dev]);
  if (fsck.code >= 4) {
    fail(`file system check of the data disk ${dev} failed (exit ${fsck.code}): ${fsck.out} ${fsck.err}; repair it with e2fsck from the console`);
    return false;
  }
  fs.mkdirSync(PATHS.dataMount, { recursive: true });
  const m = run('mount', ['-o', 'noatime', dev, PATHS.dataMount]);
  if (m.code !== 0) {
    fail(`cannot mount the data disk ${dev}: ${m.err}`);
    return false;
  }
  run('resize2fs', [dev]); // grows the file system after the disk was enlarged; a no-op otherwise
  const { uid, gid } = berthIds();
  fs.mkdirSync(PATHS.dataDir, { recursive: true, mode: 0o750 });
  fs.chownSync(PATHS.dataDir, uid, gid);
  fs.mkdirSync(PATHS.configDir, { recursive: true, mode: 0o755 });
  log(`data disk ${dev} mounted on ${PATHS.dataMount}`);
  return true;
}

// ---- property sources ---------------------------------------------------------------------

interface Source {
  name: string;
  /** The data disk's own saved properties: its Berth configuration (env, TLS) is kept as it is. */
  saved?: boolean;
  props: Record<string, string>;
  cleanup?: () => void;
}

function fromGuestinfo(): Source | undefined {
  if (run('systemd-detect-virt', []).out !== 'vmware') return undefined;
  const env = run('vmware-rpctool', ['info-get guestinfo.ovfEnv']);
  if (env.code === 0 && env.out.includes('Environment')) return { name: 'VMware guestinfo (OVF environment)', props: parseOvfEnvironment(env.out) };
  const props: Record<string, string> = {};
  for (const p of PROPERTIES) {
    const r = run('vmware-rpctool', [`info-get ${GUESTINFO_PREFIX}${p.key}`]);
    if (r.code === 0) props[p.key] = r.out;
  }
  if (!Object.keys(props).length) return undefined;
  return {
    name: `VMware guestinfo (${GUESTINFO_PREFIX}*)`,
    props,
    cleanup: () => {
      for (const p of PROPERTIES) if (p.secret && props[p.key]) run('vmware-rpctool', [`info-set ${GUESTINFO_PREFIX}${p.key} `]);
    },
  };
}

function fromIso(): Source | undefined {
  const devs = run('blkid', ['-o', 'device', '-t', 'LABEL=OVF ENV']).out.split('\n').filter(Boolean);
  for (const dev of devs) {
    const mnt = fs.mkdtempSync('/run/berth-ovfenv-');
    try {
      if (run('mount', ['-o', 'ro', dev, mnt]).code !== 0) continue;
      try {
        const f = fs.readdirSync(mnt).find((n) => n.toLowerCase() === 'ovf-env.xml');
        if (f) return { name: `OVF environment ISO (${dev})`, props: parseOvfEnvironment(fs.readFileSync(path.join(mnt, f), 'utf8')) };
      } finally {
        run('umount', [mnt]);
      }
    } finally {
      fs.rmSync(mnt, { recursive: true, force: true });
    }
  }
  return undefined;
}

function fromFile(file: string, name: string, redact: boolean): Source | undefined {
  if (!fs.existsSync(file)) return undefined;
  const text = fs.readFileSync(file, 'utf8');
  const { props, errors } = parseConfFile(text);
  for (const e of errors) fail(`${file}: ${e}`);
  return { name, props, cleanup: redact ? () => write(file, redactConfFile(text), 0o600) : undefined };
}

function readSource(): Source {
  const tried: (() => Source | undefined)[] = [
    fromGuestinfo,
    fromIso,
    () => fromFile(PATHS.confFile, PATHS.confFile, true),
    () => {
      const src = fromFile(PATHS.savedProps, `properties saved on the data disk (${PATHS.savedProps})`, false);
      return src && fs.existsSync(PATHS.env) ? { ...src, saved: true } : src;
    },
  ];
  for (const t of tried) {
    try {
      const s = t();
      if (s) return s;
    } catch (e) {
      fail(`reading the properties: ${(e as Error).message}`);
    }
  }
  return { name: 'defaults (no OVF environment, guestinfo or config file found)', props: {} };
}

// ---- apply ----------------------------------------------------------------------------------

function applyTls(values: Record<string, string>): boolean {
  if (listen(values).protocol !== 'https') return false;
  const { gid } = berthIds();
  fs.mkdirSync(PATHS.tlsDir, { recursive: true, mode: 0o755 });
  if (values.tls_cert) {
    const cert = normalizePem(values.tls_cert)!;
    const key = normalizePem(values.tls_key!)!;
    write(PATHS.serverCert, cert, 0o644);
    write(PATHS.serverKey, key, 0o640);
    fs.chownSync(PATHS.serverKey, 0, gid);
    fs.rmSync(PATHS.caCert, { force: true }); // a CA we generated earlier no longer signs what is served
    log('TLS: using the supplied certificate');
    return false;
  }
  if (ensureCa(PATHS.tlsDir, values.hostname!)) log('TLS: created the appliance CA');
  issueServerCert(PATHS.tlsDir, certNames(values));
  fs.chownSync(PATHS.serverKey, 0, gid);
  fs.chmodSync(PATHS.serverKey, 0o640);
  const n = certNames(values);
  log(`TLS: issued the server certificate for ${[...n.dns, ...n.ips].join(', ')}; clients trust http://${values.hostname}/ca.crt`);
  return true;
}

async function berthAccepts(env: Record<string, string>): Promise<string | undefined> {
  const mod = '/opt/berth/dist/src/config/index.js';
  if (!fs.existsSync(mod)) return undefined;
  try {
    const { loadConfig } = (await import(mod)) as { loadConfig: (e: Record<string, string>) => unknown };
    loadConfig(env);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

async function configure(): Promise<boolean> {
  const source = readSource();
  log(`property source: ${source.name}`);
  const { values, errors: all, warnings } = validateProperties(source.props);
  // secrets are not saved with the properties: with the data disk's own configuration they are in berth.env already
  const errors = source.saved ? all.filter((e) => !e.startsWith('ldap_search_password:')) : all;
  for (const w of warnings) log(`warning: ${w}`);
  for (const e of errors) fail(`property ${e}`);
  if (!errors.length && values.tls_cert && listen(values).protocol === 'https') {
    for (const e of checkTlsPair(normalizePem(values.tls_cert)!, normalizePem(values.tls_key!)!)) fail(`property ${e}`);
  }
  if (problems.length) return false;

  // everything validated: apply
  const h = hostnameFiles(values);
  write('/etc/hostname', h.hostname);
  write('/etc/hosts', h.hosts);
  run('hostname', [h.hostname.trim()]);
  log(`hostname ${values.hostname}`);
  write(PATHS.network, renderNetwork(values));
  fs.rmSync('/etc/systemd/network/99-default.network', { force: true });
  log(values.ip ? `network: static ${values.ip}${values.gateway ? ` via ${values.gateway}` : ''}` : 'network: DHCP');
  const ntp = renderTimesyncd(values);
  if (ntp) write(PATHS.timesyncd, ntp);
  else fs.rmSync(PATHS.timesyncd, { force: true });
  run('systemctl', ['--no-block', 'try-restart', 'systemd-timesyncd.service']);
  if (values.console_password) {
    const r = run('chpasswd', [], `admin:${values.console_password}\n`);
    if (r.code !== 0) fail(`setting the console password failed: ${r.err}`);
    else {
      run('usermod', ['-U', 'admin']);
      log('console/SSH user "admin" unlocked');
    }
  }

  if (source.saved) {
    // a new system disk on an existing data disk (upgrade): Berth's configuration stays as it is
    log('keeping the Berth configuration of the data disk (berth.env, TLS)');
    writeIssue(values);
    return true;
  }
  const caMade = applyTls(values);
  if (values.ldap_url && values.ldap_ca_cert) write(PATHS.ldapCa, normalizePem(values.ldap_ca_cert)!, 0o644);
  const env = berthEnv(values);
  write(PATHS.env, renderEnvFile(env, 'Written by berth-setup from the appliance properties; read by berth.service.'), 0o600);
  const firstrun = renderFirstrunEnv(values);
  if (firstrun) write(PATHS.firstrunEnv, firstrun, 0o600);
  const http80 = renderHttp80(values, caMade || fs.existsSync(PATHS.caCert));
  if (http80) write(PATHS.http80, http80);
  else fs.rmSync(PATHS.http80, { force: true });
  write(PATHS.savedProps, renderSavedProperties(values), 0o644);

  const refused = await berthAccepts(env);
  if (refused) {
    fail(`Berth refuses the resulting configuration: ${refused}`);
    return false;
  }
  // secrets from the property source do not stay on disk
  source.cleanup?.();
  writeIssue(values);
  return true;
}

function writeIssue(values: Record<string, string>): void {
  const l = listen(values);
  const url = values.external_url || `${l.protocol}://${values.hostname}${l.port === (l.protocol === 'https' ? 443 : 80) ? '' : `:${l.port}`}`;
  const ca = fs.existsSync(PATHS.http80) && fs.existsSync(PATHS.caCert) ? `  (CA certificate: http://${values.hostname}/ca.crt)` : '';
  write(PATHS.issue, `Berth registry: ${url}/${ca}\nSupport bundle: sudo berth-support-bundle\n\n`);
}

async function main(): Promise<number> {
  fs.mkdirSync(PATHS.stateDir, { recursive: true, mode: 0o755 });
  if (run('ssh-keygen', ['-A']).code !== 0) log('warning: ssh-keygen -A failed');
  if (!ensureDataDisk()) return report();
  if (fs.existsSync(PATHS.marker) && fs.existsSync(PATHS.env)) {
    log('already configured');
    return 0;
  }
  if (!(await configure())) return report();
  write(PATHS.marker, new Date().toISOString() + '\n');
  log('configuration complete');
  return 0;
}

function report(): number {
  const text = ['', 'Berth appliance: configuration FAILED. Berth is not started.', ...problems.map((p) => `  - ${p}`),
    'Fix the vApp properties (or /etc/berth/appliance.conf) and reboot.', ''].join('\n');
  console.log(text);
  try {
    write(PATHS.issue, text.replace(/\\/g, '\\\\') + '\n');
  } catch {
    /* read-only root: the console message is all we can do */
  }
  return 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    fail(`unexpected: ${(e as Error).stack ?? e}`);
    process.exit(report());
  },
);

