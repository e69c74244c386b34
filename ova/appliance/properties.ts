// The appliance's OVF properties: one table drives the OVF ProductSection (what vSphere shows in
// the deploy form), the parser of the OVF environment, and the validation at first boot.
// No dependencies: this file is compiled into the appliance and imported by the unit tests.

export type PropertyType = 'string' | 'boolean' | 'password' | 'enum';

export interface PropertyDef {
  key: string;
  category: string;
  label: string;
  description: string;
  type: PropertyType;
  /** Default value shown in the deploy form ('' = empty). */
  default: string;
  /** Allowed values for 'enum'. */
  values?: string[];
  /** Secret: ovf:password="true", never stored on disk after first boot, never in a support bundle. */
  secret?: boolean;
  /** The Berth environment variable this property sets directly (value copied after validation). */
  env?: string;
  /** Returns a problem description, or undefined when the (non-empty) value is fine. */
  check?: (v: string) => string | undefined;
}

const HOST_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
export function isHostname(v: string): boolean {
  return v.length <= 253 && v.split('.').every((l) => HOST_LABEL.test(l));
}

export function isIPv4(v: string): boolean {
  const p = v.split('.');
  return p.length === 4 && p.every((o) => /^(0|[1-9]\d{0,2})$/.test(o) && Number(o) <= 255);
}

export function isIPv6(v: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(v) || !v.includes(':')) return false;
  const dbl = v.split('::');
  if (dbl.length > 2) return false;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const parts = [...groups(dbl[0]!), ...(dbl.length === 2 ? groups(dbl[1]!) : [])];
  let n = 0;
  for (const [i, g] of parts.entries()) {
    if (i === parts.length - 1 && isIPv4(g)) n += 2;
    else if (/^[0-9A-Fa-f]{1,4}$/.test(g)) n += 1;
    else return false;
  }
  return dbl.length === 2 ? n < 8 : n === 8;
}

const isIP = (v: string) => isIPv4(v) || isIPv6(v);

/** "a, b c" -> ["a","b","c"] */
export function list(v: string): string[] {
  return v.split(/[\s,;]+/).filter(Boolean);
}

function checkCidr(v: string): string | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(v);
  if (!m) return 'must be an address with a prefix length, e.g. 192.0.2.10/24 (leave empty for DHCP)';
  const [, addr, len] = m as unknown as [string, string, string];
  if (isIPv4(addr)) return Number(len) >= 1 && Number(len) <= 32 ? undefined : 'IPv4 prefix length must be 1..32';
  if (isIPv6(addr)) return Number(len) >= 1 && Number(len) <= 128 ? undefined : 'IPv6 prefix length must be 1..128';
  return `"${addr}" is not an IPv4 or IPv6 address`;
}

const checkIPList = (v: string) => {
  const bad = list(v).filter((x) => !isIP(x));
  return bad.length ? `not an IP address: ${bad.join(', ')}` : undefined;
};

const checkNtp = (v: string) => {
  const bad = list(v).filter((x) => !isIP(x) && !isHostname(x));
  return bad.length ? `not a host name or IP address: ${bad.join(', ')}` : undefined;
};

function checkUrl(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'must be a URL such as https://registry.example.com';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must start with http:// or https://';
  if (u.pathname !== '/' || u.search || u.hash) return 'must not have a path, query or fragment (only scheme, host and port)';
  if (u.username || u.password) return 'must not contain credentials';
  return undefined;
}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/**
 * A PEM value typed into a one-line form field: accepts real PEM, PEM whose line breaks became
 * spaces, or the whole PEM base64-encoded once more. Returns proper PEM text, or undefined.
 */
export function normalizePem(raw: string): string | undefined {
  let text = raw.trim();
  if (!text) return undefined;
  if (!text.includes('-----BEGIN')) {
    const compact = text.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+=*$/.test(compact)) return undefined;
    text = Buffer.from(compact, 'base64').toString('utf8');
    if (!text.includes('-----BEGIN')) return undefined;
  }
  const blocks: string[] = [];
  for (const m of text.matchAll(PEM_RE)) {
    const body = m[2]!.replace(/\s+/g, '');
    // Headers like "Proc-Type:" (encrypted legacy keys) are not supported: the key must be usable unattended.
    if (!/^[A-Za-z0-9+/]+=*$/.test(body)) return undefined;
    blocks.push(`-----BEGIN ${m[1]}-----\n${body.match(/.{1,64}/g)!.join('\n')}\n-----END ${m[1]}-----\n`);
  }
  return blocks.length ? blocks.join('') : undefined;
}

