// Registry endpoints: the other registries Berth pulls from (proxy cache) and replicates to and
// from. An endpoint is a URL, a type (which only changes how names and hosts map: docker-hub keeps
// official images under library/), TLS settings, and a credential whose secret is sealed with the
// secret box before it reaches the store and opened only to build an upstream client. No answer
// and no log line carries the secret; answers say "*****" where one is set.
//
// Clients are cached per endpoint (their token caches with them) and rebuilt when the row changed,
// so a change saved on another node applies at the next use here.
import { X509Certificate } from 'node:crypto';
import type { RegistryEndpointFields, RegistryEndpointFilter, RegistryEndpointRow, RegistryEndpointStore } from '../db/registry-endpoint-store.ts';
import { AppError } from '../lib/errors.ts';
import { SecretBox, SecretBoxError } from '../lib/secret-box.ts';
import { REGISTRY_TYPES, UpstreamClient, type RegistryType } from '../upstream/client.ts';
import { UpstreamError } from '../upstream/errors.ts';

/** What answers show instead of a stored secret (Harbor's placeholder; sent back unchanged, it keeps the secret). */
export const SECRET_PLACEHOLDER = '*****';
/** The secret box context of the credential's secret. */
const SECRET_CONTEXT = 'registry.access_secret';
const MAX_CA_BYTES = 64 * 1024;

export interface RegistryCredentialInput {
  type?: string | null;
  access_key?: string | null;
  access_secret?: string | null;
}

/** Fields of a create, an update or a ping, as Harbor's Registry/RegistryUpdate/RegistryPing name them (flattened). */
export interface RegistryInput {
  name?: string | null;
  type?: string | null;
  url?: string | null;
  description?: string | null;
  credential_type?: string | null;
  access_key?: string | null;
  access_secret?: string | null;
  insecure?: boolean | null;
  ca_certificate?: string | null;
}

export interface RegistryView {
  id: number;
  name: string;
  type: RegistryType;
  url: string;
  description: string;
  credential: { type: string; accessKey: string; hasSecret: boolean };
  insecure: boolean;
  caCertificate: string | null;
  status: 'healthy' | 'unhealthy' | 'unknown';
  createdAt: Date;
  updatedAt: Date;
}

/** What Harbor's /replication/adapterinfos says about the types whose endpoints are fixed or usual. */
export const ADAPTER_INFO: Partial<Record<RegistryType, { endpointType: string; endpoints: { key: string; value: string }[] }>> = {
  'docker-hub': { endpointType: 'EndpointPatternTypeFix', endpoints: [{ key: 'hub.docker.com', value: 'https://hub.docker.com' }] },
  'github-ghcr': { endpointType: 'EndpointPatternTypeFix', endpoints: [{ key: 'ghcr.io', value: 'https://ghcr.io' }] },
  quay: { endpointType: 'EndpointPatternTypeStandard', endpoints: [{ key: 'quay.io', value: 'https://quay.io' }] },
};

const DEFAULT_URL: Partial<Record<RegistryType, string>> = { 'docker-hub': 'https://hub.docker.com', 'github-ghcr': 'https://ghcr.io' };

export interface RegistriesDeps {
  store: RegistryEndpointStore;
  box: SecretBox;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  /** Audit of changes (resource type "registry"). */
  onChange?: (e: { username: string; operation: string; resource: string }) => void;
  /** Limits of the clients built for endpoints (ms). */
  timeoutMs?: number;
  idleTimeoutMs?: number;
}

function bad(message: string): AppError {
  return new AppError('BAD_REQUEST', undefined, { message });
}

function typeOf(t: string | null | undefined): RegistryType {
  if (!t) throw bad('type: required (one of ' + REGISTRY_TYPES.join(', ') + ')');
  if (!(REGISTRY_TYPES as readonly string[]).includes(t)) throw bad(`type: "${t.slice(0, 64)}" is not supported (one of ${REGISTRY_TYPES.join(', ')})`);
  return t as RegistryType;
}

