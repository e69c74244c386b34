// What the management API answers: one zod schema per wire object, named after Harbor's swagger
// definition it follows (Project, Artifact, UserResp...), and one Reply per route (status, body,
// headers). The route table (src/api/schemas.ts) names each route's reply, the OpenAPI document
// (src/api/openapi.ts) is generated from these schemas, and the DTO functions that build the
// answers are typed by them (z.output<typeof Project>...), so the three cannot drift apart;
// test/integration/openapi.test.ts parses real answers with these same schemas.
//
// Objects are exact: the document says additionalProperties: false and the test fails on a field
// a handler sends that is not listed here. Times are RFC 3339 strings ("" when there is none, as
// Harbor's Go zero time would not parse in every client, hence no format: date-time).
import { z } from 'zod';

/** A named schema: it becomes #/components/schemas/<id> in the OpenAPI document (zod's global registry holds the id, as it holds .describe()). */
const named = <T extends z.ZodType>(id: string, description: string, s: T): T => {
  z.globalRegistry.add(s, { id, description });
  return s;
};

const int = z.number().int();
const time = z.string().describe('RFC 3339 time ("" when unknown)');
/** When it was last pulled: Go's zero time (0001-01-01T00:00:00.000Z) for never, as Harbor sends it. */
const pullTime = z.string().describe('RFC 3339 time; 0001-01-01T00:00:00.000Z when never pulled (Harbor\'s zero time)');
const stringMap = z.record(z.string(), z.string());

// ---- errors -----------------------------------------------------------------------------------
export const Errors = named(
  'Errors',
  'Harbor\'s error shape. A 400 names the field ("<field>: <problem>"); codes: BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT, PRECONDITION, PAYLOAD_TOO_LARGE, UNSUPPORTED, SERVICE_UNAVAILABLE, INTERNAL_SERVER_ERROR...',
  z.object({ errors: z.array(z.object({ code: z.string(), message: z.string() })) }),
);

// ---- users, tokens, groups, robots -------------------------------------------------------------
export const UserResp = named(
  'UserResp',
  'A user',
  z.object({ user_id: int, username: z.string(), email: z.string(), realname: z.string(), comment: z.string(), sysadmin_flag: z.boolean(), admin_role_in_auth: z.boolean(), source: z.enum(['local', 'ldap']).describe("Berth's addition: where the user's password is kept: Berth (local) or the directory (ldap)"), creation_time: time, update_time: time }),
);
export const UserSearchRespItem = named('UserSearchRespItem', 'A user found by name', z.object({ user_id: int, username: z.string() }));
export const PersonalToken = named(
  'PersonalToken',
  "Berth's personal access token (the secret is only in the answer that created it)",
  z.object({ id: int, name: z.string(), expires_at: time.nullable(), last_used_at: time.nullable(), creation_time: time }),
);
export const PersonalTokenCreated = named(
  'PersonalTokenCreated',
  'A new personal access token with its secret, shown once: use it as the password of HTTP Basic or docker login',
  z.object({ id: int, name: z.string(), token: z.string(), expires_at: time.nullable() }),
);
export const Permission = named('Permission', 'An action on a resource', z.object({ resource: z.string(), action: z.string() }));
export const UserGroup = named('UserGroup', 'An LDAP group known to Berth (group_type 1)', z.object({ id: int, group_name: z.string(), group_type: int, ldap_group_dn: z.string() }));
export const UserGroupSearchItem = named('UserGroupSearchItem', 'A user group found by name', z.object({ id: int, group_name: z.string(), group_type: int }));

