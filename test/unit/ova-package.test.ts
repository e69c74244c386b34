// Fast packaging test of the appliance tool chain (no debootstrap, no VM): a tiny fake root file
// system goes through ova/scripts/build-image.sh and make-ova.ts, then the OVA is checked against
// the OVF rules (check-ova.ts) and the system disk is inspected without mounting it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
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

// The app stage's source selection (ova/scripts/source-tree.sh), in an unpacked source archive (no
// .git: the package's file list and the newest file time) and in a git checkout (git ls-files, the
// last commit's time). The rest of the app stage (npm ci, build) is the same in both cases.
test('OVA source selection: an unpacked source archive without .git, and a git checkout', { skip: missingTool('npm', 'tar', 'git') }, () => {
  const w = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ova-src-'));
  const script = path.join(OVA, 'scripts/source-tree.sh');
  const run = (args: string[], env: Record<string, string> = {}) => {
    const { SOURCE_DATE_EPOCH: _drop, ...base } = process.env;
    const r = spawnSync(script, args, { env: { ...base, ...env }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return { out: r.stdout, err: r.stderr };
  };
  const listed = (dir: string): string[] =>
    execFileSync('find', ['.', '-type', 'f'], { cwd: dir, encoding: 'utf8' }).split('\n').filter(Boolean).map((f) => f.slice(2)).sort();
  try {
    const tree = path.join(w, 'berth-0.1.0');
    const files: Record<string, string> = {
      'package.json': '{"name":"berth","version":"0.1.0","private":true}\n',
      'package-lock.json': '{"name":"berth","lockfileVersion":3,"packages":{}}\n',
      '.gitignore': 'node_modules/\ndist/\n*.log\n',
      'src/main.ts': 'export {};\n',
      'prisma/migrations/1_init/migration.sql': 'CREATE TABLE t (x int);\n',
      'ova/build.sh': '#!/bin/bash\n',
      'dist/src/main.js': 'stale build output\n',
      'node_modules/left/index.js': 'installed\n',
      'npm-debug.log': 'noise\n',
    };
    for (const [rel, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(tree, rel)), { recursive: true });
      fs.writeFileSync(path.join(tree, rel), content);
      fs.utimesSync(path.join(tree, rel), 1_600_000_000, 1_600_000_000);
    }
    fs.utimesSync(path.join(tree, 'src/main.ts'), 1_700_000_123, 1_700_000_123); // the newest source file
    fs.utimesSync(path.join(tree, 'dist/src/main.js'), 1_800_000_000, 1_800_000_000); // ignored: does not date the build

    // no .git: npm's file list (ignored files, node_modules and dist/ left out) + package-lock.json
    const dest = path.join(w, 'app-src');
    const copied = run(['copy', tree, dest]);
    assert.match(copied.err, /not a git checkout; the package's file list \(npm pack --dry-run\)/);
    assert.deepEqual(listed(dest), ['ova/build.sh', 'package-lock.json', 'package.json', 'prisma/migrations/1_init/migration.sql', 'src/main.ts']);
    assert.equal(fs.readFileSync(path.join(dest, 'src/main.ts'), 'utf8'), 'export {};\n');
    const dated = run(['epoch', tree]);
    assert.equal(dated.out.trim(), '1700000123');
    assert.match(dated.err, /newest file time/);
    const given = run(['epoch', tree], { SOURCE_DATE_EPOCH: '1234567890' });
    assert.equal(given.out.trim(), '1234567890');
    assert.match(given.err, /SOURCE_DATE_EPOCH=1234567890 from the environment/);

    // unpacked inside some other git checkout: still the archive's own file list
    execFileSync('git', ['-C', w, 'init', '-q']);
    assert.match(run(['files', tree]).err, /not a git checkout/);
    fs.rmSync(path.join(w, '.git'), { recursive: true, force: true });

    // a git checkout: tracked and untracked-but-not-ignored files, dated by the last commit
    const git = (...args: string[]) => execFileSync('git', ['-C', tree, ...args], { env: { ...process.env, GIT_AUTHOR_DATE: '@1650000000 +0000', GIT_COMMITTER_DATE: '@1650000000 +0000', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' }, stdio: 'pipe' });
    git('init', '-q');
    git('add', 'package.json', 'package-lock.json', '.gitignore', 'src');
    git('commit', '-q', '-m', 'x');
    const dest2 = path.join(w, 'app-src-git');
    assert.match(run(['copy', tree, dest2]).err, /git working tree/);
    assert.deepEqual(listed(dest2), ['.gitignore', 'ova/build.sh', 'package-lock.json', 'package.json', 'prisma/migrations/1_init/migration.sql', 'src/main.ts']);
    const fromGit = run(['epoch', tree]);
    assert.equal(fromGit.out.trim(), '1650000000');
    assert.match(fromGit.err, /last commit's time/);
  } finally {
    fs.rmSync(w, { recursive: true, force: true });
  }
});
