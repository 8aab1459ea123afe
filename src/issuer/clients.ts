// The clients Gatehouse knows: those declared in the config file and those created at run time in the
// store (`gatehouse clients create`). Both have the same shape; secrets are in the store either way.
import { LRUCache } from 'lru-cache';
import { clientSchema, type ClientConfig } from '../config/schema.js';
import type { Change, SecretRecord, Store } from '../store/store.js';
import { matchGlob } from '../policy/glob.js';
import { checkSecret, type SecretCheck } from './client-secrets.js';

export interface RegisteredClient extends ClientConfig {
  source: 'config' | 'store';
}

/** Most store clients (and secret lists) kept parsed in memory. */
const CACHE_MAX = 10_000;
/** A safety net: a cached entry is re-read after this long even if no change was heard. */
const CACHE_TTL_MS = 60_000;

/**
 * Store clients and secret lists are read on every token request, so they are cached (parsed) and
 * dropped when the change feed says `clients` or `secrets` changed. Only what exists is cached, so an
 * unknown id costs a store read each time rather than filling the cache.
 */
export class ClientRegistry {
  readonly #config: Map<string, RegisteredClient>;
  readonly #store: Store;
  readonly #clients = new LRUCache<string, RegisteredClient>({ max: CACHE_MAX, ttl: CACHE_TTL_MS });
  readonly #secrets = new LRUCache<string, SecretRecord[]>({ max: CACHE_MAX, ttl: CACHE_TTL_MS });
  /** Bumped on every change heard: a read that started before it must not fill the cache after it. */
  #generation = 0;
  #unwatch: (() => void) | undefined;

  constructor(configClients: ClientConfig[], store: Store) {
    this.#config = new Map(configClients.map((c) => [c.id, { ...c, source: 'config' as const }]));
    this.#store = store;
  }

  async get(id: string): Promise<RegisteredClient | undefined> {
    const fromConfig = this.#config.get(id);
    if (fromConfig) return fromConfig;
    const cached = this.#clients.get(id);
    if (cached) return cached;
    const generation = this.#watch();
    const rec = await this.#store.getClient(id);
    if (!rec) return undefined;
    const parsed = clientSchema.safeParse(rec.metadata);
    if (!parsed.success) return undefined;
    const client: RegisteredClient = { ...parsed.data, source: 'store' };
    if (generation === this.#generation) this.#clients.set(id, client);
    return client;
  }

  /**
   * Checks a presented secret for `clientId`. Only a success is taken from the cache: any refusal is
   * checked again against the store, so a secret created a moment ago by another process works at once.
   * A secret expired by another process keeps working until that change is heard (the change feed's
   * delay, 200 ms by default on SQLite), as revocations from other processes do.
   */
  async checkSecret(clientId: string, presented: string, now: number): Promise<SecretCheck> {
    const cached = this.#secrets.get(clientId);
    if (cached) {
      const result = checkSecret(presented, cached, now);
      if (result.ok) return result;
    }
    const generation = this.#watch();
    const secrets = await this.#store.listSecrets(clientId);
    if (generation === this.#generation) this.#secrets.set(clientId, secrets);
    return checkSecret(presented, secrets, now);
  }

  /** Stops listening to the change feed and empties the caches. */
  close(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#forgetAll();
  }

  /** Subscribes on first use (so CLI commands that only list never watch); returns the generation. */
  #watch(): number {
    this.#unwatch ??= this.#store.watchChanges((c) => this.#onChange(c));
    return this.#generation;
  }

  #onChange(c: Change): void {
    if (c.topic !== 'clients' && c.topic !== 'secrets') return;
    this.#generation += 1;
    const cache = c.topic === 'clients' ? this.#clients : this.#secrets;
    // A change names the client it is about; one that names none may be about any.
    if (c.ref === null) cache.clear();
    else cache.delete(c.ref);
  }

  #forgetAll(): void {
    this.#generation += 1;
    this.#clients.clear();
    this.#secrets.clear();
  }

  configClients(): RegisteredClient[] {
    return [...this.#config.values()];
  }

  async list(): Promise<RegisteredClient[]> {
    const out = this.configClients();
    for (const rec of await this.#store.listClients()) {
      if (this.#config.has(rec.id)) continue;
      const parsed = clientSchema.safeParse(rec.metadata);
      if (parsed.success) out.push({ ...parsed.data, source: 'store' });
    }
    return out;
  }
}

/** The first allowed-audience pattern that admits `audience`, or undefined. */
export function audienceAllowed(client: ClientConfig, audience: string): string | undefined {
  return client.allowed_audiences.find((p) => matchGlob(p, audience));
}

/** oidc-provider metadata for a Gatehouse client (secrets are checked by Gatehouse, not the library). */
export function providerMetadata(client: ClientConfig, idTokenAlg: string): Record<string, unknown> {
  return {
    client_id: client.id,
    // The library wants a value for secret-based auth; the real check is Gatehouse's hashed comparison.
    client_secret: 'checked-by-gatehouse',
    client_name: client.name ?? client.id,
    grant_types: client.grant_types,
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: idTokenAlg,
  };
}
