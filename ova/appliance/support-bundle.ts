// berth-support-bundle: collects logs, status and configuration (without secrets) into
// /var/tmp/berth-support-<host>-<time>.tar.gz for a support case.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PATHS } from './render.ts';
import { redactEnvText, scrub, secretValues } from './redact.ts';

const read = (f: string) => {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return '';
  }
};
const secrets = secretValues(read(PATHS.env), read(PATHS.firstrunEnv), read(PATHS.confFile));
const stamp = new Date().toISOString().replace(/[:.]/g, '').slice(0, 15);
const name = `berth-support-${os.hostname()}-${stamp}`;
const outDir = process.argv[2] ?? '/var/tmp';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-support-'));
const root = path.join(dir, name);
fs.mkdirSync(root);

function save(file: string, text: string): void {
  fs.writeFileSync(path.join(root, file), scrub(text, secrets));
}
function cmd(file: string, command: string, args: string[]): void {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 256 << 20, timeout: 60_000 });
  save(file, `$ ${command} ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `error: ${r.error.message}\n` : ''}`);
}

cmd('journal-berth.txt', 'journalctl', ['--no-pager', '-o', 'short-iso', '-u', 'berth', '-u', 'berth-setup', '-u', 'berth-http', '-n', '20000']);
cmd('journal-boot.txt', 'journalctl', ['--no-pager', '-o', 'short-iso', '-b', '-n', '5000']);
cmd('journal-disk-usage.txt', 'journalctl', ['--disk-usage']);
cmd('systemctl-status.txt', 'systemctl', ['status', '--no-pager', '--full', 'berth', 'berth-setup', 'berth-http', 'systemd-networkd', 'systemd-timesyncd']);
cmd('systemctl-failed.txt', 'systemctl', ['--failed', '--no-pager']);
cmd('network.txt', 'sh', ['-c', 'ip addr; ip route; ip -6 route; resolvectl status 2>&1; networkctl status --no-pager 2>&1']);
cmd('time.txt', 'timedatectl', ['timesync-status']);
cmd('disks.txt', 'sh', ['-c', 'lsblk -f; df -h; findmnt']);
cmd('system.txt', 'sh', ['-c', 'cat /etc/os-release; uname -a; uptime; free -m; /usr/local/bin/node --version; cat /opt/berth/package.json | head -5']);
cmd('tls.txt', 'sh', ['-c', `for f in ${PATHS.serverCert} ${PATHS.caCert}; do [ -f $f ] && echo "== $f" && openssl x509 -noout -subject -issuer -dates -ext subjectAltName -in $f; done`]);
cmd('health.txt', 'sh', ['-c', 'for u in https://127.0.0.1/api/v2.0/health http://127.0.0.1/api/v2.0/health; do echo "== $u"; /usr/local/bin/node -e "fetch(process.argv[1]).then(async r=>console.log(r.status, await r.text())).catch(e=>console.log(e.cause?.code??e.message))" $u; done']);
save('berth.env.txt', redactEnvText(read(PATHS.env)));
save('appliance.conf.txt', redactEnvText(read(PATHS.savedProps)));
save('fallback-appliance.conf.txt', redactEnvText(read(PATHS.confFile)));
save('network-config.txt', [PATHS.network, PATHS.timesyncd, '/etc/hostname', '/etc/hosts'].map((f) => `== ${f}\n${read(f)}`).join('\n'));
save('setup-state.txt', `configured: ${read(PATHS.marker) || 'no'}\nfirstrun.env present: ${fs.existsSync(PATHS.firstrunEnv)}\n`);

fs.mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, `${name}.tar.gz`);
const t = spawnSync('tar', ['-czf', out, '-C', dir, name], { stdio: 'inherit' });
fs.rmSync(dir, { recursive: true, force: true });
if (t.status !== 0) process.exit(1);
fs.chmodSync(out, 0o600);
console.log(`support bundle: ${out}`);
