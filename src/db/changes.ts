// Change announcements between nodes, so that every node's caches stay correct.
//
// A service that changes data announces it after its write committed: `publish(topic, key)`.
// Every node (this one included) runs the topic's subscribers with the key, and they drop what
// they cached about it. On one node (SQLite) this is a direct call. On PostgreSQL the announcement
// goes through LISTEN/NOTIFY, with a per-topic version in "CacheEpoch" polled as the safety net
// (src/db/pg-changes.ts).
//
// Rules for a cache that subscribes:
//  1. While `live` is false this node may miss announcements: read through (do not use the cache).
//  2. A read that fills the cache remembers `generation(topic)` before its query and keeps the result
//     only if it is unchanged afterwards, so a change that lands during the read is never hidden.

/** What the caches are about. A key names one thing of the topic; null: everything of it. */
export type Topic =
  /** repository rows: created, deleted (key: repository name) */
  | 'repositories'
  /** tags of a repository (key: `<repository id>@<tag>`, or `<repository id>` for all its tags) */
  | 'tags'
  /** manifests and blob links of a repository (key: `<repository id>@<digest>`, or `<repository id>` for all) */
  | 'manifests'
  /** projects, members, roles, the public flag, robots' permissions (key: null) */
  | 'access'
  /** users, robots, personal tokens: passwords, secrets, disabled, deleted (key: null) */
  | 'credentials'
  /** settings (key: null) */
  | 'settings'
  /** browser sessions (key: the session's id hash; null: all) */
  | 'sessions'
  /** project storage limits (key: project id) */
  | 'quotas'
  /** the token-signing keys (key: null) */
  | 'signing-keys';

/** Every topic (a node that may have missed announcements tells each of them null). */
export const TOPICS: readonly Topic[] = ['repositories', 'tags', 'manifests', 'access', 'credentials', 'settings', 'sessions', 'quotas', 'signing-keys'];

/**
 * `local` is true for an announcement this node published itself: a cache that already updated
 * itself in the same code path (rather than dropping the entry) may skip it.
 */
export type ChangeListener = (key: string | null, local: boolean) => void;

export interface Changes {
  /** Announces a committed change to every node, this one included (synchronously on this one). */
  publish(topic: Topic, key?: string | null): Promise<void>;
  /** Runs `fn` for every announced change of the topic, and with null when this node may have missed some. */
  subscribe(topic: Topic, fn: ChangeListener): void;
  /** False while announcements from other nodes may be missed: caches must read through. */
  readonly live: boolean;
  /** Counts the topic's announcements seen by this node (rule 2 above). */
  generation(topic: Topic): number;
  close(): Promise<void>;
}

/** One process (SQLite): announcements are direct calls. */
export class LocalChanges implements Changes {
  private listeners = new Map<Topic, ChangeListener[]>();
  private gens = new Map<Topic, number>();
  readonly live = true;

  /** `onError`: where a listener that threw is reported (the other listeners still run). */
  constructor(private readonly onError?: (err: unknown, topic: Topic) => void) {}

  async publish(topic: Topic, key: string | null = null): Promise<void> {
    this.deliver(topic, key, true);
  }

  /** Runs the topic's listeners (also used by the PostgreSQL implementation for what it hears). */
  deliver(topic: Topic, key: string | null, local: boolean): void {
    this.gens.set(topic, (this.gens.get(topic) ?? 0) + 1);
    for (const fn of this.listeners.get(topic) ?? []) {
      try {
        fn(key, local);
      } catch (err) {
        // A listener's failure must not keep the others from dropping their caches.
        this.onError?.(err, topic);
      }
    }
  }

  subscribe(topic: Topic, fn: ChangeListener): void {
    const list = this.listeners.get(topic);
    if (list) list.push(fn);
    else this.listeners.set(topic, [fn]);
  }

  generation(topic: Topic): number {
    return this.gens.get(topic) ?? 0;
  }

  async close(): Promise<void> {}
}
