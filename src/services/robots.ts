// Robot accounts: `robot$<project>+<name>` (project level) or `robot$<name>` (system level), with
// per-project permissions, an expiry, and a secret shown once (stored as a hash) and refreshable.
import type { Db } from '../db/client.ts';
import type { Principal } from '../access/principal.ts';
import type { Permission, Resource, Verb } from '../access/roles.ts';
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
const VERBS = new Set(['create', 'read', 'update', 'delete', 'list', 'pull', 'push', 'operate', 'stop']);

export class RobotsService {
  constructor(private readonly deps: { db: Db; access: AccessService; forgetCredentials: () => void; onChange?: (e: { username: string; operation: string; resource: string }) => void }) {}

  private toRecord(r: { id: number; name: string; description: string; level: string; projectId: number | null; disabled: boolean; expiresAt: Date | null; permissions: string; createdAt: Date; updatedAt: Date }): RobotRecord {
    const durationDays = r.expiresAt ? Math.max(1, Math.round((r.expiresAt.getTime() - r.createdAt.getTime()) / 86_400_000)) : -1;
    return { ...r, level: r.level as 'system' | 'project', durationDays, permissions: JSON.parse(r.permissions) };
  }

  /** Validates the permissions and checks the creator may grant them (project admin of each project, or sysadmin). */
  private async checkPermissions(actor: Principal, level: string, perms: unknown): Promise<{ perms: RobotPermissionInput[]; projectId: number | null }> {
    if (!Array.isArray(perms) || perms.length === 0) throw new AppError('BAD_REQUEST', undefined, { message: 'permissions must be a non-empty array' });
    let projectId: number | null = null;
    const out: RobotPermissionInput[] = [];
    for (const p of perms as RobotPermissionInput[]) {
      if (!p || p.kind !== 'project' || typeof p.namespace !== 'string' || !Array.isArray(p.access)) throw new AppError('BAD_REQUEST', undefined, { message: 'each permission needs kind "project", a namespace and an access list' });
      for (const a of p.access) if (!a || typeof a.resource !== 'string' || !VERBS.has(a.action)) throw new AppError('BAD_REQUEST', undefined, { message: `invalid access ${JSON.stringify(a)}` });
      if (p.namespace === '*') {
        if (level !== 'system' || !actor.sysadmin) throw new AppError('FORBIDDEN', undefined, { message: 'only system robots created by an administrator may cover every project' });
      } else {
        const project = await this.deps.access.project(p.namespace);
        if (!project) throw new AppError('NOT_FOUND', undefined, { message: `project ${p.namespace} not found` });
        if (!(await this.deps.access.can(actor, project, 'robot', 'create'))) throw new AppError('FORBIDDEN', undefined, { message: `no permission to create robots in ${p.namespace}` });
        projectId = project.id;
      }
      out.push({ kind: 'project', namespace: p.namespace, access: p.access.filter((a) => a.effect !== 'deny').map((a) => ({ resource: a.resource, action: a.action })) });
    }
    if (level === 'project' && out.length !== 1) throw new AppError('BAD_REQUEST', undefined, { message: 'a project robot covers exactly one project' });
    if (level === 'system' && !actor.sysadmin) throw new AppError('FORBIDDEN', undefined, { message: 'only system administrators create system robots' });
    return { perms: out, projectId: level === 'project' ? projectId : null };
  }