export const Access = named('Access', 'One permission of a robot', z.object({ resource: z.string(), action: z.string(), effect: z.string().optional() }));
export const RobotPermission = named('RobotPermission', 'The permissions of a robot in one namespace (a project name, or * for all)', z.object({ kind: z.string(), namespace: z.string(), access: z.array(Access) }));
export const Robot = named(
  'Robot',
  'A robot account',
  z.object({
    id: int,
    name: z.string(),
    description: z.string(),
    level: z.enum(['system', 'project']),
    duration: int.describe('days; -1 never expires'),
    editable: z.boolean(),
    disable: z.boolean(),
    expires_at: int.describe('Unix seconds; -1 never'),
    permissions: z.array(RobotPermission),
    creation_time: time,
    update_time: time,
  }),
);
export const RobotCreated = named(
  'RobotCreated',
  'A new robot with its secret, shown once',
  z.object({ id: int, name: z.string(), secret: z.string(), creation_time: time, expires_at: int.describe('Unix seconds; -1 never') }),
);
export const RobotSec = named('RobotSec', "A robot's new secret", z.object({ secret: z.string() }));

// ---- projects and members ---------------------------------------------------------------------
export const Project = named(
  'Project',
  'A project',
  z.object({
    project_id: int,
    owner_id: int,
    name: z.string(),
    registry_id: int,
    creation_time: time,
    update_time: time,
    deleted: z.boolean(),
    owner_name: z.string(),
    togglable: z.boolean(),
    current_user_role_id: int.describe('the most privileged role of the caller: 1 admin, 4 maintainer, 2 developer, 3 guest, 5 limited guest, 0 none'),
    current_user_role_ids: z.array(int),
    repo_count: int,
    metadata: stringMap.describe('Harbor\'s project metadata ("public": "true"...)'),
  }),
);
export const ResourceList = named('ResourceList', 'Storage in bytes (-1: no limit)', z.object({ storage: int }));
export const ProjectSummary = named(
  'ProjectSummary',
  "A project's counts and quota",
  z.object({
    repo_count: int,
    artifact_count: int.optional().describe("Berth's addition: artifacts in the project"),
    project_admin_count: int,
    maintainer_count: int,
    developer_count: int,
    guest_count: int,
    limited_guest_count: int,
    quota: z.object({ hard: ResourceList, used: ResourceList }),
  }),
);
export const ProjectDeletable = named('ProjectDeletable', 'Whether the project can be deleted, and why not', z.object({ deletable: z.boolean(), message: z.string() }));
export const ProjectMemberEntity = named(
  'ProjectMemberEntity',
  'A member of a project: a user (entity_type u) or an LDAP group (g)',
  z.object({ id: int, project_id: int, entity_name: z.string(), role_name: z.string(), role_id: int, entity_id: int, entity_type: z.enum(['u', 'g']) }),
);

// ---- repositories, artifacts, tags --------------------------------------------------------------
export const Repository = named(
  'Repository',
  'A repository',
  z.object({ id: int, project_id: int, name: z.string().describe('with its project: "library/app"'), description: z.string(), artifact_count: int, pull_count: int, creation_time: time, update_time: time }),
);
export const Tag = named(
  'Tag',
  'A tag of an artifact',
  z.object({ repository_id: int, artifact_id: int, name: z.string(), push_time: time, pull_time: pullTime.optional(), immutable: z.boolean() }),
);
export const Reference = named(
  'Reference',
  'A manifest an index refers to',
  z.object({ parent_id: int, child_digest: z.string(), platform: z.record(z.string(), z.unknown()).optional(), annotations: stringMap, urls: z.array(z.string()) }),
);
export const Accessory = named(
  'Accessory',
  'A signature, SBOM or other artifact attached to this one (OCI referrers)',
  z.object({ artifact_id: int, subject_artifact_id: int, subject_artifact_digest: z.string(), digest: z.string(), type: z.string(), artifact_type: z.string().optional(), size: int, creation_time: z.string() }),
);
export const Label = named('Label', 'Berth has no labels: always an empty list', z.object({ id: int, name: z.string() }));
export const Artifact = named(
  'Artifact',
  'An artifact: an image, an index, a chart or another OCI artifact',
  z.object({
    id: int,
    type: z.string().describe('IMAGE, CHART, SIGNATURE, SBOM, UNKNOWN...'),
    media_type: z.string().describe('the config media type (the manifest media type when there is no config)'),
    manifest_media_type: z.string(),
    artifact_type: z.string().optional(),
    project_id: int,
    repository_id: int,
    digest: z.string(),
    size: int,
    push_time: time,
    pull_time: pullTime,
    extra_attrs: z.record(z.string(), z.unknown()).describe('architecture, os, created, author, config of an image'),
    annotations: stringMap,
    references: z.array(Reference),
    tags: z.array(Tag),
    accessories: z.array(Accessory),
    labels: z.array(Label),
  }),
);
export const ImportResult = named(
  'ImportResult',
  'What an archive import pushed (Berth): the repository, its first tag and digest, and every tag with its digest',
  z.object({ repository: z.string(), tag: z.string(), digest: z.string(), tags: z.array(z.object({ tag: z.string(), digest: z.string() })) }),
);

