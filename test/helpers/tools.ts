// Real tools used by tests (skopeo, podman, slapd, chromium). Outside CI a missing tool skips the
// test with a message; under CI=true it fails, so CI never passes by skipping.
import { execFileSync } from 'node:child_process';

export function hasTool(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Returns a skip reason (string) when the tool is missing outside CI; throws when missing under CI. */
export function missingTool(...cmds: string[]): string | false {
  const missing = cmds.filter((c) => !hasTool(c));
  if (!missing.length) return false;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`required tool(s) missing under CI: ${missing.join(', ')}`);
  const msg = `skipped: ${missing.join(', ')} not installed (install with apt-get; CI installs them)`;
  console.warn(msg);
  return msg;
}