function checkCert(v: string): string | undefined {
  const pem = normalizePem(v);
  if (!pem || !/-----BEGIN CERTIFICATE-----/.test(pem)) return 'must be a PEM certificate (-----BEGIN CERTIFICATE----- ...), as is or base64-encoded';
  return undefined;
}

function checkKey(v: string): string | undefined {
  const pem = normalizePem(v);
  if (!pem || !/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(pem)) return 'must be an unencrypted PEM private key (-----BEGIN PRIVATE KEY----- ...), as is or base64-encoded';
  return undefined;
}

const checkDn = (v: string) => (/^[A-Za-z][\w-]*=.+/.test(v) && !/[\r\n]/.test(v) ? undefined : 'must be a distinguished name such as dc=example,dc=com');
const checkAttr = (v: string) => (/^[A-Za-z][A-Za-z0-9-]*$/.test(v) ? undefined : 'must be an LDAP attribute name');
const checkFilter = (v: string) => (/^\(.*\)$/.test(v) ? undefined : 'must be an LDAP filter in parentheses, e.g. (objectClass=person)');

export const PROPERTIES: PropertyDef[] = [
  // Network
  { key: 'hostname', category: 'Network', label: 'Host name', type: 'string', default: 'berth',
    description: 'Host name of the appliance; a fully qualified name (registry.example.com) also sets the domain. Used in the generated TLS certificate.',
    check: (v) => (isHostname(v) ? undefined : 'must be a host name: letters, digits and hyphens, dot-separated labels of at most 63 characters') },
  { key: 'ip', category: 'Network', label: 'IP address (CIDR)', type: 'string', default: '',
    description: 'Static address with prefix length, e.g. 192.0.2.10/24. Leave empty to use DHCP.', check: checkCidr },
  { key: 'gateway', category: 'Network', label: 'Default gateway', type: 'string', default: '',
    description: 'Default gateway for the static address (ignored with DHCP).', check: (v) => (isIP(v) ? undefined : 'must be an IP address') },
  { key: 'dns', category: 'Network', label: 'DNS servers', type: 'string', default: '',
    description: 'Comma-separated DNS server addresses. With DHCP they are used in addition to the DHCP ones.', check: checkIPList },
  { key: 'dns_search', category: 'Network', label: 'DNS search domains', type: 'string', default: '',
    description: 'Comma-separated search domains (optional).',
    check: (v) => (list(v).every(isHostname) ? undefined : 'must be comma-separated domain names') },
  { key: 'ntp', category: 'Network', label: 'NTP servers', type: 'string', default: '',
    description: 'Comma-separated NTP servers (host names or addresses). Empty: servers from DHCP, else Debian\'s pool.', check: checkNtp },
  // Registry
  { key: 'admin_password', category: 'Registry', label: 'Admin password', type: 'password', secret: true, default: '', env: 'BERTH_ADMIN_PASSWORD',
    description: 'Password of Berth\'s built-in "admin" user, set on the first start (at least 8 characters). Empty: a password is generated into /var/lib/berth/data/initial-admin-password (0600), removed once the admin changes it.',
    check: (v) => (v.length >= 8 ? undefined : 'must be at least 8 characters') },
  { key: 'external_url', category: 'Registry', label: 'External URL', type: 'string', default: '', env: 'BERTH_EXTERNAL_URL',
    description: 'How clients reach the registry, e.g. https://registry.example.com (used in redirects and the token realm). Empty: derived from each request.', check: checkUrl },
  { key: 'protocol', category: 'Registry', label: 'Protocol', type: 'enum', values: ['https', 'http'], default: 'https',
    description: 'https: Berth serves TLS on port 443 and port 80 redirects to it (and offers /ca.crt). http: plain HTTP on the HTTP port (only for trusted networks).' },
  { key: 'http_port', category: 'Registry', label: 'HTTP port', type: 'string', default: '80',
    description: 'Port of plain-HTTP mode (protocol=http).',
    check: (v) => (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? undefined : 'must be a port number 1..65535') },
  { key: 'tls_cert', category: 'Registry', label: 'TLS certificate (PEM)', type: 'string', default: '',
    description: 'Server certificate chain in PEM (as is, with line breaks as spaces, or base64-encoded). Empty: the appliance creates its own CA and certificate; download the CA from http://<host>/ca.crt.', check: checkCert },
  { key: 'tls_key', category: 'Registry', label: 'TLS private key (PEM)', type: 'password', secret: true, default: '',
    description: 'Unencrypted private key of the TLS certificate, PEM or base64-encoded PEM.', check: checkKey },
  { key: 'console_password', category: 'Registry', label: 'Console/SSH password', type: 'password', secret: true, default: '',
    description: 'Password of the operating-system user "admin" (console and SSH, with sudo). Empty: the account stays locked.',
    check: (v) => (v.length >= 8 ? undefined : 'must be at least 8 characters') },
  // Directory
  { key: 'ldap_url', category: 'Directory (LDAP/AD)', label: 'LDAP URL', type: 'string', default: '', env: 'BERTH_LDAP_URL',
    description: 'ldaps://host[:port] or ldap://host[:port] of the directory. Empty: no directory, local users only.',
    check: (v) => (/^ldaps?:\/\/[^\s/]+\/?$/.test(v) ? undefined : 'must be ldap://host[:port] or ldaps://host[:port]') },
  { key: 'ldap_base_dn', category: 'Directory (LDAP/AD)', label: 'User base DN', type: 'string', default: '', env: 'BERTH_LDAP_BASE_DN',
    description: 'Where users are searched, e.g. ou=people,dc=example,dc=com (required with an LDAP URL).', check: checkDn },
  { key: 'ldap_search_dn', category: 'Directory (LDAP/AD)', label: 'Search (bind) DN', type: 'string', default: '', env: 'BERTH_LDAP_SEARCH_DN',
    description: 'DN Berth binds as to search users; empty for an anonymous search.', check: checkDn },
  { key: 'ldap_search_password', category: 'Directory (LDAP/AD)', label: 'Search password', type: 'password', secret: true, default: '', env: 'BERTH_LDAP_SEARCH_PASSWORD',
    description: 'Password of the search DN.' },
  { key: 'ldap_uid', category: 'Directory (LDAP/AD)', label: 'Login attribute', type: 'string', default: 'uid', env: 'BERTH_LDAP_UID',
    description: 'Attribute matched against the login name: uid (OpenLDAP) or sAMAccountName (Active Directory).', check: checkAttr },
  { key: 'ldap_filter', category: 'Directory (LDAP/AD)', label: 'User filter', type: 'string', default: '', env: 'BERTH_LDAP_FILTER',
    description: 'Extra filter users must match, e.g. (objectClass=person).', check: checkFilter },
  { key: 'ldap_scope', category: 'Directory (LDAP/AD)', label: 'Search scope', type: 'enum', values: ['sub', 'one', 'base'], default: 'sub', env: 'BERTH_LDAP_SCOPE',
    description: 'Scope of the user search below the base DN.' },
  { key: 'ldap_verify_cert', category: 'Directory (LDAP/AD)', label: 'Verify the LDAP certificate', type: 'boolean', default: 'true', env: 'BERTH_LDAP_VERIFY_CERT',
    description: 'Check the directory\'s TLS certificate (ldaps://).' },
  { key: 'ldap_ca_cert', category: 'Directory (LDAP/AD)', label: 'LDAP CA certificate (PEM)', type: 'string', default: '',
    description: 'CA certificate that signed the directory\'s certificate (PEM or base64-encoded PEM); empty: the system CAs.', check: checkCert },
  { key: 'ldap_group_base_dn', category: 'Directory (LDAP/AD)', label: 'Group base DN', type: 'string', default: '', env: 'BERTH_LDAP_GROUP_BASE_DN',
    description: 'Where groups are searched, e.g. ou=groups,dc=example,dc=com.', check: checkDn },
  { key: 'ldap_group_filter', category: 'Directory (LDAP/AD)', label: 'Group filter', type: 'string', default: '', env: 'BERTH_LDAP_GROUP_FILTER',
    description: 'Filter for groups, e.g. (objectClass=groupOfNames).', check: checkFilter },
  { key: 'ldap_group_attribute_name', category: 'Directory (LDAP/AD)', label: 'Group name attribute', type: 'string', default: 'cn', env: 'BERTH_LDAP_GROUP_ATTRIBUTE_NAME',
    description: 'Attribute holding a group\'s name.', check: checkAttr },
  { key: 'ldap_group_admin_dn', category: 'Directory (LDAP/AD)', label: 'Admin group DN', type: 'string', default: '', env: 'BERTH_LDAP_GROUP_ADMIN_DN',
    description: 'Members of this group are Berth system administrators.', check: checkDn },
  { key: 'ldap_group_membership_attribute', category: 'Directory (LDAP/AD)', label: 'Membership attribute', type: 'string', default: 'memberOf', env: 'BERTH_LDAP_GROUP_MEMBERSHIP_ATTRIBUTE',
    description: 'User attribute listing the user\'s groups.', check: checkAttr },
  { key: 'ldap_nested_groups', category: 'Directory (LDAP/AD)', label: 'Nested groups', type: 'boolean', default: 'false', env: 'BERTH_LDAP_NESTED_GROUPS',
    description: 'Resolve groups within groups (Active Directory).' },
];

