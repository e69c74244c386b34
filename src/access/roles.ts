// Harbor's project roles and permission matrix, as data (Harbor src/common/rbac/project/rbac_role.go;
// the code, not the docs, is authoritative). One decision function: can().
export const Roles = {
  projectAdmin: 1,
  developer: 2,
  guest: 3,
  maintainer: 4,
  limitedGuest: 5,
} as const;

export type RoleId = (typeof Roles)[keyof typeof Roles];

export const ROLE_NAMES: Record<RoleId, string> = {
  1: 'projectAdmin',
  2: 'developer',
  3: 'guest',
  4: 'maintainer',
  5: 'limitedGuest',
};

export function isRoleId(n: unknown): n is RoleId {
  return n === 1 || n === 2 || n === 3 || n === 4 || n === 5;
}

export type Resource =
  | 'project' | 'member' | 'metadata' | 'configuration' | 'log' | 'label' | 'quota' | 'repository'
  | 'artifact' | 'artifact-addition' | 'tag' | 'accessory' | 'artifact-label' | 'scan' | 'sbom'
  | 'scanner' | 'tag-retention' | 'immutable-tag' | 'robot' | 'notification-policy' | 'preheat-policy' | 'export-cve';

export type Verb = 'create' | 'read' | 'update' | 'delete' | 'list' | 'pull' | 'push' | 'operate' | 'stop';

export interface Permission {
  resource: Resource;
  action: Verb;
}

type Row = Partial<Record<Resource, string>>;

// Letters: C create, R read, U update, D delete, L list, P pull, S push, O operate, X stop.
const LETTERS: Record<string, Verb> = { C: 'create', R: 'read', U: 'update', D: 'delete', L: 'list', P: 'pull', S: 'push', O: 'operate', X: 'stop' };

const MATRIX: Record<RoleId, Row> = {
  [Roles.limitedGuest]: {
    project: 'R', configuration: 'R', quota: 'R', repository: 'RLP', artifact: 'RL', 'artifact-addition': 'R',
    tag: 'L', accessory: 'L', scan: 'R', sbom: 'R', scanner: 'R',
  },
  [Roles.guest]: {
    project: 'R', member: 'RL', configuration: 'R', label: 'RL', quota: 'R', repository: 'RLP', artifact: 'RL',
    'artifact-addition': 'R', tag: 'L', accessory: 'L', scan: 'R', sbom: 'R', scanner: 'R', robot: 'RL',
  },
  [Roles.developer]: {
    project: 'R', member: 'RL', configuration: 'R', label: 'RL', quota: 'R', repository: 'CRULPS', artifact: 'CRL',
    'artifact-addition': 'R', tag: 'LC', accessory: 'L', 'artifact-label': 'CD', scan: 'R', sbom: 'R', scanner: 'R',
    'tag-retention': 'CRUDLO', robot: 'RL', 'export-cve': 'CRL',
  },
  [Roles.maintainer]: {
    project: 'R', member: 'RL', metadata: 'R', configuration: 'R', label: 'CRUDL', quota: 'R', repository: 'CRUDLPS',
    artifact: 'CRDL', 'artifact-addition': 'R', tag: 'LCD', accessory: 'L', 'artifact-label': 'CD', scan: 'CRX', sbom: 'CRX',
    scanner: 'R', 'tag-retention': 'CRUDLO', 'immutable-tag': 'CUDL', robot: 'RL', 'notification-policy': 'RL', 'export-cve': 'CRL',
  },
  [Roles.projectAdmin]: {
    project: 'RUD', member: 'CRUDL', metadata: 'CRUD', configuration: 'RU', log: 'L', label: 'CRUDL', quota: 'R',
    repository: 'CRUDLPS', artifact: 'CRDL', 'artifact-addition': 'R', tag: 'LCD', accessory: 'L', 'artifact-label': 'CD',
    scan: 'CRX', sbom: 'CRX', scanner: 'RC', 'tag-retention': 'CRUDLO', 'immutable-tag': 'CUDL', robot: 'CRUDL',
    'notification-policy': 'CRUDL', 'preheat-policy': 'CRUDL', 'export-cve': 'CRL',
  },
};

