// Offline structural checks of an OVA (no hypervisor): tar order and shape, manifest hashes,
// OVF references and sizes, disk capacities vs VMDK headers, hardware items, properties.
// usage: node --import tsx ova/scripts/check-ova.ts FILE.ova
import path from 'node:path';
import { PROPERTIES } from '../appliance/properties.ts';
import { hashMember, kid, kids, parseXml, readMember, tarMembers, vmdkHeader, type XmlNode } from './ova-lib.ts';

export interface CheckResult {
  passed: string[];
  failed: string[];
}

const UNITS: Record<string, number> = { byte: 1, 'byte * 2^10': 2 ** 10, 'byte * 2^20': 2 ** 20, 'byte * 2^30': 2 ** 30 };

export async function checkOva(file: string): Promise<CheckResult> {
  const r: CheckResult = { passed: [], failed: [] };
  const check = (ok: boolean, msg: string) => (ok ? r.passed : r.failed).push(msg);

  const members = tarMembers(file);
  const names = members.map((m) => m.name);
  const byName = new Map(members.map((m) => [m.name, m]));
  check(names[0]?.endsWith('.ovf') ?? false, `the descriptor is the first member (${names[0]})`);
  check(names[1]?.endsWith('.mf') ?? false, 'the manifest follows the descriptor');
  check(members.every((m) => m.type === '0' && !m.name.includes('/')), 'flat archive of regular files');
  check(members.every((m) => /^[\x20-\x7e]+$/.test(m.name)), 'ASCII member names');
  check(new Set(names).size === names.length, 'no duplicate members');
  const ovfName = names.find((n) => n.endsWith('.ovf'));
  const mfName = names.find((n) => n.endsWith('.mf'));
  check(names.filter((n) => n.endsWith('.ovf')).length === 1, 'exactly one descriptor');
  check(path.basename(file, '.ova') === path.basename(ovfName ?? '', '.ovf'), 'descriptor named after the OVA');
  check(!mfName || path.basename(mfName, '.mf') === path.basename(ovfName ?? '', '.ovf'), 'manifest named after the descriptor');
  if (!ovfName) return r;

  let env: XmlNode;
  try {
    env = parseXml(readMember(file, byName.get(ovfName)!).toString('utf8'));
    check(true, 'descriptor is well-formed XML');
  } catch (e) {
    check(false, `descriptor is well-formed XML: ${(e as Error).message}`);
    return r;
  }
  check(env.name === 'Envelope' && env.attrs.xmlns === 'http://schemas.dmtf.org/ovf/envelope/1', 'root element is an OVF 1.x Envelope');

  // manifest
  if (mfName) {
    const lines = readMember(file, byName.get(mfName)!).toString('utf8').trim().split('\n');
    const listed = new Set<string>();
    for (const line of lines) {
      const m = /^(SHA1|SHA256|SHA512)\((.+)\)= ([0-9a-f]+)$/.exec(line);
      check(!!m, `manifest line well formed: ${line.slice(0, 60)}`);
      if (!m) continue;
      check(m[1] === 'SHA256', `manifest uses SHA256 for ${m[2]}`);
      listed.add(m[2]!);
      const mem = byName.get(m[2]!);
      check(!!mem && (await hashMember(file, mem, m[1]!.toLowerCase())) === m[3], `${m[1]} of ${m[2]} matches`);
    }
    check([...listed].sort().join() === names.filter((n) => n !== mfName).sort().join(), 'manifest covers every other member');
  }

  // references
  const files = new Map<string, string>();
  for (const f of kids(kid(env, 'References'), 'File')) {
    const href = f.attrs['ovf:href']!;
    files.set(f.attrs['ovf:id']!, href);
    const mem = byName.get(href);
    check(!!mem, `referenced file ${href} is in the archive`);
    check(mem !== undefined && Number(f.attrs['ovf:size']) === mem.size, `ovf:size of ${href} (${f.attrs['ovf:size']}) matches`);
  }
  check(names.filter((n) => n !== ovfName && n !== mfName).join() === [...files.values()].join() && names.indexOf(mfName ?? '') < 2,
    'files follow the descriptor and manifest in References order');

  // disks
  const disks = new Map<string, XmlNode>();
  for (const d of kids(kid(env, 'DiskSection'), 'Disk')) {
    const id = d.attrs['ovf:diskId']!;
    disks.set(id, d);
    const unit = UNITS[d.attrs['ovf:capacityAllocationUnits'] ?? 'byte'];
    check(unit !== undefined, `disk ${id} capacity unit known`);
    const cap = Number(d.attrs['ovf:capacity']) * (unit ?? 1);
    check(Number.isSafeInteger(cap) && cap > 0, `disk ${id} has a capacity (${cap} bytes)`);
    const ref = d.attrs['ovf:fileRef'];
    if (ref) {
      check(files.has(ref), `disk ${id} fileRef ${ref} resolves`);
      const mem = byName.get(files.get(ref) ?? '');
      if (!mem) continue;
      const hdr = vmdkHeader(readMember(file, mem, 64 * 1024));
      check(hdr.magic === 'KDMV', `${mem.name} is a sparse VMDK`);
      check(hdr.createType === 'streamOptimized', `${mem.name} is streamOptimized`);
      check(hdr.capacityBytes === cap, `disk ${id} capacity ${cap} equals the VMDK's ${hdr.capacityBytes}`);
      check(d.attrs['ovf:format']?.endsWith('#streamOptimized') ?? false, `disk ${id} format URI is streamOptimized`);
    }
  }
  check(disks.size === 2 && [...disks.values()].filter((d) => !d.attrs['ovf:fileRef']).length === 1, 'two disks: the system disk and a blank data disk');

  // hardware
  const vs = kid(env, 'VirtualSystem');
  check(!!vs, 'one VirtualSystem');
  const hw = kid(vs, 'VirtualHardwareSection');
  const items = kids(hw, 'Item');
  const field = (i: XmlNode, f: string) => kid(i, `rasd:${f}`)?.text;
  const ids = items.map((i) => field(i, 'InstanceID'));
  check(new Set(ids).size === ids.length, 'hardware InstanceIDs unique');
  const byType = (t: string) => items.filter((i) => field(i, 'ResourceType') === t);
  check(field(byType('3')[0]!, 'VirtualQuantity') === '2', '2 virtual CPUs');
  check(field(byType('4')[0]!, 'VirtualQuantity') === '4096' && field(byType('4')[0]!, 'AllocationUnits') === 'byte * 2^20', '4 GiB memory');
  check(byType('10').some((i) => field(i, 'ResourceSubType') === 'VmxNet3'), 'VMXNET3 network adapter');
  check(byType('6').some((i) => ['lsilogic', 'lsilogicsas', 'VirtualSCSI'].includes(field(i, 'ResourceSubType') ?? '')), 'LSI Logic or paravirtual SCSI controller');
  check(byType('17').length === 2, 'two hard disks attached');
  const nets = new Set(kids(kid(env, 'NetworkSection'), 'Network').map((n) => n.attrs['ovf:name']));
  for (const i of items) {
    const id = field(i, 'InstanceID');
    const parent = field(i, 'Parent');
    const host = field(i, 'HostResource');
    const conn = field(i, 'Connection');
    if (parent) check(ids.includes(parent), `item ${id}: parent ${parent} exists`);
    if (host) check(disks.has(host.replace(/^ovf:\/disk\//, '')), `item ${id}: ${host} resolves`);
    if (conn) check(nets.has(conn), `item ${id}: network ${conn} declared`);
    const tags = i.children.filter((c) => c.name.startsWith('rasd:')).map((c) => c.name);
    check(tags.join() === [...tags].sort().join(), `item ${id}: rasd elements in schema order`);
  }
  const cfg = (k: string) => kids(hw, 'vmw:Config').find((c) => c.attrs['vmw:key'] === k)?.attrs['vmw:value'];
  check(cfg('firmware') === 'efi', 'EFI firmware');
  check((hw?.attrs['ovf:transport'] ?? '').split(/\s+/).includes('com.vmware.guestInfo') && (hw?.attrs['ovf:transport'] ?? '').split(/\s+/).includes('iso'),
    'OVF environment transports: com.vmware.guestInfo and iso');

  // properties
  const ps = kid(vs, 'ProductSection');
  const props = new Map(kids(ps, 'Property').map((p) => [p.attrs['ovf:key']!, p]));
  for (const def of PROPERTIES) {
    const p = props.get(def.key);
    check(!!p, `property ${def.key} declared`);
    if (!p) continue;
    check((p.attrs['ovf:password'] === 'true') === (def.type === 'password'), `property ${def.key} ${def.type === 'password' ? 'is' : 'is not'} a password`);
    check((p.attrs['ovf:value'] ?? '') === def.default, `property ${def.key} default "${def.default}"`);
    check(!!kid(p, 'Label')?.text && !!kid(p, 'Description')?.text, `property ${def.key} has a label and description`);
  }
  check(props.size === PROPERTIES.length, 'no undeclared properties');
  check(!!kid(ps, 'Version')?.text, 'product version set');
  return r;
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href;
if (isMain) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: check-ova.ts FILE.ova');
    process.exit(2);
  }
  const r = await checkOva(file);
  for (const f of r.failed) console.log(`FAIL ${f}`);
  console.log(`${path.basename(file)}: ${r.passed.length} checks passed, ${r.failed.length} failed`);
  process.exit(r.failed.length ? 1 : 0);
}
