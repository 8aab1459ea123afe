// oidc-provider's storage adapter on Gatehouse's Store: one class per model name, built by a factory so
// every provider instance (they are swapped on key rotation and reload) shares the same storage.
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { OidcPayload, Store } from '../store/store.js';

export type AdapterConstructor = new (model: string) => Adapter;

export interface AdapterHooks {
  /** Clients created at run time (`gatehouse clients create`), looked up when no static client matches. */
  findClient?: (id: string) => Promise<AdapterPayload | undefined>;
  now?: () => number;
}

export function createAdapterClass(store: Store, hooks: AdapterHooks = {}): AdapterConstructor {
  const now = hooks.now ?? Date.now;
  return class StoreAdapter implements Adapter {
    readonly #model: string;

    constructor(model: string) {
      this.#model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      const expiresAt = expiresIn ? now() + expiresIn * 1000 : null;
      await store.oidcUpsert(this.#model, id, payload as OidcPayload, expiresAt);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.#model === 'Client') return hooks.findClient?.(id);
      return (await store.oidcFind(this.#model, id)) as AdapterPayload | undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return (await store.oidcFindByUserCode(this.#model, userCode)) as AdapterPayload | undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return (await store.oidcFindByUid(this.#model, uid)) as AdapterPayload | undefined;
    }

    async consume(id: string): Promise<void> {
      await store.oidcConsume(this.#model, id, Math.floor(now() / 1000));
    }

    async destroy(id: string): Promise<void> {
      await store.oidcDestroy(this.#model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await store.oidcRevokeByGrantId(grantId);
    }
  };
}
