// The input of every /api/v2.0 route, as zod schemas in one table keyed "<method> <express path>".
// The handlers receive what these schemas parse (src/api/validate.ts: route()), and the OpenAPI
// document is generated from the same table (src/api/openapi.ts), so the two cannot disagree.
//
// Shapes follow Harbor's swagger: unknown body fields are dropped (Harbor's clients send more than
// Berth reads), a field of the wrong JSON type is a 400, a query parameter given twice is a 400.
// Semantic checks that need the database (does the project exist, may the caller grant this) stay
// in the services.
import { z } from 'zod';
import { parseQuery } from './common.ts';

/** Largest id the database holds (32-bit signed): larger ones are refused before any query. */
export const MAX_ID = 2_147_483_647;
const MAX_PAGE = 1_000_000;
export const MAX_PAGE_SIZE = 100;
/** Durations in days: -1 for never, at most about 270 years (a Date must still hold the expiry). */
const MAX_DAYS = 100_000;

const str = (max = 255) => z.string().max(max);

/** A positive whole number in a path or query string ("12"; not "1e3", "012", "-1" or "1.5"). */
const intString = (min: number, max: number) =>
  z
    .string()
    .regex(/^(0|[1-9]\d{0,15})$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const idParam = intString(1, MAX_ID);
/** An id in a JSON body (0 is "not given", as Harbor's Go clients send it). */
const idNumber = z.number().int().min(0).max(MAX_ID);
const days = z.number().int().min(-1).max(MAX_DAYS);
const bytes = z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER);
const boolString = z.enum(['true', 'false']);

const paging = {
  page: intString(1, MAX_PAGE).default(1),
  page_size: intString(1, MAX_PAGE_SIZE).default(10),
};

/** Harbor's `q` query (k=v, k=~v, comma separated), parsed; bad percent-encoding is a 400. */
const harborQ = z
  .string()
  .max(2048)
  .optional()
  .transform((s, ctx) => {
    try {
      return parseQuery(s);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'malformed query (bad percent-encoding?)' });
      return z.NEVER;
    }
  });

const list = <T extends z.ZodRawShape>(extra: T) => z.object({ ...paging, ...extra });
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
const listQ = <T extends z.ZodRawShape = {}>(extra?: T) => list({ q: harborQ, ...(extra as T) });

// ---- path parameters --------------------------------------------------------------------------
const id = z.object({ id: idParam });
/** {project_name_or_id}: a name, or an id (all digits). */
const projectRef = z.string().min(1).max(255);
/** A repository name below a project, URL-encoded once more when it contains "/" ("app%252Fapi"). */
const repoName = z
  .string()
  .min(1)
  .max(1024)
  .transform((s, ctx) => {
    try {
      return decodeURIComponent(s);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'malformed repository name' });
      return z.NEVER;
    }
  });
/** A tag or a digest. */
const reference = z.string().min(1).max(256);
const p = z.object({ p: projectRef });
const pr = z.object({ p: projectRef, r: repoName });
const pra = z.object({ p: projectRef, r: repoName, ref: reference });

// ---- bodies -----------------------------------------------------------------------------------
const metadata = z.record(str(128), str(4096)).refine((m) => Object.keys(m).length <= 64, 'at most 64 metadata keys');

const robotAccess = z.object({ resource: str(64), action: str(64), effect: str(16).optional() });
const robotPermission = z.object({ kind: str(32), namespace: str(255), access: z.array(robotAccess).max(200) });
const robotFields = {
  description: str(1024).optional(),
  duration: days.optional(),
  disable: z.boolean().optional(),
  permissions: z.array(robotPermission).max(100).optional(),
};

const memberUser = z.object({ user_id: idNumber.optional(), username: str().optional() });
const memberGroup = z.object({ id: idNumber.optional(), ldap_group_dn: str(1024).optional(), group_name: str().optional(), group_type: z.number().int().optional() });

const ldapSettings = {
  ldap_url: str(1024).optional(),
  ldap_search_dn: str(1024).optional(),
  ldap_search_password: str(1024).optional(),
  ldap_base_dn: str(1024).optional(),
  ldap_filter: str(1024).optional(),
  ldap_uid: str(64).optional(),
  ldap_scope: z.number().int().min(0).max(3).optional(),
  ldap_verify_cert: z.boolean().optional(),
};

