// Parsers for the places OVF properties come from: the OVF environment document (vSphere vApp
// options over the ISO or com.vmware.guestInfo transport), plain guestinfo keys, a key=value file.
import { PROPERTY_KEYS, SECRET_KEYS } from './properties.ts';

export function xmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_m, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[e]!;
  });
}

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
    const local = m[1]!.includes(':') ? m[1]!.slice(m[1]!.indexOf(':') + 1) : m[1]!;
    out[local] = xmlUnescape(m[2] ?? m[3] ?? '');
  }
  return out;
}

/**
 * Properties of an OVF environment document (DMTF DSP0243 "Environment"): the
 * <PropertySection><Property oe:key=".." oe:value=".."/> of this virtual system. Entity sections
 * (other VMs of a vApp) are ignored. Throws when the text is not an OVF environment.
 */
export function parseOvfEnvironment(xml: string): Record<string, string> {
  const text = xml.replace(/^\uFEFF/, '').replace(/<!--[\s\S]*?-->/g, '');
  if (!/<(?:[\w-]+:)?Environment\b/.test(text)) throw new Error('not an OVF environment document (no <Environment> element)');
  const own = text.replace(/<(?:[\w-]+:)?Entity\b[\s\S]*?<\/(?:[\w-]+:)?Entity>/g, '');
  const props: Record<string, string> = {};
  for (const m of own.matchAll(/<(?:[\w-]+:)?Property\b([^>]*?)\/?>/g)) {
    const a = attributes(m[1]!);
    if (a.key !== undefined) props[a.key] = a.value ?? '';
  }
  return props;
}

/**
 * A key=value configuration file (the fallback /etc/berth/appliance.conf, or the data disk's saved
 * properties): '#' comments, blank lines, optional single or double quotes around a value.
 */
export function parseConfFile(text: string): { props: Record<string, string>; errors: string[] } {
  const props: Record<string, string> = {};
  const errors: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const l = line.trim();
    if (!l || l.startsWith('#') || l.startsWith(';')) return;
    const m = /^([A-Za-z][\w.]*)\s*=\s*(.*)$/.exec(l);
    if (!m) {
      errors.push(`line ${i + 1}: expected key=value`);
      return;
    }
    let v = m[2]!;
    const q = /^"((?:[^"\\]|\\.)*)"$/.exec(v);
    if (q) v = q[1]!.replace(/\\(.)/g, '$1');
    else if (/^'[^']*'$/.test(v)) v = v.slice(1, -1);
    props[m[1]!] = v;
  });
  return { props, errors };
}

/** The conf file with secret values blanked (what stays on disk after first boot). */
export function redactConfFile(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const m = /^(\s*)([A-Za-z][\w.]*)(\s*=\s*)(.*)$/.exec(line);
      return m && SECRET_KEYS.has(m[2]!) && m[4] !== '' ? `${m[1]}${m[2]}${m[3]}# removed after first boot` : line;
    })
    .join('\n');
}

/** guestinfo variables for deployments without vApp options: guestinfo.berth.<key>. */
export const GUESTINFO_PREFIX = 'guestinfo.berth.';
export function guestinfoKeys(): string[] {
  return [...PROPERTY_KEYS].map((k) => GUESTINFO_PREFIX + k);
}
