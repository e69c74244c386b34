// Robot accounts: `robot$<project>+<name>` (project level) or `robot$<name>` (system level), with
// per-project permissions, an expiry, and a secret shown once (stored as a hash) and refreshable.
import type { RobotChanges, RobotRow, RobotStore } from '../db/robot-store.ts';
import type { Principal } from '../access/principal.ts';
import { isRobotGrantable, type Permission, type Resource, type Verb } from '../access/roles.ts';
import { AppError } from '../lib/errors.ts';
import type { AccessService } from './access-service.ts';
import { hashSecret, newSecret } from './identity.ts';

export interface RobotPermissionInput {
  kind: string;
  namespace: string;
  access: { resource: string; action: string; effect?: string }[];
}

export interface RobotRecord {
  id: number;
  name: string;
  description: string;
  level: 'system' | 'project';
  projectId: number | null;
  disabled: boolean;
  expiresAt: Date | null;
  durationDays: number;
  permissions: RobotPermissionInput[];
  createdAt: Date;
  updatedAt: Date;
}

const NAME_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const MAX_DURATION_DAYS = 1_000_000;
const MAX_ENTRIES = 100;

function bad(message: string): AppError {
  return new AppError('BAD_REQUEST', undefined, { message });
}

function forbidden(message: string): AppError {
  return new AppError('FORBIDDEN', undefined, { message });
}

/** A secret the caller chose: Harbor's rule (8 to 128 characters with a lower-case letter, an upper-case letter and a digit). */
function chosenSecret(secret: unknown): string | undefined {
  if (secret === undefined || secret === null || secret === '') return undefined;
  if (typeof secret !== 'string' || secret.length < 8 || secret.length > 128 || !/[a-z]/.test(secret) || !/[A-Z]/.test(secret) || !/[0-9]/.test(secret)) {
    throw bad('the secret must be 8 to 128 characters with at least one lower-case letter, one upper-case letter and one digit');
  }
  return secret;
}

function durationOf(d: unknown): number {
  if (typeof d !== 'number' || !Number.isInteger(d) || (d !== -1 && (d <= 0 || d > MAX_DURATION_DAYS))) throw bad(`duration is a number of days (1 to ${MAX_DURATION_DAYS}), or -1 for never`);
  return d;
}

/** Checks the shape of a permissions list (every pair must be one a robot may hold) and returns it without deny entries, each pair once. */
function parsePermissions(perms: unknown): RobotPermissionInput[] {
  if (!Array.isArray(perms) || perms.length === 0 || perms.length > MAX_ENTRIES) throw bad('permissions must be a non-empty array');
  return perms.map((p: unknown) => {
    const e = p as Partial<RobotPermissionInput> | null;
    if (!e || typeof e !== 'object' || e.kind !== 'project' || typeof e.namespace !== 'string' || !e.namespace || !Array.isArray(e.access) || e.access.length === 0 || e.access.length > 500) {
      throw bad('each permission needs kind "project", a namespace and a non-empty access list');
    }
    const access = new Map<string, { resource: string; action: string }>();
    for (const a of e.access as unknown[]) {
      const x = a as { resource?: unknown; action?: unknown; effect?: unknown } | null;
      if (!x || typeof x !== 'object' || typeof x.resource !== 'string' || typeof x.action !== 'string' || (x.effect !== undefined && x.effect !== 'allow' && x.effect !== 'deny')) {
        throw bad('each access needs a resource and an action (and an effect of "allow" or "deny", if any)');
      }
      if (!isRobotGrantable(x.resource, x.action)) throw bad(`robots cannot be given ${x.resource.slice(0, 64)}:${x.action.slice(0, 64)}`);
      if (x.effect !== 'deny') access.set(`${x.resource}:${x.action}`, { resource: x.resource, action: x.action });
    }
    return { kind: 'project', namespace: e.namespace, access: [...access.values()] };
  });
}

const pairs = (access: RobotPermissionInput['access']): Permission[] => access.map((a) => ({ resource: a.resource as Resource, action: a.action as Verb }));

/**
 * Robot accounts. The rule that holds every change together: nobody hands on a right it does not hold
 * itself. A creator (user or robot) grants only pairs it may exercise in that project; a principal
 * changes, deletes or resets the secret of a robot only if it holds every right of that robot; a robot
 * never outlives the robot that made it, and never resets a secret. System admins may do everything.
 */
export class RobotsService {
  constructor(private readonly deps: { robots: RobotStore; access: AccessService; forgetCredentials: () => void | Promise<void>; onChange?: (e: { username: string; operation: string; resource: string }) => void }) {}