function urlOf(u: string, type: RegistryType): string {
  const url = u.trim().replace(/\/+$/, '');
  try {
    UpstreamClient.baseUrl(url, type);
  } catch (e) {
    throw bad(`url: ${(e as Error).message}`);
  }
  // The URL is shown in answers and log lines: no query or fragment (where tokens are put) is kept.
  if (/[?#]/.test(url)) throw bad('url: the registry URL must not have a query or a fragment');
  return url;
}

function caOf(pem: string | null | undefined): string | null {
  if (pem === undefined || pem === null || pem.trim() === '') return null;
  if (pem.length > MAX_CA_BYTES) throw bad(`ca_certificate: longer than ${MAX_CA_BYTES} bytes`);
  try {
    new X509Certificate(pem);
  } catch {
    throw bad('ca_certificate: not a PEM-encoded X.509 certificate');
  }
  return pem.trim() + '\n';
}

/** Whether the input carries a secret of its own (not absent, not the placeholder). */
function givesSecret(input: RegistryInput): boolean {
  return typeof input.access_secret === 'string' && input.access_secret !== '' && input.access_secret !== SECRET_PLACEHOLDER;
}

/**
 * Refuses to send a saved secret to another host: whoever changes where the endpoint points (or
 * pings it elsewhere) gives the secret again, so a saved secret can only go where it was meant to
 * go (a system admin cannot read it out by pointing the endpoint at a server of theirs).
 */
function keepSecretHome(current: RegistryEndpointRow, url: string, type: RegistryType, input: RegistryInput, credentialType: string): void {
  if (credentialType !== 'basic' || current.credentialType !== 'basic' || givesSecret(input)) return;
  const origin = (u: string, t: RegistryType) => UpstreamClient.baseUrl(u, t).origin;
  if (origin(url, type) !== origin(current.url, current.type as RegistryType)) {
    throw bad('access_secret: required again to use the saved credential with another registry URL (the saved secret is only sent where it was saved for)');
  }
}

function nameOf(n: string): string {
  const name = n.trim();
  if (!name) throw bad('name: required');
  if (name.length > 255) throw bad('name: at most 255 characters');
  return name;
}

export class RegistriesService {
  private readonly clients = new Map<number, { updatedAt: number; client: UpstreamClient }>();

  constructor(private readonly deps: RegistriesDeps) {}

  static types(): readonly RegistryType[] {
    return [...REGISTRY_TYPES].sort();
  }

  private view(r: RegistryEndpointRow): RegistryView {
    return {
      id: r.id,
      name: r.name,
      type: r.type as RegistryType,
      url: r.url,
      description: r.description,
      credential: { type: r.credentialType, accessKey: r.accessKey, hasSecret: !!r.accessSecret },
      insecure: r.insecure,
      caCertificate: r.caCertificate,
      status: r.status === 'healthy' || r.status === 'unhealthy' ? r.status : 'unknown',
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    };
  }

  async list(filter: RegistryEndpointFilter, page: number, pageSize: number, sort?: string): Promise<{ total: number; items: RegistryView[] }> {
    const s = (sort ?? '').trim();
    const desc = s.startsWith('-');
    const field = { name: 'name', creation_time: 'createdAt', update_time: 'updatedAt', id: 'id' }[desc ? s.slice(1) : s] as 'id' | 'name' | 'createdAt' | 'updatedAt' | undefined;
    if (s && !field) throw bad(`sort: "${s.slice(0, 64)}" is not supported (name, creation_time, update_time, id; "-" for descending)`);
    const { total, items } = await this.deps.store.list(filter, page, pageSize, field ? { field, desc } : undefined);
    return { total, items: items.map((r) => this.view(r)) };
  }

  private async row(id: number): Promise<RegistryEndpointRow> {
    // An id no row can have (the column is 32-bit) names none, without asking the database.
    const r = Number.isSafeInteger(id) && id >= 1 && id <= 2_147_483_647 ? await this.deps.store.get(id) : null;
    if (!r) throw new AppError('NOT_FOUND', undefined, { message: `registry ${id} not found` });
    return r;
  }

  async get(id: number): Promise<RegistryView> {
    return this.view(await this.row(id));
  }

  /** The credential fields of a row from the input (`current` for an update: unchanged what is not given). */
  private credentialOf(input: RegistryInput, current?: RegistryEndpointRow): Pick<RegistryEndpointFields, 'credentialType' | 'accessKey' | 'accessSecret'> {
    let type = input.credential_type ?? undefined;
    const key = input.access_key ?? undefined;
    const secret = input.access_secret ?? undefined;
    if (type === undefined && key !== undefined) type = key ? 'basic' : '';
    if (type === undefined) {
      if (!current) return { credentialType: '', accessKey: '', accessSecret: '' };
      type = current.credentialType;
    }
    if (type !== '' && type !== 'basic') throw bad(`credential.type: "${type.slice(0, 32)}" is not supported (basic, or none for anonymous access)`);
    if (type === '') return { credentialType: '', accessKey: '', accessSecret: '' };
    const accessKey = key ?? current?.accessKey ?? '';
    if (!accessKey) throw bad('credential.access_key: required for basic credentials');
    if (accessKey.length > 255) throw bad('credential.access_key: at most 255 characters');
    let accessSecret: string;
    if (secret === undefined || secret === SECRET_PLACEHOLDER) {
      accessSecret = current?.credentialType === 'basic' ? current.accessSecret : '';
      if (!accessSecret) throw bad('credential.access_secret: required for basic credentials');
    } else {
      if (!secret) throw bad('credential.access_secret: required for basic credentials');
      if (secret.length > 4096) throw bad('credential.access_secret: at most 4096 characters');
      accessSecret = this.deps.box.seal(secret, SECRET_CONTEXT);
    }
    return { credentialType: 'basic', accessKey, accessSecret };
  }

  async create(actor: string, input: RegistryInput): Promise<number> {
    const type = typeOf(input.type);
    const url = input.url ? urlOf(input.url, type) : DEFAULT_URL[type];
    if (!url) throw bad('url: required');
    const fields: RegistryEndpointFields = {
      name: nameOf(input.name ?? ''),
      type,
      url,
      description: input.description ?? '',
      ...this.credentialOf(input),
      insecure: input.insecure ?? false,
      caCertificate: caOf(input.ca_certificate),
      status: 'unknown',
    };
    const id = await this.deps.store.create(fields);
    this.deps.onChange?.({ username: actor, operation: 'create', resource: fields.name });
    this.deps.log.info({ registry: fields.name, id, type, url }, 'registry endpoint created');
    return id;
  }

  async update(actor: string, id: number, input: RegistryInput): Promise<void> {
    const current = await this.row(id);
    const type = current.type as RegistryType;
    const fields: Partial<RegistryEndpointFields> = {
      ...(input.name !== undefined && input.name !== null ? { name: nameOf(input.name) } : {}),
      ...(input.description !== undefined && input.description !== null ? { description: input.description } : {}),
      ...(input.url !== undefined && input.url !== null ? { url: urlOf(input.url, type) } : {}),
      ...(input.insecure !== undefined && input.insecure !== null ? { insecure: input.insecure } : {}),
      ...(input.ca_certificate !== undefined && input.ca_certificate !== null ? { caCertificate: caOf(input.ca_certificate) } : {}),
      ...this.credentialOf(input, current),
    };
    if (fields.url !== undefined) keepSecretHome(current, fields.url, type, input, fields.credentialType ?? current.credentialType);
    // What the last ping said no longer holds for another address or credential.
    if (fields.url !== undefined || fields.accessKey !== current.accessKey || fields.accessSecret !== current.accessSecret || fields.insecure !== undefined || fields.caCertificate !== undefined) fields.status = 'unknown';
    if (!(await this.deps.store.update(id, fields))) throw new AppError('NOT_FOUND', undefined, { message: `registry ${id} not found` });
    this.forget(id);
    this.deps.onChange?.({ username: actor, operation: 'update', resource: fields.name ?? current.name });
  }

  async delete(actor: string, id: number): Promise<void> {
    const current = await this.row(id);
    const { deleted, usedBy, policies } = await this.deps.store.delete(id);
    if (usedBy.length) {
      throw new AppError('PRECONDITION', undefined, { message: `registry ${id} is used by proxy cache project${usedBy.length > 1 ? 's' : ''} ${usedBy.join(', ')}: delete ${usedBy.length > 1 ? 'them' : 'it'} first` });
    }
    // As Harbor: an endpoint a replication policy copies from or to stays until the policy goes.
    if (policies.length) {
      throw new AppError('PRECONDITION', undefined, { message: `registry ${id} is used by replication polic${policies.length > 1 ? 'ies' : 'y'} ${policies.join(', ')}: delete ${policies.length > 1 ? 'them' : 'it'} first` });
    }
    if (!deleted) throw new AppError('NOT_FOUND', undefined, { message: `registry ${id} not found` });
    this.forget(id);
    this.deps.onChange?.({ username: actor, operation: 'delete', resource: current.name });
  }

  /**
   * Harbor's ping: a stored endpoint (`id`, its fields overridden by those given; the placeholder
   * secret keeps the stored one) or one described in full. Resolves when the registry answers and
   * accepts the credential; BAD_REQUEST naming the cause otherwise. A stored endpoint pinged as
   * stored gets its status updated.
   */
  async ping(input: RegistryInput & { id?: number | null }): Promise<void> {
    const current = input.id ? await this.row(input.id) : undefined;
    const type = current ? (input.type ? typeOf(input.type) : (current.type as RegistryType)) : typeOf(input.type || 'docker-registry');
    const url = input.url ? urlOf(input.url, type) : (current?.url ?? DEFAULT_URL[type]);
    if (!url) throw bad('url: required (or the id of a saved registry)');
    const cred = this.credentialOf(input, current);
    if (current) keepSecretHome(current, url, type, input, cred.credentialType);
    const asStored = !!current && url === current.url && cred.accessKey === current.accessKey && cred.accessSecret === current.accessSecret && input.insecure == null && input.ca_certificate == null;
    let password = '';
    try {
      if (cred.credentialType === 'basic') password = this.open(cred.accessSecret);
    } catch (e) {
      if (asStored) await this.deps.store.setStatus(current.id, 'unhealthy');
      throw e;
    }
    const client = new UpstreamClient({
      url,
      type,
      credential: cred.credentialType === 'basic' ? { username: cred.accessKey, password } : null,
      insecure: input.insecure ?? current?.insecure ?? false,
      caCertificate: input.ca_certificate != null ? caOf(input.ca_certificate) : (current?.caCertificate ?? null),
      timeoutMs: this.deps.timeoutMs ?? 10_000,
      idleTimeoutMs: this.deps.idleTimeoutMs ?? 10_000,
    });
    try {
      await client.ping();
      if (asStored) await this.deps.store.setStatus(current.id, 'healthy');
    } catch (e) {
      if (!(e instanceof UpstreamError)) throw e;
      if (asStored) await this.deps.store.setStatus(current.id, 'unhealthy');
      this.deps.log.warn({ registry: current?.name, url, kind: e.kind, status: e.status }, 'registry ping failed');
      throw bad(`the registry is unhealthy: ${e.message}`);
    } finally {
      client.close();
    }
  }

  /**
   * Pings every saved endpoint and saves what it said (healthy or unhealthy), as Harbor's regular
   * health check does; app.ts runs it every few minutes, once per cluster. Returns how many were
   * checked.
   */
  async checkHealth(): Promise<number> {
    let n = 0;
    for (let page = 1; ; page++) {
      const { items } = await this.deps.store.list({}, page, 100);
      for (const r of items) {
        n++;
        try {
          await this.ping({ id: r.id });
        } catch (e) {
          // The ping saved the status and logged why; an endpoint deleted meanwhile is no error.
          if (!(e instanceof AppError)) this.deps.log.warn({ registry: r.name, err: (e as Error).message }, 'registry health check failed');
        }
      }
      if (items.length < 100) return n;
    }
  }

  private open(sealed: string): string {
    try {
      return this.deps.box.open(sealed, SECRET_CONTEXT);
    } catch (e) {
      if (e instanceof SecretBoxError) {
        throw new AppError('PRECONDITION', undefined, { message: "the registry's saved secret cannot be decrypted (was BERTH_SECRET_KEY or secret.key replaced?): save the credential again" });
      }
      throw e;
    }
  }

  /**
   * The client of a saved endpoint, for proxy-cache fetches and replication (kept while the row is
   * unchanged, so its tokens are reused). NOT_FOUND when there is no such endpoint.
   */
  async client(id: number): Promise<UpstreamClient> {
    const r = await this.row(id);
    const cached = this.clients.get(id);
    if (cached && cached.updatedAt === r.updatedAt.getTime()) return cached.client;
    cached?.client.close();
    const client = new UpstreamClient({
      url: r.url,
      type: r.type as RegistryType,
      credential: r.credentialType === 'basic' ? { username: r.accessKey, password: this.open(r.accessSecret) } : null,
      insecure: r.insecure,
      caCertificate: r.caCertificate,
      timeoutMs: this.deps.timeoutMs,
      idleTimeoutMs: this.deps.idleTimeoutMs,
    });
    this.clients.set(id, { updatedAt: r.updatedAt.getTime(), client });
    return client;
  }

  private forget(id: number): void {
    this.clients.get(id)?.client.close();
    this.clients.delete(id);
  }

  close(): void {
    for (const c of this.clients.values()) c.client.close();
    this.clients.clear();
  }
}
