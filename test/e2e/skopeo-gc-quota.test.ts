// Garbage collection and storage quotas as a real client meets them: skopeo pushes a multi-arch
// image, deletes it, a GC run frees its blobs on disk and the image can be pushed again; a push
// into a project over its quota fails in skopeo with Harbor's message.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN_PASSWORD, basic } from '../helpers/app.ts';
import { layoutBlobs, layoutTop, multiArchLayout, tempDir, type Layout } from '../helpers/oci-layout.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { missingTool } from '../helpers/tools.ts';
import { ok, run } from './exec.ts';

const skip = missingTool('skopeo');
const CREDS = `admin:${ADMIN_PASSWORD}`;

describe('skopeo with garbage collection and quotas', { skip }, () => {
  let srv: ServerProcess;
  let image: Layout;
  let env: Record<string, string>;
  const cleanup: string[] = [];

  before(async () => {
    const work = tempDir('berth-gcq-');
    cleanup.push(work);
    env = { REGISTRY_AUTH_FILE: path.join(work, 'auth.json') };
    fs.writeFileSync(env.REGISTRY_AUTH_FILE, '{"auths":{}}');
    [srv, image] = await Promise.all([startServer({ env: { BERTH_LOG_LEVEL: 'warn' } }), multiArchLayout({ dir: path.join(work, 'multi'), seed: `gcq-${process.pid}` })]);
  });
  after(async () => {
    await srv?.stop();
    for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
    if (srv) fs.rmSync(srv.dataDir, { recursive: true, force: true });
  });

  const api = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${srv.url}/api/v2.0${p}`, { method, headers: { Authorization: basic('admin', ADMIN_PASSWORD), 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, location: res.headers.get('location'), body: res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text() };
  };
  const blobFile = (digest: string) => path.join(srv.dataDir, 'storage', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data');
  const push = (dest: string) => run('skopeo', ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', CREDS, image.ref, `docker://${srv.host}/${dest}`], { env });

  test('a deleted image is freed by a GC run, and pushing it again works', async () => {
    assert.equal((await push('library/gcapp:1')).code, 0);
    const layers = image.blobs.filter((d) => fs.existsSync(blobFile(d)));
    assert.ok(layers.length >= 3, 'the layers and configs are in the store');
    await ok('skopeo', ['delete', '--tls-verify=false', '--creds', CREDS, `docker://${srv.host}/library/gcapp:1`], { env });

    const started = await api('POST', '/system/gc/schedule', { schedule: { type: 'Manual' }, parameters: { delete_untagged: true, time_window: 0 } });
    assert.equal(started.status, 201);
    let run1: { job_status: string; blobs_deleted: number; manifests_deleted: number } | undefined;
    for (let i = 0; i < 100; i++) {
      run1 = (await api('GET', started.location!.replace('/api/v2.0', ''))).body as typeof run1;
      if (run1!.job_status !== 'Pending' && run1!.job_status !== 'Running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(run1!.job_status, 'Success');
    assert.equal(run1!.manifests_deleted, image.images.length, 'the index went with skopeo delete; its untagged platform manifests go now');
    for (const d of layers) assert.equal(fs.existsSync(blobFile(d)), false, `${d} deleted from disk`);
    const gone = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', CREDS, `docker://${srv.host}/library/gcapp:1`], { env });
    assert.notEqual(gone.code, 0);

    assert.equal((await push('library/gcapp:1')).code, 0);
    const out = tempDir('berth-gcq-out-');
    cleanup.push(out);
    await ok('skopeo', ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--src-creds', CREDS, `docker://${srv.host}/library/gcapp:1`, `oci:${out}:back`], { env });
    assert.equal(layoutTop(out, 'back').digest, image.top.digest);
    assert.deepEqual(await layoutBlobs(out), image.blobs);
  });

  test('a push over the project quota fails in skopeo with the quota message, and passes once raised', async () => {
    const created = await api('POST', '/projects', { project_name: 'tiny', storage_limit: 1024 });
    assert.equal(created.status, 201);
    const refused = await push('tiny/app:1');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /denied: Quota exceeded when processing the request of adding/);
    const id = created.location!.split('/').pop();
    assert.equal((await api('PUT', `/quotas/${id}`, { hard: { storage: -1 } })).status, 200);
    assert.equal((await push('tiny/app:1')).code, 0);
  });
});
