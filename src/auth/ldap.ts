// LDAP / Active Directory: who a directory user is, which directory groups they belong to, and
// whether they are system admins. Login is passport-ldapauth's search-bind-then-user-bind (service
// account finds the entry, then a bind as that entry checks the password); everything else (group
// resolution, user and group search, ping) runs on ldapts with paged searches.
//
// Connections are short-lived: each operation opens its own, and closes it before returning, so
// nothing is left open between requests and a dead server costs no stale pool.
//
// Groups. The user's membership attribute (memberOf) lists group DNs. Only groups below
// groupBaseDn that match groupFilter count; they are confirmed with one search per 100 DNs (an OR
// of their RDNs, results matched back by DN), so a user in 300 groups costs 3 searches, not 300.
// With nestedGroups, Active Directory answers the whole transitive set in one search with the
// in-chain matching rule; other servers (OpenLDAP) are walked breadth-first through the groups' own
// memberOf, one batched level at a time, at most MAX_NESTING levels deep, never visiting a group
// twice (membership cycles terminate). Walking stays inside groupBaseDn + groupFilter.
import fs from 'node:fs';
import tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import LdapStrategy from 'passport-ldapauth';
import { Client, InvalidCredentialsError, NoSuchObjectError, type Entry } from 'ldapts';
import type { LdapConfig } from '../config/index.ts';
import type { Log } from '../http/logger.ts';
import type { DirectoryGroup, DirectoryUser } from '../lib/directory.ts';
import { escapeFilterValue, formatDn, isAttributeName, isDnUnder, normalizeDn, parseDn, rdnFilter, wrapFilter, type Rdn } from '../lib/ldap-syntax.ts';

export type { DirectoryGroup, DirectoryUser } from '../lib/directory.ts';

/** The directory cannot answer: unreachable, TLS failure, timeout, or Berth's LDAP settings are wrong. */
export class LdapUnavailableError extends Error {
  readonly status = 503;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LdapUnavailableError';
  }
}

/** Active Directory announces itself in the rootDSE with this capability (LDAP_CAP_ACTIVE_DIRECTORY_OID). */
const AD_CAPABILITY = '1.2.840.113556.1.4.800';
/** LDAP_MATCHING_RULE_IN_CHAIN: AD evaluates `member` transitively. OpenLDAP does not know it. */
const IN_CHAIN = '1.2.840.113556.1.4.1941';
/** Entries per page; OpenLDAP refuses pages above its size.pr limit, AD caps them at 1000. */
const PAGE_SIZE = 100;
/** Group DNs confirmed by one search (an OR of this many RDN terms). */
const BATCH = 100;
/** Batched searches in flight at once on one connection. */
const PARALLEL = 4;
/** Nesting levels followed above the user's direct groups. */
export const MAX_NESTING = 10;
/** After a failed login, the service account is re-checked at most this often. */
const SERVICE_CHECK_MS = 60_000;
/** Longest login name we send to the directory. */
const MAX_USERNAME = 256;

type LoginOutcome = { kind: 'ok'; user: Record<string, unknown> } | { kind: 'fail'; message: string } | { kind: 'error'; err: unknown };

export class LdapDirectory {
  private readonly log: Log;
  private adDialect?: Promise<boolean>;
  private serviceCheckedAt = 0;
  private readonly open = new Set<Client>();
  private readonly caCache = new Map<string, string>();

  constructor(
    private readonly config: LdapConfig,
    log: Log,
  ) {
    this.log = log.child({ component: 'ldap' });
    if (!isAttributeName(config.uid)) throw new LdapUnavailableError(`invalid uid attribute "${config.uid}"`);
    if (!isAttributeName(config.groupAttributeName)) throw new LdapUnavailableError(`invalid group attribute name "${config.groupAttributeName}"`);
    if (!isAttributeName(config.groupMembershipAttribute)) throw new LdapUnavailableError(`invalid group membership attribute "${config.groupMembershipAttribute}"`);
    if (config.caFile) this.readCa(config.caFile);
  }

