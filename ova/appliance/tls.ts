// TLS material: checks of a supplied certificate/key (Node crypto) and a generated appliance CA +
// server certificate (openssl CLI, present on the appliance and on any Debian host).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Problems with a supplied certificate chain and key, or [] when they are usable. */
export function checkTlsPair(certPem: string, keyPem: string, now = new Date()): string[] {
  const problems: string[] = [];
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    return [`tls_cert: cannot be parsed (${(e as Error).message})`];
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    return [`tls_key: cannot be parsed (${(e as Error).message}); it must be an unencrypted PEM key`];
  }
  if (!cert.checkPrivateKey(key)) problems.push('tls_key: does not belong to the first certificate of tls_cert');
  if (new Date(cert.validTo) < now) problems.push(`tls_cert: expired on ${cert.validTo}`);
  if (new Date(cert.validFrom) > now) problems.push(`tls_cert: not valid before ${cert.validFrom}`);
  return problems;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Creates ca.crt/ca.key in dir unless they exist. Returns true when a new CA was made. */
export function ensureCa(dir: string, label: string): boolean {
  const crt = path.join(dir, 'ca.crt');
  const key = path.join(dir, 'ca.key');
  if (fs.existsSync(crt) && fs.existsSync(key)) return false;
  fs.mkdirSync(dir, { recursive: true });
  const old = process.umask(0o077);
  try {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt',
      '-days', '3650', '-sha256', '-subj', `/O=Berth appliance/CN=Berth appliance CA (${label})`,
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  } finally {
    process.umask(old);
  }
  fs.chmodSync(crt, 0o644);
  return true;
}

/** Issues server.crt/server.key in dir from the CA in dir, for the given names. */
export function issueServerCert(dir: string, names: { cn: string; dns: string[]; ips: string[] }, days = 825): void {
  const san = [...names.dns.map((d) => `DNS:${d}`), ...names.ips.map((i) => `IP:${i}`)].join(',');
  const ext = `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`;
  const old = process.umask(0o077);
  try {
    fs.writeFileSync(path.join(dir, 'server.ext'), ext);
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key.new', '-out', 'server.csr',
      '-subj', `/O=Berth appliance/CN=${names.cn}`], dir);
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '0x' + BigInt(Date.now()).toString(16) + Math.floor(Math.random() * 1e9).toString(16),
      '-days', String(days), '-sha256', '-extfile', 'server.ext', '-out', 'server.crt.new'], dir);
    // the chain Berth serves: server certificate, then the CA
    fs.writeFileSync(path.join(dir, 'server.crt.new'), fs.readFileSync(path.join(dir, 'server.crt.new'), 'utf8') + fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'));
    fs.renameSync(path.join(dir, 'server.key.new'), path.join(dir, 'server.key'));
    fs.renameSync(path.join(dir, 'server.crt.new'), path.join(dir, 'server.crt'));
  } finally {
    process.umask(old);
    for (const f of ['server.csr', 'server.ext']) fs.rmSync(path.join(dir, f), { force: true });
  }
  fs.chmodSync(path.join(dir, 'server.crt'), 0o644);
}