/** What anyone (also anonymous) may do in a public project (Harbor's publicProjectPolicies). */
const PUBLIC: Row = { project: 'R', label: 'RL', repository: 'LP', scan: 'R', scanner: 'R', tag: 'L', artifact: 'RL', 'artifact-addition': 'R', accessory: 'L' };

function expand(row: Row): Set<string> {
  const out = new Set<string>();
  for (const [resource, letters] of Object.entries(row)) for (const l of letters) out.add(`${resource}:${LETTERS[l]}`);
  return out;
}

const ROLE_SETS = new Map<RoleId, Set<string>>(Object.entries(MATRIX).map(([id, row]) => [Number(id) as RoleId, expand(row)]));
const PUBLIC_SET = expand(PUBLIC);

/** The permissions of a role, as a literal list (for /users/current/permissions and the UI). */
export function rolePermissions(role: RoleId): Permission[] {
  return [...ROLE_SETS.get(role)!].map((p) => {
    const [resource, action] = p.split(':');
    return { resource: resource as Resource, action: action as Verb };
  });
}

export interface ProjectGrant {
  /** Roles the principal holds in the project, from every membership (direct and through groups). */
  roles: readonly RoleId[];
  public: boolean;
  sysadmin: boolean;
  /** Robot accounts: exactly these permissions in this project (no roles). */
  robot?: readonly Permission[];
}

/**
 * What a project robot may be given: every right of the project admin role except changing or deleting
 * the project itself and changing robots. This is Harbor's robot permission provider for the project
 * scope (src/common/rbac/const.go, NolimitProvider): robots may hold robot create/read/list/delete and
 * member rights, but never robot update, so no robot edits another robot or resets its secret.
 * Anything else (unknown resources or actions included) is refused when a robot is created or changed.
 */
const ROBOT_GRANTABLE: ReadonlySet<string> = new Set([...ROLE_SETS.get(Roles.projectAdmin)!].filter((p) => p !== 'project:update' && p !== 'project:delete' && p !== 'robot:update'));

export function isRobotGrantable(resource: string, action: string): boolean {
  return ROBOT_GRANTABLE.has(`${resource}:${action}`);
}

/**
 * The permissions in `wanted` that a principal with this grant does not hold itself, and so may not
 * hand on (to a robot it creates or changes, or through a role it grants a member). What anyone may do
 * in a public project does not count: the project may become private, and the right was never the
 * principal's to give.
 */
export function missingPermissions(grant: ProjectGrant, wanted: readonly Permission[]): Permission[] {
  const own: ProjectGrant = { ...grant, public: false };
  return wanted.filter((p) => !can(own, p.resource, p.action));
}

export type ProjectCreationRestriction = 'adminonly' | 'everyone';

/**
 * Who may create projects (Harbor's project_creation_restriction): system admins, and every user
 * when the restriction is "everyone". Robots never.
 */
export function mayCreateProjects(principal: { kind: 'user' | 'robot'; sysadmin: boolean }, restriction: ProjectCreationRestriction): boolean {
  return principal.sysadmin || (principal.kind === 'user' && restriction === 'everyone');
}

/** The one RBAC decision: may a principal with this grant do `action` on `resource` in the project? */
export function can(grant: ProjectGrant, resource: Resource, action: Verb): boolean {
  if (grant.sysadmin) return true;
  const key = `${resource}:${action}`;
  if (grant.robot) return grant.robot.some((p) => p.resource === resource && p.action === action) || (grant.public && PUBLIC_SET.has(key));
  if (grant.public && PUBLIC_SET.has(key)) return true;
  return grant.roles.some((r) => ROLE_SETS.get(r)?.has(key));
}
