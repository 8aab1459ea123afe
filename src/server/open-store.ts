// The composition root's store choice: the only place that imports a Store implementation.
import type { GatehouseConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';

export interface OpenStoreOptions {
  /** Told when the PostgreSQL change feed cannot listen or read (it keeps retrying by itself). */
  onNotifyError?: (e: unknown) => void;
}

export async function openStore(
  config: Pick<GatehouseConfig, 'store'>,
  options: OpenStoreOptions = {},
): Promise<Store> {
  const pg = config.store.postgres;
  const store: Store = pg
    ? new PostgresStore({ url: pg.url, pool: pg.pool, onNotifyError: options.onNotifyError })
    : new SqliteStore({ path: config.store.sqlite?.path ?? 'gatehouse.db' });
  try {
    await store.init();
  } catch (e) {
    // A half-open pool would keep the process alive after the error is reported.
    await store.close().catch(() => {});
    throw e;
  }
  return store;
}
