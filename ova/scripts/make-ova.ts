// raw system disk -> streamOptimized VMDK -> OVF 1.0 + SHA256 manifest -> OVA (ustar, .ovf first)
// usage: node --import tsx ova/scripts/make-ova.ts --raw DISK.raw --out DIR --name NAME --version V [--data-gib N] [--mtime EPOCH]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { renderOvf } from './ovf.ts';
import { parseXml } from './ova-lib.ts';

export interface MakeOvaOptions {
  raw: string;
  out: string;
  name: string;
  version: string;
  dataGib: number;
  mtime: number;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function makeOva(o: MakeOvaOptions): Promise<string> {
  fs.mkdirSync(o.out, { recursive: true });
  const ovf = `${o.name}.ovf`;
  const mf = `${o.name}.mf`;
  const vmdk = `${o.name}-system.vmdk`;
  const ova = path.join(o.out, `${o.name}.ova`);
  for (const f of [ovf, mf, vmdk]) fs.rmSync(path.join(o.out, f), { force: true });
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized,adapter_type=lsilogic,hwversion=14', o.raw, path.join(o.out, vmdk)]);
  const descriptor = renderOvf({
    name: o.name,
    version: o.version,
    systemVmdk: { href: vmdk, size: fs.statSync(path.join(o.out, vmdk)).size, capacity: fs.statSync(o.raw).size },
    dataGib: o.dataGib,
  });
  parseXml(descriptor); // well-formed or throw
  fs.writeFileSync(path.join(o.out, ovf), descriptor);
  const lines = [];
  for (const f of [ovf, vmdk]) lines.push(`SHA256(${f})= ${await sha256(path.join(o.out, f))}\n`);
  fs.writeFileSync(path.join(o.out, mf), lines.join(''));
  for (const f of [ovf, mf, vmdk]) fs.utimesSync(path.join(o.out, f), o.mtime, o.mtime);
  fs.rmSync(ova, { force: true });
  execFileSync('tar', ['--format=ustar', '--owner=0', '--group=0', '--numeric-owner', '--mode=0644', `--mtime=@${o.mtime}`,
    '-C', o.out, '-cf', ova, ovf, mf, vmdk]);
  for (const f of [ovf, mf, vmdk]) fs.rmSync(path.join(o.out, f));
  return ova;
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href;
if (isMain) {
  const { values: a } = parseArgs({
    options: { raw: { type: 'string' }, out: { type: 'string' }, name: { type: 'string' }, version: { type: 'string' }, 'data-gib': { type: 'string' }, mtime: { type: 'string' } },
  });
  if (!a.raw || !a.out || !a.name || !a.version) {
    console.error('usage: make-ova.ts --raw DISK.raw --out DIR --name NAME --version V [--data-gib N] [--mtime EPOCH]');
    process.exit(2);
  }
  const ova = await makeOva({ raw: a.raw, out: a.out, name: a.name, version: a.version, dataGib: Number(a['data-gib'] ?? 100), mtime: Number(a.mtime ?? 0) });
  console.log(`${ova}: ${(fs.statSync(ova).size / 2 ** 20).toFixed(1)} MiB`);
}
