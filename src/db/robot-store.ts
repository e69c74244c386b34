// Robot accounts (table "Robot"): the only place their SQL lives. Permissions are kept as the JSON
// text of Harbor's API; parsing and every rule about who may hold what are the services' business
// (src/services/robots.ts, access-service.ts).
import type { Db } from './client.ts';
import { conflictOnDuplicate } from './unique.ts';

export interface RobotRow {
  id: number;
  /** `robot$<project>+<name>` or `robot$<name>`. */
  name: string;
  description: string;
  /** "system" or "project". */
  level: string;
  projectId: number | null;
  secretHash: string;
  disabled: boolean;
  expiresAt: Date | null;
  /** JSON: [{kind, namespace, access: [{resource, action}]}]. */
  permissions: string;
  createdAt: Date;
  updatedAt: Date;
}

export type NewRobot = Pick<RobotRow, 'name' | 'description' | 'level' | 'projectId' | 'disabled' | 'secretHash' | 'expiresAt' | 'permissions'>;

/** What an update may change. */
export type RobotChanges = Partial<Pick<RobotRow, 'description' | 'disabled' | 'expiresAt' | 'permissions'>>;

export class RobotStore {
  constructor(private readonly db: Db) {}

  find(id: number): Promise<RobotRow | null> {
    return this.db.robot.findUnique({ where: { id } });
  }

  byName(name: string): Promise<RobotRow | null> {
    return this.db.robot.findUnique({ where: { name } });
  }

  /** All robots, or those of one project, oldest first. */
  list(q: { projectId?: number } = {}): Promise<RobotRow[]> {
    return this.db.robot.findMany({ where: q.projectId ? { projectId: q.projectId } : {}, orderBy: { id: 'asc' } });
  }

  /** Creates a robot; AppError CONFLICT when the name is taken. */
  create(r: NewRobot): Promise<RobotRow> {
    return conflictOnDuplicate(this.db.robot.create({ data: r }), `robot ${r.name} already exists`);
  }

  /** Changes the given fields (throws when the robot does not exist). */
  async update(id: number, changes: RobotChanges): Promise<void> {
    await this.db.robot.update({ where: { id }, data: changes });
  }

  async setSecretHash(id: number, secretHash: string): Promise<void> {
    await this.db.robot.update({ where: { id }, data: { secretHash } });
  }

  /** Deletes the robot (throws when it does not exist). */
  async delete(id: number): Promise<void> {
    await this.db.robot.delete({ where: { id } });
  }
}
