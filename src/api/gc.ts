// /api/v2.0/system/gc: garbage collection in Harbor's shapes (GCHistory, Schedule). System admins only.
import express from 'express';
import type { z } from 'zod';
import { GcService, type GcRunView } from '../services/gc.ts';
import { iso, paging, requireSysadmin, setPageHeaders } from './common.ts';
import type { GcHistoryDto } from './responses.ts';
import type { ROUTES } from './schemas.ts';
import { route } from './validate.ts';

export interface GcRouteDeps {
  gc: GcService;
}

function history(r: GcRunView): GcHistoryDto {
  return {
    id: r.id,
    job_name: 'GARBAGE_COLLECTION',
    job_kind: r.kind,
    job_parameters: JSON.stringify(r.parameters),
    schedule: { type: r.kind === 'MANUAL' ? 'Manual' : 'Schedule' },
    job_status: r.status,
    deleted: false,
    creation_time: iso(r.createdAt),
    update_time: iso(r.updatedAt),
    // Berth's additions: what the run removed.
    manifests_deleted: r.manifestsDeleted,
    blobs_deleted: r.blobsDeleted,
    freed_bytes: r.bytesFreed,
    // While the run is in progress: how far it has got (Berth's addition).
    ...(r.progress ? { progress: { phase: r.progress.phase, scanned: r.progress.scanned, manifests: r.progress.manifests, blobs: r.progress.blobs, bytes: r.progress.bytes } } : {}),
  };
}

/** Harbor's Schedule body: {schedule: {type, cron}, parameters: {delete_untagged, dry_run, ...}}. */
type ScheduleBody = z.output<(typeof ROUTES)['post /system/gc/schedule']['body']>;

export function gcRouter(deps: GcRouteDeps): express.Router {
  const r = express.Router();

  const save = async (res: express.Response, body: ScheduleBody, created: boolean) => {
    requireSysadmin(res);
    const s = { ...body.schedule, parameters: GcService.parameters(body.parameters) };
    if (s.type === 'Manual') {
      const id = await deps.gc.trigger('MANUAL', s.parameters);
      res.setHeader('Location', `/api/v2.0/system/gc/${id}`);
      res.status(created ? 201 : 200).end();
      return;
    }
    await deps.gc.setSchedule(s.type, s.cron, s.parameters);
    res.status(created ? 201 : 200).end();
  };
  route(r, 'post /system/gc/schedule', (_req, res, { body }) => save(res, body, true));
  route(r, 'put /system/gc/schedule', (_req, res, { body }) => save(res, body, false));

  route(r, 'get /system/gc/schedule', (_req, res) => {
    requireSysadmin(res);
    const s = deps.gc.getSchedule();
    res.json({
      job_name: 'GARBAGE_COLLECTION',
      job_kind: 'SCHEDULE',
      job_parameters: JSON.stringify(s.parameters),
      schedule: { type: s.type, cron: s.cron, ...(s.next ? { next_scheduled_time: iso(s.next) } : {}) },
      deleted: false,
    });
  });

  route(r, 'get /system/gc', async (req, res, { query }) => {
    requireSysadmin(res);
    const pg = paging(query);
    const { total, items } = await deps.gc.list(pg.page, pg.pageSize);
    setPageHeaders(req, res, total, pg);
    res.json(items.map(history));
  });

  route(r, 'get /system/gc/:id', async (_req, res, { params }) => {
    requireSysadmin(res);
    res.json(history(await deps.gc.get(params.id)));
  });

  route(r, 'put /system/gc/:id', async (_req, res, { params }) => {
    requireSysadmin(res);
    await deps.gc.stop(params.id);
    res.status(200).end();
  });

  route(r, 'get /system/gc/:id/log', async (_req, res, { params }) => {
    requireSysadmin(res);
    const log = await deps.gc.log(params.id);
    res.type('text/plain').send(log);
  });

  return r;
}
