// Scheduled jobs' runs ("JobRun", primary key (job, slot)): which node runs a slot, and the history.
// Every node's timer fires for every slot; the node whose insert of (job, slot) lands runs it, the
// others find the row there and skip (one statement, no lock held). Unlike a try-lock alone, this
// also holds when a node fires late, after the first has already finished.
import { dialectOf, pgSql, type Db, type PgSql } from './client.ts';
import type { Dialect } from './dialect.ts';

export interface JobRunRow {
  job: string;
  slot: Date;
  node: string;
  startedAt: Date;
}

export class JobStore {
  private readonly d: Dialect;
  private readonly pg: PgSql | null;
  private readonly claimSql: string;
  private readonly purgeSql: string;

  constructor(private readonly db: Db) {
    this.d = dialectOf(db);
    this.pg = pgSql(db);
    this.claimSql = this.d.text('INSERT INTO "JobRun" ("job", "slot", "node", "startedAt") VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING');
    this.purgeSql = this.d.text(`DELETE FROM "JobRun" WHERE ${this.d.dateBefore('"startedAt"', '?')}`);
  }

  /** Records that `node` runs the job's slot; true for exactly one caller per (job, slot) in the cluster. */
  async claim(job: string, slot: Date, node: string, now = new Date()): Promise<boolean> {
    const args = [job, this.d.date(slot), node, this.d.date(now)];
    const inserted = this.pg ? (await this.pg.query(this.claimSql, args)).rowCount : await this.db.$executeRawUnsafe(this.claimSql, ...args);
    return inserted === 1;
  }

  /** Deletes the history of runs started before `before`; returns how many. */
  async purge(before: Date): Promise<number> {
    const args = [this.d.date(before)];
    return this.pg ? (await this.pg.query(this.purgeSql, args)).rowCount : await this.db.$executeRawUnsafe(this.purgeSql, ...args);
  }

  /** The job's runs, newest slot first. */
  async runs(job: string, limit = 100): Promise<JobRunRow[]> {
    return this.db.jobRun.findMany({ where: { job }, orderBy: { slot: 'desc' }, take: limit });
  }
}