  private toRecord(row: RobotRow): RobotRecord {
    const { secretHash: _secret, ...r } = row;
    const durationDays = r.expiresAt ? Math.max(1, Math.round((r.expiresAt.getTime() - r.createdAt.getTime()) / 86_400_000)) : -1;
    return { ...r, level: r.level as 'system' | 'project', durationDays, permissions: JSON.parse(r.permissions) };
  }

  /**
   * Validates permissions for a robot being created (robot = undefined) or changed, and checks that the
   * actor may give them: robot create (or update) rights in each project, and every pair held itself.
   * Shape errors are 400s before any lookup; a project the actor cannot see answers 404 like a missing one.
   */
  private async checkPermissions(actor: Principal, level: string, raw: unknown, robot?: RobotRecord): Promise<{ perms: RobotPermissionInput[]; projectId: number | null }> {
    const perms = parsePermissions(raw);
    if (level === 'project' && perms.length !== 1) throw bad('a project robot covers exactly one project');
    if (level === 'project' && perms[0].namespace === '*') throw bad('a project robot covers exactly one project');
    if (level === 'system' && !actor.sysadmin) throw forbidden('only system administrators create or change system robots');
    let projectId: number | null = null;
    for (const p of perms) {
      if (p.namespace === '*') continue; // system robots, system admins only (checked above)
      const project = await this.deps.access.project(p.namespace);
      if (robot?.level === 'project' && project?.id !== robot.projectId) throw bad('a project robot stays in its project');
      const notFound = new AppError('NOT_FOUND', undefined, { message: `project ${p.namespace} not found` });
      if (!project) throw notFound;
      if (!actor.sysadmin) {
        if (!(await this.deps.access.can(actor, project, 'robot', robot ? 'update' : 'create'))) {
          throw (await this.deps.access.can(actor, project, 'project', 'read')) ? forbidden(`no permission to ${robot ? 'change' : 'create'} robots in ${p.namespace}`) : notFound;
        }
        const missing = await this.deps.access.missing(actor, project, pairs(p.access));
        if (missing.length) throw forbidden(`cannot grant rights it does not hold in ${p.namespace}: ${missing.map((m) => `${m.resource}:${m.action}`).join(', ')}`);
      }
      projectId = project.id;
    }
    return { perms, projectId: level === 'project' ? projectId : null };
  }

  /** Refuses unless the actor holds every right of the robot (in every project it covers). */
  private async checkHoldsAll(actor: Principal, robot: RobotRecord, what: string): Promise<void> {
    if (actor.sysadmin) return;
    for (const p of robot.permissions) {
      if (p.namespace === '*') throw forbidden(`cannot ${what} ${robot.name}: it holds rights in every project`);
      const project = await this.deps.access.project(p.namespace);
      if (!project) continue; // rights in a project that no longer exists are no rights
      const missing = await this.deps.access.missing(actor, project, pairs(p.access ?? []));
      if (missing.length) throw forbidden(`cannot ${what} ${robot.name}: it holds rights you do not`);
    }
  }

  /** A robot's own expiry bounds the robots it creates or changes (null: never expires); users have no bound. */
  private async expiryBound(actor: Principal): Promise<{ bound: Date | null } | null> {
    if (actor.kind !== 'robot' || actor.sysadmin) return null;
    const self = await this.deps.robots.find(actor.id);
    return { bound: self?.expiresAt ?? new Date(0) };
  }

  private async checkLifetime(actor: Principal, expiresAt: Date | null): Promise<void> {
    const b = await this.expiryBound(actor);
    if (b?.bound && (!expiresAt || expiresAt.getTime() > b.bound.getTime())) throw forbidden('a robot cannot make a robot that outlives it');
  }

  async create(actor: Principal, input: { name?: string; description?: string; level?: string; duration?: number; disable?: boolean; secret?: string; permissions?: unknown }): Promise<{ robot: RobotRecord; secret: string }> {
    const level = input.level === 'system' ? 'system' : input.level === 'project' ? 'project' : null;
    if (!level) throw bad('level must be "system" or "project"');
    if (typeof input.name !== 'string' || input.name.length > 255 || !NAME_RE.test(input.name)) throw bad('robot name must be lower-case letters, digits and ._- separators');
    if (input.description !== undefined && (typeof input.description !== 'string' || input.description.length > 1024)) throw bad('description must be a string of at most 1024 characters');
    if (input.disable !== undefined && typeof input.disable !== 'boolean') throw bad('disable must be true or false');
    const duration = durationOf(input.duration ?? -1);
    const given = chosenSecret(input.secret);
    const { perms, projectId } = await this.checkPermissions(actor, level, input.permissions);
    const expiresAt = duration === -1 ? null : new Date(Date.now() + duration * 86_400_000);
    await this.checkLifetime(actor, expiresAt);
    const fullName = level === 'project' ? `robot$${perms[0].namespace}+${input.name}` : `robot$${input.name}`;
    if (await this.deps.robots.byName(fullName)) throw new AppError('CONFLICT', undefined, { message: `robot ${fullName} already exists` });
    const secret = given ?? newSecret();
    const r = await this.deps.robots.create({
      name: fullName,
      description: input.description ?? '',
      level,
      projectId,
      disabled: !!input.disable,
      secretHash: hashSecret(secret),
      expiresAt,
      permissions: JSON.stringify(perms),
    });
    this.deps.onChange?.({ username: actor.name, operation: 'create', resource: fullName });
    return { robot: this.toRecord(r), secret };
  }

