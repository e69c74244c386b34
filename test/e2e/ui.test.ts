// The web UI in a real browser: Debian's Chromium driven by playwright-core against a real Berth
// process serving web/dist. One user journey, step by step: sign in, create a project, add a
// member, browse a multi-arch image pushed by skopeo (platforms, signature, pull commands), create
// a robot and see its secret once, import an image archive with upload progress, a storage quota
// set on a new project and changed on its summary, the admin pages and a clean-up (garbage
// collection) dry run, check what a developer sees, session expiry, log out. Screenshots go to
// test-output/screenshots/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { ADMIN_PASSWORD, basic } from '../helpers/app.ts';
import { largeLayerLayout, multiArchLayout, sha256, tempDir, type Layout } from '../helpers/oci-layout.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { missingTool } from '../helpers/tools.ts';
import { ok } from './exec.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SHOTS = path.join(ROOT, 'test-output', 'screenshots');
const CHROMIUM = '/usr/bin/chromium';
const DEV_PASSWORD = 'Developer12345';
const PROJECT = 'webteam';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const skip = missingTool('chromium', 'skopeo');

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
    [srv, multi, big] = await Promise.all([
      startServer({ env: { BERTH_LOG_LEVEL: 'warn' } }),
      multiArchLayout({ dir: path.join(work, 'multi'), seed: `ui-${process.pid}` }),
      // Large enough that the throttled upload shows intermediate progress.
      largeLayerLayout({ dir: path.join(work, 'big'), seed: `ui-big-${process.pid}`, largeBytes: 3 * 1024 * 1024 }),
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
    await page.getByRole('img', { name: /Pushes and pulls per day/ }).waitFor();
    await shot('09-summary');
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
    await page.getByLabel('Server URL').fill('ldap://127.0.0.1:1');
    await page.getByRole('button', { name: 'Test connection' }).click();
    // The answer is shown in place (nothing listens on port 1, so this should say "failed").
    await page.getByRole('status').filter({ hasText: /Connection (failed|works)/ }).waitFor({ timeout: 30_000 });
    await shot('11-admin-ldap');
    await page.getByRole('link', { name: 'System' }).click();
    await page.getByRole('heading', { name: /Health/ }).waitFor();
    await shot('12-admin-system');
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
    // The counts in the row are the server's.
    const cells = (await row.getByRole('cell').allTextContents()).map((c) => c.trim());
    const num = (i: number) => Number(cells[i].replace(/\D/g, ''));
    assert.equal(num(4), done[0].manifests_deleted, `manifests deleted: ${cells.join(' | ')}`);
    assert.equal(num(5), done[0].blobs_deleted, `blobs deleted: ${cells.join(' | ')}`);
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

  test('log out ends the session', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    const cookies = await ctx.cookies(srv.url);
    assert.equal(cookies.find((c) => c.name === 'berth_session')?.value ?? '', '', 'the session cookie is cleared');
    await page.goto(`${srv.url}/projects/${PROJECT}`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
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