// ---- logs, search, statistics, quotas ----------------------------------------------------------
export const AuditLog = named(
  'AuditLog',
  'An audit log entry',
  z.object({ id: int, username: z.string(), resource: z.string(), resource_type: z.string(), operation: z.string(), op_time: time }),
);
export const Search = named(
  'Search',
  'Projects and repositories whose name contains the query',
  z.object({
    project: z.array(z.object({ project_id: int, name: z.string(), repo_count: int, metadata: stringMap })),
    repository: z.array(z.object({ project_id: int, project_name: z.string(), project_public: z.boolean(), repository_name: z.string(), pull_count: int, artifact_count: int })),
  }),
);
export const Statistic = named(
  'Statistic',
  'Counts of the projects and repositories the caller can see (storage for system admins only)',
  z.object({
    private_project_count: int,
    private_repo_count: int,
    public_project_count: int,
    public_repo_count: int,
    total_project_count: int,
    total_repo_count: int,
    total_storage_consumption: int,
  }),
);
export const Quota = named(
  'Quota',
  "A project's storage quota (its id is the project's)",
  z.object({ id: int, ref: z.object({ id: int, name: z.string(), owner_name: z.string() }), hard: ResourceList, used: ResourceList, creation_time: time, update_time: time }),
);

// ---- system --------------------------------------------------------------------------------------
export const LdapPingResult = named('LdapPingResult', 'Whether Berth could bind and search with the settings', z.object({ success: z.boolean(), message: z.string() }));
export const LdapUser = named('LdapUser', 'A directory user', z.object({ username: z.string(), realname: z.string(), email: z.string() }));
export const LdapFailedImportUser = named('LdapFailedImportUser', 'A user the import could not add', z.object({ uid: z.string(), error: z.string() }));
export const LdapGroup = named('LdapGroup', 'A directory group', z.object({ group_name: z.string(), ldap_group_dn: z.string(), group_type: int }));
export const ConfigItem = named('ConfigItem', 'A setting and whether PUT /configurations may change it', z.object({ value: z.unknown(), editable: z.boolean() }));
export const Configurations = named(
  'ConfigurationsResponse',
  'The settings by key: auth_mode, project_creation_restriction, audit_log_retention_days, ldap_* (secrets are never returned)',
  z.record(z.string(), ConfigItem),
);
export const Storage = named('Storage', 'Disk space in bytes', z.object({ total: int, free: int }));
export const SystemInfo = named('SystemInfo', 'Disk space of the data directory', z.object({ storage: z.array(Storage) }));
export const GeneralInfo = named(
  'GeneralInfo',
  'What a client needs before logging in; the fields marked optional are only sent to signed-in callers',
  z.object({
    auth_mode: z.enum(['db_auth', 'ldap_auth']),
    harbor_version: z.string().describe('"berth-<version>"'),
    self_registration: z.boolean(),
    has_ca_root: z.boolean(),
    primary_auth_mode: z.boolean(),
    banner_message: z.string(),
    registry_url: z.string().optional(),
    external_url: z.string().optional(),
    project_creation_restriction: z.enum(['adminonly', 'everyone']).optional(),
    read_only: z.boolean().optional(),
    with_chartmuseum: z.boolean().optional().describe("Berth's addition: always false (older Harbor clients read it; Harbor dropped it with ChartMuseum)"),
    notification_enable: z.boolean().optional(),
  }),
);

