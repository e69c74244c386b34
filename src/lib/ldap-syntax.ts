// LDAP string syntax: filter values (RFC 4515) and distinguished names (RFC 4514). Pure functions;
// every value that reaches a filter goes through escapeFilterValue.

/** Escapes a value for use inside a filter: `*`, `(`, `)`, `\` and NUL become `\xx`. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\*()\0]/g, (c) => '\\' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

/** A configured filter, parenthesised: Harbor accepts `objectclass=user` as well as `(objectclass=user)`. */
export function wrapFilter(filter: string): string {
  const f = filter.trim();
  if (!f) return '';
  return f.startsWith('(') ? f : `(${f})`;
}

const ATTRIBUTE = /^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$/;

/** True for an attribute description that can be placed in a filter as is (name or OID). */
export function isAttributeName(name: string): boolean {
  return ATTRIBUTE.test(name);
}

/** One attribute=value pair of an RDN; `value` is unescaped, in the case the server gave. */
export interface Ava {
  type: string;
  value: string;
}
export type Rdn = Ava[];

export class DnSyntaxError extends Error {
  constructor(dn: string) {
    super(`invalid DN: ${JSON.stringify(dn)}`);
    this.name = 'DnSyntaxError';
  }
}

/** Parses a DN into RDNs (most specific first). Accepts RFC 4514, plus `;` separators and quoted values (RFC 1779). */
export function parseDn(dn: string): Rdn[] {
  const rdns: Rdn[] = [];
  let rdn: Rdn = [];
  let i = 0;
  const n = dn.length;
  const skipSpaces = () => {
    while (i < n && dn[i] === ' ') i++;
  };
  skipSpaces();
  if (i === n) return [];
  for (;;) {
    skipSpaces();
    const eq = dn.indexOf('=', i);
    if (eq < 0) throw new DnSyntaxError(dn);
    const type = dn.slice(i, eq).trim();
    if (!isAttributeName(type)) throw new DnSyntaxError(dn);
    i = eq + 1;
    skipSpaces();
    let value = '';
    if (dn[i] === '#') {
      // BER-encoded value: keep it as written (hex), it is compared as a string.
      const m = /^#[0-9A-Fa-f]*/.exec(dn.slice(i))!;
      value = m[0];
      i += m[0].length;
      skipSpaces();
    } else if (dn[i] === '"') {
      i++;
      const bytes: number[] = [];
      while (i < n && dn[i] !== '"') {
        if (dn[i] === '\\' && i + 1 < n) i++;
        bytes.push(...Buffer.from(dn[i]!, 'utf8'));
        i++;
      }
      if (dn[i] !== '"') throw new DnSyntaxError(dn);
      i++;
      value = Buffer.from(bytes).toString('utf8');
      skipSpaces();
    } else {
      // Collect bytes so that escaped UTF-8 sequences (\c3\a9) decode correctly.
      const bytes: number[] = [];
      let trailingSpaces = 0;
      while (i < n && dn[i] !== ',' && dn[i] !== ';' && dn[i] !== '+') {
        const c = dn[i]!;
        if (c === '\\') {
          const hex = dn.slice(i + 1, i + 3);
          if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
            bytes.push(parseInt(hex, 16));
            i += 3;
          } else if (i + 1 < n) {
            bytes.push(...Buffer.from(dn[i + 1]!, 'utf8'));
            i += 2;
          } else {
            throw new DnSyntaxError(dn);
          }
          trailingSpaces = 0;
          continue;
        }
        const cp = dn.codePointAt(i)!;
        const ch = String.fromCodePoint(cp);
        bytes.push(...Buffer.from(ch, 'utf8'));
        trailingSpaces = c === ' ' ? trailingSpaces + 1 : 0;
        i += ch.length;
      }
      // Unescaped trailing spaces are not part of the value.
      value = Buffer.from(bytes.slice(0, bytes.length - trailingSpaces)).toString('utf8');
    }
    rdn.push({ type, value });
    if (i >= n) {
      rdns.push(rdn);
      return rdns;
    }
    const sep = dn[i];
    i++;
    if (sep === '+') continue;
    rdns.push(rdn);
    rdn = [];
    skipSpaces();
    if (i >= n) throw new DnSyntaxError(dn);
  }
}

/** Escapes an attribute value for a DN string (RFC 4514 section 2.4). */
export function escapeDnValue(value: string): string {
  if (value.startsWith('#') && /^#[0-9a-f]*$/i.test(value)) return value;
  let out = value.replace(/[\\,+"<>;=\0]/g, (c) => (c === '\0' ? '\\00' : '\\' + c));
  if (out.startsWith(' ') || out.startsWith('#')) out = '\\' + out;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = out.slice(0, -1) + '\\ ';
  return out;
}

function formatRdn(rdn: Rdn, lower: boolean): string {
  const avas = rdn.map((a) => ({ type: a.type.toLowerCase(), value: lower ? a.value.toLowerCase() : a.value }));
  // A multi-valued RDN is a set: sort for a canonical form.
  avas.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  return avas.map((a) => `${a.type}=${escapeDnValue(a.value)}`).join('+');
}

export function formatDn(rdns: Rdn[], lower = true): string {
  return rdns.map((r) => formatRdn(r, lower)).join(',');
}

/**
 * The comparable form of a DN: attribute types and values lower-cased, minimal escaping, no
 * spaces around separators (`CN=Ops\2C Europe, OU=Groups` → `cn=ops\, europe,ou=groups`).
 * Values in directories are compared case-insensitively in practice (cn, ou, dc, uid).
 * An unparsable DN is only trimmed and lower-cased.
 */
export function normalizeDn(dn: string): string {
  try {
    return formatDn(parseDn(dn));
  } catch {
    return dn.trim().toLowerCase();
  }
}

/** True when `dn` is `base` or below it (both already parsed). */
export function isDnUnder(dn: Rdn[], base: Rdn[]): boolean {
  if (dn.length < base.length) return false;
  const offset = dn.length - base.length;
  for (let k = 0; k < base.length; k++) {
    if (formatRdn(dn[offset + k]!, true) !== formatRdn(base[k]!, true)) return false;
  }
  return true;
}

/** A filter matching entries whose RDN equals this one, e.g. `(cn=ops\2c europe)` (values escaped). */
export function rdnFilter(rdn: Rdn): string {
  const parts = rdn.map((a) => `(${a.type}=${escapeFilterValue(a.value)})`);
  return parts.length === 1 ? parts[0]! : `(&${parts.join('')})`;
}
