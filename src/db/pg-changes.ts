// Change announcements between the nodes of a cluster on one PostgreSQL (see src/db/changes.ts for
// the contract and docs/scale-out.md §4 for what was measured):
//
//  - publish: runs this node's listeners at once, then bumps the topic's row in "CacheEpoch" and
//    sends NOTIFY berth_cache [node id, topic, key, version] in one statement on the pool. Callers
//    publish after their change committed, so no node drops a cache entry before the new row is
//    visible to it.
//  - listen: one dedicated connection (LISTEN is per session, so not a pooled one) with TCP
//    keepalive. Announcements of other nodes run the listeners; this node's own were delivered when
//    published and are only counted.
//  - NOTIFY is lost while a node is not listening. So: while the connection is down `live` is false
//    (caches read through), and on every (re)connect each topic's listeners get null (flush all).
//  - A connection that dies silently (no RST) is found by a self-ping: every 5 s the node notifies
//    itself on its own connection and reconnects unless it hears the echo within 2 s.
//  - The safety net: every second the topics' versions are read; a version this node never heard
//    announced (a lost notification, a writer that crashed between its bump and NOTIFY's delivery)
//    flushes that topic.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { LocalChanges, TOPICS, type ChangeListener, type Changes, type Topic } from './changes.ts';
import type { PgSql } from './client.ts';

export const CHANNEL = 'berth_cache';
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more: a longer key is sent as null (the whole topic). */
const MAX_KEY_BYTES = 4000;
/** Versions heard ahead of the last poll kept at most per topic (beyond: the topic is flushed). */
const MAX_HEARD = 10_000;

export interface PgChangesLog {
  warn(o: object, m: string): void;
  info(o: object, m: string): void;
}

export interface PgChangesOptions {
  /** postgresql:// URL for the listening connection. */
  url: string;
  /** Berth's pool, for publishing and the version poll. */
  sql: PgSql;
  log?: PgChangesLog;
  /** This node's id (random by default); its listening connection's application_name is berth-listen-<id>. */
  nodeId?: string;
  pollMs?: number;
  pingEveryMs?: number;
  pingTimeoutMs?: number;
  /** How often the content caches (tags, manifests, repositories) are dropped whatever was heard (default 60 s). */
  refreshMs?: number;
}

/**
 * Topics flushed on a timer as the last net: an announcement goes out right after its change
 * committed, so a node killed between the two leaves no trace for the version poll, and the other
 * nodes would serve the old tag until it left their caches. The refresh bounds that to refreshMs,
 * for the price of one database read per cached tag or manifest per period. (Credentials are not
 * refreshed: a stale one means a password hash again, and they are cached for a minute anyway.)
 */
const REFRESHED: Topic[] = ['tags', 'manifests', 'repositories'];

type Payload = [node: string, topic: string, key: string | null, version: number];

const BUMP = `WITH bump AS (
  INSERT INTO "CacheEpoch" ("topic", "version") VALUES ($1, 1)
  ON CONFLICT ("topic") DO UPDATE SET "version" = "CacheEpoch"."version" + 1
  RETURNING "version"
)
SELECT "version", pg_notify('${CHANNEL}', json_build_array($2::text, $1::text, $3::text, "version")::text) FROM bump`;
const VERSIONS = 'SELECT "topic", "version" FROM "CacheEpoch"';

export class PgChanges implements Changes {
  readonly nodeId: string;
  private readonly local: LocalChanges;
  private client: pg.Client | null = null;
  private listening = false;
  private closed = false;
  private backoffMs = 100;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private pingDeadline: NodeJS.Timeout | null = null;
  private pingSeq = 0;
  private polling = false;
  /** Per topic: the version the last poll accounted for (absent before the first poll). */
  private polled = new Map<string, number>();
  /** Per topic: versions announced (heard or published here) after `polled`. */
  private heard = new Map<string, Set<number>>();
  /** Topics whose announcement could not be sent (the database was unreachable): sent again, whole, by the poll. */
  private unsent = new Set<Topic>();

  private constructor(
    private readonly pgLib: typeof pg,
    private readonly opts: PgChangesOptions,
  ) {
    this.nodeId = opts.nodeId ?? randomBytes(6).toString('hex');
    this.local = new LocalChanges((err, topic) => opts.log?.warn({ topic, err: (err as Error)?.message }, 'cache listener failed'));
  }