// ---- garbage collection --------------------------------------------------------------------------
const gcJob = { job_name: z.literal('GARBAGE_COLLECTION'), job_parameters: z.string().describe('the run\'s parameters as JSON: {"delete_untagged":..., "dry_run":..., "time_window":...}'), deleted: z.boolean() };
export const GCHistory = named(
  'GCHistory',
  'A garbage collection run',
  z.object({
    id: int,
    ...gcJob,
    job_kind: z.enum(['MANUAL', 'SCHEDULE']),
    schedule: z.object({ type: z.enum(['Manual', 'Schedule']) }),
    job_status: z.enum(['Pending', 'Running', 'Success', 'Error', 'Stopped']),
    creation_time: time,
    update_time: time,
    manifests_deleted: int.describe("Berth's addition"),
    blobs_deleted: int.describe("Berth's addition"),
    freed_bytes: int.describe("Berth's addition"),
    progress: z
      .object({ phase: z.string(), scanned: int, manifests: int, blobs: int, bytes: int })
      .optional()
      .describe("Berth's addition, while the run is in progress: how far it has got"),
  }),
);
export const GCSchedule = named(
  'GCSchedule',
  "The recurring garbage collection (Harbor's GCHistory without a run)",
  z.object({
    ...gcJob,
    job_kind: z.literal('SCHEDULE'),
    schedule: z.object({ type: z.enum(['None', 'Hourly', 'Daily', 'Weekly', 'Custom']), cron: z.string(), next_scheduled_time: time.optional() }),
  }),
);

// ---- registry endpoints ----------------------------------------------------------------------------
export const RegistryCredential = named(
  'RegistryCredential',
  'How Berth authenticates at the registry: type "basic" (access_key and access_secret) or "" (anonymous). The secret is never returned: access_secret is "*****" when one is saved',
  z.object({ type: z.string(), access_key: z.string(), access_secret: z.literal('*****').optional() }),
);
export const Registry = named(
  'Registry',
  'A registry endpoint: another registry Berth pulls from or replicates to',
  z.object({
    id: int,
    name: z.string(),
    type: z.string().describe('docker-registry, harbor, docker-hub, github-ghcr, quay'),
    url: z.string(),
    description: z.string(),
    credential: RegistryCredential,
    insecure: z.boolean(),
    ca_certificate: z.string().optional(),
    status: z.enum(['healthy', 'unhealthy', 'unknown']).describe('what the last ping of the saved endpoint said'),
    creation_time: time,
    update_time: time,
  }),
);
export const RegistryInfo = named(
  'RegistryInfo',
  'What replication can do with a registry',
  z.object({
    type: z.string(),
    description: z.string(),
    supported_resource_filters: z.array(z.object({ type: z.string(), style: z.string(), values: z.array(z.string()).optional() })),
    supported_triggers: z.array(z.string()),
    supported_copy_by_chunk: z.boolean(),
  }),
);
export const RegistryProviderInfo = named(
  'RegistryProviderInfo',
  'The usual endpoints of a registry type',
  z.object({
    endpoint_pattern: z.object({ endpoint_type: z.string(), endpoints: z.array(z.object({ key: z.string(), value: z.string() })) }),
    credential_pattern: z.object({ access_key_type: z.string(), access_key_data: z.string(), access_secret_type: z.string(), access_secret_data: z.string() }).optional(),
  }),
);