  /**
   * Checks a login: the service account finds the user (uid attribute = username, AND the user
   * filter), then a bind as that DN checks the password. Null for an unknown user, a wrong or empty
   * password, or a name that matches several entries — the caller cannot tell which. Throws
   * LdapUnavailableError when the directory cannot answer or the service account is refused.
   */
  async authenticate(username: string, password: string): Promise<DirectoryUser | null> {
    // An empty password would be an unauthenticated bind, which servers accept as anonymous.
    if (!username || !password || username.length > MAX_USERNAME) return null;
    // ldapauth-fork escapes `*`, `(`, `)` and then escapes the backslashes of those escapes again,
    // so such names can never match (safe, but wrong). No real login name contains them: refuse
    // them here without asking the server.
    if (/[*()\0]/.test(username)) return null;
    const cfg = this.config;
    const outcome = await this.passportLogin(cfg, username, password);
    if (outcome.kind === 'error') {
      const err = outcome.err;
      if (typeof err === 'string' && /unexpected number of matches/.test(err)) {
        this.log.warn({ username }, 'ldap login name matches several entries');
        return null;
      }
      throw this.unavailable(err, cfg);
    }
    if (outcome.kind === 'fail') {
      if (outcome.message === 'Bad search base') throw new LdapUnavailableError(`LDAP base DN "${cfg.baseDn}" does not exist`);
      // A refused service account looks like a refused user to passport-ldapauth: tell them apart.
      await this.checkServiceAccount(cfg);
      this.log.debug({ username }, 'ldap login refused');
      return null;
    }
    const entry = outcome.user;
    const dn = String(entry.dn ?? '');
    const memberOf = values(entry, cfg.groupMembershipAttribute);
    if (!cfg.groupBaseDn && !(cfg.nestedGroups && cfg.groupAdminDn)) {
      // Nothing to confirm with the server: the admin flag is read from the entry itself.
      return { ...profile(cfg, entry, dn, username), groups: [], admin: !!cfg.groupAdminDn && memberOf.map(normalizeDn).includes(normalizeDn(cfg.groupAdminDn)) };
    }
    return this.withService(cfg, async (c) => {
      const groups = await this.resolveGroups(c, cfg, dn, memberOf);
      return { ...profile(cfg, entry, dn, username), ...groups };
    });
  }

  /** Looks a user up with the service account alone (no password): import, and refreshing groups. */
  async findUser(username: string): Promise<DirectoryUser | null> {
    if (!username || username.length > MAX_USERNAME) return null;
    const cfg = this.config;
    return this.withService(cfg, async (c) => {
      const filter = and(wrapFilter(cfg.filter), `(${cfg.uid}=${escapeFilterValue(username)})`);
      const res = await c.search(cfg.baseDn, { scope: cfg.scope, filter, attributes: userAttributes(cfg), sizeLimit: 2 });
      if (res.searchEntries.length !== 1) {
        if (res.searchEntries.length > 1) this.log.warn({ username }, 'ldap login name matches several entries');
        return null;
      }
      const entry = res.searchEntries[0]!;
      const groups = await this.resolveGroups(c, cfg, entry.dn, values(entry, cfg.groupMembershipAttribute));
      return { ...profile(cfg, entry, entry.dn, username), ...groups };
    });
  }

  /** Users whose uid attribute, cn or mail contains `query` (escaped; empty query lists everyone), sorted by username. */
  async searchUsers(query: string, limit = 50): Promise<Omit<DirectoryUser, 'groups' | 'admin'>[]> {
    const cfg = this.config;
    const q = escapeFilterValue(query.trim());
    const match = q ? `(|(${cfg.uid}=*${q}*)(cn=*${q}*)(mail=*${q}*))` : `(${cfg.uid}=*)`;
    return this.withService(cfg, async (c) => {
      const entries = await pagedSearch(c, cfg.baseDn, { scope: cfg.scope, filter: and(wrapFilter(cfg.filter), match), attributes: userAttributes(cfg) }, limit);
      return entries
        .map((e) => profile(cfg, e, e.dn, values(e, cfg.uid)[0] ?? ''))
        .filter((u) => u.username)
        .sort((a, b) => a.username.localeCompare(b.username));
    });
  }

