// The clients Gatehouse knows: those declared in the config file and those created at run time in the
// store (`gatehouse clients create`). Both have the same shape; secrets are in the store either way.
import { clientSchema, type ClientConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';
import { matchGlob } from '../policy/glob.js';

export interface RegisteredClient extends ClientConfig {
  source: 'config' | 'store';
}

export class ClientRegistry {
  readonly #config: Map<string, RegisteredClient>;
  readonly #store: Store;

  constructor(configClients: ClientConfig[], store: Store) {
    this.#config = new Map(configClients.map((c) => [c.id, { ...c, source: 'config' as const }]));
    this.#store = store;
  }

  async get(id: string): Promise<RegisteredClient | undefined> {
    const fromConfig = this.#config.get(id);
    if (fromConfig) return fromConfig;
    const rec = await this.#store.getClient(id);
    if (!rec) return undefined;
    const parsed = clientSchema.safeParse(rec.metadata);
    return parsed.success ? { ...parsed.data, source: 'store' } : undefined;
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