export const PROPERTY_KEYS = new Set(PROPERTIES.map((p) => p.key));
export const SECRET_KEYS = new Set(PROPERTIES.filter((p) => p.secret).map((p) => p.key));

export interface Validated {
  /** Every known property, with defaults filled in and values trimmed/normalised. */
  values: Record<string, string>;
  /** Human-readable problems, each naming the property; empty when the configuration is usable. */
  errors: string[];
  /** Unknown keys that were ignored (reported as warnings). */
  warnings: string[];
}

/**
 * Validates raw properties (from the OVF environment, guestinfo or a config file). Empty values
 * mean "not set" and take the default. Every problem is reported, not just the first.
 */
export function validateProperties(raw: Record<string, string>): Validated {
  const errors: string[] = [];
  const warnings: string[] = [];
  const values: Record<string, string> = {};
  for (const k of Object.keys(raw)) if (!PROPERTY_KEYS.has(k)) warnings.push(`unknown property "${k}" ignored`);
  for (const p of PROPERTIES) {
    const given = raw[p.key];
    // Passwords keep their spaces; everything else is trimmed.
    let v = given === undefined ? '' : p.type === 'password' && p.key !== 'tls_key' ? given : given.trim();
    if (v === '') v = p.default;
    const multiline = p.key === 'tls_key' || p.key.endsWith('_cert');
    if (v !== '' && (multiline ? /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/ : /[\u0000-\u001f\u007f]/).test(v)) {
      errors.push(`${p.key}: must be a single line without control characters`);
      values[p.key] = '';
      continue;
    }
    if (v !== '' && p.type === 'boolean') {
      if (/^(true|yes|1|on)$/i.test(v)) v = 'true';
      else if (/^(false|no|0|off)$/i.test(v)) v = 'false';
      else errors.push(`${p.key}: must be true or false, got "${v}"`);
    }
    if (v !== '' && p.type === 'enum') {
      v = v.toLowerCase();
      if (!p.values!.includes(v)) errors.push(`${p.key}: must be one of ${p.values!.join(', ')}, got "${v}"`);
    }
    if (v !== '' && p.check) {
      const problem = p.check(v);
      if (problem) errors.push(`${p.key}: ${problem}${p.secret ? '' : ` (got "${v.length > 80 ? v.slice(0, 77) + '...' : v}")`}`);
    }
    values[p.key] = v;
  }
  // Cross-field rules
  if (values.gateway && !values.ip) warnings.push('gateway: ignored without a static ip (DHCP is used)');
  if (values.ip && values.gateway) {
    const v4 = isIPv4(values.ip.split('/')[0]!);
    if (v4 !== isIPv4(values.gateway)) errors.push('gateway: must be the same IP version as ip');
  }
  if (!!values.tls_cert !== !!values.tls_key) errors.push('tls_cert, tls_key: give both the certificate and its key, or neither (a certificate is then generated)');
  if (values.protocol === 'http' && (values.tls_cert || values.tls_key)) warnings.push('tls_cert/tls_key: ignored with protocol=http');
  if (values.external_url && !errors.some((e) => e.startsWith('external_url'))) {
    const scheme = new URL(values.external_url).protocol.replace(':', '');
    if (scheme !== values.protocol) warnings.push(`external_url: scheme ${scheme} differs from protocol=${values.protocol} (fine behind a TLS-terminating proxy)`);
  }
  if (values.ldap_url && !values.ldap_base_dn) errors.push('ldap_base_dn: required when ldap_url is set');
  if (values.ldap_search_dn && !values.ldap_search_password) errors.push('ldap_search_password: required when ldap_search_dn is set');
  if (!values.ldap_url) {
    const set = PROPERTIES.filter((p) => p.key.startsWith('ldap_') && values[p.key] && values[p.key] !== p.default).map((p) => p.key);
    if (set.length) warnings.push(`${set.join(', ')}: ignored without ldap_url`);
  }
  return { values, errors, warnings };
}
