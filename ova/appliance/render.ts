// Pure functions turning validated properties into the appliance's files. main/setup.ts writes them.
import { isIPv4, list, normalizePem, SECRET_KEYS, PROPERTIES } from './properties.ts';

/** Paths on the appliance. The data disk is mounted at DATA_MOUNT. */
export const PATHS = {
  dataMount: '/var/lib/berth',
  dataDir: '/var/lib/berth/data',
  configDir: '/var/lib/berth/config',
  env: '/var/lib/berth/config/berth.env',
  firstrunEnv: '/var/lib/berth/config/firstrun.env',
  savedProps: '/var/lib/berth/config/appliance.conf',
  http80: '/var/lib/berth/config/http80.json',
  tlsDir: '/var/lib/berth/config/tls',
  serverCert: '/var/lib/berth/config/tls/server.crt',
  serverKey: '/var/lib/berth/config/tls/server.key',
  caCert: '/var/lib/berth/config/tls/ca.crt',
  caKey: '/var/lib/berth/config/tls/ca.key',
  ldapCa: '/var/lib/berth/config/ldap-ca.crt',
  stateDir: '/var/lib/berth-appliance',
  marker: '/var/lib/berth-appliance/configured',
  confFile: '/etc/berth/appliance.conf',
  network: '/etc/systemd/network/10-berth.network',
  timesyncd: '/etc/systemd/timesyncd.conf.d/berth.conf',
  issue: '/etc/issue.d/berth.issue',
} as const;

export const DATA_LABEL = 'berth-data';

/**
 * One systemd EnvironmentFile line. Single quotes keep everything literal; a value containing a
 * single quote goes in double quotes with \ " ` $ escaped (systemd's env-file rules).
 */
export function envLine(key: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`${key}: value must be a single line`);
  if (!value.includes("'")) return `${key}='${value}'`;
  return `${key}="${value.replace(/[\\"`$]/g, (c) => '\\' + c)}"`;
}

export interface Listen {
  protocol: 'https' | 'http';
  port: number;
}

export function listen(values: Record<string, string>): Listen {
  return values.protocol === 'http' ? { protocol: 'http', port: Number(values.http_port || 80) } : { protocol: 'https', port: 443 };
}

/** Berth's environment variables (no admin password: that one goes to firstrun.env, deleted after the first start). */
export function berthEnv(values: Record<string, string>): Record<string, string> {
  const l = listen(values);
  const env: Record<string, string> = {
    BERTH_HOST: '0.0.0.0',
    BERTH_PORT: String(l.port),
    BERTH_DATA_DIR: PATHS.dataDir,
    BERTH_LOG_LEVEL: 'info',
  };
  if (l.protocol === 'https') Object.assign(env, { BERTH_TLS_CERT: PATHS.serverCert, BERTH_TLS_KEY: PATHS.serverKey });
  if (values.external_url) env.BERTH_EXTERNAL_URL = values.external_url.replace(/\/+$/, '');
  if (values.ldap_url) {
    for (const p of PROPERTIES) {
      if (!p.env || !p.key.startsWith('ldap_') || !values[p.key]) continue;
      env[p.env] = values[p.key]!;
    }
    if (values.ldap_ca_cert) env.BERTH_LDAP_CA_FILE = PATHS.ldapCa;
  }
  return env;
}

export function renderEnvFile(env: Record<string, string>, comment: string): string {
  return [`# ${comment}`, ...Object.entries(env).map(([k, v]) => envLine(k, v))].join('\n') + '\n';
}

/** berth.env, read by berth.service. */
export function renderBerthEnv(values: Record<string, string>): string {
  return renderEnvFile(berthEnv(values), 'Written by berth-setup from the appliance properties. Berth reads it through berth.service.');
}

export function renderFirstrunEnv(values: Record<string, string>): string | undefined {
  return values.admin_password ? `# Deleted once Berth has started for the first time.\n${envLine('BERTH_ADMIN_PASSWORD', values.admin_password)}\n` : undefined;
}

/** systemd-networkd configuration for the first Ethernet interface. */
export function renderNetwork(values: Record<string, string>): string {
  const out = ['# Written by berth-setup from the appliance properties.', '[Match]', 'Name=en* eth*', '', '[Network]'];
  if (values.ip) {
    out.push(`Address=${values.ip}`);
    if (values.gateway) out.push(`Gateway=${values.gateway}`);
  } else {
    out.push('DHCP=yes');
  }
  for (const d of list(values.dns ?? '')) out.push(`DNS=${d}`);
  if (values.dns_search) out.push(`Domains=${list(values.dns_search).join(' ')}`);
  if (!values.ip) out.push('', '[DHCPv4]', 'UseDomains=yes', `UseNTP=${values.ntp ? 'no' : 'yes'}`);
  return out.join('\n') + '\n';
}

export function renderTimesyncd(values: Record<string, string>): string | undefined {
  if (!values.ntp) return undefined;
  return `# Written by berth-setup from the appliance properties.\n[Time]\nNTP=${list(values.ntp).join(' ')}\n`;
}

export function hostnameFiles(values: Record<string, string>): { hostname: string; hosts: string } {
  const fqdn = values.hostname!.toLowerCase();
  const short = fqdn.split('.')[0]!;
  const names = fqdn === short ? short : `${fqdn} ${short}`;
  return {
    hostname: short + '\n',
    hosts: `127.0.0.1\tlocalhost\n127.0.1.1\t${names}\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n`,
  };
}

/** Subject alternative names of the generated server certificate. */
export function certNames(values: Record<string, string>): { cn: string; dns: string[]; ips: string[] } {
  const fqdn = values.hostname!.toLowerCase();
  const dns = new Set([fqdn, fqdn.split('.')[0]!]);
  const ips = new Set<string>();
  if (values.external_url) {
    const h = new URL(values.external_url).hostname.replace(/^\[|\]$/g, '');
    if (isIPv4(h) || h.includes(':')) ips.add(h);
    else dns.add(h.toLowerCase());
  }
  if (values.ip) ips.add(values.ip.split('/')[0]!);
  return { cn: fqdn, dns: [...dns], ips: [...ips] };
}

/** The port-80 listener's configuration (protocol=https only): where to redirect, which CA to offer. */
export function renderHttp80(values: Record<string, string>, caAvailable: boolean): string | undefined {
  if (listen(values).protocol !== 'https') return undefined;
  let redirectBase: string | null = null;
  if (values.external_url) {
    const u = new URL(values.external_url);
    if (u.protocol === 'https:') redirectBase = u.origin;
  }
  return JSON.stringify({ redirectBase, caFile: caAvailable ? PATHS.caCert : null }, null, 2) + '\n';
}

/** The non-secret properties, saved on the data disk so a new system disk can reuse them (upgrade). */
export function renderSavedProperties(values: Record<string, string>): string {
  const lines = ['# Appliance properties saved by berth-setup (secrets are not saved).', '# A new system disk uses them when no OVF environment is supplied.'];
  for (const p of PROPERTIES) {
    if (SECRET_KEYS.has(p.key) || p.key === 'tls_cert' || p.key === 'ldap_ca_cert') continue;
    const v = values[p.key] ?? '';
    if (v === p.default) continue;
    lines.push(`${p.key}="${v.replace(/[\\"]/g, (c) => '\\' + c)}"`);
  }
  return lines.join('\n') + '\n';
}

export { normalizePem };