  async get(id: number): Promise<RobotRecord | null> {
    const r = await this.deps.robots.find(id);
    return r ? this.toRecord(r) : null;
  }

  /** Robots the actor may read: all for sysadmins, otherwise project robots of projects where it may list robots. */
  async list(actor: Principal, q: { projectId?: number; page: number; pageSize: number }): Promise<{ total: number; items: RobotRecord[] }> {
    const rows = await this.deps.robots.list({ projectId: q.projectId });
    const visible: RobotRecord[] = [];
    for (const r of rows) if (await this.mayManage(actor, this.toRecord(r), 'list')) visible.push(this.toRecord(r));
    return { total: visible.length, items: visible.slice((q.page - 1) * q.pageSize, q.page * q.pageSize) };
  }

  /** May the actor see the robot and use `verb` on robots of its project at all (the finer checks are in update, refreshSecret and delete)? */
  async mayManage(actor: Principal, robot: RobotRecord, verb: Verb): Promise<boolean> {
    if (actor.sysadmin) return true;
    if (robot.level !== 'project' || !robot.projectId) return false;
    const project = await this.deps.access.project(robot.projectId);
    return !!project && (await this.deps.access.can(actor, project, 'robot', verb));
  }

  async update(actor: Principal, robot: RobotRecord, input: { description?: string; disable?: boolean; duration?: number; permissions?: unknown; level?: unknown }): Promise<void> {
    const data: RobotChanges = {};
    if (input.level !== undefined && input.level !== robot.level) throw bad('the level of a robot cannot change');
    if (input.description !== undefined) {
      if (typeof input.description !== 'string' || input.description.length > 1024) throw bad('description must be a string of at most 1024 characters');
      data.description = input.description;
    }
    if (input.disable !== undefined) {
      if (typeof input.disable !== 'boolean') throw bad('disable must be true or false');
      data.disabled = input.disable;
    }
    if (input.duration !== undefined) {
      const d = durationOf(input.duration);
      data.expiresAt = d === -1 ? null : new Date(robot.createdAt.getTime() + d * 86_400_000);
    }
    await this.checkHoldsAll(actor, robot, 'change');
    if (input.permissions !== undefined) data.permissions = JSON.stringify((await this.checkPermissions(actor, robot.level, input.permissions, robot)).perms);
    if (data.expiresAt !== undefined && data.expiresAt?.getTime() !== robot.expiresAt?.getTime()) await this.checkLifetime(actor, data.expiresAt);
    await this.deps.robots.update(robot.id, data);
    await this.deps.access.invalidate();
    await this.deps.forgetCredentials();
    this.deps.onChange?.({ username: actor.name, operation: 'update', resource: robot.name });
  }

  /**
   * Sets a new secret (given, or generated) and returns it; the old one stops working at once. Robots
   * never do this, not even for themselves (Harbor gives robots no robot:update): a robot that could
   * would take over another robot, and a stolen secret could lock its owner out. A user may do it only
   * for a robot whose every right it holds, or it could take over a more powerful robot.
   */
  async refreshSecret(actor: Principal, robot: RobotRecord, secret?: string): Promise<string> {
    if (actor.kind === 'robot' && !actor.sysadmin) throw forbidden('robots cannot change robot secrets');
    const given = chosenSecret(secret);
    await this.checkHoldsAll(actor, robot, 'change the secret of');
    const s = given ?? newSecret();
    await this.deps.robots.setSecretHash(robot.id, hashSecret(s));
    await this.deps.forgetCredentials();
    this.deps.onChange?.({ username: actor.name, operation: 'update', resource: `${robot.name}:secret` });
    return s;
  }

  async delete(actor: Principal, robot: RobotRecord): Promise<void> {
    await this.checkHoldsAll(actor, robot, 'delete');
    await this.deps.robots.delete(robot.id);
    await this.deps.access.invalidate();
    await this.deps.forgetCredentials();
    this.deps.onChange?.({ username: actor.name, operation: 'delete', resource: robot.name });
  }
}

export type { Permission, Resource };
