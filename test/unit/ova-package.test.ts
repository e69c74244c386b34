// Fast packaging test of the appliance tool chain (no debootstrap, no VM): a tiny fake root file
// system goes through ova/scripts/build-image.sh and make-ova.ts, then the OVA is checked against
// the OVF rules (check-ova.ts) and the system disk is inspected without mounting it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkOva } from '../../ova/scripts/check-ova.ts';
import { makeOva } from '../../ova/scripts/make-ova.ts';
import { kid, kids, parseXml, readMember, tarMembers } from '../../ova/scripts/ova-lib.ts';
import { PROPERTIES } from '../../ova/appliance/properties.ts';
import { missingTool } from '../helpers/tools.ts';

const OVA = path.resolve(import.meta.dirname, '../../ova');
const TOOLS = ['mkfs.ext4', 'e2fsck', 'debugfs', 'mkfs.vfat', 'mcopy', 'mmd', 'mdir', 'mtype', 'sfdisk', 'qemu-img', 'tar'];

function fakeRootfs(root: string): void {
  const files: Record<string, string | Buffer> = {
    'boot/vmlinuz-6.1.0-test': Buffer.alloc(256 * 1024, 1),
    'boot/initrd.img-6.1.0-test': Buffer.alloc(512 * 1024, 2),
    'usr/lib/systemd/boot/efi/systemd-bootx64.efi': Buffer.from('MZ fake systemd-boot'),
    'usr/local/bin/node': '#!/bin/sh\n',
    'opt/berth/dist/src/main.js': 'console.log("berth")\n',
    'opt/berth/package.json': '{"name":"berth","version":"0.0.0-test"}\n',
    'opt/berth/prisma/migrations/20240101000000_init/migration.sql': 'CREATE TABLE t (x int);\n',
    'opt/berth-appliance/setup.js': '',
    'opt/berth-appliance/http80.js': '',
    'usr/local/sbin/berth-support-bundle': '#!/bin/sh\n',
    'etc/systemd/system/berth.service': fs.readFileSync(path.join(OVA, 'rootfs/etc/systemd/system/berth.service')),
    'etc/systemd/system/berth-setup.service': fs.readFileSync(path.join(OVA, 'rootfs/etc/systemd/system/berth-setup.service')),
  };
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
  }
  fs.chmodSync(path.join(root, 'usr/local/bin/node'), 0o755);
}

test('OVA packaging: fake rootfs -> GPT/UEFI disk -> OVA that passes the OVF checks', { skip: missingTool(...TOOLS) }, async () => {
  const w = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ova-pack-'));
  try {
    fakeRootfs(path.join(w, 'rootfs'));
    execFileSync(path.join(OVA, 'scripts/build-image.sh'), [path.join(w, 'rootfs'), path.join(w, 'img'), '64'], {
      env: { ...process.env, ESP_MIB: '34', SOURCE_DATE_EPOCH: '1700000000' }, stdio: 'pipe',
    });
    const raw = path.join(w, 'img/disk.raw');
    assert.equal(fs.statSync(raw).size, 64 * 2 ** 20);
    const ova = await makeOva({ raw, out: path.join(w, 'dist'), name: 'berth-0.0.0-test', version: '0.0.0-test', dataGib: 100, mtime: 1700000000 });

    // the full rule set
    const r = await checkOva(ova);
    assert.deepEqual(r.failed, []);
    assert.ok(r.passed.length > 60, `${r.passed.length} checks`);

    // a few rules restated directly
    const members = tarMembers(ova);
    assert.deepEqual(members.map((m) => m.name), ['berth-0.0.0-test.ovf', 'berth-0.0.0-test.mf', 'berth-0.0.0-test-system.vmdk']);
    assert.ok(members.every((m) => m.mtime === 1700000000 && m.uid === 0 && m.mode === 0o644), 'reproducible tar metadata');
    const env = parseXml(readMember(ova, members[0]!).toString());
    const props = kids(kid(kid(env, 'VirtualSystem'), 'ProductSection'), 'Property').map((p) => p.attrs['ovf:key']);
    assert.deepEqual(props, PROPERTIES.map((p) => p.key));
    const mf = readMember(ova, members[1]!).toString();
    assert.match(mf, /^SHA256\(berth-0\.0\.0-test\.ovf\)= [0-9a-f]{64}\nSHA256\(berth-0\.0\.0-test-system\.vmdk\)= [0-9a-f]{64}\n$/);

    // the checker catches a broken manifest, a wrong size and a misordered archive
    const dir = path.join(w, 'x');
    fs.mkdirSync(dir);
    execFileSync('tar', ['-xf', ova, '-C', dir]);
    const names = members.map((m) => m.name);
    fs.writeFileSync(path.join(dir, names[1]!), mf.replace(/= [0-9a-f]{4}/, '= 0000'));
    fs.writeFileSync(path.join(dir, names[0]!), fs.readFileSync(path.join(dir, names[0]!), 'utf8').replace(/ovf:size="\d+"/, 'ovf:size="1"'));
    const bad = path.join(w, 'bad.ova');
    execFileSync('tar', ['--format=ustar', '-C', dir, '-cf', bad, names[1]!, names[0]!, names[2]!]);
    const rb = await checkOva(bad);
    for (const rule of [/descriptor is the first member/, /manifest follows/, /SHA256 of .* matches/, /ovf:size of .* matches/]) {
      assert.ok(rb.failed.some((f) => rule.test(f)), `checker reports ${rule}: ${rb.failed.join(' | ')}`);
    }

    // the VMDK holds exactly the raw disk
    execFileSync('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'vmdk', raw, path.join(dir, names[2]!)]);
    // and the system disk is sound: fsck, files, ESP with the boot loader entry
    execFileSync(path.join(OVA, 'scripts/check-image.sh'), [raw], { stdio: 'pipe' });
    const sf = JSON.parse(execFileSync('sfdisk', ['-J', raw], { encoding: 'utf8' })).partitiontable;
    assert.equal(sf.label, 'gpt');
    assert.equal(sf.partitions[0].type, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
    const img = `${raw}?offset=${sf.partitions[1].start * 512}`;
    const unit = execFileSync('debugfs', ['-R', 'cat /etc/systemd/system/berth.service', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.match(unit, /^User=berth$/m);
    assert.match(unit, /^Restart=on-failure$/m);
  } finally {
    fs.rmSync(w, { recursive: true, force: true });
  }
});

test('OVA packaging: checker rejects a descriptor that is not well-formed', { skip: missingTool('tar') }, async () => {
  const w = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ova-bad-'));
  try {
    fs.writeFileSync(path.join(w, 'x.ovf'), '<Envelope><References></Envelope>');
    fs.writeFileSync(path.join(w, 'x.mf'), '');
    execFileSync('tar', ['--format=ustar', '-C', w, '-cf', path.join(w, 'x.ova'), 'x.ovf', 'x.mf']);
    const r = await checkOva(path.join(w, 'x.ova'));
    assert.ok(r.failed.some((f) => /well-formed/.test(f)), r.failed.join(' | '));
  } finally {
    fs.rmSync(w, { recursive: true, force: true });
  }
});