// ---- replication ---------------------------------------------------------------------------------
export const ReplicationFilter = named(
  'ReplicationFilter',
  'A filter of a replication policy: name (repository, doublestar glob like team/**), tag (v*; an untagged artifact is matched as ""), resource (image)',
  z.object({ type: z.string(), value: z.string(), decoration: z.enum(['matches', 'excludes']) }),
);
export const ReplicationPolicy = named(
  'ReplicationPolicy',
  'A replication policy. The side that is this Berth is the registry with id 0 ("Local")',
  z.object({
    id: int,
    name: z.string(),
    description: z.string(),
    src_registry: Registry,
    dest_registry: Registry,
    dest_namespace: z.string(),
    dest_namespace_replace_count: int.describe('-1: legacy (flatten all levels: only the last component under dest_namespace); 0: prepend dest_namespace; n: replace the first n components'),
    trigger: z.object({ type: z.enum(['manual', 'scheduled', 'event_based']), trigger_settings: z.object({ cron: z.string() }) }),
    filters: z.array(ReplicationFilter),
    replicate_deletion: z.boolean(),
    deletion: z.boolean(),
    override: z.boolean(),
    enabled: z.boolean(),
    speed: int.describe('KB/s per transfer; -1 or 0: no limit'),
    copy_by_chunk: z.boolean(),
    creation_time: time,
    update_time: time,
  }),
);
export const ReplicationExecution = named(
  'ReplicationExecution',
  'A run of a replication policy and its task counts',
  z.object({
    id: int,
    policy_id: int,
    status: z.enum(['InProgress', 'Succeed', 'Failed', 'Stopped']),
    trigger: z.string(),
    start_time: time,
    end_time: time,
    status_text: z.string(),
    total: int,
    failed: int,
    succeed: int,
    in_progress: int,
    stopped: int,
  }),
);
export const ReplicationTask = named(
  'ReplicationTask',
  'One artifact copied (or deleted) by an execution',
  z.object({
    id: int,
    execution_id: int,
    status: z.enum(['Pending', 'InProgress', 'Succeed', 'Failed', 'Stopped']),
    job_id: z.string(),
    operation: z.string(),
    resource_type: z.string(),
    src_resource: z.string(),
    dst_resource: z.string(),
    start_time: time,
    end_time: time,
  }),
);

// ---- immutable tag rules and tag retention rules ----------------------------------------------------
// Harbor defines the two with the same fields, under their own names.
const selectorShape = () => z.object({ kind: z.string(), decoration: z.string(), pattern: z.string(), extras: z.string().optional() });
const ruleShape = (selector: z.ZodType) =>
  z.object({
    id: int,
    priority: int,
    disabled: z.boolean(),
    action: z.string(),
    template: z.string(),
    params: z.record(z.string(), z.unknown()),
    tag_selectors: z.array(selector),
    scope_selectors: z.record(z.string(), z.array(selector)),
  });
export const ImmutableSelector = named(
  'ImmutableSelector',
  'A selector of an immutable tag rule: kind doublestar; decoration matches/excludes (tags) or repoMatches/repoExcludes (repositories, named without their project)',
  selectorShape(),
);
export const ImmutableRule = named(
  'ImmutableRule',
  'An immutable tag rule: a tag it matches, in a repository its scope matches, is never overwritten or deleted (nor the artifact carrying it)',
  ruleShape(ImmutableSelector),
);