  /** Connects the listener (retrying in the background when it cannot) and starts the poll. */
  static async open(opts: PgChangesOptions): Promise<PgChanges> {
    const { default: pgLib } = await import('pg');
    const c = new PgChanges(pgLib, opts);
    await c.poll(false).catch(() => undefined); // the baseline; a failure leaves it to the next poll
    await c.connect();
    c.pollTimer = setInterval(() => void c.poll(true).catch(() => undefined), opts.pollMs ?? 1000);
    c.pollTimer.unref();
    c.pingTimer = setInterval(() => c.ping(), opts.pingEveryMs ?? 5000);
    c.pingTimer.unref();
    c.refreshTimer = setInterval(() => {
      for (const t of REFRESHED) c.local.deliver(t, null, false);
    }, opts.refreshMs ?? 60_000);
    c.refreshTimer.unref();
    return c;
  }

  get live(): boolean {
    return this.listening;
  }

  generation(topic: Topic): number {
    return this.local.generation(topic);
  }

  subscribe(topic: Topic, fn: ChangeListener): void {
    this.local.subscribe(topic, fn);
  }

  async publish(topic: Topic, key: string | null = null): Promise<void> {
    this.local.deliver(topic, key, true);
    const sent = key !== null && Buffer.byteLength(key) > MAX_KEY_BYTES ? null : key;
    try {
      const r = await this.opts.sql.query<{ version: number }>(BUMP, [topic, this.nodeId, sent]);
      this.hear(topic, Number(r.rows[0]?.version));
    } catch (err) {
      // The change itself committed; the other nodes must still learn of it: the poll sends it again.
      this.unsent.add(topic);
      this.opts.log?.warn({ topic, err: (err as Error).message }, 'cache change not announced; retrying');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listening = false;
    for (const t of [this.reconnectTimer, this.pingDeadline]) if (t) clearTimeout(t);
    for (const t of [this.pollTimer, this.pingTimer, this.refreshTimer]) if (t) clearInterval(t);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }

  // ---- the listening connection -------------------------------------------------------------

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new this.pgLib.Client({
      connectionString: this.opts.url,
      application_name: `berth-listen-${this.nodeId}`.slice(0, 63),
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: 10_000,
    });
    // Without an 'error' listener a dropped connection would end the process.
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, null));
    client.on('notification', (msg) => {
      if (client === this.client && msg.channel === CHANNEL && msg.payload) this.onNotification(msg.payload);
    });
    this.client = client;
    try {
      await client.connect();
      // The listener alone does not keep the process alive (a start that failed after it was opened
      // still exits; a running node has its HTTP server).
      (client as unknown as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.();
      await client.query(`LISTEN ${CHANNEL}`);
      if (client !== this.client) return; // lost meanwhile; a reconnect is under way
      // Listening from here on. What was announced before is not known: take the versions as they
      // are now, and flush every topic.
      await this.poll(false).catch(() => undefined);
      if (client !== this.client) return;
      this.listening = true;
      this.backoffMs = 100;
      for (const t of TOPICS) this.local.deliver(t, null, false);
    } catch (err) {
      this.lost(client, err as Error);
    }
  }

  /** The connection `client` ended or failed: read through from now, and connect again. */
  private lost(client: pg.Client, err: Error | null): void {
    if (client !== this.client) return;
    this.client = null;
    this.listening = false;
    if (this.pingDeadline) clearTimeout(this.pingDeadline);
    this.pingDeadline = null;
    client.removeAllListeners('notification');
    client.on('error', () => undefined); // late errors of a client given up
    void client.end().catch(() => undefined);
    if (this.closed) return;
    this.opts.log?.warn({ err: err?.message ?? 'connection ended', retryMs: this.backoffMs }, 'cache listener disconnected; caches read through');
    const wait = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 2000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, wait);
    this.reconnectTimer.unref();
  }

  private onNotification(payload: string): void {
    let p: Payload;
    try {
      p = JSON.parse(payload) as Payload;
    } catch {
      return;
    }
    if (!Array.isArray(p)) return;
    const [node, topic, key, version] = p;
    if (topic === '') {
      // A ping: this node's echo.
      if (node === `${this.nodeId}#${this.pingSeq}` && this.pingDeadline) {
        clearTimeout(this.pingDeadline);
        this.pingDeadline = null;
      }
      return;
    }
    if (!(TOPICS as readonly string[]).includes(topic)) return;
    this.hear(topic as Topic, Number(version));
    // This node's own announcements ran its listeners when published.
    if (node !== this.nodeId) this.local.deliver(topic as Topic, typeof key === 'string' ? key : null, false);
  }

  /** Notifies this node on its own connection; no echo within the timeout: the connection is dead. */
  private ping(): void {
    const client = this.client;
    if (!client || !this.listening || this.pingDeadline) return;
    const seq = ++this.pingSeq;
    this.pingDeadline = setTimeout(() => {
      this.pingDeadline = null;
      if (client === this.client) this.lost(client, new Error('no echo of the listener ping'));
    }, this.opts.pingTimeoutMs ?? 2000);
    this.pingDeadline.unref();
    client.query(`SELECT pg_notify('${CHANNEL}', $1)`, [JSON.stringify([`${this.nodeId}#${seq}`, '', null, 0])]).catch(() => undefined);
  }

  // ---- the safety net ---------------------------------------------------------------------------

  private hear(topic: Topic, version: number): void {
    if (!Number.isFinite(version)) return;
    const polled = this.polled.get(topic);
    if (polled !== undefined && version <= polled) return;
    let set = this.heard.get(topic);
    if (!set) this.heard.set(topic, (set = new Set()));
    if (set.size < MAX_HEARD) set.add(version);
  }

  /**
   * Reads every topic's version. With `check`, a topic whose version moved past one this node never
   * heard announced is flushed (a notification that was sent just before may still be in flight:
   * it gets a moment to arrive first). Also sends again what could not be announced.
   */
  private async poll(check: boolean): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const t of [...this.unsent]) {
        this.unsent.delete(t);
        await this.publishAgain(t);
      }
      const { rows } = await this.opts.sql.query<{ topic: string; version: number }>(VERSIONS, []);
      const missed: { topic: Topic; from: number; to: number }[] = [];
      for (const r of rows) {
        if (!(TOPICS as readonly string[]).includes(r.topic)) continue;
        const topic = r.topic as Topic;
        const version = Number(r.version);
        const from = this.polled.get(topic) ?? (check ? 0 : version);
        if (check && version > from && !this.allHeard(topic, from, version)) missed.push({ topic, from, to: version });
        else this.settle(topic, version);
      }
      if (!missed.length) return;
      await new Promise((resolve) => setTimeout(resolve, 100)); // notifications already on their way
      for (const m of missed) {
        const whole = !this.allHeard(m.topic, m.from, m.to);
        this.settle(m.topic, m.to);
        if (whole) {
          this.opts.log?.info({ topic: m.topic }, 'cache change noticed by poll; topic flushed');
          this.local.deliver(m.topic, null, false);
        }
      }
    } finally {
      this.polling = false;
    }
  }

  private allHeard(topic: Topic, from: number, to: number): boolean {
    if (to - from > MAX_HEARD) return false;
    const set = this.heard.get(topic);
    for (let v = from + 1; v <= to; v++) if (!set?.has(v)) return false;
    return true;
  }

  /** Versions up to `version` are accounted for. */
  private settle(topic: Topic, version: number): void {
    if (version < (this.polled.get(topic) ?? -1)) return;
    this.polled.set(topic, version);
    const set = this.heard.get(topic);
    if (set) for (const v of set) if (v <= version) set.delete(v);
  }

  private async publishAgain(topic: Topic): Promise<void> {
    try {
      const r = await this.opts.sql.query<{ version: number }>(BUMP, [topic, this.nodeId, null]);
      this.hear(topic, Number(r.rows[0]?.version));
    } catch {
      this.unsent.add(topic);
    }
  }
}

/**
 * Announces a change to every node from a process that does not listen itself (a command-line tool
 * that changed the database next to running nodes). As PgChanges.publish, without a local delivery.
 */
export async function announce(sql: PgSql, topic: Topic, key: string | null = null): Promise<void> {
  await sql.query(BUMP, [topic, `tool-${randomBytes(4).toString('hex')}`, key]);
}
