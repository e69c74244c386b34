// The input of every /api/v2.0 route, as zod schemas in one table keyed "<method> <express path>",
// and its answer (reply: status, body schema from src/api/responses.ts, headers). The handlers
// receive what these schemas parse (src/api/validate.ts: route()), and the OpenAPI document is
// generated from the same table (src/api/openapi.ts), so the two cannot disagree.
//
// Shapes follow Harbor's swagger: unknown body fields are dropped (Harbor's clients send more than
// Berth reads), a field of the wrong JSON type is a 400, a query parameter given twice is a 400.
// Semantic checks that need the database (does the project exist, may the caller grant this) stay
// in the services.
import { z } from 'zod';
import { parseQuery } from './common.ts';
import * as O from './responses.ts';
import type { Reply } from './responses.ts';

const R = O.reply;

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

const tokenKey = z.object({
  kid: z.string().describe('The `kid` (JWT header) of the key new tokens are signed with'),
  previous_kid: z.string().nullable().describe('The key before it, while tokens it signed may still be valid; null otherwise'),
});

// Registry endpoints: Harbor's Registry (create), RegistryUpdate and RegistryPing.
const registryFields = {
  description: str(1024).nullish(),
  insecure: z.boolean().nullish(),
  ca_certificate: z.string().max(65_536).nullish(),
};
const flatCredential = { credential_type: str(32).nullish(), access_key: str().nullish(), access_secret: str(4096).nullish() };
const registryCreate = z.object({
  name: str().min(1),
  type: str(64).min(1),
  url: str(2048).nullish(),
  credential: z.object({ type: str(32).nullish(), access_key: str().nullish(), access_secret: str(4096).nullish() }).nullish(),
  ...registryFields,
});
const registryUpdate = z.object({ name: str().nullish(), url: str(2048).nullish(), ...flatCredential, ...registryFields });
const registryPing = z.object({
  id: idNumber.nullish(),
  type: str(64).nullish(),
  url: str(2048).nullish(),
  ...flatCredential,
  // Berth also takes the credential nested, as in Registry.
  credential: z.object({ type: str(32).nullish(), access_key: str().nullish(), access_secret: str(4096).nullish() }).nullish(),
  insecure: z.boolean().nullish(),
  ca_certificate: z.string().max(65_536).nullish(),
});

// Replication: Harbor's ReplicationPolicy (create and update) and StartReplicationExecution.
const registryRef = z.object({ id: idNumber.nullish() }).nullish();
const replicationPolicyFields = {
  description: str(1024).nullish(),
  src_registry: registryRef,
  dest_registry: registryRef,
  dest_namespace: str().nullish(),
  dest_namespace_replace_count: z.number().int().min(-1).max(127).nullish(),
  trigger: z.object({ type: str(32).nullish(), trigger_settings: z.object({ cron: str(256).nullish() }).nullish() }).nullish(),
  filters: z.array(z.object({ type: str(32).nullish(), value: z.unknown(), decoration: str(32).nullish() })).max(50).nullish(),
  replicate_deletion: z.boolean().nullish(),
  deletion: z.boolean().nullish(),
  override: z.boolean().nullish(),
  enabled: z.boolean().nullish(),
  speed: z.number().int().min(-1).max(2_147_483_647).nullish(),
  copy_by_chunk: z.boolean().nullish(),
};
const replicationPolicyCreate = z.object({ name: str().min(1), ...replicationPolicyFields });
const replicationPolicyUpdate = z.object({ name: str().nullish(), ...replicationPolicyFields });
// Immutable tag rules and tag retention rules: Harbor's ImmutableRule and RetentionRule have the same
// fields (semantics checked by each service).
const ruleSelector = z.object({ kind: str(32), decoration: str(32), pattern: str(512), extras: str(1024).nullish() });
const policyRule = z.object({
  id: idNumber.nullish(),
  priority: z.number().int().min(-MAX_ID).max(MAX_ID).nullish(),
  disabled: z.boolean().nullish(),
  action: str(32).nullish(),
  template: str(64).nullish(),
  params: z.record(str(128), z.unknown()).nullish(),
  tag_selectors: z.array(ruleSelector).max(10).nullish(),
  scope_selectors: z.record(str(32), z.array(ruleSelector).max(10)).nullish(),
});
const immutableRule = policyRule;
const immutableRuleRef = z.object({ p: projectRef, id: idParam });
const retentionPolicy = z.object({
  id: idNumber.nullish(),
  algorithm: str(32).nullish(),
  rules: z.array(policyRule).max(100).nullish(),
  trigger: z.object({ kind: str(32).nullish(), settings: z.record(str(64), z.unknown()).nullish(), references: z.unknown().optional() }).nullish(),
  scope: z.object({ level: str(32).nullish(), ref: idNumber.nullish() }).nullish(),
});
const retentionExecutionRef = z.object({ id: idParam, eid: idParam });
const retentionTaskRef = z.object({ id: idParam, eid: idParam, tid: idParam });
const executionId = z.object({ id: idParam });
const taskRef = z.object({ id: idParam, task_id: idParam });

