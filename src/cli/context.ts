// What admin commands share: opening the store named by `--config FILE` or `--data-dir DIR` (DESIGN.md:
// they act on the store directly and are safe while servers run), and printing helpers.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { GatehouseConfig } from '../config/schema.js';
import { loadConfig } from '../config/load.js';
import type { Store } from '../store/store.js';
import { GatehouseError } from '../lib/errors.js';
import { openStore } from '../server/open-store.js';

export interface StoreOptions {
  config?: string;
  dataDir?: string;
}

export interface AdminContext {
  store: Store;
  /** The loaded config, when `--config` was given. */
  config?: GatehouseConfig;
  close(): Promise<void>;
}

export const DEFAULT_DATA_DIR = '.gatehouse';

/** Adds `--config FILE` and `--data-dir DIR` to an admin command. */
export function withStoreOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'the gatehouse.yaml whose store to use')
    .option(
      '-d, --data-dir <dir>',
      `a data directory (as used by \`gatehouse dev\`; default ${DEFAULT_DATA_DIR})`,
    );
}

export async function openStoreFromOptions(opts: StoreOptions): Promise<AdminContext> {
  if (opts.config) {
    const { config } = await loadConfig(opts.config);
    const store = await openStore(config);
    return { store, config, close: () => store.close() };
  }
  const dir = resolve(opts.dataDir ?? DEFAULT_DATA_DIR);
  const path = join(dir, 'gatehouse.db');
  if (!existsSync(path)) {
    throw new GatehouseError('ERR_USAGE', `no Gatehouse store at ${path}`, {
      hint: 'pass --config FILE for a configured server, or --data-dir DIR for a dev data directory',
    });
  }
  const store = await openStore({ store: { sqlite: { path } } });
  return { store, close: () => store.close() };
}

/** Runs `fn` with an admin context and always closes it. */
export async function withStore<T>(opts: StoreOptions, fn: (ctx: AdminContext) => Promise<T>): Promise<T> {
  const ctx = await openStoreFromOptions(opts);
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}
