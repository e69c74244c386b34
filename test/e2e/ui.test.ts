// The web UI in a real browser: Debian's Chromium driven by playwright-core against a real Berth
// process serving web/dist. One user journey, step by step: sign in, create a project, add a
// member, browse a multi-arch image pushed by skopeo (platforms, signature, pull commands), create
// a robot and see its secret once, import an image archive with upload progress, a storage quota
// set on a new project and changed on its summary, the admin pages and a clean-up (garbage
// collection) dry run and a real run, registry endpoints against a real Distribution with htpasswd
// (test connection, edit, the secret never in the page), a proxy-cache project from the new-project
// dialog that pulls through, a replication policy run now with its execution, tasks and logs (and
// one that fails on a wrong password), deletes, check what a developer sees, session expiry, a profile with
// a password change and personal access tokens, the layout on a phone-sized screen, log out.
// Screenshots go to test-output/screenshots/. A second, shorter journey runs against a real slapd:
// a directory user's profile and tokens, and LDAP groups offered as members.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { ADMIN_PASSWORD, basic } from '../helpers/app.ts';
import { largeLayerLayout, multiArchLayout, sha256, tempDir, type Layout } from '../helpers/oci-layout.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { startSlapd, type Slapd } from '../helpers/slapd.ts';
import { missingDistribution, removeDistribution, startDistribution, type Distribution } from '../helpers/distribution.ts';
import { bytes as randomBytes, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST } from '../helpers/oci.ts';
import { UpstreamClient } from '../../src/upstream/client.ts';
import { missingTool } from '../helpers/tools.ts';
import { PASSWORDS } from '../fixtures/ldap/directory.ts';
import { ok } from './exec.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SHOTS = path.join(ROOT, 'test-output', 'screenshots');
const CHROMIUM = '/usr/bin/chromium';
const DEV_PASSWORD = 'Developer12345';
const NEW_DEV_PASSWORD = 'Developer67890';
const PROJECT = 'webteam';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The password of the upstream Distribution's user: it must never reach the page. */
const UPSTREAM_USER = 'mirror';
const UPSTREAM_PASSWORD = 'Upstream-Secret-4711';

const skip = missingTool('chromium', 'skopeo') || missingDistribution({ htpasswd: true });