  /**
   * Groups below groupBaseDn matching groupFilter: by exact DN when `query` is a DN (Harbor's
   * "group name or DN"), otherwise those whose name attribute contains `query`. Empty when
   * groupBaseDn is not set.
   */
  async searchGroups(query: string, limit = 50): Promise<DirectoryGroup[]> {
    const cfg = this.config;
    if (!cfg.groupBaseDn) return [];
    const nameAttr = cfg.groupAttributeName;
    const groupFilter = wrapFilter(cfg.groupFilter);
    const q = query.trim();
    let asDn: Rdn[] | undefined;
    if (q.includes('=')) {
      try {
        asDn = parseDn(q);
      } catch {
        asDn = undefined;
      }
    }
    return this.withService(cfg, async (c) => {
      let entries: Entry[];
      if (asDn) {
        if (!asDn.length || !isDnUnder(asDn, parseDn(cfg.groupBaseDn))) return [];
        try {
          entries = (await c.search(q, { scope: 'base', filter: groupFilter || '(objectClass=*)', attributes: [nameAttr] })).searchEntries;
        } catch (e) {
          if (e instanceof NoSuchObjectError) return [];
          throw e;
        }
      } else {
        const match = q ? `(${nameAttr}=*${escapeFilterValue(q)}*)` : `(${nameAttr}=*)`;
        entries = await pagedSearch(c, cfg.groupBaseDn, { scope: 'sub', filter: and(groupFilter, match), attributes: [nameAttr] }, limit);
      }
      return entries
        .map((e) => ({ dn: e.dn, name: values(e, nameAttr)[0] ?? '' }))
        .sort((a, b) => a.name.localeCompare(b.name) || a.dn.localeCompare(b.dn));
    });
  }

