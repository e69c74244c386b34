// /api/v2.0/system/gc: garbage collection in Harbor's shapes (GCHistory, Schedule). System admins only.
import express from 'express';
import { AppError } from '../lib/errors.ts';
import { GcService, type GcRunView } from '../services/gc.ts';
import { intParam, iso, paging, requireSysadmin, setPageHeaders } from './common.ts';

export interface GcRouteDeps {
  gc: GcService;
}

function history(r: GcRunView) {
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
  };
}

/** Harbor's Schedule body: {schedule: {type, cron}, parameters: {delete_untagged, dry_run, ...}}. */
function scheduleBody(body: unknown): { type: string; cron?: string; parameters: ReturnType<typeof GcService.parameters> } {
  const b = (body ?? {}) as { schedule?: { type?: unknown; cron?: unknown }; parameters?: unknown };
  const type = b.schedule?.type;
  if (typeof type !== 'string' || !type) throw new AppError('BAD_REQUEST', undefined, { message: 'schedule.type is required' });
  if (b.schedule?.cron !== undefined && typeof b.schedule.cron !== 'string') throw new AppError('BAD_REQUEST', undefined, { message: 'schedule.cron must be a string' });
  return { type, cron: b.schedule?.cron as string | undefined, parameters: GcService.parameters(b.parameters) };
}

export function gcRouter(deps: GcRouteDeps): express.Router {
  const r = express.Router();

  const save = async (req: express.Request, res: express.Response, created: boolean) => {
    requireSysadmin(res);
    const s = scheduleBody(req.body);
    if (s.type === 'Manual') {
      const id = await deps.gc.trigger('MANUAL', s.parameters);
      res.setHeader('Location', `/api/v2.0/system/gc/${id}`);
      res.status(created ? 201 : 200).end();
      return;
    }
    await deps.gc.setSchedule(s.type, s.cron, s.parameters);
    res.status(created ? 201 : 200).end();
  };
  r.post('/system/gc/schedule', (req, res) => save(req, res, true));
  r.put('/system/gc/schedule', (req, res) => save(req, res, false));

  r.get('/system/gc/schedule', (_req, res) => {
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

  r.get('/system/gc', async (req, res) => {
    requireSysadmin(res);
    const pg = paging(req);
    const { total, items } = await deps.gc.list(pg.page, pg.pageSize);
    setPageHeaders(req, res, total, pg);
    res.json(items.map(history));
  });

  r.get('/system/gc/:id', async (req, res) => {
    requireSysadmin(res);
    res.json(history(await deps.gc.get(intParam(req.params.id, 'gc_id'))));
  });

  r.put('/system/gc/:id', async (req, res) => {
    requireSysadmin(res);
    await deps.gc.stop(intParam(req.params.id, 'gc_id'));
    res.status(200).end();
  });

  r.get('/system/gc/:id/log', async (req, res) => {
    requireSysadmin(res);
    const log = await deps.gc.log(intParam(req.params.id, 'gc_id'));
    res.type('text/plain').send(log);
  });

  return r;
}