  async create(actor: Principal, input: { name?: string; description?: string; level?: string; duration?: number; disable?: boolean; secret?: string; permissions?: unknown }): Promise<{ robot: RobotRecord; secret: string }> {
    const level = input.level === 'system' ? 'system' : input.level === 'project' ? 'project' : null;
    if (!level) throw new AppError('BAD_REQUEST', undefined, { message: 'level must be "system" or "project"' });
    if (!input.name || !NAME_RE.test(input.name)) throw new AppError('BAD_REQUEST', undefined, { message: 'robot name must be lower-case letters, digits and ._- separators' });
    const { perms, projectId } = await this.checkPermissions(actor, level, input.permissions);
    const fullName = level === 'project' ? `robot$${perms[0].namespace}+${input.name}` : `robot$${input.name}`;
    if (await this.deps.db.robot.findUnique({ where: { name: fullName } })) throw new AppError('CONFLICT', undefined, { message: `robot ${fullName} already exists` });
    const duration = input.duration ?? -1;
    if (!Number.isInteger(duration) || (duration !== -1 && duration <= 0)) throw new AppError('BAD_REQUEST', undefined, { message: 'duration is a number of days, or -1 for never' });
    const secret = input.secret && input.secret.length >= 8 ? input.secret : newSecret();
    const r = await this.deps.db.robot.create({
      data: {
        name: fullName,
        description: input.description ?? '',
        level,
        projectId,
        disabled: !!input.disable,
        secretHash: hashSecret(secret),
        expiresAt: duration === -1 ? null : new Date(Date.now() + duration * 86_400_000),
        permissions: JSON.stringify(perms),
      },
    });
    this.deps.onChange?.({ username: actor.name, operation: 'create', resource: fullName });
    return { robot: this.toRecord(r), secret };
  }

  async get(id: number): Promise<RobotRecord | null> {
    const r = await this.deps.db.robot.findUnique({ where: { id } });
    return r ? this.toRecord(r) : null;
  }

  /** Robots the actor may read: all for sysadmins, otherwise project robots of projects where it may list robots. */
  async list(actor: Principal, q: { projectId?: number; page: number; pageSize: number }): Promise<{ total: number; items: RobotRecord[] }> {
    const rows = await this.deps.db.robot.findMany({ where: q.projectId ? { projectId: q.projectId } : {}, orderBy: { id: 'asc' } });
    const visible: RobotRecord[] = [];
    for (const r of rows) if (await this.mayManage(actor, this.toRecord(r), 'list')) visible.push(this.toRecord(r));
    return { total: visible.length, items: visible.slice((q.page - 1) * q.pageSize, q.page * q.pageSize) };
  }

  async mayManage(actor: Principal, robot: RobotRecord, verb: Verb): Promise<boolean> {
    if (actor.sysadmin) return true;
    if (robot.level !== 'project' || !robot.projectId) return false;
    const project = await this.deps.access.project(robot.projectId);
    return !!project && (await this.deps.access.can(actor, project, 'robot', verb));
  }

  async update(actor: Principal, robot: RobotRecord, input: { description?: string; disable?: boolean; duration?: number; permissions?: unknown }): Promise<void> {
    const data: Record<string, unknown> = {};
    if (input.description !== undefined) data.description = String(input.description);
    if (input.disable !== undefined) data.disabled = !!input.disable;
    if (input.duration !== undefined) {
      if (!Number.isInteger(input.duration) || (input.duration !== -1 && input.duration <= 0)) throw new AppError('BAD_REQUEST', undefined, { message: 'duration is a number of days, or -1 for never' });
      data.expiresAt = input.duration === -1 ? null : new Date(robot.createdAt.getTime() + input.duration * 86_400_000);
    }
    if (input.permissions !== undefined) data.permissions = JSON.stringify((await this.checkPermissions(actor, robot.level, input.permissions)).perms);
    await this.deps.db.robot.update({ where: { id: robot.id }, data });
    this.deps.access.invalidate();
    this.deps.forgetCredentials();
    this.deps.onChange?.({ username: actor.name, operation: 'update', resource: robot.name });
  }

  /** Sets a new secret (given, or generated) and returns it; the old one stops working at once. */
  async refreshSecret(actor: Principal, robot: RobotRecord, secret?: string): Promise<string> {
    const s = secret && secret.length >= 8 ? secret : newSecret();
    await this.deps.db.robot.update({ where: { id: robot.id }, data: { secretHash: hashSecret(s) } });
    this.deps.forgetCredentials();
    this.deps.onChange?.({ username: actor.name, operation: 'update', resource: `${robot.name}:secret` });
    return s;
  }

  async delete(actor: Principal, robot: RobotRecord): Promise<void> {
    await this.deps.db.robot.delete({ where: { id: robot.id } });
    this.deps.access.invalidate();
    this.deps.forgetCredentials();
    this.deps.onChange?.({ username: actor.name, operation: 'delete', resource: robot.name });
  }
}

export type { Permission, Resource };
