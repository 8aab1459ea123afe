// Hot reload of the configuration file: on change (a debounced watch of its directory, so editors and
// tools that replace the file are seen) and on demand (SIGHUP). A new configuration is loaded and checked
// whole; a bad one is refused with every problem logged (file:line) and the running one keeps serving.
// What can change live — routes and their policies, trust rules, external issuers, audit, rate-limit and
// forward-auth settings — is handed to `apply`, which builds new immutable state and swaps it in; what cannot
// (listen address, TLS file paths, store, issuer URL, keys, clients, sessions…) is reported as needing a
// restart and keeps its running value, so nothing is half-applied.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Counter } from 'prom-client';
import { loadConfig } from '../config/load.js';
import { ConfigError, formatProblem } from '../config/problems.js';
import type { GatehouseConfig } from '../config/schema.js';
import type { AuditSink } from '../audit/sink.js';
import type { PartLogger } from '../audit/logger.js';
import { GatehouseError } from '../lib/errors.js';

/** Top-level sections that reload without a restart. */
export const RELOADABLE = [
  'routes',
  'trust_rules',
  'external_issuers',
  'audit',
  'rate_limits',
  'forward_auth',
] as const;

export type ReloadTrigger = 'file' | 'signal' | 'manual';

export interface ReloadResult {
  outcome: 'applied' | 'failed' | 'unchanged';
  /** Sections whose new values are now serving. */
  changed: string[];
  /** Fields that changed in the file but only take effect after a restart. */
  needsRestart: string[];
  /** With `failed`: every problem, formatted `file:line:column path: message`. */
  problems: string[];
}

export interface ConfigReloaderOptions {
  file: string;
  /** The configuration the server runs now. */
  current: GatehouseConfig;
  /** Turns a freshly loaded configuration into what this server would run (e.g. a pinned issuer URL). */
  pin?: (c: GatehouseConfig) => GatehouseConfig;
  /** Builds and swaps in state for the new reloadable sections; throwing refuses the reload. */
  apply: (next: GatehouseConfig) => void | Promise<void>;
  audit: Pick<AuditSink, 'append'>;
  logger: PartLogger;
  reloads?: Counter<'outcome'>;
  debounceMs?: number;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Dotted names of the restart-only fields that differ between two configurations. */
export function restartOnlyChanges(running: GatehouseConfig, next: GatehouseConfig): string[] {
  const out: string[] = [];
  const reloadable = new Set<string>(RELOADABLE);
  const keys = new Set([...Object.keys(running), ...Object.keys(next)]);
  for (const k of [...keys].sort()) {
    if (reloadable.has(k)) continue;
    const a = (running as Record<string, unknown>)[k];
    const b = (next as Record<string, unknown>)[k];
    if (same(a, b)) continue;
    // One level deeper where it helps to know which field (server.port, not just server).
    if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a)) {
      const sub = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const s of [...sub].sort())
        if (!same((a as Record<string, unknown>)[s], (b as Record<string, unknown>)[s]))
          out.push(`${k}.${s}`);
    } else out.push(k);
  }
  return out;
}

export class ConfigReloader {
  readonly #opts: ConfigReloaderOptions;
  readonly #file: string;
  #current: GatehouseConfig;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  // Reloads run one after another: a change arriving mid-reload is applied after it, never interleaved.
  #chain: Promise<unknown> = Promise.resolve();

  constructor(opts: ConfigReloaderOptions) {
    this.#opts = opts;
    this.#file = resolve(opts.file);
    this.#current = opts.current;
  }

  /** The configuration serving now (restart-only fields as at start). */
  get config(): GatehouseConfig {
    return this.#current;
  }

  reload(trigger: ReloadTrigger = 'manual'): Promise<ReloadResult> {
    const run = this.#chain.then(() => this.#reload(trigger));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Watches the file's directory; changes are applied once it has been quiet for `debounceMs`. */
  watch(): void {
    if (this.#watcher) return;
    const name = basename(this.#file);
    this.#watcher = watch(dirname(this.#file), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed !== name) return;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        void this.reload('file');
      }, this.#opts.debounceMs ?? 250);
    });
    this.#watcher.on('error', (err) =>
      this.#opts.logger.warn({ err }, 'watching the configuration file failed; SIGHUP still reloads'),
    );
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  async #reload(trigger: ReloadTrigger): Promise<ReloadResult> {
    const { logger } = this.#opts;
    let loaded: GatehouseConfig;
    try {
      const raw = (await loadConfig(this.#file)).config;
      loaded = this.#opts.pin ? this.#opts.pin(raw) : raw;
    } catch (e) {
      return this.#failed(trigger, problemsOf(e));
    }
    const running = this.#current;
    const needsRestart = restartOnlyChanges(running, loaded);
    const changed = RELOADABLE.filter((k) => !same(running[k], loaded[k]));
    if (changed.length === 0) {
      this.#opts.reloads?.inc({ outcome: 'unchanged' });
      if (needsRestart.length)
        logger.warn(
          { event: 'config.needs_restart', needs_restart: needsRestart },
          'configuration changed in fields that need a restart; nothing was applied',
        );
      return { outcome: 'unchanged', changed: [], needsRestart, problems: [] };
    }
    // The restart-only fields keep their running values; only the reloadable sections are new.
    const next: GatehouseConfig = { ...running };
    for (const k of RELOADABLE) (next as Record<string, unknown>)[k] = loaded[k];
    try {
      await this.#opts.apply(next);
    } catch (e) {
      return this.#failed(trigger, problemsOf(e));
    }
    this.#current = next;
    this.#opts.reloads?.inc({ outcome: 'applied' });
    logger.info(
      { event: 'config.reloaded', trigger, changed, needs_restart: needsRestart },
      needsRestart.length
        ? `configuration reloaded; needs a restart to take effect: ${needsRestart.join(', ')}`
        : 'configuration reloaded',
    );
    this.#appendAudit('config.reloaded', {
      trigger,
      file: this.#file,
      changed,
      needs_restart: needsRestart,
    });
    return { outcome: 'applied', changed, needsRestart, problems: [] };
  }

  #failed(trigger: ReloadTrigger, problems: string[]): ReloadResult {
    this.#opts.reloads?.inc({ outcome: 'failed' });
    this.#opts.logger.error(
      { event: 'config.reload_failed', trigger, problems },
      `configuration reload refused (${problems.length} problem${problems.length === 1 ? '' : 's'}); the running configuration keeps serving:\n  ${problems.join('\n  ')}`,
    );
    this.#appendAudit('config.reload_failed', { trigger, file: this.#file, problems });
    return { outcome: 'failed', changed: [], needsRestart: [], problems };
  }

  #appendAudit(type: string, data: Record<string, unknown>): void {
    this.#opts.audit
      .append(type, data)
      .catch((err: unknown) =>
        this.#opts.logger.error({ err, type }, 'audit of a configuration reload failed'),
      );
  }
}

function problemsOf(e: unknown): string[] {
  if (e instanceof ConfigError) return e.problems.map(formatProblem);
  if (e instanceof GatehouseError) return [e.message];
  if (e instanceof Error) return [e.message];
  return [String(e)];
}
