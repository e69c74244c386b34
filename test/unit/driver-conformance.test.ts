// One suite of the StorageDriver contract (test/helpers/driver-suite.ts), run against the memory
// and filesystem drivers here, and against S3 (a real radosgw) in test/e2e/s3.test.ts.
import { after } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsDriver } from '../../src/storage/driver/fs.ts';
import { MemoryDriver } from '../../src/storage/driver/memory.ts';
import { allFiles, driverSuite } from '../helpers/driver-suite.ts';

const roots: string[] = [];
let fsRoot = '';

after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

driverSuite({
  name: 'fs',
  make() {
    fsRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-driver-'));
    roots.push(fsRoot);
    return new FsDriver(fsRoot);
  },
  sibling: () => new FsDriver(fsRoot),
  // Temp files and multipart parts waiting in .multipart/ are not visible content.
  strayFiles: () => allFiles(fsRoot).filter((f) => /tmp/i.test(path.basename(f)) || f.startsWith('.multipart/')),
  allFiles: () => allFiles(fsRoot),
  features: { refusesSmallParts: false, redirect: false, local: true },
});

// S3's minimum part size, and a small one (what the upload tests use to exercise parts cheaply).
driverSuite({ name: 'memory', make: () => new MemoryDriver(), features: { refusesSmallParts: true, redirect: false, local: false } });
driverSuite({ name: 'memory (1 KiB parts)', make: () => new MemoryDriver({ minPartSize: 1024 }), features: { refusesSmallParts: true, redirect: false, local: false } });
