// Reading OVAs without extracting them: a ustar reader, a small XML parser (well-formedness +
// tree), the VMDK sparse header. Used by check-ova.ts and the tests.
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { xmlUnescape } from '../appliance/sources.ts';

export interface TarMember {
  name: string;
  size: number;
  /** Offset of the member's data in the archive. */
  offset: number;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

/** Members of a ustar/GNU tar archive, in order. */
export function tarMembers(file: string): TarMember[] {
  const fd = fs.openSync(file, 'r');
  const out: TarMember[] = [];
  try {
    const total = fs.fstatSync(fd).size;
    const h = Buffer.alloc(512);
    let pos = 0;
    while (pos + 512 <= total) {
      fs.readSync(fd, h, 0, 512, pos);
      if (h.every((b) => b === 0)) break;
      const str = (a: number, n: number) => h.subarray(a, a + n).toString('latin1').replace(/\0.*$/s, '');
      const num = (a: number, n: number) => parseInt(str(a, n).trim() || '0', 8);
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
      if (sum !== num(148, 8)) throw new Error(`tar header checksum mismatch at offset ${pos}`);
      const prefix = str(345, 155);
      const name = (prefix ? prefix + '/' : '') + str(0, 100);
      const size = num(124, 12);
      out.push({ name, size, offset: pos + 512, type: str(156, 1) || '0', mode: num(100, 8), uid: num(108, 8), gid: num(116, 8), mtime: num(136, 12) });
      pos += 512 + Math.ceil(size / 512) * 512;
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

export function readMember(file: string, m: TarMember, max = m.size): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(Math.min(max, m.size));
    fs.readSync(fd, b, 0, b.length, m.offset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

export async function hashMember(file: string, m: TarMember, algo = 'sha256'): Promise<string> {
  const h = createHash(algo);
  if (m.size === 0) return h.digest('hex');
  for await (const chunk of fs.createReadStream(file, { start: m.offset, end: m.offset + m.size - 1 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  text: string;
}

/** Parses XML into a tree (namespace prefixes kept in names); throws on malformed input. */
export function parseXml(xml: string): XmlNode {
  const root: XmlNode = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlNode[] = [root];
  const re = /<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<!\[CDATA\[([\s\S]*?)\]\]>|<\/([\w:.-]+)\s*>|<([\w:.-]+)((?:\s+[\w:.-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|([^<]+)|(<)/g;
  for (const m of xml.matchAll(re)) {
    const top = stack[stack.length - 1]!;
    if (m[7]) throw new Error(`malformed XML near offset ${m.index}: ${xml.slice(m.index!, m.index! + 40)}`);
    if (m[1] !== undefined) top.text += m[1];
    else if (m[2]) {
      if (top.name !== m[2]) throw new Error(`malformed XML: </${m[2]}> closes <${top.name}>`);
      stack.pop();
    } else if (m[3]) {
      const node: XmlNode = { name: m[3], attrs: {}, children: [], text: '' };
      for (const a of (m[4] ?? '').matchAll(/([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        if (a[1]! in node.attrs) throw new Error(`malformed XML: duplicate attribute ${a[1]} on <${m[3]}>`);
        node.attrs[a[1]!] = xmlUnescape(a[2] ?? a[3] ?? '');
      }
      top.children.push(node);
      if (!m[5]) stack.push(node);
    } else if (m[6] !== undefined) {
      if (/&(?!(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);)/.test(m[6])) throw new Error('malformed XML: bare & in text');
      top.text += xmlUnescape(m[6]);
    }
  }
  if (stack.length !== 1) throw new Error(`malformed XML: <${stack[stack.length - 1]!.name}> not closed`);
  const elems = root.children;
  if (elems.length !== 1) throw new Error('malformed XML: expected exactly one root element');
  return elems[0]!;
}

export const kids = (n: XmlNode | undefined, name: string) => (n ? n.children.filter((c) => c.name === name) : []);
export const kid = (n: XmlNode | undefined, name: string) => kids(n, name)[0];

export interface VmdkHeader {
  magic: string;
  capacityBytes: number;
  createType: string | undefined;
  adapterType: string | undefined;
}

export function vmdkHeader(head: Buffer): VmdkHeader {
  const magic = head.subarray(0, 4).toString('latin1');
  const capacity = Number(head.readBigUInt64LE(12)) * 512;
  const descOff = Number(head.readBigUInt64LE(28));
  const descSize = Number(head.readBigUInt64LE(36));
  const desc = head.subarray(descOff * 512, (descOff + descSize) * 512).toString('latin1').replace(/\0.*$/s, '');
  return {
    magic,
    capacityBytes: capacity,
    createType: /createType="([^"]+)"/.exec(desc)?.[1],
    adapterType: /ddb\.adapterType\s*=\s*"([^"]+)"/.exec(desc)?.[1],
  };
}
