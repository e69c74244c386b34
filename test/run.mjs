#!/usr/bin/env node
// Runs the test suite with Node's test runner (TypeScript through tsx).
// Usage: node test/run.mjs [unit|integration|e2e ...]   (default: all)
// Under CI=true every test runs; outside CI a test whose tool is missing skips and says so.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const groups = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const wanted = groups.length ? groups : ['unit', 'integration', 'e2e'];
const files = [];
for (const g of wanted) {
  const dir = path.join('test', g);
  if (!fs.existsSync(dir)) continue;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.test.ts')) files.push(p);
    }
  };
  walk(dir);
}
if (!files.length) {
  console.error('no test files found for', wanted.join(', '));
  process.exit(1);
}
// A test (or hook) that hangs fails after 10 minutes instead of holding CI until its limit.
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=600000', ...files], {
  stdio: 'inherit',
  env: { ...process.env, BERTH_LOG_LEVEL: process.env.BERTH_LOG_LEVEL ?? 'silent' },
});
process.exit(r.status ?? 1);