/** Builds web/dist when it is missing or older than any UI source file (CI builds it in `npm ci`). */
function ensureWebBuilt(): void {
  const dist = path.join(ROOT, 'web', 'dist', 'index.html');
  const newest = (p: string): number => {
    const st = fs.statSync(p);
    if (!st.isDirectory()) return st.mtimeMs;
    return Math.max(0, ...fs.readdirSync(p).map((n) => newest(path.join(p, n))));
  };
  const sources = Math.max(newest(path.join(ROOT, 'web', 'src')), newest(path.join(ROOT, 'web', 'index.html')), newest(path.join(ROOT, 'web', 'vite.config.ts')));
  if (fs.existsSync(dist) && fs.statSync(dist).mtimeMs >= sources) return;
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vite build failed:\n${r.stdout}\n${r.stderr}`);
}

describe('web UI in Chromium', { skip }, () => {
  let srv: ServerProcess;
  let ctx: BrowserContext;
  let page: Page;
  let multi: Layout;
  let archiveFile: string;
  let dist: Distribution;
  const cleanup: string[] = [];
  const pageErrors: string[] = [];
  let env: Record<string, string>;

  const api = async (method: string, p: string, body?: unknown, auth = basic('admin', ADMIN_PASSWORD)) => {
    const r = await fetch(`${srv.url}/api/v2.0/${p}`, { method, headers: { Authorization: auth, ...(body ? { 'Content-Type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
    return r;
  };
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

  async function signIn(user: string, password: string) {
    await page.getByLabel('Username').fill(user);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor();
  }

  before(async () => {
    ensureWebBuilt();
    fs.mkdirSync(SHOTS, { recursive: true });
    const work = tempDir('berth-ui-');
    cleanup.push(work);
    env = { REGISTRY_AUTH_FILE: path.join(work, 'auth.json') };
    fs.writeFileSync(env.REGISTRY_AUTH_FILE, '{"auths":{}}');
    let big: Layout;
    [srv, multi, big, dist] = await Promise.all([
      startServer({ env: { BERTH_LOG_LEVEL: 'warn' } }),
      multiArchLayout({ dir: path.join(work, 'multi'), seed: `ui-${process.pid}` }),
      // Large enough that the throttled upload shows intermediate progress.
      largeLayerLayout({ dir: path.join(work, 'big'), seed: `ui-big-${process.pid}`, largeBytes: 3 * 1024 * 1024 }),
      // The other registry: a registry endpoint and the upstream of a proxy-cache project.
      startDistribution({ users: { [UPSTREAM_USER]: UPSTREAM_PASSWORD } }),
    ]);
    // The OCI image-layout tar the UI uploads.
    archiveFile = path.join(work, 'image-oci.tar');
    await ok('tar', ['-C', big.dir, '-cf', archiveFile, 'oci-layout', 'index.json', 'blobs']);
    // A second person to add as a member.
    await api('POST', 'users', { username: 'dev1', email: 'dev1@example.com', realname: 'Dev One', password: DEV_PASSWORD });

    const { chromium } = await import('playwright-core');
    ctx = await chromium.launchPersistentContext(path.join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1366, height: 800 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  });

  after(async () => {
    await ctx?.close();
    await srv?.stop();
    if (dist) await removeDistribution(dist);
    for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
    if (srv) fs.rmSync(srv.dataDir, { recursive: true, force: true });
  });

  test('an unknown address shows the login form; a wrong password is refused in place', async () => {
    await page.goto(`${srv.url}/projects`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.match(page.url(), /\/login/);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: /wrong username or password/i }).waitFor();
    await shot('01-login-refused');
  });

  test('admin signs in and creates a private project', async () => {
    await signIn('admin', ADMIN_PASSWORD);
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    await page.getByRole('link', { name: 'library' }).waitFor();
    await shot('02-projects');
    await page.getByRole('button', { name: 'New project' }).click();
    const dialog = page.getByRole('dialog', { name: 'New project' });
    await dialog.getByLabel('Project name').fill(PROJECT);
    await dialog.getByLabel(/Private/).check();
    await dialog.getByRole('button', { name: 'Create project' }).click();
    await page.getByRole('heading', { name: new RegExp(PROJECT) }).waitFor();
    await page.getByText('No repositories yet').waitFor();
    const r = await api('GET', `projects/${PROJECT}`);
    const p = (await r.json()) as { metadata: { public: string } };
    assert.equal(p.metadata.public, 'false');
    await shot('03-project-empty');
  });

  test('the project list filters by name', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects' }).click();
    await page.getByLabel('Filter projects by name').fill('webt');
    await page.getByRole('link', { name: PROJECT, exact: true }).waitFor();
    await page.getByRole('link', { name: 'library' }).waitFor({ state: 'detached' });
    await page.getByRole('link', { name: PROJECT, exact: true }).click();
  });

  test('add a member: search as you type, pick a role, change it', async () => {
    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByRole('button', { name: 'Add member' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add member' });
    await dialog.getByRole('combobox', { name: 'Username' }).waitFor();
    // No LDAP configured: no LDAP groups to offer.
    assert.equal(await dialog.getByText('LDAP group').count(), 0, 'no LDAP group choice without LDAP');
    assert.equal(await dialog.getByRole('radio').count(), 0, 'no member type to choose without LDAP');
    await dialog.getByRole('combobox', { name: 'Username' }).pressSequentially('dev', { delay: 30 });
    await dialog.getByRole('option', { name: /dev1/ }).click();
    await dialog.getByLabel('Role').selectOption({ label: 'Maintainer' });
    await dialog.getByRole('button', { name: 'Add member' }).click();
    const role = page.getByLabel('Role of dev1');
    await role.waitFor();
    assert.equal(await role.inputValue(), '4');
    await role.selectOption({ label: 'Developer' });
    await page.getByText('dev1 is now Developer').waitFor();
    const members = (await (await api('GET', `projects/${PROJECT}/members`)).json()) as { entity_name: string; role_id: number }[];
    assert.equal(members.find((m) => m.entity_name === 'dev1')?.role_id, 2);
    await shot('04-members');
  });

  test('browse a multi-arch image pushed by skopeo: platforms, signature, digest, pull commands', async () => {
    await ok('skopeo', ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', `admin:${ADMIN_PASSWORD}`, multi.ref, `docker://${srv.host}/${PROJECT}/tools/multi:1.0`], { env });
    const sig = await attachSignature(srv, `${PROJECT}/tools/multi`, multi.top);

    await page.getByRole('link', { name: 'Repositories' }).click();
    await page.getByRole('link', { name: `${PROJECT}/tools/multi` }).click();
    await page.getByRole('heading', { name: 'tools/multi' }).waitFor();
    const row = page.locator('tbody').filter({ hasText: '1.0' }).first();
    await row.getByText('linux/amd64').waitFor();
    await row.getByText('linux/arm64').waitFor();
    await row.getByText(/signature/).waitFor();
    const short = multi.top.digest.slice(7, 19);
    await row.getByText(short).waitFor();
    // The copy buttons carry exactly what they copy.
    assert.equal(await row.getByRole('button', { name: `Copy digest ${short}` }).getAttribute('data-copy'), multi.top.digest);
    const pull = `docker pull ${srv.host}/${PROJECT}/tools/multi:1.0`;
    assert.equal(await row.getByRole('button', { name: `Copy pull command: ${pull}` }).getAttribute('data-copy'), pull);
    await row.getByRole('button', { name: `Copy pull command: ${pull}` }).click();
    await row.getByText('Copied').waitFor();
    // podman instead of docker, remembered.
    await page.getByRole('radiogroup', { name: 'Pull command for' }).getByText('podman').click();
    assert.ok(await page.getByRole('radio', { name: 'podman' }).isChecked());
    await row.getByRole('button', { name: `Copy pull command: podman pull ${srv.host}/${PROJECT}/tools/multi:1.0` }).waitFor();
    // Details: each platform's manifest digest, the signature, the tag list.
    await row.getByRole('button', { name: `Details of ${short}` }).click();
    for (const img of multi.images) await row.getByText(img.manifest.digest.slice(7, 19)).first().waitFor();
    await row.locator('.details').getByRole('cell', { name: /^(cosign )?signature$/ }).first().waitFor();
    await row.locator('.details').getByText(sig.slice(7, 19)).waitFor();
    await row.getByRole('button', { name: 'Add tag' }).click();
    await page.getByRole('dialog', { name: 'Add tag' }).getByLabel('Tag').fill('stable');
    await page.getByRole('dialog', { name: 'Add tag' }).getByRole('button', { name: 'Add tag' }).click();
    await page.getByText('Tagged stable').waitFor();
    await page.locator('.tag', { hasText: 'stable' }).first().waitFor();
    await shot('05-artifacts');
  });

  test('create a robot account: the secret is shown once, then never again', async () => {
    await page.getByRole('link', { name: PROJECT, exact: true }).click();
    await page.getByRole('link', { name: 'Robot accounts' }).click();
    await page.getByRole('button', { name: 'New robot account' }).click();
    const dialog = page.getByRole('dialog', { name: 'New robot account' });
    await dialog.getByLabel('Name').fill('ci');
    await dialog.getByLabel(/Push/).check();
    await dialog.getByLabel('Expires').selectOption({ label: 'in 90 days' });
    await dialog.getByRole('button', { name: 'Create robot account' }).click();
    const secretDialog = page.getByRole('dialog', { name: 'Robot account created' });
    const secret = (await secretDialog.getByTestId('robot-secret').locator('code').textContent())!.trim();
    assert.ok(secret.length >= 16, 'a real secret is shown');
    await shot('06-robot-secret');
    // The secret works: the robot can read the repository through the registry.
    const name = `robot$${PROJECT}+ci`;
    const tags = await fetch(`${srv.url}/v2/${PROJECT}/tools/multi/tags/list`, { headers: { Authorization: basic(name, secret) } });
    assert.equal(tags.status, 200, 'the robot pulls with the secret it was shown');
    await secretDialog.getByRole('button', { name: 'I have copied the secret' }).click();
    await page.getByRole('cell', { name, exact: true }).waitFor();
    const html = await page.content();
    assert.ok(!html.includes(secret), 'the secret is gone from the page once the dialog is closed');
    await page.reload();
    await page.getByRole('cell', { name, exact: true }).waitFor();
    assert.ok(!(await page.content()).includes(secret));
    const robots = await (await api('GET', `robots?q=Level%3Dproject`)).text();
    assert.ok(!robots.includes(secret), 'the API never returns the secret again');
  });

  test('import an OCI image-layout archive with a progress bar', async () => {
    await page.getByRole('link', { name: 'Repositories' }).click();
    await page.getByRole('button', { name: 'Import image archive' }).click();
    const dialog = page.getByRole('dialog', { name: 'Import an image archive' });
    await dialog.getByLabel('Repository').fill('imported/app');
    await dialog.getByLabel('Tag').fill('2.0');
    await dialog.getByLabel(/Archive file/).setInputFiles(archiveFile);
    // Record every progress value the bar shows, and slow the upload down so there are some.
    // (a string, not a function: tsx would wrap a named function in a helper the page lacks)
    await page.evaluate(`(() => {
      window.__progress = [];
      const tick = () => {
        const el = document.querySelector('#import-progress');
        if (el && el.hasAttribute('value')) window.__progress.push(el.value);
        requestAnimationFrame(tick);
      };
      tick();
    })()`);
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 5, downloadThroughput: -1, uploadThroughput: 1.5 * 1024 * 1024 });
    await dialog.getByRole('button', { name: 'Import' }).click();
    await dialog.getByText(/Uploading… \d+%/).waitFor();
    await shot('07-import-progress');
    await dialog.getByText(/Imported/).waitFor({ timeout: 60_000 });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const seen = (await page.evaluate('window.__progress')) as number[];
    assert.ok(seen.some((v) => v > 0 && v < 100), `the bar showed progress between 0 and 100 (saw ${[...new Set(seen)].join(', ')})`);
    await shot('08-import-done');
    await dialog.getByRole('button', { name: 'Open repository' }).click();
    await page.getByRole('heading', { name: 'imported/app' }).waitFor();
    await page.locator('.tag', { hasText: '2.0' }).waitFor();
    await page.getByText('linux/amd64').first().waitFor();
    // The registry serves what was imported.
    const m = await fetch(`${srv.url}/v2/${PROJECT}/imported/app/manifests/2.0`, { headers: { Authorization: basic('admin', ADMIN_PASSWORD), Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(m.status, 200);
  });

  test('summary: storage, counts and activity chart', async () => {
    await page.getByRole('link', { name: PROJECT, exact: true }).click();
    await page.getByRole('link', { name: 'Summary' }).click();
    await page.getByRole('meter', { name: 'Storage used' }).waitFor();
    const chart = page.getByRole('img', { name: /Pushes and pulls per day/ });
    await chart.waitFor();
    // The chart's spoken summary counts as the legend does ("1 pull", not "1 pulls").
    const legend = ((await page.locator('.legend').textContent()) ?? '').replace(/\s+/g, ' ').trim();
    const said = (await chart.getAttribute('aria-label')) ?? '';
    for (const phrase of legend.match(/\d+ (pushes|push|pulls|pull)\b/g) ?? []) assert.ok(said.includes(phrase), `"${said}" says "${phrase}" as the legend does`);
    assert.doesNotMatch(said, /\b1 (pushes|pulls)\b/);
    await shot('09-summary');
  });

  test('tag immutability: a rule added in the project protects its tags (marked in the artifact list), is disabled and deleted', async () => {
    await pushTiny(srv, `${PROJECT}/locked`, 'v1');
    await page.getByRole('link', { name: PROJECT, exact: true }).click();
    await page.getByRole('link', { name: 'Tag immutability' }).click();
    await page.getByText('No immutability rules').waitFor();
    await page.getByRole('button', { name: 'Add rule' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add tag immutability rule' });
    await dialog.getByLabel('Repository pattern').fill('locked');
    await dialog.getByLabel('Tag pattern').fill('v*');
    await dialog.getByRole('button', { name: 'Add rule' }).click();
    const row = page.getByTestId('immutable-rule');
    await row.getByText('matching v*').waitFor();
    await row.getByText('enabled').waitFor();
    await shot('09b-tag-immutability');
    // Enforced: v1 cannot be moved; the artifact list marks it.
    await assert.rejects(pushTiny(srv, `${PROJECT}/locked`, 'v1', 'other'), /immutable, cannot be overwritten/);
    await page.goto(`${srv.url}/projects/${PROJECT}/repositories/locked`);
    await page.getByLabel('immutable').first().waitFor();
    // Disabled: the tag moves again; then the rule is deleted.
    await page.goBack();
    await row.getByRole('button', { name: /^Disable rule/ }).click();
    await row.getByText('disabled').waitFor();
    await pushTiny(srv, `${PROJECT}/locked`, 'v1', 'other');
    await row.getByRole('button', { name: /^Delete rule/ }).click();
    await page.getByRole('dialog', { name: 'Delete rule' }).getByRole('button', { name: 'Delete' }).click();
    await page.getByText('No immutability rules').waitFor();
  });

  test('tag retention: a rule keeps the newest artifact, a dry run reports, a real run deletes the rest, a schedule is saved', async () => {
    for (const [i, tag] of ['r1', 'r2', 'r3'].entries()) await pushTiny(srv, `${PROJECT}/ret`, tag, `ret-${i}`);
    await page.getByRole('link', { name: PROJECT, exact: true }).click();
    await page.getByRole('link', { name: 'Tag retention' }).click();
    await page.getByText('No retention rules').waitFor();
    await page.getByRole('button', { name: 'Add rule' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add retention rule' });
    await dialog.getByLabel('Repository pattern').fill('ret');
    await dialog.getByLabel('Keep').selectOption('latestPushedK');
    await dialog.getByLabel('Number of artifacts').fill('1');
    await dialog.getByLabel('Untagged artifacts count too').uncheck();
    await dialog.getByRole('button', { name: 'Add rule' }).click();
    const rule = page.getByTestId('retention-rule');
    await rule.getByText('the 1 most recently pushed').waitFor();
    await rule.getByText('matching ret', { exact: true }).waitFor();
    // A dry run: listed, then its repository with the counts and the log of what would go.
    await page.getByRole('button', { name: 'Dry run' }).click();
    const run = page.getByTestId('retention-run').first();
    await run.getByText('dry run').waitFor();
    await run.getByText('succeeded').waitFor();
    await run.getByRole('button', { name: /^Repositories of run/ }).click();
    const details = page.getByRole('dialog', { name: /^Retention run \d+ \(dry run\)$/ });
    const repoRow = details.getByRole('row', { name: new RegExp(`${PROJECT}/ret`) });
    await repoRow.waitFor();
    assert.deepEqual(await repoRow.getByRole('cell').allTextContents().then((c) => c.slice(0, 3)), [`${PROJECT}/ret`, '3', '1']);
    await details.getByRole('button', { name: `Log of ${PROJECT}/ret` }).click();
    await details.getByText(/would delete sha256:[0-9a-f]{64} \[r1\]/).waitFor();
    await shot('09c-tag-retention');
    await details.getByRole('button', { name: 'Close' }).first().click();
    const artifacts = async () => {
      const res = await fetch(`${srv.url}/api/v2.0/projects/${PROJECT}/repositories/ret/artifacts?with_tag=true`, { headers: { Authorization: basic('admin', ADMIN_PASSWORD) } });
      return ((await res.json()) as { tags: { name: string }[] }[]).flatMap((a) => a.tags.map((t) => t.name));
    };
    assert.deepEqual((await artifacts()).sort(), ['r1', 'r2', 'r3']);
    // The real run.
    await page.getByRole('button', { name: 'Run now' }).click();
    await page.getByTestId('retention-run').first().getByText('deleting').waitFor();
    await page.getByTestId('retention-run').first().getByText('succeeded').waitFor();
    assert.deepEqual(await artifacts(), ['r3']);
    // A daily schedule.
    await page.getByLabel('Schedule').selectOption('0 0 0 * * *');
    await page.getByRole('button', { name: 'Save schedule' }).click();
    await page.getByText('Schedule saved').waitFor();
    await page.reload();
    assert.equal(await page.getByLabel('Schedule').inputValue(), '0 0 0 * * *');
  });

  test('deleting a repository says how many artifacts go with it, in proper English', async () => {
    await pushTiny(srv, `${PROJECT}/scratch`, 'v1');
    await page.getByRole('link', { name: 'Repositories' }).click();
    await page.getByRole('button', { name: `Delete repository ${PROJECT}/scratch` }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete repository' });
    await dialog.getByText(`Delete ${PROJECT}/scratch with its 1 artifact and its tags?`).waitFor();
    assert.doesNotMatch((await dialog.textContent()) ?? '', /1 artifacts/);
    await dialog.getByRole('button', { name: 'Delete repository' }).click();
    await page.getByText(`Repository ${PROJECT}/scratch deleted`).waitFor();
    // A repository of two artifacts says "2 artifacts".
    await pushTiny(srv, `${PROJECT}/scratch2`, 'a');
    await pushTiny(srv, `${PROJECT}/scratch2`, 'b', 'second');
    await page.reload();
    await page.getByRole('button', { name: `Delete repository ${PROJECT}/scratch2` }).click();
    await dialog.getByText(`Delete ${PROJECT}/scratch2 with all 2 artifacts and their tags?`).waitFor();
    await dialog.getByRole('button', { name: 'Delete repository' }).click();
    await page.getByText(`Repository ${PROJECT}/scratch2 deleted`).waitFor();
  });

  test('the repository list sorts by name, recent update and creation, and keeps the order in the address', async () => {
    await pushTiny(srv, `${PROJECT}/zz-newest`, 'v1');
    await page.getByRole('link', { name: 'Repositories' }).click();
    const first = page.locator('table tbody tr').first();
    await page.getByLabel('Sort by').selectOption('-creation_time');
    await page.waitForURL(/sort=-creation_time/);
    await first.getByRole('link', { name: `${PROJECT}/zz-newest` }).waitFor();
    await page.getByLabel('Sort by').selectOption('name');
    await page.waitForURL((u) => !u.search.includes('sort='));
    await page.locator('table tbody tr').last().getByRole('link', { name: `${PROJECT}/zz-newest` }).waitFor();
    assert.notEqual(await first.getByRole('link').first().textContent(), `${PROJECT}/zz-newest`);
    // Recently updated: a push and also a pull (counted in batches) update a repository, as in Harbor,
    // so the order is checked on the times shown rather than on one name.
    const newestFirst = async () => {
      // The list shown may still be the one before the change for a moment: asked until it settles.
      let times: string[] = [];
      for (let i = 0; i < 100; i++) {
        times = await page.locator('.table-wrap:not(.stale) table tbody tr td[title]').evaluateAll((cells) => cells.map((c) => c.getAttribute('title') ?? ''));
        if (times.length > 1 && JSON.stringify(times) === JSON.stringify([...times].sort().reverse())) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.fail(`not newest first: ${times.join(', ')}`);
    };
    await page.getByLabel('Sort by').selectOption('-update_time');
    await page.waitForURL(/sort=-update_time/);
    await first.getByRole('link').first().waitFor();
    await newestFirst();
    await page.reload();
    assert.equal(await page.getByLabel('Sort by').inputValue(), '-update_time');
    await first.getByRole('link').first().waitFor();
    await newestFirst();
  });

  test('storage quota: set in the new-project dialog, shown on the summary, changed with Edit quota', async () => {
    const name = 'quota-team';
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects' }).click();
    await page.getByRole('button', { name: 'New project' }).click();
    const create = page.getByRole('dialog', { name: 'New project' });
    await create.getByLabel('Project name').fill(name);
    assert.ok(await create.getByLabel('Unlimited').isChecked(), 'unlimited unless a size is given');
    await create.getByLabel('Storage limit size').fill('5');
    assert.ok(await create.getByLabel('Limited to').isChecked(), 'typing a size chooses a limit');
    await create.getByLabel('Storage limit unit').selectOption('MiB');
    await create.getByRole('button', { name: 'Create project' }).click();
    await page.getByRole('heading', { name: new RegExp(name) }).waitFor();
    const { project_id: id } = (await (await api('GET', `projects/${name}`)).json()) as { project_id: number };
    const hard = async () => ((await (await api('GET', `quotas/${id}`)).json()) as { hard: { storage: number } }).hard.storage;
    assert.equal(await hard(), 5 * MiB, 'the dialog sends storage_limit in bytes');

    await page.getByRole('link', { name: 'Summary' }).click();
    const meter = page.getByRole('meter', { name: 'Storage used' });
    await meter.waitFor();
    await page.getByText('of 5.00 MiB', { exact: true }).waitFor();
    assert.match((await meter.getAttribute('aria-valuetext')) ?? '', /of 5\.00 MiB/);

    await page.getByRole('button', { name: 'Edit quota' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit quota' });
    assert.equal(await edit.getByLabel('Storage limit size').inputValue(), '5', 'the dialog starts from the current limit');
    assert.equal(await edit.getByLabel('Storage limit unit').inputValue(), 'MiB');
    // A limit of nothing is refused in place, before anything is sent.
    await edit.getByLabel('Storage limit size').fill('0');
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.getByRole('alert').filter({ hasText: /greater than zero/ }).waitFor();
    assert.equal(await hard(), 5 * MiB);
    await edit.getByLabel('Storage limit size').fill('1.5');
    await edit.getByLabel('Storage limit unit').selectOption('GiB');
    await edit.getByRole('alert').waitFor({ state: 'detached' }); // the complaint goes once the value changes
    await shot('09b-project-quota');
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.waitFor({ state: 'detached' });
    await page.getByText('of 1.50 GiB', { exact: true }).waitFor();
    assert.equal(await hard(), 1.5 * GiB, 'Edit quota PUTs the new limit');

    // And back to unlimited.
    await page.getByRole('button', { name: 'Edit quota' }).click();
    assert.equal(await edit.getByLabel('Storage limit size').inputValue(), '1.5');
    assert.equal(await edit.getByLabel('Storage limit unit').inputValue(), 'GiB');
    await edit.getByLabel('Unlimited').check();
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.waitFor({ state: 'detached' });
    await page.getByText('used, unlimited', { exact: true }).waitFor();
    assert.equal(await hard(), -1);
  });

  test('admin pages: users, LDAP settings with test connection, system information', async () => {
    await page.getByRole('link', { name: 'Administration' }).click();
    await page.getByRole('cell', { name: 'dev1', exact: true }).waitFor();
    await shot('10-admin-users');
    await page.getByRole('link', { name: 'LDAP' }).click();
    // Before anything is saved the form shows what a save stores: the certificate is verified.
    const verify = page.getByLabel('Verify the server certificate');
    await verify.waitFor();
    assert.ok(await verify.isChecked(), 'certificate verification shows on before the first save');
    assert.ok(!(await page.getByLabel('Follow nested groups').isChecked()));
    await page.getByLabel('Server URL').fill('ldap://127.0.0.1:1');
    await page.getByRole('button', { name: 'Test connection' }).click();
    // The answer is shown in place (nothing listens on port 1, so this should say "failed").
    await page.getByRole('status').filter({ hasText: /Connection (failed|works)/ }).waitFor({ timeout: 30_000 });
    await shot('11-admin-ldap');
    // Saved as shown, and shown as saved.
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('LDAP settings saved').waitFor();
    const cfg = (await (await api('GET', 'configurations')).json()) as Record<string, { value: unknown }>;
    assert.equal(cfg.ldap_url.value, 'ldap://127.0.0.1:1');
    assert.equal(cfg.ldap_verify_cert.value, true, 'saved with verification on, as the box showed');
    assert.equal(cfg.ldap_nested_groups.value, false);
    // With LDAP on, the member dialog offers LDAP groups at once (no reload), and stops when it is off.
    const memberTypes = async () => {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects' }).click();
      await page.getByRole('link', { name: PROJECT, exact: true }).click();
      await page.getByRole('link', { name: 'Members' }).click();
      await page.getByRole('button', { name: 'Add member' }).click();
      const dialog = page.getByRole('dialog', { name: 'Add member' });
      await dialog.getByRole('combobox', { name: 'Username' }).waitFor();
      const n = await dialog.getByRole('radio', { name: 'LDAP group' }).count();
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await page.getByRole('link', { name: 'Administration' }).click();
      await page.getByRole('navigation', { name: 'Administration sections' }).getByRole('link', { name: 'LDAP' }).click();
      return n;
    };
    assert.equal(await memberTypes(), 1, 'LDAP groups are offered once LDAP is configured');
    assert.ok(await page.getByLabel('Verify the server certificate').isChecked(), 'shown as saved');
    // LDAP off again (an empty URL), for the rest of the journey.
    await page.getByLabel('Server URL').fill('');
    // Wait for this save's answer: the first save's toast may still be on screen.
    const saved = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().endsWith('/api/v2.0/configurations'));
    await page.getByRole('button', { name: 'Save' }).click();
    assert.equal((await saved).status(), 200);
    const info = (await (await api('GET', 'systeminfo')).json()) as { auth_mode: string };
    assert.equal(info.auth_mode, 'db_auth');
    assert.equal(await memberTypes(), 0, 'no LDAP groups once LDAP is off again');
    await page.getByRole('link', { name: 'System' }).click();
    await page.getByRole('heading', { name: /Health/ }).waitFor();
    await shot('12-admin-system');
    // Values never break inside a word: "administrators" is on one line (a whole word may move
    // under its label).
    const who = page.locator('.kv li', { hasText: 'Who may create projects' }).locator('strong');
    assert.equal(await who.textContent(), 'administrators');
    // (an inline arrow: tsx would wrap a named function in a helper the page lacks)
    const lines = await who.evaluate((el) => {
      const range = el.ownerDocument.createRange();
      range.selectNodeContents(el);
      return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
    });
    assert.equal(lines, 1, 'the value is not split across lines');
  });

  test('clean up: a dry run is listed with its status and counts, its log opens, a schedule is saved and removed', async () => {
    await page.getByRole('navigation', { name: 'Administration sections' }).getByRole('link', { name: 'Clean up' }).click();
    await page.getByRole('heading', { name: 'Run now' }).waitFor();
    await page.getByText('No garbage collection has run yet.').waitFor();
    await page.getByLabel('Delete untagged artifacts', { exact: true }).check();
    await page.getByRole('button', { name: 'Dry run' }).click();
    await page.getByText('Dry run started').waitFor();
    const runs = (await (await api('GET', 'system/gc?page=1&page_size=10')).json()) as { id: number; job_kind: string; job_parameters: string }[];
    assert.equal(runs.length, 1, 'one run recorded');
    const run = runs[0];
    assert.equal(run.job_kind, 'MANUAL');
    const params = JSON.parse(run.job_parameters) as { dry_run?: boolean; delete_untagged?: boolean };
    assert.equal(params.dry_run, true, 'the dry run button asks for a dry run');
    assert.equal(params.delete_untagged, true, 'the checkbox reaches the server');
    // The page refreshes itself while the run is pending or running.
    const row = page.getByRole('row').filter({ has: page.getByRole('button', { name: `Log of run ${run.id}` }) });
    await row.locator('.badge', { hasText: 'Success' }).waitFor({ timeout: 60_000 });
    await row.getByRole('cell', { name: 'manual', exact: true }).waitFor();
    await row.getByRole('cell', { name: 'yes', exact: true }).waitFor();
    const done = (await (await api('GET', 'system/gc?page=1&page_size=10')).json()) as { job_status: string; blobs_deleted: number; manifests_deleted: number; freed_bytes: number }[];
    assert.equal(done[0].job_status, 'Success');
    // The row says in words what the run would delete and free: the server's counts.
    const said = ((await row.locator('.gc-result').textContent()) ?? '').trim();
    const d = done[0];
    if (!d.manifests_deleted && !d.blobs_deleted && !d.freed_bytes) assert.equal(said, 'nothing to delete');
    else {
      const m = /^would delete (\d+) manifests? and (\d+) blobs?, freeing (\S+ \S+)/.exec(said);
      assert.ok(m, `a sentence: ${said}`);
      assert.deepEqual([Number(m[1]), Number(m[2])], [d.manifests_deleted, d.blobs_deleted], said);
    }
    await row.getByRole('button', { name: `Log of run ${run.id}` }).click();
    const dialog = page.getByRole('dialog', { name: `Log of run ${run.id}` });
    const log = dialog.locator('pre');
    await log.waitFor();
    const text = (await log.textContent()) ?? '';
    const served = await (await api('GET', `system/gc/${run.id}/log`)).text();
    assert.ok(served.trim().length > 0, 'the server wrote a log');
    assert.equal(text.trim(), served.trim(), 'the dialog shows the log the server serves');
    await shot('12b-admin-gc');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
    // A recurring schedule: saved, shown with its next run, then removed again.
    await page.getByLabel('Run automatically').selectOption('Custom');
    await page.getByLabel('Cron expression').fill('0 0 3 * * *');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Schedule saved').waitFor();
    await page.getByText(/Next run:/).waitFor();
    const sched = (await (await api('GET', 'system/gc/schedule')).json()) as { schedule: { type: string; cron: string; next_scheduled_time?: string } };
    assert.equal(sched.schedule.type, 'Custom');
    assert.equal(sched.schedule.cron, '0 0 3 * * *');
    assert.ok(sched.schedule.next_scheduled_time, 'the server plans the next run');
    await page.getByLabel('Run automatically').selectOption('None');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Schedule removed').waitFor();
    const none = (await (await api('GET', 'system/gc/schedule')).json()) as { schedule: { type: string } };
    assert.equal(none.schedule.type, 'None');

    // A real run over the repositories deleted above (time window 0, so nothing is too young):
    // their blobs go, and the row says how many of what and how much space that freed.
    const started = await api('POST', 'system/gc/schedule', { schedule: { type: 'Manual' }, parameters: { delete_untagged: false, dry_run: false, time_window: 0 } });
    const id = Number(started.headers.get('Location')!.split('/').pop());
    await page.reload();
    const real = page.getByRole('row').filter({ has: page.getByRole('button', { name: `Log of run ${id}` }) });
    await real.locator('.badge', { hasText: 'Success' }).waitFor({ timeout: 60_000 });
    const r = (await (await api('GET', `system/gc/${id}`)).json()) as { manifests_deleted: number; blobs_deleted: number; freed_bytes: number };
    assert.ok(r.blobs_deleted >= 4, `the deleted repositories' blobs are collected (${JSON.stringify(r)})`);
    const sentence = ((await real.locator('.gc-result').textContent()) ?? '').trim();
    const plural = (n: number, w: string) => `${n} ${n === 1 ? w : `${w}s`}`;
    assert.equal(sentence.replace(/, [\d.]+ (B|KiB|MiB) freed$/, ''), `${plural(r.manifests_deleted, 'manifest')} and ${plural(r.blobs_deleted, 'blob')} deleted`, sentence);
    assert.match(sentence, r.freed_bytes < 1024 ? new RegExp(`, ${r.freed_bytes} B freed$`) : /, [\d.]+ (KiB|MiB) freed$/);
    await shot('12c-admin-gc-result');
  });

  test('registries: add an endpoint with a tested connection, test it from the list, edit it; the secret never reaches the page', async () => {
    const noSecret = async (where: string) => assert.ok(!(await page.content()).includes(UPSTREAM_PASSWORD), `the upstream secret is not in the page (${where})`);
    await page.getByRole('navigation', { name: 'Administration sections' }).getByRole('link', { name: 'Registries' }).click();
    await page.getByText('No registry endpoints yet.').waitFor();
    await page.getByRole('button', { name: 'New endpoint' }).click();
    const dialog = page.getByRole('dialog', { name: 'New registry endpoint' });
    await dialog.getByLabel('Provider').selectOption('docker-registry');
    await dialog.getByLabel('Name').fill('upstream');
    await dialog.getByLabel('Description').fill('Distribution on loopback');
    await dialog.getByLabel('Endpoint URL').fill(dist.url);
    await dialog.getByLabel('Access ID').fill(UPSTREAM_USER);
    // A wrong secret: the test says so, in place, with the registry's reason.
    await dialog.getByLabel('Access secret').fill('not-the-password');
    let pinged = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/api/v2.0/registries/ping'));
    await dialog.getByRole('button', { name: 'Test connection' }).click();
    assert.equal((await pinged).status(), 400);
    await dialog.getByRole('status').filter({ hasText: /^Connection failed: .*unhealthy/ }).waitFor();
    await dialog.getByLabel('Access secret').fill(UPSTREAM_PASSWORD);
    // Typing clears the old answer, so the next one is this test's.
    await dialog.getByRole('status').waitFor({ state: 'detached' });
    pinged = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/api/v2.0/registries/ping'));
    await dialog.getByRole('button', { name: 'Test connection' }).click();
    assert.equal((await pinged).status(), 200);
    await dialog.getByRole('status').filter({ hasText: 'Connection works.' }).waitFor();
    await shot('20-registry-new');
    const created = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/api/v2.0/registries'));
    await dialog.getByRole('button', { name: 'Add endpoint' }).click();
    assert.equal((await created).status(), 201);
    await dialog.waitFor({ state: 'detached' });
    const row = page.getByRole('row').filter({ has: page.getByRole('button', { name: 'Edit registry endpoint upstream' }) });
    await row.getByRole('cell', { name: dist.url }).waitFor();
    await row.getByRole('cell', { name: UPSTREAM_USER, exact: true }).waitFor();
    await row.getByText('not checked').waitFor();
    const listed = (await (await api('GET', 'registries')).json()) as { id: number; name: string; url: string; credential: { type: string; access_key: string; access_secret?: string } }[];
    assert.equal(listed.length, 1);
    assert.deepEqual([listed[0].name, listed[0].url, listed[0].credential], ['upstream', dist.url, { type: 'basic', access_key: UPSTREAM_USER, access_secret: '*****' }]);
    await noSecret('after adding');

    // Test from the list: the saved endpoint as saved, and its status follows.
    await row.getByRole('button', { name: 'Test connection to upstream' }).click();
    await page.getByRole('status').filter({ hasText: 'upstream: Connection works.' }).waitFor();
    await row.getByText('healthy', { exact: true }).waitFor();
    await shot('21-registries');

    // Edit: the secret field starts empty (a secret is saved, and kept unless one is typed).
    await row.getByRole('button', { name: 'Edit registry endpoint upstream' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit registry endpoint' });
    assert.equal(await edit.getByLabel('Access secret').inputValue(), '', 'the saved secret is not in the form');
    assert.equal(await edit.getByLabel('Access ID').inputValue(), UPSTREAM_USER);
    assert.equal(await edit.getByLabel('Endpoint URL').inputValue(), dist.url);
    await edit.getByText('A secret is saved: leave the secret empty to keep it.').waitFor();
    await noSecret('in the edit dialog');
    // The test uses the saved secret.
    pinged = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/api/v2.0/registries/ping'));
    await edit.getByRole('button', { name: 'Test connection' }).click();
    assert.equal((await pinged).status(), 200);
    await edit.getByRole('status').filter({ hasText: 'Connection works.' }).waitFor();
    await edit.getByLabel('Name').fill('hub-mirror');
    await edit.getByLabel('Description').fill('Distribution with htpasswd, on loopback');
    await shot('22-registry-edit');
    const saved = page.waitForResponse((r) => r.request().method() === 'PUT' && /\/api\/v2\.0\/registries\/\d+$/.test(r.url()));
    await edit.getByRole('button', { name: 'Save' }).click();
    assert.equal((await saved).status(), 200);
    await edit.waitFor({ state: 'detached' });
    await page.getByText('Distribution with htpasswd, on loopback').waitFor();
    const after = (await (await api('GET', `registries/${listed[0].id}`)).json()) as { name: string; description: string; credential: { access_secret?: string } };
    assert.equal(after.name, 'hub-mirror');
    assert.equal(after.description, 'Distribution with htpasswd, on loopback');
    assert.equal(after.credential.access_secret, '*****', 'the secret stays saved');
    // The secret kept is the one that works.
    const check = await api('POST', 'registries/ping', { id: listed[0].id });
    assert.equal(check.status, 200);
    await noSecret('after the edit');
  });

  test('a proxy-cache project: chosen in the new-project dialog with its endpoint, the pull path explained, and pulling through it works', async () => {
    // Something to pull through: library/alpine:3.20 on the upstream.
    const up = new UpstreamClient({ url: dist.url, credential: { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD } });
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const layer = randomBytes(4096, 42);
    for (const b of [config, layer]) await up.pushBlob('library/alpine', sha256(b), b.length, () => Readable.from([b]));
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length }, layers: [{ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length }] }));
    await up.putManifest('library/alpine', '3.20', manifest, OCI_MANIFEST);
    up.close();

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects' }).click();
    await page.getByRole('button', { name: 'New project' }).click();
    const dialog = page.getByRole('dialog', { name: 'New project' });
    await dialog.getByLabel('Project name').fill('hub-cache');
    await dialog.getByLabel(/Proxy cache/).check();
    const endpoint = dialog.getByLabel('Registry endpoint');
    await endpoint.locator('option', { hasText: 'hub-mirror' }).waitFor({ state: 'attached' });
    await endpoint.selectOption({ label: `hub-mirror (${dist.url})` });
    const explained = dialog.getByTestId('proxy-cache-explanation');
    await explained.getByText(`${srv.host}/hub-cache/library/alpine:3.20`).waitFor();
    assert.match((await explained.textContent()) ?? '', new RegExp(`fetches library/alpine:3\\.20 from ${dist.url.replace(/[.]/g, '\\.')} the first time`));
    await shot('23-proxy-cache-dialog');
    await dialog.getByRole('button', { name: 'Create project' }).click();
    await page.getByRole('heading', { name: /hub-cache/ }).getByText('proxy cache').waitFor();
    await page.getByText('Nothing cached yet.').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Import image archive' }).count(), 0, 'no import into a proxy cache');
    const { registry_id: used } = (await (await api('GET', 'projects/hub-cache')).json()) as { registry_id: number };
    const [{ id }] = (await (await api('GET', 'registries')).json()) as { id: number }[];
    assert.equal(used, id, 'the dialog sends registry_id');

    // The path the dialog showed is the one that pulls.
    const pulled = await fetch(`${srv.url}/v2/hub-cache/library/alpine/manifests/3.20`, { headers: { Authorization: basic('admin', ADMIN_PASSWORD), Accept: OCI_MANIFEST } });
    assert.equal(pulled.status, 200);
    assert.equal(sha256(Buffer.from(await pulled.arrayBuffer())), sha256(manifest), 'digest for digest');
    await page.reload();
    await page.getByRole('link', { name: 'hub-cache/library/alpine' }).waitFor();
    await shot('24-proxy-cache-project');
  });

  test('replication: a push-based policy to the registry endpoint, run now, its execution, tasks and a task log', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Administration' }).click();
    await page.getByRole('navigation', { name: 'Administration sections' }).getByRole('link', { name: 'Replications' }).click();
    await page.getByText('No replication policies yet.').waitFor();
    await page.getByText('No replication has run yet.').waitFor();
    await page.getByRole('button', { name: 'New policy' }).click();
    const dialog = page.getByRole('dialog', { name: 'New replication policy' });
    await dialog.getByLabel('Name', { exact: true }).fill('to-mirror');
    await dialog.getByLabel('Description').fill('release images to the mirror');
    await dialog.getByLabel(/Push-based/).check();
    await dialog.getByLabel('Destination registry').selectOption({ label: `hub-mirror (${dist.url})` });
    await dialog.getByLabel('Name filter').fill(`${PROJECT}/tools/**`);
    await dialog.getByLabel('Tag filter', { exact: true }).fill('1.*');
    await dialog.getByLabel('Destination namespace').fill('mirror');
    await dialog.getByLabel('Flattening').selectOption('1');
    await dialog.getByLabel('Trigger').selectOption('manual');
    await shot('26-replication-policy');
    const created = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/api/v2.0/replication/policies'));
    await dialog.getByRole('button', { name: 'Create policy' }).click();
    assert.equal((await created).status(), 201);
    await dialog.waitFor({ state: 'detached' });
    const row = page.getByRole('row').filter({ has: page.getByRole('button', { name: 'Run policy to-mirror now' }) });
    await row.getByText('hub-mirror').waitFor();
    const [policy] = (await (await api('GET', 'replication/policies')).json()) as { id: number; src_registry: { id: number }; dest_registry: { name: string }; dest_namespace: string; dest_namespace_replace_count: number; filters: { type: string; value: string; decoration: string }[]; trigger: { type: string } }[];
    assert.equal(policy.src_registry.id, 0, 'push-based: the source is this Berth');
    assert.equal(policy.dest_registry.name, 'hub-mirror');
    assert.deepEqual([policy.dest_namespace, policy.dest_namespace_replace_count, policy.trigger.type], ['mirror', 1, 'manual']);
    assert.deepEqual(policy.filters.map((f) => [f.type, f.value, f.decoration]), [['name', `${PROJECT}/tools/**`, 'matches'], ['tag', '1.*', 'matches']]);
    // Edit shows the policy as saved.
    await row.getByRole('button', { name: 'Edit policy to-mirror' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit replication policy' });
    assert.equal(await edit.getByLabel('Name filter').inputValue(), `${PROJECT}/tools/**`);
    assert.equal(await edit.getByLabel('Tag filter', { exact: true }).inputValue(), '1.*');
    assert.equal(await edit.getByLabel('Destination namespace').inputValue(), 'mirror');
    assert.equal(await edit.getByLabel('Flattening').inputValue(), '1');
    assert.ok(await edit.getByLabel(/Push-based/).isChecked());
    await edit.getByRole('button', { name: 'Cancel' }).click();
    await edit.waitFor({ state: 'detached' });

    const started = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/api/v2.0/replication/executions'));
    await row.getByRole('button', { name: 'Run policy to-mirror now' }).click();
    const res = await started;
    assert.equal(res.status(), 201);
    const executionId = Number((await res.headerValue('location'))!.split('/').pop());
    // The list refreshes itself until the execution ends.
    const exec = page.getByRole('row').filter({ has: page.getByRole('button', { name: `Tasks of execution ${executionId}` }) });
    await exec.getByText('Succeeded', { exact: true }).waitFor({ timeout: 60_000 });
    const e = (await (await api('GET', `replication/executions/${executionId}`)).json()) as { status: string; total: number; succeed: number };
    assert.equal(e.status, 'Succeed');
    assert.ok(e.total >= 1 && e.succeed === e.total, JSON.stringify(e));
    await exec.getByText(`${e.total} of ${e.total} task${e.total === 1 ? '' : 's'} done: ${e.total} succeeded, 0 failed`).waitFor();
    assert.equal(await exec.getByRole('progressbar', { name: `Progress of execution ${executionId}` }).getAttribute('value'), String(e.total));
    await shot('27-replication-executions');

    // Its tasks, and a task's log as the server serves it.
    await exec.getByRole('button', { name: `Tasks of execution ${executionId}` }).click();
    const tasks = page.getByRole('dialog', { name: `Execution ${executionId}` });
    const task = tasks.getByRole('row').filter({ hasText: `${PROJECT}/tools/multi:1.0` });
    await task.getByText('mirror/tools/multi:1.0').waitFor();
    await task.getByText('Succeeded', { exact: true }).waitFor();
    await tasks.getByRole('button', { name: /^Log of task / }).first().click();
    const log = tasks.locator('pre');
    await log.waitFor();
    const shown = (await log.textContent()) ?? '';
    const first = tasks.getByRole('button', { name: /^Log of task / }).first();
    const taskId = Number(((await first.getAttribute('aria-label')) ?? '').replace('Log of task ', ''));
    const served = await (await api('GET', `replication/executions/${executionId}/tasks/${taskId}/log`)).text();
    assert.ok(served.trim().length > 0, 'the task wrote a log');
    assert.equal(shown.trim(), served.trim(), 'the dialog shows the log the server serves');
    await shot('28-replication-task-log');
    await tasks.getByRole('button', { name: 'Close' }).first().click();
    await tasks.waitFor({ state: 'detached' });

    // What the policy copied is at the destination, digest for digest.
    const up = new UpstreamClient({ url: dist.url, credential: { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD } });
    try {
      const there = await up.headManifest('mirror/tools/multi', '1.0');
      assert.equal(there?.digest, multi.top.digest);
    } finally {
      up.close();
    }
  });

  test('replication with a wrong password: the execution fails, and the task log names the cause', async () => {
    const reg = await api('POST', 'registries', { name: 'wrong-pass', type: 'docker-registry', url: dist.url, credential: { type: 'basic', access_key: UPSTREAM_USER, access_secret: 'not-the-password' } });
    const regId = Number(reg.headers.get('location')!.split('/').pop());
    const pol = await api('POST', 'replication/policies', { name: 'bad-password', src_registry: { id: 0 }, dest_registry: { id: regId }, filters: [{ type: 'name', value: `${PROJECT}/tools/**` }, { type: 'tag', value: '1.0' }], trigger: { type: 'manual' } });
    const policyId = Number(pol.headers.get('location')!.split('/').pop());
    await page.reload();
    const started = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/api/v2.0/replication/executions'));
    await page.getByRole('button', { name: 'Run policy bad-password now' }).click();
    const res = await started;
    assert.equal(res.status(), 201);
    const executionId = Number((await res.headerValue('location'))!.split('/').pop());
    const exec = page.getByRole('row').filter({ has: page.getByRole('button', { name: `Tasks of execution ${executionId}` }) });
    await exec.getByText('Failed', { exact: true }).waitFor({ timeout: 60_000 });
    await exec.getByRole('button', { name: `Tasks of execution ${executionId}` }).click();
    const dialog = page.getByRole('dialog', { name: `Execution ${executionId}` });
    const task = dialog.getByRole('row').filter({ hasText: `${PROJECT}/tools/multi:1.0` });
    await task.getByText('Failed', { exact: true }).waitFor();
    await task.getByRole('button', { name: /^Log of task / }).click();
    const log = dialog.locator('pre');
    await log.filter({ hasText: /unauthorized|credential/i }).waitFor();
    await shot('29-replication-failed-log');
    await dialog.getByRole('button', { name: 'Close' }).first().click();
    await dialog.waitFor({ state: 'detached' });
    await api('DELETE', `replication/policies/${policyId}`);
    await api('DELETE', `registries/${regId}`);
  });

  test('delete: a replication policy; a registry endpoint in use is not deleted (the reason shows in place), an unused one is', async () => {
    await api('POST', 'registries', { name: 'old-mirror', type: 'docker-registry', url: 'http://127.0.0.1:1' });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Administration' }).click();
    await page.getByRole('navigation', { name: 'Administration sections' }).getByRole('link', { name: 'Replications' }).click();
    await page.getByRole('button', { name: 'Delete policy to-mirror' }).click();
    const policyGone = page.waitForResponse((r) => r.request().method() === 'DELETE' && /\/api\/v2\.0\/replication\/policies\/\d+$/.test(r.url()));
    await page.getByRole('dialog', { name: 'Delete replication policy' }).getByRole('button', { name: 'Delete policy' }).click();
    assert.equal((await policyGone).status(), 200);
    await page.getByText('No replication policies yet.').waitFor();
    assert.deepEqual(await (await api('GET', 'replication/policies')).json(), []);
    await page.getByRole('navigation', { name: 'Administration sections' }).getByRole('link', { name: 'Registries' }).click();
    await page.getByRole('button', { name: 'Delete registry endpoint hub-mirror' }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete registry endpoint' });
    await confirm.getByRole('button', { name: 'Delete endpoint' }).click();
    await confirm.getByRole('alert').filter({ hasText: /used by proxy cache project hub-cache/ }).waitFor();
    await shot('25-registry-delete-refused');
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Delete registry endpoint old-mirror' }).click();
    const deleted = page.waitForResponse((r) => r.request().method() === 'DELETE' && /\/api\/v2\.0\/registries\/\d+$/.test(r.url()));
    await confirm.getByRole('button', { name: 'Delete endpoint' }).click();
    assert.equal((await deleted).status(), 200);
    await page.getByRole('button', { name: 'Delete registry endpoint old-mirror' }).waitFor({ state: 'detached' });
    const left = (await (await api('GET', 'registries')).json()) as { name: string }[];
    assert.deepEqual(left.map((r) => r.name), ['hub-mirror']);
  });

  test('on a phone-sized screen (390 px) nothing scrolls sideways and the search box stays usable', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      const { project_id: id } = (await (await api('GET', `projects/${PROJECT}`)).json()) as { project_id: number };
      const pages: [string, string, () => Promise<void>][] = [
        ['projects', '/projects', () => page.getByRole('link', { name: PROJECT, exact: true }).waitFor()],
        ['repositories', `/projects/${id}/repositories`, () => page.getByRole('link', { name: `${PROJECT}/tools/multi` }).waitFor()],
        ['artifacts', `/projects/${id}/repositories/tools/multi`, () => page.getByText('linux/amd64').first().waitFor()],
        ['summary', `/projects/${id}/summary`, () => page.getByRole('meter', { name: 'Storage used' }).waitFor()],
        ['members', `/projects/${id}/members`, () => page.getByRole('cell', { name: 'dev1', exact: true }).waitFor()],
        ['robots', `/projects/${id}/robots`, () => page.getByRole('cell', { name: `robot$${PROJECT}+ci`, exact: true }).waitFor()],
        ['admin-users', '/admin/users', () => page.getByRole('cell', { name: 'dev1', exact: true }).waitFor()],
        ['admin-system', '/admin/system', () => page.getByRole('heading', { name: /Health/ }).waitFor()],
        ['admin-gc', '/admin/gc', () => page.getByRole('heading', { name: 'History' }).waitFor()],
        ['admin-ldap', '/admin/ldap', () => page.getByLabel('Server URL').waitFor()],
        ['admin-registries', '/admin/registries', () => page.getByRole('cell', { name: /^hub-mirror/ }).waitFor()],
        ['admin-replications', '/admin/replications', () => page.getByText('No replication policies yet.').waitFor()],
        ['profile', '/profile', () => page.getByRole('heading', { name: 'Personal access tokens' }).waitFor()],
      ];
      for (const [name, href, ready] of pages) {
        await page.goto(`${srv.url}${href}`);
        await ready();
        await shot(`15-phone-${name}`);
        const wide = (await page.evaluate(WIDER_THAN_SCREEN)) as { scrollWidth: number; culprits: string[] };
        assert.ok(wide.scrollWidth <= 390, `${name}: the page is ${wide.scrollWidth} px wide; too wide: ${wide.culprits.join(', ')}`);
        const search = await page.getByRole('combobox', { name: 'Search projects and repositories' }).boundingBox();
        assert.ok(search && search.width >= 300, `${name}: the search box is ${search?.width} px wide`);
      }
      // Dialogs fit the screen too.
      await page.getByRole('button', { name: 'New token' }).click();
      const dialog = page.getByRole('dialog', { name: 'New personal access token' });
      const box = await dialog.boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `the dialog fits: ${JSON.stringify(box)}`);
      await shot('15-phone-dialog');
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'detached' }); // (it hands the focus back as it goes)
      // The search works there too.
      await page.getByRole('combobox', { name: 'Search projects and repositories' }).fill('multi');
      await page.getByRole('option', { name: /tools\/multi/ }).waitFor();
      await shot('15-phone-search');
    } finally {
      await page.setViewportSize({ width: 1366, height: 800 });
    }
  });

  test('a developer sees no delete buttons for artifacts or tags, and no administration', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await signIn('dev1', DEV_PASSWORD);
    assert.equal(await page.getByRole('link', { name: 'Administration' }).count(), 0);
    await page.getByRole('link', { name: PROJECT, exact: true }).click();
    await page.getByRole('link', { name: `${PROJECT}/tools/multi` }).click();
    const row = page.locator('tbody').filter({ hasText: '1.0' }).first();
    await row.getByText('linux/amd64').waitFor();
    assert.equal(await page.getByRole('button', { name: /^Delete artifact/ }).count(), 0, 'no artifact delete for a developer');
    await row.getByRole('button', { name: /^Details of/ }).click();
    await row.getByRole('button', { name: 'Add tag' }).waitFor(); // developers may tag
    assert.equal(await page.getByRole('button', { name: /^Delete tag/ }).count(), 0, 'no tag delete for a developer');
    assert.equal(await page.getByRole('button', { name: /^Delete repository/ }).count(), 0);
    await shot('13-developer-view');
    // The quota shows, but only a system admin may change it.
    await page.getByRole('link', { name: PROJECT, exact: true }).click();
    await page.getByRole('link', { name: 'Summary' }).click();
    await page.getByRole('meter', { name: 'Storage used' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Edit quota' }).count(), 0, 'no Edit quota for a developer');
    assert.equal(await page.getByRole('link', { name: 'Tag immutability' }).count(), 0, 'no tag immutability tab for a developer');
  });

  test('when the session ends, the next action returns to the login form and back afterwards', async () => {
    const here = new URL(page.url()).pathname;
    await ctx.clearCookies({ name: 'berth_session' });
    await page.getByRole('link', { name: 'Members' }).or(page.getByRole('link', { name: PROJECT, exact: true })).first().click();
    await page.getByText('Your session has ended').waitFor();
    await shot('14-session-ended');
    await signIn('dev1', DEV_PASSWORD);
    assert.notEqual(new URL(page.url()).pathname, '/login', 'back where the user was');
    void here;
  });

  test('profile: every user finds it in the top bar, sees who they are and where their password lives', async () => {
    await page.getByRole('link', { name: 'Your profile (dev1)' }).click();
    await page.getByRole('heading', { name: 'Your profile' }).waitFor();
    assert.match(new URL(page.url()).pathname, /^\/profile$/);
    const kv = (label: string) => page.locator('.kv li', { hasText: label }).locator('strong').textContent();
    await page.getByText('dev1@example.com').waitFor();
    assert.equal(await kv('Username'), 'dev1');
    assert.equal(await kv('Full name'), 'Dev One');
    assert.equal(await page.getByTestId('account-source').textContent(), 'Berth (local account)');
    await page.getByRole('form', { name: 'Change password' }).waitFor();
    await page.getByText('No tokens yet.').waitFor();
    await shot('16-profile');
  });

  test('personal access token: created with an expiry, shown once with a copy button, works with Basic auth, revoked after a confirmation', async () => {
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.url });
    await page.getByRole('button', { name: 'New token' }).click();
    const create = page.getByRole('dialog', { name: 'New personal access token' });
    await create.getByLabel('Name').fill('laptop');
    await create.getByLabel('Expires').selectOption({ label: 'in 30 days' });
    await create.getByRole('button', { name: 'Create token' }).click();
    const once = page.getByRole('dialog', { name: 'Token created' });
    await once.getByRole('alert').filter({ hasText: 'It will not be shown again' }).waitFor();
    const token = ((await once.getByTestId('personal-token').locator('code').textContent()) ?? '').trim();
    assert.match(token, /^berth_pat_/);
    await once.getByRole('button', { name: 'Copy token' }).click();
    await once.getByText('Copied', { exact: true }).waitFor();
    assert.equal(await page.evaluate('navigator.clipboard.readText()'), token, 'the copy button copies the token');
    await shot('17-token-once');
    await once.getByRole('button', { name: 'I have copied the token' }).click();
    const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'laptop', exact: true }) });
    await row.waitFor();
    assert.ok(!(await page.content()).includes(token), 'the token is gone from the page once the dialog is closed');
    const cells = (await row.getByRole('cell').allTextContents()).map((c) => c.trim());
    assert.equal(cells[1], 'just now', `created: ${cells.join(' | ')}`);
    const listed = (await (await api('GET', 'users/current/tokens', undefined, basic('dev1', DEV_PASSWORD))).json()) as { name: string; expires_at: string }[];
    const days = (Date.parse(listed[0].expires_at) - Date.now()) / 86_400_000;
    assert.ok(days > 29 && days <= 30, `expires in 30 days (${days})`);
    assert.equal(cells[3], 'never', 'not used yet');

    // The token is a password: for the API and for the registry.
    const me = await fetch(`${srv.url}/api/v2.0/users/current`, { headers: { Authorization: basic('dev1', token) } });
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { username: string }).username, 'dev1');
    const tags = await fetch(`${srv.url}/v2/${PROJECT}/tools/multi/tags/list`, { headers: { Authorization: basic('dev1', token) } });
    assert.equal(tags.status, 200, 'pulls with the token');
    await page.reload();
    await row.getByRole('cell', { name: 'just now' }).nth(1).waitFor(); // last used
    await shot('18-tokens');

    await row.getByRole('button', { name: 'Revoke token laptop' }).click();
    const confirm = page.getByRole('dialog', { name: 'Revoke token' });
    await confirm.getByText('Anything logging in with it fails from now on').waitFor();
    await confirm.getByRole('button', { name: 'Revoke' }).click();
    await page.getByText('Token laptop revoked').waitFor();
    await row.waitFor({ state: 'detached' });
    await page.getByText('No tokens yet.').waitFor();
    const refused = await fetch(`${srv.url}/v2/${PROJECT}/tools/multi/tags/list`, { headers: { Authorization: basic('dev1', token) } });
    assert.equal(refused.status, 401, 'a revoked token is refused at once');
    const refusedApi = await fetch(`${srv.url}/api/v2.0/users/current`, { headers: { Authorization: basic('dev1', token) } });
    assert.equal(refusedApi.status, 401);
  });

  test('change password: a wrong current password is refused in place; the change ends other sessions and keeps this one', async () => {
    // Another browser session of the same user.
    const other = await fetch(`${srv.url}/c/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ principal: 'dev1', password: DEV_PASSWORD }) });
    assert.equal(other.status, 200);
    const cookie = other.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const otherMe = () => fetch(`${srv.url}/api/v2.0/users/current`, { headers: { Cookie: cookie } }).then((r) => r.status);
    assert.equal(await otherMe(), 200, 'the other session works before the change');

    const form = page.getByRole('form', { name: 'Change password' });
    await form.getByLabel('Current password').fill('not-my-password');
    await form.getByLabel('New password', { exact: true }).fill(NEW_DEV_PASSWORD);
    await form.getByLabel('New password again').fill(NEW_DEV_PASSWORD);
    await form.getByRole('button', { name: 'Change password' }).click();
    await form.getByRole('alert').filter({ hasText: /old password is wrong/ }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/profile', 'still signed in');
    // Mistyped confirmation: caught before anything is sent.
    await form.getByLabel('Current password').fill(DEV_PASSWORD);
    await form.getByLabel('New password again').fill(`${NEW_DEV_PASSWORD}x`);
    await form.getByRole('button', { name: 'Change password' }).click();
    await form.getByRole('alert').filter({ hasText: 'The new passwords differ.' }).waitFor();
    await form.getByLabel('New password again').fill(NEW_DEV_PASSWORD);
    await form.getByRole('button', { name: 'Change password' }).click();
    await page.getByText(/Password changed/).waitFor();
    assert.equal(await form.getByLabel('Current password').inputValue(), '', 'the form is emptied');

    assert.equal(await otherMe(), 401, 'the other session has ended');
    assert.equal((await fetch(`${srv.url}/api/v2.0/users/current`, { headers: { Authorization: basic('dev1', DEV_PASSWORD) } })).status, 401, 'the old password no longer works');
    assert.equal((await fetch(`${srv.url}/api/v2.0/users/current`, { headers: { Authorization: basic('dev1', NEW_DEV_PASSWORD) } })).status, 200, 'the new one does');
    // This session goes on: a reload and a navigation stay signed in.
    await page.reload();
    await page.getByRole('heading', { name: 'Your profile' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects' }).click();
    await page.getByRole('link', { name: PROJECT, exact: true }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sign in' }).count(), 0);
  });

  test('log out ends the session', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    const cookies = await ctx.cookies(srv.url);
    assert.equal(cookies.find((c) => c.name === 'berth_session')?.value ?? '', '', 'the session cookie is cleared');
    await page.goto(`${srv.url}/projects/${PROJECT}`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    // The login form fits a phone too.
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      const wide = (await page.evaluate(WIDER_THAN_SCREEN)) as { scrollWidth: number; culprits: string[] };
      assert.ok(wide.scrollWidth <= 390, `login: the page is ${wide.scrollWidth} px wide; too wide: ${wide.culprits.join(', ')}`);
      await shot('15-phone-login');
    } finally {
      await page.setViewportSize({ width: 1366, height: 800 });
    }
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });
});

describe('web UI with LDAP, in Chromium', { skip: missingTool('chromium', 'slapd', 'ldapadd') }, () => {
  let ldap: Slapd;
  let srv: ServerProcess;
  let ctx: BrowserContext;
  let page: Page;
  let work: string;
  const pageErrors: string[] = [];
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const api = (method: string, p: string, auth: string, body?: unknown) =>
    fetch(`${srv.url}/api/v2.0/${p}`, { method, headers: { Authorization: auth, ...(body ? { 'Content-Type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });

  async function signIn(user: string, password: string) {
    await page.goto(`${srv.url}/login`);
    await page.getByLabel('Username').fill(user);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor();
  }

  before(async () => {
    ensureWebBuilt();
    fs.mkdirSync(SHOTS, { recursive: true });
    work = tempDir('berth-ui-ldap-');
    ldap = await startSlapd();
    const cfg = ldap.config();
    srv = await startServer({
      env: {
        BERTH_LOG_LEVEL: 'warn',
        BERTH_LDAP_URL: cfg.url,
        BERTH_LDAP_SEARCH_DN: cfg.searchDn,
        BERTH_LDAP_SEARCH_PASSWORD: cfg.searchPassword,
        BERTH_LDAP_BASE_DN: cfg.baseDn,
        BERTH_LDAP_UID: cfg.uid,
        BERTH_LDAP_GROUP_BASE_DN: cfg.groupBaseDn,
      },
    });
    const r = await api('POST', 'projects', basic('admin', ADMIN_PASSWORD), { project_name: 'team', metadata: { public: 'false' } });
    assert.equal(r.status, 201, await r.text());
    const { chromium } = await import('playwright-core');
    ctx = await chromium.launchPersistentContext(path.join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1366, height: 800 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  });

  after(async () => {
    await ctx?.close();
    await srv?.stop();
    await ldap?.stop();
    if (srv) fs.rmSync(srv.dataDir, { recursive: true, force: true });
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('a directory user: the profile says the directory keeps the password, and offers tokens that work and can be revoked', async () => {
    await signIn('alice', PASSWORDS.alice);
    await page.getByRole('link', { name: 'Your profile (alice)' }).click();
    await page.getByRole('heading', { name: 'Your profile' }).waitFor();
    const me = (await (await api('GET', 'users/current', basic('alice', PASSWORDS.alice))).json()) as { source?: string };
    assert.equal(me.source, 'ldap', 'the API says where the password is kept');
    await page.getByTestId('password-directory').filter({ hasText: 'kept by the company directory' }).waitFor();
    assert.equal(await page.getByTestId('account-source').textContent(), 'the directory (LDAP)');
    assert.equal(await page.getByRole('form', { name: 'Change password' }).count(), 0, 'no password form for a directory user');
    assert.equal((await api('GET', 'users/current', basic('alice', PASSWORDS.alice))).status, 200, 'the directory password is unchanged');

    await page.getByRole('button', { name: 'New token' }).click();
    const create = page.getByRole('dialog', { name: 'New personal access token' });
    await create.getByLabel('Name').fill('ci');
    await create.getByLabel('Expires').selectOption({ label: 'never' });
    await create.getByRole('button', { name: 'Create token' }).click();
    const once = page.getByRole('dialog', { name: 'Token created' });
    const token = ((await once.getByTestId('personal-token').locator('code').textContent()) ?? '').trim();
    await once.getByText('Never expires').waitFor();
    await shot('19-ldap-profile-token');
    await once.getByRole('button', { name: 'I have copied the token' }).click();
    const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'ci', exact: true }) });
    assert.equal((await row.getByRole('cell').nth(2).textContent())?.trim(), 'never', 'expires: never');
    const withToken = await api('GET', 'users/current', basic('alice', token));
    assert.equal(withToken.status, 200, 'the token signs alice in');
    assert.equal(((await withToken.json()) as { username: string }).username, 'alice');
    const v2 = await fetch(`${srv.url}/v2/`, { headers: { Authorization: basic('alice', token) } });
    assert.equal(v2.status, 200, 'and the registry accepts it');
    await row.getByRole('button', { name: 'Revoke token ci' }).click();
    await page.getByRole('dialog', { name: 'Revoke token' }).getByRole('button', { name: 'Revoke' }).click();
    await row.waitFor({ state: 'detached' });
    assert.equal((await api('GET', 'users/current', basic('alice', token))).status, 401, 'revoked');
    assert.equal((await fetch(`${srv.url}/v2/`, { headers: { Authorization: basic('alice', token) } })).status, 401);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  });

  test('with LDAP on, a project admin may add an LDAP group as a member', async () => {
    await signIn('admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'team', exact: true }).click();
    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByRole('button', { name: 'Add member' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add member' });
    await dialog.getByRole('radio', { name: 'LDAP group' }).check();
    await dialog.getByRole('combobox', { name: 'Group' }).pressSequentially('develop', { delay: 30 });
    await dialog.getByRole('option', { name: /developers/ }).click();
    await dialog.getByRole('button', { name: 'Add member' }).click();
    await page.getByRole('cell', { name: 'developers', exact: true }).waitFor();
    const members = (await (await api('GET', 'projects/team/members', basic('admin', ADMIN_PASSWORD))).json()) as { entity_type: string; entity_name: string }[];
    assert.ok(members.some((m) => m.entity_type === 'g' && m.entity_name === 'developers'), JSON.stringify(members));
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });
});

/** Attaches a cosign-style signature to `digest` as an OCI referrer (subject), through plain HTTP. */
async function attachSignature(srv: ServerProcess, repo: string, subject: { mediaType: string; digest: string; size: number }): Promise<string> {
  const digest = subject.digest;
  const auth = basic('admin', ADMIN_PASSWORD);
  const blobs: [Buffer, string][] = [
    [Buffer.from('{}'), 'application/vnd.oci.empty.v1+json'],
    [Buffer.from(JSON.stringify({ critical: { image: { 'docker-manifest-digest': digest } } })), 'application/vnd.dev.cosign.simplesigning.v1+json'],
  ];
  for (const [data] of blobs) {
    const r = await fetch(`${srv.url}/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream' }, body: data });
    assert.equal(r.status, 201, `blob upload: ${await r.text()}`);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
    config: { mediaType: blobs[0][1], digest: sha256(blobs[0][0]), size: blobs[0][0].length },
    layers: [{ mediaType: blobs[1][1], digest: sha256(blobs[1][0]), size: blobs[1][0].length }],
    subject: { mediaType: subject.mediaType, digest, size: subject.size },
  });
  const put = await fetch(`${srv.url}/v2/${repo}/manifests/${sha256(manifest)}`, { method: 'PUT', headers: { Authorization: auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
  assert.equal(put.status, 201, `signature manifest: ${await put.text()}`);
  return sha256(manifest);
}

/** Pushes a one-layer image (its own bytes from `seed`) as `repo:tag` through plain HTTP. */
async function pushTiny(srv: ServerProcess, repo: string, tag: string, seed = repo): Promise<void> {
  const auth = basic('admin', ADMIN_PASSWORD);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }));
  const layer = Buffer.from(`layer of ${seed}:${tag}`);
  for (const data of [config, layer]) {
    const r = await fetch(`${srv.url}/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream' }, body: data });
    assert.equal(r.status, 201, `blob upload: ${await r.text()}`);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
  });
  const put = await fetch(`${srv.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { Authorization: auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
  assert.equal(put.status, 201, `manifest: ${await put.text()}`);
}

/** In the page: the document's width, and the elements that stick out past the window's right edge. */
const WIDER_THAN_SCREEN = `(() => {
  const w = window.innerWidth;
  const culprits = [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > w + 0.5 || e.scrollWidth > w + 0.5 && !(e.parentElement && e.parentElement.closest('.table-wrap, .tabs, pre')) && !e.closest('.sr-only'))
    .slice(0, 8)
    .map((e) => e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '') + ' ' + Math.round(e.getBoundingClientRect().right) + 'px');
  return { scrollWidth: document.documentElement.scrollWidth, culprits };
})()`;
