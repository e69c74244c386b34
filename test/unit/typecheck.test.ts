// The TypeScript of the server, the tests and the web UI type-checks (tsx runs it without checking).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const tsc = path.resolve('node_modules/typescript/bin/tsc');

for (const project of ['tsconfig.json', 'web/tsconfig.json']) {
  test(`tsc --noEmit -p ${project} reports no errors`, () => {
    const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', project], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
}