export interface RouteSchema {
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** One line for the OpenAPI document. */
  summary?: string;
  /** The successful answer: status, body schema (src/api/responses.ts), headers. */
  reply?: Reply;
}

export const ROUTES = {
  // ---- users and personal tokens ----
  'get /users/current': { reply: R.json(O.UserResp, 'The caller (users only; a robot gets 403)'), summary: 'The caller' },
  'get /users/current/tokens': { reply: R.json(z.array(O.PersonalToken), "The caller's personal access tokens"), summary: "The caller's personal access tokens" },
  'post /users/current/tokens': { reply: R.json(O.PersonalTokenCreated, 'The new token, with its secret (shown once)', 201), summary: 'Create a personal access token', body: z.object({ name: z.string().trim().min(1).max(100), duration_days: days.optional() }) },
  'delete /users/current/tokens/:id': { reply: R.done('Revoked'), params: id },
  'get /users/current/permissions': { reply: R.json(z.array(O.Permission), 'What the caller may do in the scope'), summary: "The caller's permissions in a scope (/project/{id})", query: z.object({ scope: str(512).optional(), relative: boolString.optional() }) },
  'get /users/search': { reply: R.page(O.UserSearchRespItem, 'Users whose name contains the query'), query: list({ username: str().optional() }) },
  'get /users': { reply: R.page(O.UserResp, 'Users'), query: listQ({ username: str().optional() }) },
  'post /users': { reply: R.created('Created'), body: z.object({ username: str(), password: str(256), email: str().optional(), realname: str().optional(), comment: str(1024).optional() }) },
  'get /users/:id': { reply: R.json(O.UserResp, 'The user'), params: id },
  'put /users/:id': { reply: R.done('Saved'), params: id, body: z.object({ email: str().optional(), realname: str().optional(), comment: str(1024).optional() }) },
  'put /users/:id/password': { reply: R.done('Changed'), params: id, body: z.object({ old_password: str(256).optional(), new_password: str(256) }) },
  'put /users/:id/sysadmin': { reply: R.done('Changed'), params: id, body: z.object({ sysadmin_flag: z.boolean() }) },
  'delete /users/:id': { reply: R.done('Deleted'), params: id },
  // ---- user groups ----
  'get /usergroups': { reply: R.page(O.UserGroup, 'User groups'), query: list({ ldap_group_dn: str(1024).optional(), group_name: str().optional() }) },
  'get /usergroups/search': { reply: R.page(O.UserGroupSearchItem, 'User groups whose name contains the query'), query: list({ groupname: str().min(1) }) },
  'post /usergroups': { reply: R.created('Created'), body: z.object({ group_name: str().optional(), group_type: z.number().int().optional(), ldap_group_dn: str(1024) }) },
  'get /usergroups/:id': { reply: R.json(O.UserGroup, 'The group'), params: id },
  'put /usergroups/:id': { reply: R.done('Saved'), params: id, body: z.object({ group_name: str().min(1) }) },
  'delete /usergroups/:id': { reply: R.done('Deleted'), params: id },
  // ---- robots ----
  'get /robots': { reply: R.page(O.Robot, 'Robots the caller may manage'), query: listQ() },
  'post /robots': { reply: R.created('Created, with its secret (shown once)', O.RobotCreated), body: z.object({ name: str(), level: str(16), secret: str(256).optional(), ...robotFields }) },
  'get /robots/:id': { reply: R.json(O.Robot, 'The robot'), params: id },
  'put /robots/:id': { reply: R.done('Saved'), params: id, body: z.object(robotFields) },
  'patch /robots/:id': { reply: R.json(O.RobotSec, 'The new secret (shown once)'), summary: "Refresh a robot's secret", params: id, body: z.object({ secret: str(256).optional() }) },
  'delete /robots/:id': { reply: R.done('Deleted'), params: id },
  // ---- projects and members ----
  'head /projects': { reply: { ...R.done('The project exists'), also: [{ status: 404, description: 'No such project (or one the caller may not see)' }] }, summary: 'Whether a project of that name exists (and the caller may see it)', query: z.object({ project_name: str().min(1) }) },
  'get /projects': { reply: R.page(O.Project, 'Projects the caller may see'), query: listQ({ name: str().optional(), public: boolString.optional(), owner: str().optional(), with_detail: boolString.optional(), sort: str(64).optional() }) },
  'post /projects': {
    reply: R.created('Created'),
    body: z.object({ project_name: str(), public: z.boolean().nullish(), metadata: metadata.nullish(), storage_limit: bytes.nullish(), registry_id: z.number().int().nullish() }),
  },
  'get /projects/:p': { reply: R.json(O.Project, 'The project'), params: p },
  'get /projects/:p/summary': { reply: R.json(O.ProjectSummary, "The project's counts and quota"), params: p },
  'put /projects/:p': { reply: R.done('Saved'), params: p, body: z.object({ public: z.boolean().nullish(), metadata: metadata.nullish() }) },
  'delete /projects/:p': { reply: R.done('Deleted'), params: p },
  'get /projects/:p/_deletable': { reply: R.json(O.ProjectDeletable, 'Whether the project can be deleted'), params: p },
  'get /projects/:p/members': { reply: R.page(O.ProjectMemberEntity, 'Members'), params: p, query: list({ entityname: str().optional() }) },
  'post /projects/:p/members': { reply: R.created('Added'), params: p, body: z.object({ role_id: z.number().int(), member_user: memberUser.optional(), member_group: memberGroup.optional() }) },
  'get /projects/:p/members/:mid': { reply: R.json(O.ProjectMemberEntity, 'The member'), params: z.object({ p: projectRef, mid: idParam }) },
  'put /projects/:p/members/:mid': { reply: R.done('Saved'), params: z.object({ p: projectRef, mid: idParam }), body: z.object({ role_id: z.number().int() }) },
  'delete /projects/:p/members/:mid': { reply: R.done('Removed'), params: z.object({ p: projectRef, mid: idParam }) },
  // ---- repositories, artifacts, tags, logs ----
  'get /repositories': { reply: R.page(O.Repository, 'Repositories the caller may see'), query: listQ({ sort: str(64).optional() }) },
  'get /projects/:p/repositories': { reply: R.page(O.Repository, "The project's repositories"), params: p, query: listQ({ sort: str(64).optional() }) },
  'get /projects/:p/repositories/:r': { reply: R.json(O.Repository, 'The repository'), params: pr },
  'put /projects/:p/repositories/:r': { reply: R.done('Saved'), params: pr, body: z.object({ description: str(65_536).optional() }) },
  'delete /projects/:p/repositories/:r': { reply: R.done('Deleted'), params: pr },
  'get /projects/:p/repositories/:r/artifacts': {
    reply: R.page(O.Artifact, 'Artifacts'),
    params: pr,
    query: listQ({ with_tag: boolString.optional(), with_label: boolString.optional(), with_scan_overview: boolString.optional(), with_signature: boolString.optional(), with_immutable_status: boolString.optional(), with_accessory: boolString.optional() }),
  },
  'get /projects/:p/repositories/:r/artifacts/:ref': { reply: R.json(O.Artifact, 'The artifact'), params: pra },
  'delete /projects/:p/repositories/:r/artifacts/:ref': { reply: R.done('Deleted'), params: pra },
  'get /projects/:p/repositories/:r/artifacts/:ref/tags': { reply: R.page(O.Tag, "The artifact's tags"), params: pra, query: listQ() },
  'post /projects/:p/repositories/:r/artifacts/:ref/tags': { reply: R.done('Created', 201), params: pra, body: z.object({ name: z.string().min(1).max(128) }) },
  'delete /projects/:p/repositories/:r/artifacts/:ref/tags/:tag': { reply: R.done('Deleted'), params: z.object({ p: projectRef, r: repoName, ref: reference, tag: z.string().min(1).max(128) }) },
  'post /projects/:p/repositories/:r/import': { reply: R.json(O.ImportResult, 'Imported', 201), summary: 'Import an image archive (multipart field "archive": docker save or OCI layout tar)', params: pr, query: z.object({ tag: z.string().min(1).max(128).optional() }) },
  'get /projects/:p/logs': { reply: R.page(O.AuditLog, "The project's audit log, newest first"), params: p, query: listQ() },
  'get /search': { reply: R.json(O.Search, 'Projects and repositories the caller may see'), query: z.object({ q: str().optional() }) },
  'get /statistics': { reply: R.json(O.Statistic, 'Counts') },
  // ---- quotas ----
  'get /quotas': { reply: R.page(O.Quota, 'Quotas'), query: list({ reference: str(32).optional(), reference_id: str(32).optional(), sort: str(64).optional() }) },
  'get /quotas/:id': { reply: R.json(O.Quota, 'The quota'), params: id },
  'put /quotas/:id': { reply: R.done('Saved'), params: id, body: z.object({ hard: z.object({ storage: bytes }) }) },
  // ---- system ----
  'post /ldap/ping': { reply: R.json(O.LdapPingResult, 'The outcome (a failure to connect is success: false, not an error)'), summary: 'Test LDAP settings (the saved ones, changed by the body)', body: z.object({ ...ldapSettings, ldap_connection_timeout: z.number().int().min(1).max(300).optional() }) },
  'get /ldap/users/search': { reply: R.json(z.array(O.LdapUser), 'Directory users'), query: z.object({ username: str().optional() }) },
  'post /ldap/users/import': { reply: { ...R.done('All imported'), also: [{ status: 404, description: 'The users that could not be imported (the others were)', body: z.array(O.LdapFailedImportUser) }] }, body: z.object({ ldap_uid_list: z.array(z.string().min(1).max(255)).min(1).max(1000) }) },
  'get /ldap/groups/search': { reply: R.json(z.array(O.LdapGroup), 'Directory groups'), query: z.object({ groupdn: str(1024).optional(), groupname: str().optional() }) },
  'get /configurations': { reply: R.json(O.Configurations, 'The settings') },
  'put /configurations': {
    reply: R.done('Saved'),
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
  'get /audit-logs': { reply: R.page(O.AuditLog, 'The audit log, newest first'), query: listQ() },
  'get /systeminfo/volumes': { reply: R.json(O.SystemInfo, 'Disk space') },
  'get /systeminfo': { reply: R.json(O.GeneralInfo, 'General information') },
  // ---- garbage collection ----
  'post /system/gc/schedule': { reply: R.created('Started (Location names the run) or scheduled'), summary: 'Run now (type Manual) or create the schedule', body: gcSchedule },
  'put /system/gc/schedule': { reply: R.done('Saved (a Manual type starts a run; Location names it)'), summary: 'Change the schedule (type None removes it)', body: gcSchedule },
  'get /system/gc/schedule': { reply: R.json(O.GCSchedule, 'The schedule') },
  'get /system/gc': { reply: R.page(O.GCHistory, 'Runs, newest first'), query: list({}) },
  'get /system/gc/:id': { reply: R.json(O.GCHistory, 'The run'), params: id },
  'put /system/gc/:id': { reply: R.done('Stopping'), summary: 'Stop a run', params: id },
  'get /system/gc/:id/log': { reply: R.text('The run\'s log'), params: id },
  // ---- registry endpoints (issue 16) ----
  'get /registries': { reply: R.page(O.Registry, 'Registry endpoints (secrets shown as *****)'), query: listQ({ name: str().optional(), sort: str(64).optional() }) },
  'post /registries': { reply: R.created('Created'), summary: 'Add a registry endpoint (the credential is stored encrypted)', body: registryCreate },
  'post /registries/ping': { reply: R.done('The registry answers and accepts the credential'), summary: 'Test a saved endpoint (id, fields given override it) or one described in full; 400 names why it is unhealthy', body: registryPing },
  'get /registries/:id': { reply: R.json(O.Registry, 'The registry endpoint (its secret shown as *****)'), params: id },
  'put /registries/:id': { reply: R.done('Saved'), summary: 'Change a registry endpoint (access_secret ***** or absent keeps the saved one)', params: id, body: registryUpdate },
  'delete /registries/:id': { reply: R.done('Deleted'), summary: 'Delete a registry endpoint (412 while a proxy cache project uses it)', params: id },
  'get /registries/:id/info': { reply: R.json(O.RegistryInfo, 'What replication can do with the registry'), params: id },
  'get /replication/adapters': { reply: R.json(z.array(z.string()), 'The registry types Berth can talk to') },
  'get /replication/adapterinfos': { reply: R.json(z.record(z.string(), O.RegistryProviderInfo), 'Usual endpoints of the types that have them') },
  // ---- replication (issue 16) ----
  'get /replication/policies': { reply: R.page(O.ReplicationPolicy, 'Replication policies'), query: listQ({ name: str().optional(), sort: str(64).optional() }) },
  'post /replication/policies': { reply: R.created('Created'), summary: 'Create a replication policy (src_registry or dest_registry: the other side is this Berth)', body: replicationPolicyCreate },
  'get /replication/policies/:id': { reply: R.json(O.ReplicationPolicy, 'The policy'), params: id },
  'put /replication/policies/:id': { reply: R.done('Saved'), summary: 'Change a replication policy (fields left out keep their value)', params: id, body: replicationPolicyUpdate },
  'delete /replication/policies/:id': { reply: R.done('Deleted'), summary: 'Delete a replication policy and its executions (412 while one runs)', params: id },
  'get /replication/executions': { reply: R.page(O.ReplicationExecution, 'Executions, newest first'), query: list({ policy_id: idParam.optional(), status: str(32).optional(), trigger: str(32).optional(), sort: str(64).optional() }) },
  'post /replication/executions': { reply: R.created('Started (Location names the execution)'), summary: 'Run a policy now', body: z.object({ policy_id: idNumber }) },
  'get /replication/executions/:id': { reply: R.json(O.ReplicationExecution, 'The execution'), params: executionId },
  'put /replication/executions/:id': { reply: R.done('Stopped'), summary: 'Stop an execution (on whichever node runs it)', params: executionId },
  'get /replication/executions/:id/tasks': { reply: R.page(O.ReplicationTask, 'The tasks of the execution (one per artifact)'), params: executionId, query: list({ status: str(32).optional(), resource_type: str(32).optional(), sort: str(64).optional() }) },
  'get /replication/executions/:id/tasks/:task_id/log': { reply: R.text("The task's log"), params: taskRef },
  // ---- immutable tag rules ----
  'get /projects/:p/immutabletagrules': { reply: R.page(O.ImmutableRule, "The project's immutable tag rules"), params: p, query: listQ({ sort: str(64).optional() }) },
  'post /projects/:p/immutabletagrules': { reply: R.created('Created'), summary: 'Add an immutable tag rule (at most 15 per project)', params: p, body: immutableRule },
  'put /projects/:p/immutabletagrules/:id': { reply: R.done('Saved'), summary: 'Change an immutable tag rule, or enable or disable it (fields left out keep their value)', params: immutableRuleRef, body: immutableRule },
  'delete /projects/:p/immutabletagrules/:id': { reply: R.done('Deleted'), params: immutableRuleRef },
  // ---- tag retention ----
  'get /retentions/metadatas': { reply: R.json(O.RetentionMetadata, 'Rule templates and selectors') },
  'post /retentions': { reply: R.created('Created (the project\'s metadata retention_id names it)'), summary: "Create a project's retention policy (scope.ref: the project id; one per project)", body: retentionPolicy },
  'get /retentions/:id': { reply: R.json(O.RetentionPolicy, 'The policy'), params: id },
  'put /retentions/:id': { reply: R.done('Saved'), summary: 'Replace the rules and the schedule', params: id, body: retentionPolicy },
  'delete /retentions/:id': { reply: R.done('Deleted'), summary: 'Delete the policy and its runs (412 while one runs)', params: id },
  'post /retentions/:id/executions': { reply: R.created('Started (Location names the execution)'), summary: 'Run the policy now (dry_run: only report what would be deleted)', params: id, body: z.object({ dry_run: z.boolean().nullish() }) },
  'get /retentions/:id/executions': { reply: R.page(O.RetentionExecution, 'Runs, newest first'), params: id, query: list({}) },
  'patch /retentions/:id/executions/:eid': { reply: R.done('Stopped'), summary: 'Stop a run (on whichever node runs it)', params: retentionExecutionRef, body: z.object({ action: z.literal('stop') }) },
  'get /retentions/:id/executions/:eid/tasks': { reply: R.page(O.RetentionExecutionTask, 'One task per repository the rules cover'), params: retentionExecutionRef, query: list({}) },
  'get /retentions/:id/executions/:eid/tasks/:tid': { reply: R.text("The task's log: what was kept and why, what was deleted"), params: retentionTaskRef },
  // ---- the token-signing key (Berth's addition) ----
  'get /system/token-key': { reply: R.json(tokenKey, 'The key ids in use on the node that answers'), summary: "The token-signing key's id, and the previous key's while its tokens are accepted (Berth's addition)" },
  'post /system/token-key/rotate': { reply: R.json(tokenKey, 'The new key id, and the previous key (accepted until the tokens it signed expire)'), summary: "Rotate the token-signing key on every node (Berth's addition)" },
} satisfies Record<string, RouteSchema>;

export type RouteKey = keyof typeof ROUTES;
