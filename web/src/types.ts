// Harbor v2.0 API shapes, as far as the UI reads them (harbor-v2.0-swagger.yaml).

export interface Project {
  project_id: number;
  name: string;
  owner_name?: string;
  creation_time: string;
  update_time?: string;
  current_user_role_id?: number;
  current_user_role_ids?: number[];
  repo_count?: number;
  /** A proxy-cache project: the registry endpoint it pulls through (0 or absent: an ordinary project). */
  registry_id?: number | null;
  metadata?: { public?: string; [k: string]: string | undefined };
}

export interface Repository {
  id: number;
  project_id: number;
  name: string;
  description?: string;
  artifact_count?: number;
  pull_count?: number;
  creation_time?: string;
  update_time?: string;
}

export interface Tag {
  id?: number;
  name: string;
  push_time?: string;
  pull_time?: string;
  immutable?: boolean;
}

export interface Platform {
  os?: string;
  architecture?: string;
  variant?: string;
  'os.version'?: string;
}

export interface Reference {
  child_digest: string;
  child_id?: number;
  platform?: Platform;
}

export interface Accessory {
  id?: number;
  digest: string;
  type: string;
  size?: number;
  subject_artifact_digest?: string;
  artifact_type?: string;
  creation_time?: string;
}

export interface Artifact {
  id: number;
  digest: string;
  size: number;
  push_time?: string;
  pull_time?: string;
  media_type?: string;
  manifest_media_type?: string;
  artifact_type?: string;
  type?: string;
  repository_name?: string;
  tags?: Tag[] | null;
  references?: Reference[] | null;
  accessories?: Accessory[] | null;
  extra_attrs?: { architecture?: string; os?: string; created?: string; author?: string; config?: { Labels?: Record<string, string> } } & Record<string, unknown>;
}

export interface Member {
  id: number;
  project_id: number;
  entity_name: string;
  entity_type: 'u' | 'g';
  entity_id: number;
  role_id: number;
  role_name: string;
}

export interface RobotAccess {
  resource: string;
  action: string;
  effect?: string;
}

export interface Robot {
  id: number;
  name: string;
  description?: string;
  level: string;
  duration?: number;
  disable: boolean;
  expires_at: number;
  creation_time?: string;
  permissions?: { kind: string; namespace: string; access: RobotAccess[] }[];
}

export interface Permission {
  resource: string;
  action: string;
}

export interface AuditLog {
  id: number;
  username: string;
  resource: string;
  resource_type: string;
  operation: string;
  op_time: string;
}

export interface User {
  user_id: number;
  username: string;
  email?: string;
  realname?: string;
  sysadmin_flag: boolean;
  creation_time?: string;
  /** 'local' or 'ldap', where the server says so. */
  source?: string;
}

export interface UserGroup {
  id: number;
  group_name: string;
  group_type: number;
  ldap_group_dn?: string;
}

export interface ProjectSummary {
  repo_count?: number;
  artifact_count?: number;
  project_admin_count?: number;
  maintainer_count?: number;
  developer_count?: number;
  guest_count?: number;
  limited_guest_count?: number;
  quota?: { hard?: { storage?: number }; used?: { storage?: number } };
}

export interface SystemInfo {
  auth_mode?: string;
  harbor_version?: string;
  registry_url?: string;
  external_url?: string;
  project_creation_restriction?: string;
  read_only?: boolean;
  self_registration?: boolean;
}

export interface Statistics {
  private_project_count?: number;
  private_repo_count?: number;
  public_project_count?: number;
  public_repo_count?: number;
  total_project_count?: number;
  total_repo_count?: number;
  total_storage_consumption?: number;
}

/** Harbor's garbage-collection schedule (GET /system/gc/schedule). */
export type GcScheduleType = 'None' | 'Hourly' | 'Daily' | 'Weekly' | 'Custom';

