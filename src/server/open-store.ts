// The composition root's store choice: the only place that imports a Store implementation.
import type { GatehouseConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';

export async function openStore(config: Pick<GatehouseConfig, 'store'>): Promise<Store> {
  const path = config.store.sqlite?.path ?? 'gatehouse.db';
  const store = new SqliteStore({ path });
  await store.init();
  return store;
}
