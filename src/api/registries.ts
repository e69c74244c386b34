// /api/v2.0/registries and /replication/adapters: registry endpoints in Harbor's shapes (Registry,
// RegistryUpdate, RegistryPing, RegistryInfo). System admins only; the credential's secret is
// never sent back (access_secret "*****" where one is saved).
import express from 'express';
import { RegistriesService, SECRET_PLACEHOLDER, ADAPTER_INFO, type RegistryInput, type RegistryView } from '../services/registries.ts';
import { iso, paging, requireSysadmin, setPageHeaders } from './common.ts';
import type { RegistryDto } from './responses.ts';
import { route } from './validate.ts';

export interface RegistryRouteDeps {
  registries: RegistriesService;
}

function dto(r: RegistryView): RegistryDto {
  return {
    id: r.id,
    name: r.name,
    type: r.type,
    url: r.url,
    description: r.description,
    credential: { type: r.credential.type, access_key: r.credential.accessKey, ...(r.credential.hasSecret ? { access_secret: SECRET_PLACEHOLDER } : {}) },
    insecure: r.insecure,
    ...(r.caCertificate ? { ca_certificate: r.caCertificate } : {}),
    status: r.status,
    creation_time: iso(r.createdAt),
    update_time: iso(r.updatedAt),
  };
}

type Cred = { type?: string | null; access_key?: string | null; access_secret?: string | null } | null | undefined;

/** Registry's nested credential as the flat fields of RegistryUpdate/RegistryPing (flat ones win). */
function flatten<T extends { credential?: Cred; credential_type?: string | null; access_key?: string | null; access_secret?: string | null }>(b: T): RegistryInput {
  const { credential, ...rest } = b;
  return {
    ...rest,
    credential_type: b.credential_type ?? credential?.type ?? undefined,
    access_key: b.access_key ?? credential?.access_key ?? undefined,
    access_secret: b.access_secret ?? credential?.access_secret ?? undefined,
  };
}

export function registriesRouter(deps: RegistryRouteDeps): express.Router {
  const r = express.Router();

  route(r, 'get /registries', async (req, res, { query }) => {
    requireSysadmin(res);
    const pg = paging(query);
    const name = query.q.name ?? (query.name !== undefined ? { fuzzy: query.name } : undefined);
    const { total, items } = await deps.registries.list({ name, url: query.q.url, type: query.q.type?.exact }, pg.page, pg.pageSize, query.sort);
    setPageHeaders(req, res, total, pg);
    res.json(items.map(dto));
  });

  route(r, 'post /registries', async (_req, res, { body }) => {
    const p = requireSysadmin(res);
    const id = await deps.registries.create(p.name, flatten(body));
    res.setHeader('Location', `/api/v2.0/registries/${id}`);
    res.status(201).end();
  });

  route(r, 'post /registries/ping', async (_req, res, { body }) => {
    requireSysadmin(res);
    await deps.registries.ping({ ...flatten(body), id: body.id || undefined });
    res.status(200).end();
  });

  route(r, 'get /registries/:id', async (_req, res, { params }) => {
    requireSysadmin(res);
    res.json(dto(await deps.registries.get(params.id)));
  });

  route(r, 'put /registries/:id', async (_req, res, { params, body }) => {
    const p = requireSysadmin(res);
    await deps.registries.update(p.name, params.id, body);
    res.status(200).end();
  });

  route(r, 'delete /registries/:id', async (_req, res, { params }) => {
    const p = requireSysadmin(res);
    await deps.registries.delete(p.name, params.id);
    res.status(200).end();
  });

  route(r, 'get /registries/:id/info', async (_req, res, { params }) => {
    requireSysadmin(res);
    const reg = await deps.registries.get(params.id);
    res.json({
      type: reg.type,
      description: reg.description,
      supported_resource_filters: [
        { type: 'name', style: 'input' },
        { type: 'tag', style: 'input' },
      ],
      supported_triggers: ['manual', 'scheduled', 'event_based'],
      supported_copy_by_chunk: true,
    });
  });

  route(r, 'get /replication/adapters', (_req, res) => {
    requireSysadmin(res);
    res.json(RegistriesService.types());
  });

  route(r, 'get /replication/adapterinfos', (_req, res) => {
    requireSysadmin(res);
    const out: Record<string, object> = {};
    for (const [type, info] of Object.entries(ADAPTER_INFO)) {
      out[type] = {
        endpoint_pattern: { endpoint_type: info.endpointType, endpoints: info.endpoints },
        credential_pattern: { access_key_type: 'AccessKeyTypeStandard', access_key_data: '', access_secret_type: 'AccessSecretTypeStandard', access_secret_data: '' },
      };
    }
    res.json(out);
  });

  return r;
}