const gcParameters = z.object({
  delete_untagged: z.boolean().optional(),
  dry_run: z.boolean().optional(),
  workers: z.number().int().min(1).max(16).optional(),
  time_window: z.number().min(0).max(24 * 365).optional(),
});
const gcSchedule = z.object({
  schedule: z.object({ type: z.string().min(1).max(32), cron: str(256).optional() }),
  parameters: gcParameters.nullish(),
});

export interface RouteSchema {
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** One line for the OpenAPI document. */
  summary?: string;
}

export const ROUTES = {
  // ---- users and personal tokens ----
  'get /users/current': { summary: 'The caller' },
  'get /users/current/tokens': { summary: "The caller's personal access tokens" },
  'post /users/current/tokens': { summary: 'Create a personal access token', body: z.object({ name: z.string().trim().min(1).max(100), duration_days: days.optional() }) },
  'delete /users/current/tokens/:id': { params: id },
  'get /users/current/permissions': { summary: "The caller's permissions in a scope (/project/{id})", query: z.object({ scope: str(512).optional(), relative: boolString.optional() }) },
  'get /users/search': { query: list({ username: str().optional() }) },
  'get /users': { query: listQ({ username: str().optional() }) },
  'post /users': { body: z.object({ username: str(), password: str(256), email: str().optional(), realname: str().optional(), comment: str(1024).optional() }) },
  'get /users/:id': { params: id },
  'put /users/:id': { params: id, body: z.object({ email: str().optional(), realname: str().optional(), comment: str(1024).optional() }) },
  'put /users/:id/password': { params: id, body: z.object({ old_password: str(256).optional(), new_password: str(256) }) },
  'put /users/:id/sysadmin': { params: id, body: z.object({ sysadmin_flag: z.boolean() }) },
  'delete /users/:id': { params: id },
  // ---- user groups ----
  'get /usergroups': { query: list({ ldap_group_dn: str(1024).optional(), group_name: str().optional() }) },
  'get /usergroups/search': { query: list({ groupname: str().min(1) }) },
  'post /usergroups': { body: z.object({ group_name: str().optional(), group_type: z.number().int().optional(), ldap_group_dn: str(1024) }) },
  'get /usergroups/:id': { params: id },
  'put /usergroups/:id': { params: id, body: z.object({ group_name: str().min(1) }) },
  'delete /usergroups/:id': { params: id },
  // ---- robots ----
  'get /robots': { query: listQ() },
  'post /robots': { body: z.object({ name: str(), level: str(16), secret: str(256).optional(), ...robotFields }) },
  'get /robots/:id': { params: id },
  'put /robots/:id': { params: id, body: z.object(robotFields) },
  'patch /robots/:id': { summary: "Refresh a robot's secret", params: id, body: z.object({ secret: str(256).optional() }) },
  'delete /robots/:id': { params: id },
  // ---- projects and members ----
  'head /projects': { summary: 'Whether a project of that name exists (and the caller may see it)', query: z.object({ project_name: str().min(1) }) },
  'get /projects': { query: listQ({ name: str().optional(), public: boolString.optional(), owner: str().optional(), with_detail: boolString.optional(), sort: str(64).optional() }) },
  'post /projects': {
    body: z.object({ project_name: str(), public: z.boolean().nullish(), metadata: metadata.nullish(), storage_limit: bytes.nullish(), registry_id: z.number().int().nullish() }),
  },
  'get /projects/:p': { params: p },
  'get /projects/:p/summary': { params: p },
  'put /projects/:p': { params: p, body: z.object({ public: z.boolean().nullish(), metadata: metadata.nullish() }) },
  'delete /projects/:p': { params: p },
  'get /projects/:p/_deletable': { params: p },
  'get /projects/:p/members': { params: p, query: list({ entityname: str().optional() }) },
  'post /projects/:p/members': { params: p, body: z.object({ role_id: z.number().int(), member_user: memberUser.optional(), member_group: memberGroup.optional() }) },
  'get /projects/:p/members/:mid': { params: z.object({ p: projectRef, mid: idParam }) },
  'put /projects/:p/members/:mid': { params: z.object({ p: projectRef, mid: idParam }), body: z.object({ role_id: z.number().int() }) },
  'delete /projects/:p/members/:mid': { params: z.object({ p: projectRef, mid: idParam }) },
  // ---- repositories, artifacts, tags, logs ----
  'get /repositories': { query: listQ({ sort: str(64).optional() }) },
  'get /projects/:p/repositories': { params: p, query: listQ({ sort: str(64).optional() }) },
  'get /projects/:p/repositories/:r': { params: pr },
  'put /projects/:p/repositories/:r': { params: pr, body: z.object({ description: str(65_536).optional() }) },
  'delete /projects/:p/repositories/:r': { params: pr },
  'get /projects/:p/repositories/:r/artifacts': {
    params: pr,
    query: listQ({ with_tag: boolString.optional(), with_label: boolString.optional(), with_scan_overview: boolString.optional(), with_signature: boolString.optional(), with_immutable_status: boolString.optional(), with_accessory: boolString.optional() }),
  },
  'get /projects/:p/repositories/:r/artifacts/:ref': { params: pra },
  'delete /projects/:p/repositories/:r/artifacts/:ref': { params: pra },
  'get /projects/:p/repositories/:r/artifacts/:ref/tags': { params: pra, query: listQ() },
  'post /projects/:p/repositories/:r/artifacts/:ref/tags': { params: pra, body: z.object({ name: z.string().min(1).max(128) }) },
  'delete /projects/:p/repositories/:r/artifacts/:ref/tags/:tag': { params: z.object({ p: projectRef, r: repoName, ref: reference, tag: z.string().min(1).max(128) }) },
  'post /projects/:p/repositories/:r/import': { summary: 'Import an image archive (multipart field "archive": docker save or OCI layout tar)', params: pr, query: z.object({ tag: z.string().min(1).max(128).optional() }) },
  'get /projects/:p/logs': { params: p, query: listQ() },
  'get /search': { query: z.object({ q: str().optional() }) },
  'get /statistics': {},
  // ---- quotas ----
  'get /quotas': { query: list({ reference: str(32).optional(), reference_id: str(32).optional(), sort: str(64).optional() }) },
  'get /quotas/:id': { params: id },
  'put /quotas/:id': { params: id, body: z.object({ hard: z.object({ storage: bytes }) }) },
  // ---- system ----
  'post /ldap/ping': { summary: 'Test LDAP settings (the saved ones, changed by the body)', body: z.object({ ...ldapSettings, ldap_connection_timeout: z.number().int().min(1).max(300).optional() }) },
  'get /ldap/users/search': { query: z.object({ username: str().optional() }) },
  'post /ldap/users/import': { body: z.object({ ldap_uid_list: z.array(z.string().min(1).max(255)).min(1).max(1000) }) },
  'get /ldap/groups/search': { query: z.object({ groupdn: str(1024).optional(), groupname: str().optional() }) },
  'get /configurations': {},
  'put /configurations': {
    summary: 'Change settings (unknown and read-only keys are refused)',
    body: z.looseObject({
      ...ldapSettings,
      ldap_timeout: z.number().int().optional(),
      ldap_group_base_dn: str(1024).optional(),
      ldap_group_search_filter: str(1024).optional(),
      ldap_group_attribute_name: str(64).optional(),
      ldap_group_admin_dn: str(1024).optional(),
      ldap_group_membership_attribute: str(64).optional(),
      ldap_nested_groups: z.boolean().optional(),
      project_creation_restriction: z.enum(['adminonly', 'everyone']).optional(),
      audit_log_retention_days: z.number().int().optional(),
    }),
  },
  'get /audit-logs': { query: listQ() },
  'get /systeminfo/volumes': {},
  'get /systeminfo': {},
  // ---- garbage collection ----
  'post /system/gc/schedule': { summary: 'Run now (type Manual) or create the schedule', body: gcSchedule },
  'put /system/gc/schedule': { summary: 'Change the schedule (type None removes it)', body: gcSchedule },
  'get /system/gc/schedule': {},
  'get /system/gc': { query: list({}) },
  'get /system/gc/:id': { params: id },
  'put /system/gc/:id': { summary: 'Stop a run', params: id },
  'get /system/gc/:id/log': { params: id },
} satisfies Record<string, RouteSchema>;

export type RouteKey = keyof typeof ROUTES;