  /** Tests a configuration (this one, with `overrides`): connect, bind as the search DN, find the base DNs. Never throws. */
  async ping(overrides: Partial<LdapConfig> = {}): Promise<{ ok: boolean; message: string }> {
    // An override left undefined (a form that did not resend the password) keeps the current value.
    const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<LdapConfig>;
    const cfg: LdapConfig = { ...this.config, ...defined };
    if (!/^ldaps?:\/\/[^\s/]+\/?$/.test(cfg.url)) return { ok: false, message: `the URL must be ldap://host[:port] or ldaps://host[:port], got "${cfg.url}"` };
    try {
      return await this.withService(cfg, async (c) => {
        // Without a service account nothing has touched the server yet: read the rootDSE, which
        // every LDAP server answers, so a dead or wrong URL fails here.
        await c.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['supportedLDAPVersion'] });
        for (const [what, dn] of [['base DN', cfg.baseDn], ['group base DN', cfg.groupBaseDn]] as const) {
          if (!dn) continue;
          try {
            await c.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: ['1.1'] });
          } catch (e) {
            if (e instanceof NoSuchObjectError) return { ok: false, message: `${what} "${dn}" not found` };
            throw e;
          }
        }
        return { ok: true, message: `connected to ${cfg.url} and bound as ${cfg.searchDn || 'anonymous'}` };
      });
    } catch (e) {
      return { ok: false, message: e instanceof LdapUnavailableError ? e.message : String(e) };
    }
  }

  /** Closes connections still open (operations in flight then fail). */
  async close(): Promise<void> {
    const clients = [...this.open];
    this.open.clear();
    await Promise.all(clients.map((c) => c.unbind().catch(() => undefined)));
  }

  // --- login through passport-ldapauth ---

  /** Drives passport-ldapauth's Strategy without Express: success, fail and error become an outcome. */
  private passportLogin(cfg: LdapConfig, username: string, password: string): Promise<LoginOutcome> {
    const ms = cfg.timeoutSeconds * 1000;
    const strategy = new LdapStrategy({
      server: {
        url: cfg.url,
        // Without a search DN ldapauth-fork searches anonymously.
        bindDN: cfg.searchDn || undefined,
        bindCredentials: cfg.searchPassword,
        searchBase: cfg.baseDn,
        searchScope: cfg.scope,
        // {{username}} is escaped by ldapauth-fork.
        searchFilter: and(wrapFilter(cfg.filter), `(${cfg.uid}={{username}})`),
        searchAttributes: [...userAttributes(cfg), 'dn'],
        tlsOptions: this.tlsOptions(cfg),
        timeout: ms,
        connectTimeout: ms,
        reconnect: false,
      },
      credentialsLookup: () => ({ username, password }),
    });
    return new Promise<LoginOutcome>((resolve) => {
      let settled = false;
      const settle = (o: LoginOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(o);
      };
      // connect + search + bind, each bounded by the timeout; this is only a backstop.
      const timer = setTimeout(() => settle({ kind: 'error', err: new Error(`no answer from ${cfg.url} in ${3 * cfg.timeoutSeconds} s`) }), 3 * ms + 1000);
      const s = Object.create(strategy) as LdapStrategy & {
        success(user: Record<string, unknown>): void;
        fail(info?: { message?: string }): void;
        error(err: unknown): void;
      };
      s.success = (user) => settle({ kind: 'ok', user });
      s.fail = (info) => settle({ kind: 'fail', message: info?.message ?? '' });
      s.error = (err) => settle({ kind: 'error', err });
      try {
        s.authenticate({} as IncomingMessage);
      } catch (err) {
        settle({ kind: 'error', err });
      }
    });
  }

  private async checkServiceAccount(cfg: LdapConfig): Promise<void> {
    if (Date.now() - this.serviceCheckedAt < SERVICE_CHECK_MS) return;
    await this.withService(cfg, async () => undefined);
    this.serviceCheckedAt = Date.now();
  }

  // --- groups ---

  private async resolveGroups(c: Client, cfg: LdapConfig, userDn: string, memberOf: string[]): Promise<{ groups: string[]; admin: boolean }> {
    const adminDn = cfg.groupAdminDn ? normalizeDn(cfg.groupAdminDn) : '';
    const direct = new Set(memberOf.map(normalizeDn));
    let groups = new Set<string>();
    if (cfg.groupBaseDn) {
      groups = cfg.nestedGroups && (await this.isActiveDirectory(c)) ? await this.inChainGroups(c, cfg, userDn) : await this.walkGroups(c, cfg, memberOf, cfg.nestedGroups ? MAX_NESTING : 0);
    }
    let admin = !!adminDn && (direct.has(adminDn) || groups.has(adminDn));
    if (!admin && adminDn && cfg.nestedGroups && (await this.isActiveDirectory(c))) {
      // The admin group may live outside the group base DN: ask AD about it alone.
      const r = await c.search(cfg.groupAdminDn, { scope: 'base', filter: `(member:${IN_CHAIN}:=${escapeFilterValue(userDn)})`, attributes: ['1.1'] }).catch((e: unknown) => {
        if (e instanceof NoSuchObjectError) return { searchEntries: [] };
        throw e;
      });
      admin = r.searchEntries.length > 0;
    }
    return { groups: [...groups].sort(), admin };
  }

  /** AD: every group below the base that contains the user, transitively, in one (paged) search. */
  private async inChainGroups(c: Client, cfg: LdapConfig, userDn: string): Promise<Set<string>> {
    const filter = and(wrapFilter(cfg.groupFilter), `(member:${IN_CHAIN}:=${escapeFilterValue(userDn)})`);
    const entries = await pagedSearch(c, cfg.groupBaseDn, { scope: 'sub', filter, attributes: ['1.1'] });
    return new Set(entries.map((e) => normalizeDn(e.dn)));
  }

  /** Confirms the user's groups level by level (breadth-first), following the groups' own membership attribute up to `maxDepth` levels. */
  private async walkGroups(c: Client, cfg: LdapConfig, memberOf: string[], maxDepth: number): Promise<Set<string>> {
    const base = parseDn(cfg.groupBaseDn);
    const seen = new Set<string>();
    const found = new Set<string>();
    let frontier = memberOf;
    for (let depth = 0; depth <= maxDepth && frontier.length; depth++) {
      const wanted = new Map<string, Rdn[]>();
      for (const raw of frontier) {
        let rdns: Rdn[];
        try {
          rdns = parseDn(raw);
        } catch {
          continue;
        }
        if (rdns.length <= base.length || !isDnUnder(rdns, base)) continue;
        const key = formatDn(rdns);
        if (seen.has(key)) continue; // the cycle guard
        seen.add(key);
        wanted.set(key, rdns);
      }
      if (!wanted.size) break;
      const confirmed = await this.confirmGroups(c, cfg, wanted, depth < maxDepth);
      frontier = [];
      for (const [key, entry] of confirmed) {
        found.add(key);
        frontier.push(...values(entry, cfg.groupMembershipAttribute));
      }
    }
    return found;
  }

  /** Which of `wanted` (normalised DN → parsed) exist below the group base and match the group filter; a few searches for any number of DNs. */
  private async confirmGroups(c: Client, cfg: LdapConfig, wanted: Map<string, Rdn[]>, withParents: boolean): Promise<Map<string, Entry>> {
    const terms = [...new Set([...wanted.values()].map((rdns) => rdnFilter(rdns[0]!)))];
    const batches: string[][] = [];
    for (let i = 0; i < terms.length; i += BATCH) batches.push(terms.slice(i, i + BATCH));
    const groupFilter = wrapFilter(cfg.groupFilter);
    const attributes = withParents ? [cfg.groupMembershipAttribute] : ['1.1'];
    const out = new Map<string, Entry>();
    await runLimited(batches, PARALLEL, async (batch) => {
      const match = batch.length === 1 ? batch[0]! : `(|${batch.join('')})`;
      const entries = await pagedSearch(c, cfg.groupBaseDn, { scope: 'sub', filter: and(groupFilter, match), attributes });
      for (const e of entries) {
        const key = normalizeDn(e.dn);
        // The same RDN may exist elsewhere under the base: keep only the DNs asked for.
        if (wanted.has(key)) out.set(key, e);
      }
    });
    return out;
  }

  private isActiveDirectory(c: Client): Promise<boolean> {
    if (!this.adDialect) {
      const p = c
        .search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['supportedCapabilities'] })
        .then((r) => {
          const caps = r.searchEntries[0] ? values(r.searchEntries[0], 'supportedCapabilities') : [];
          const ad = caps.includes(AD_CAPABILITY);
          this.log.debug({ ad }, 'ldap server dialect detected');
          return ad;
        });
      // Forget a failed detection so the next call retries.
      p.catch(() => (this.adDialect = undefined));
      this.adDialect = p;
    }
    return this.adDialect;
  }

  // --- connections ---

  /** Opens a connection, binds as the service account, runs `fn`, and always closes it. */
  private async withService<T>(cfg: LdapConfig, fn: (c: Client) => Promise<T>): Promise<T> {
    const ms = cfg.timeoutSeconds * 1000;
    if (cfg.searchDn && !cfg.searchPassword) throw new LdapUnavailableError('the LDAP search DN is set but its password is empty');
    const client = new Client({ url: cfg.url, timeout: ms, connectTimeout: ms, tlsOptions: this.tlsOptions(cfg), strictDN: false });
    this.open.add(client);
    try {
      if (cfg.searchDn) await client.bind(cfg.searchDn, cfg.searchPassword);
      return await fn(client);
    } catch (e) {
      throw this.unavailable(e, cfg);
    } finally {
      this.open.delete(client);
      await client.unbind().catch(() => undefined);
    }
  }

  private tlsOptions(cfg: LdapConfig): tls.ConnectionOptions | undefined {
    if (!/^ldaps:/i.test(cfg.url)) return undefined;
    const opts: tls.ConnectionOptions = { rejectUnauthorized: cfg.verifyCert };
    // Add the CA to the system roots rather than replacing them.
    if (cfg.caFile) opts.ca = [...tls.rootCertificates, this.readCa(cfg.caFile)];
    return opts;
  }

  private readCa(file: string): string {
    let pem = this.caCache.get(file);
    if (pem === undefined) {
      try {
        pem = fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw new LdapUnavailableError(`cannot read the LDAP CA file "${file}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
      this.caCache.set(file, pem);
    }
    return pem;
  }

  /** Turns any failure into LdapUnavailableError with a message fit for logs and the ping answer (no secrets). */
  private unavailable(e: unknown, cfg: LdapConfig): LdapUnavailableError {
    if (e instanceof LdapUnavailableError) return e;
    let message: string;
    if (e instanceof InvalidCredentialsError || (e instanceof Error && e.name === 'InvalidCredentialsError')) {
      message = `the LDAP server refused the search DN "${cfg.searchDn}" (invalid credentials)`;
    } else if (e instanceof NoSuchObjectError) {
      message = `LDAP entry not found: ${e.message}`;
    } else if (e instanceof Error) {
      const code = (e as NodeJS.ErrnoException).code;
      message = `LDAP server ${cfg.url} unavailable: ${code && !e.message.includes(code) ? `${code} ` : ''}${e.message}`;
    } else {
      message = `LDAP server ${cfg.url} unavailable: ${String(e)}`;
    }
    this.log.warn({ url: cfg.url, error: message }, 'ldap unavailable');
    return new LdapUnavailableError(message, { cause: e });
  }
}

// --- helpers ---

function and(...filters: string[]): string {
  const f = filters.filter(Boolean);
  return f.length === 1 ? f[0]! : `(&${f.join('')})`;
}

function userAttributes(cfg: LdapConfig): string[] {
  return [...new Set([cfg.uid, 'cn', 'displayName', 'mail', 'userPrincipalName', cfg.groupMembershipAttribute])];
}

/** An attribute's values from an ldapts or ldapjs entry, matched case-insensitively. */
function values(entry: Record<string, unknown>, name: string): string[] {
  const lower = name.toLowerCase();
  const key = Object.keys(entry).find((k) => k.toLowerCase() === lower);
  const v = key === undefined ? undefined : entry[key];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
}

function profile(cfg: LdapConfig, entry: Record<string, unknown>, dn: string, login: string): Omit<DirectoryUser, 'groups' | 'admin'> {
  const uids = values(entry, cfg.uid);
  const username = uids.find((u) => u.toLowerCase() === login.toLowerCase()) ?? uids[0] ?? login;
  const email = values(entry, 'mail')[0] ?? (values(entry, 'userPrincipalName')[0] || '');
  const realname = values(entry, 'displayName')[0] || values(entry, 'cn')[0] || username;
  return { dn, username, email, realname };
}

/** A paged search; stops asking for pages once `limit` entries are in. */
async function pagedSearch(c: Client, base: string, opts: { scope: LdapConfig['scope']; filter: string; attributes: string[] }, limit = 0): Promise<Entry[]> {
  const out: Entry[] = [];
  const pageSize = limit > 0 ? Math.min(limit, PAGE_SIZE) : PAGE_SIZE;
  const pages = c.searchPaginated(base, { ...opts, paged: { pageSize } });
  for await (const page of pages) {
    out.push(...page.searchEntries);
    // Leaving the loop ends the generator: no further pages are requested.
    if (limit > 0 && out.length >= limit) break;
  }
  return limit > 0 ? out.slice(0, limit) : out;
}

async function runLimited<T>(items: T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}