// ---- tag retention -------------------------------------------------------------------------------
export const RetentionSelector = named(
  'RetentionSelector',
  'A selector of a retention rule: kind doublestar; decoration matches/excludes (tags; extras {"untagged":true} takes untagged artifacts too) or repoMatches/repoExcludes (repositories, named without their project)',
  selectorShape(),
);
export const RetentionRule = named(
  'RetentionRule',
  'A retention rule: of the artifacts its selectors select, the ones its template keeps (latestPushedK, latestPulledN, nDaysSinceLastPush, nDaysSinceLastPull, always)',
  ruleShape(RetentionSelector),
);
export const RetentionPolicy = named(
  'RetentionPolicy',
  "A project's tag retention policy: an artifact any rule keeps is kept, every other artifact of a repository the rules cover is deleted by a run",
  z.object({
    id: int,
    algorithm: z.string(),
    rules: z.array(RetentionRule),
    trigger: z.object({ kind: z.string(), settings: z.record(z.string(), z.unknown()), references: z.record(z.string(), z.unknown()) }),
    scope: z.object({ level: z.string(), ref: int }),
  }),
);
export const RetentionExecution = named(
  'RetentionExecution',
  'A run of a retention policy',
  z.object({ id: int, policy_id: int, start_time: time, end_time: time, status: z.string(), trigger: z.string(), dry_run: z.boolean() }),
);
export const RetentionExecutionTask = named(
  'RetentionExecutionTask',
  'One repository of a retention run: how many artifacts it had and how many were kept',
  z.object({
    id: int,
    execution_id: int,
    repository: z.string(),
    job_id: z.string(),
    status: z.string(),
    status_code: int,
    status_revision: int,
    start_time: time,
    end_time: time,
    total: int,
    retained: int,
  }),
);
const RetentionParamMetadata = z.object({ type: z.string(), unit: z.string(), required: z.boolean() });
const RetentionSelectorMetadata = z.object({ display_text: z.string(), kind: z.string(), decorations: z.array(z.string()) });
export const RetentionMetadata = named(
  'RetentionMetadata',
  'The rule templates and selectors retention policies may use',
  z.object({
    templates: z.array(z.object({ rule_template: z.string(), display_text: z.string(), action: z.string(), params: z.array(RetentionParamMetadata) })),
    scope_selectors: z.array(RetentionSelectorMetadata),
    tag_selectors: z.array(RetentionSelectorMetadata),
  }),
);

// ---- replies ------------------------------------------------------------------------------------
/** A route's successful answer (errors are Errors, documented for every route). */
export interface Reply {
  status: number;
  description: string;
  /** The JSON body (text/plain when `text`); none for an empty answer. */
  body?: z.ZodType;
  text?: boolean;
  /** Harbor's paging headers (X-Total-Count, Link). */
  paged?: boolean;
  /** A Location header naming what was created. */
  location?: boolean;
  /** Other answers that are not errors (the LDAP import's 404 with the users it could not add). */
  also?: { status: number; description: string; body?: z.ZodType }[];
}

export const reply = {
  json: (body: z.ZodType, description: string, status = 200): Reply => ({ status, description, body }),
  page: (item: z.ZodType, description: string): Reply => ({ status: 200, description, body: z.array(item), paged: true }),
  created: (description: string, body?: z.ZodType): Reply => ({ status: 201, description, location: true, body }),
  done: (description = 'Done', status = 200): Reply => ({ status, description }),
  text: (description: string): Reply => ({ status: 200, description, body: z.string(), text: true }),
};

// ---- the DTO types: what the functions that build answers return ------------------------------
export type UserDto = z.output<typeof UserResp>;
export type RobotDto = z.output<typeof Robot>;
export type ProjectDto = z.output<typeof Project>;
export type MemberDto = z.output<typeof ProjectMemberEntity>;
export type RepositoryDto = z.output<typeof Repository>;
export type ArtifactDto = z.output<typeof Artifact>;
export type TagDto = z.output<typeof Tag>;
export type QuotaDto = z.output<typeof Quota>;
export type AuditLogDto = z.output<typeof AuditLog>;
export type GcHistoryDto = z.output<typeof GCHistory>;
export type RegistryDto = z.output<typeof Registry>;
export type ReplicationPolicyDto = z.output<typeof ReplicationPolicy>;
export type ReplicationExecutionDto = z.output<typeof ReplicationExecution>;
export type ReplicationTaskDto = z.output<typeof ReplicationTask>;
export type ImmutableRuleDto = z.output<typeof ImmutableRule>;
export type RetentionPolicyDto = z.output<typeof RetentionPolicy>;
export type RetentionExecutionDto = z.output<typeof RetentionExecution>;
export type RetentionTaskDto = z.output<typeof RetentionExecutionTask>;
export type RetentionMetadataDto = z.output<typeof RetentionMetadata>;