export interface GcSchedule {
  schedule?: { type?: GcScheduleType | 'Manual'; cron?: string; next_scheduled_time?: string } | null;
  /** A JSON string in Harbor ({"delete_untagged":true,...}); tolerated as an object too. */
  job_parameters?: string | Record<string, unknown>;
}

export type GcStatus = 'Pending' | 'Running' | 'Success' | 'Error' | 'Stopped';

/** One garbage-collection run (GET /system/gc); the counts are Berth's additions to Harbor's shape. */
export interface GcHistory {
  id: number;
  job_name?: string;
  job_kind: 'MANUAL' | 'SCHEDULE' | string;
  /** A JSON string: delete_untagged, dry_run, time_window. */
  job_parameters?: string;
  schedule?: { type?: string } | null;
  job_status: GcStatus | string;
  deleted?: boolean;
  creation_time: string;
  update_time?: string;
  blobs_deleted?: number;
  freed_bytes?: number;
  manifests_deleted?: number;
}

/** A registry endpoint (GET /registries): another registry Berth pulls from or replicates to. */
export interface RegistryEndpoint {
  id: number;
  name: string;
  /** docker-registry, harbor, docker-hub, github-ghcr, quay */
  type: string;
  url: string;
  description?: string;
  /** type "basic" or "" (anonymous); the secret is never returned: "*****" when one is saved. */
  credential?: { type?: string; access_key?: string; access_secret?: string };
  insecure?: boolean;
  ca_certificate?: string;
  status?: 'healthy' | 'unhealthy' | 'unknown' | string;
  creation_time?: string;
  update_time?: string;
}

/** GET /replication/adapterinfos: the usual endpoints of the types that have them. */
export type AdapterInfos = Record<string, { endpoint_pattern?: { endpoint_type?: string; endpoints?: { key: string; value: string }[] } }>;

export interface ReplicationFilter {
  /** name (repository glob, e.g. team/**), tag (v*), resource (image) */
  type: string;
  value: string;
  decoration?: 'matches' | 'excludes' | string;
}

/** A replication policy: the side that is this Berth is the registry with id 0 ("Local"). */
export interface ReplicationPolicy {
  id: number;
  name: string;
  description?: string;
  src_registry?: RegistryEndpoint | null;
  dest_registry?: RegistryEndpoint | null;
  dest_namespace?: string;
  /** -1 flatten all levels, 0 prepend, n replace the first n components */
  dest_namespace_replace_count?: number;
  trigger?: { type: 'manual' | 'scheduled' | 'event_based' | string; trigger_settings?: { cron?: string } | null } | null;
  filters?: ReplicationFilter[] | null;
  replicate_deletion?: boolean;
  override?: boolean;
  enabled?: boolean;
  /** KB/s; -1 or 0: no limit */
  speed?: number;
  creation_time?: string;
  update_time?: string;
}

export type ReplicationStatus = 'InProgress' | 'Succeed' | 'Failed' | 'Stopped';

export interface ReplicationExecution {
  id: number;
  policy_id: number;
  status: ReplicationStatus | string;
  trigger?: string;
  start_time?: string;
  end_time?: string;
  status_text?: string;
  total?: number;
  failed?: number;
  succeed?: number;
  in_progress?: number;
  stopped?: number;
}

export interface ReplicationTask {
  id: number;
  execution_id: number;
  status: 'Pending' | ReplicationStatus | string;
  operation?: string;
  resource_type?: string;
  src_resource?: string;
  dst_resource?: string;
  start_time?: string;
  end_time?: string;
}

export const ROLES: { id: number; name: string }[] = [
  { id: 1, name: 'Project admin' },
  { id: 4, name: 'Maintainer' },
  { id: 2, name: 'Developer' },
  { id: 3, name: 'Guest' },
  { id: 5, name: 'Limited guest' },
];

export const roleName = (id: number | undefined) => ROLES.find((r) => r.id === id)?.name ?? '—';
