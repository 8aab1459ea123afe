// `gatehouse keys list|rotate|rewrap`: signing keys in the store. Rotation here only writes to the store,
// under the same `key-rotation` lease as the servers' scheduler; running servers publish, promote and
// retire keys on their own schedule and reload within a second.
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { AuditLog } from '../audit/index.js';
import type { GatehouseConfig } from '../config/schema.js';
import { parseConfigText } from '../config/load.js';
import { formatDuration } from '../lib/duration.js';
import { GatehouseError } from '../lib/errors.js';
import { isRemoved, rewrapKeys } from '../keys/keyring.js';
import { ROTATION_WAIT_MS, rotateKeys, type RotationPolicy } from '../keys/rotation.js';
import { parseKek, sealedKekId, type Kek } from '../keys/seal.js';
import type { KeyRecord } from '../store/store.js';
import {
  DEFAULT_DATA_DIR,
  withStore,
  withStoreOptions,
  type AdminContext,
  type StoreOptions,
} from './context.js';

interface KeyContext {
  /** The KEKs that open keys: the current one first. */
  keks: Kek[];
  policy: RotationPolicy;
  /** Set for a dev data directory: where its KEK file is. */
  kekFile?: string;
}

/** KEKs and rotation policy from `--config`, or from a dev data dir (its `kek` file, default settings). */
function keyContext(ctx: AdminContext, opts: StoreOptions): KeyContext {
  let config: GatehouseConfig | undefined = ctx.config;
  let kekFile: string | undefined;
  if (!config) {
    kekFile = join(resolve(opts.dataDir ?? DEFAULT_DATA_DIR), 'kek');
    if (!existsSync(kekFile))
      throw new GatehouseError('ERR_USAGE', `no key-encryption key at ${kekFile}`, {
        hint: 'pass --config FILE for a configured server',
      });
    // A dev data dir runs with default settings: take them from the schema, not from a copy here.
    config = parseConfigText('', {
      file: '(dev defaults)',
      baseDir: resolve(opts.dataDir ?? DEFAULT_DATA_DIR),
      base: {
        issuer: { url: 'http://127.0.0.1:8080' },
        keys: { encryption_key: readFileSync(kekFile, 'utf8').trim() },
      },
    }).config;
  }
  return {
    keks: [config.keys.encryption_key, ...config.keys.previous_encryption_keys].map(parseKek),
    kekFile,
    policy: {
      algorithm: config.keys.algorithm,
      everyMs: config.keys.rotation.every,
      propagationMs: config.keys.rotation.propagation,
      maxTokenTtlMs: config.tokens.max_ttl,
      clockSkewMs: config.tokens.clock_skew,
    },
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function stateOf(r: KeyRecord, now: number): string {
  return isRemoved(r, now) ? 'removed' : r.state;
}

function row(r: KeyRecord, now: number) {
  return {
    kid: r.kid,
    alg: r.alg,
    state: stateOf(r, now),
    created_at: iso(r.createdAt),
    activated_at: iso(r.activatedAt),
    retired_at: iso(r.retiredAt),
    remove_after: iso(r.removeAfter),
    age: formatDuration(Math.max(0, Math.floor((now - r.createdAt) / 1000) * 1000)),
    sealed_with: isRemoved(r, now) ? null : (sealedKekId(r.sealedPrivate) ?? null),
  };
}

const STATE_ORDER: Record<string, number> = { active: 0, next: 1, retired: 2, removed: 3 };

export function register(program: Command): void {
  const keys = program
    .command('keys')
    .description('list and rotate signing keys, and re-seal them with a new key-encryption key');

  withStoreOptions(
    keys
      .command('list')
      .description('list signing keys: state, dates, age and the key-encryption key that seals each')
      .option('--json', 'print JSON')
      .addHelpText(
        'after',
        '\nExamples:\n  gatehouse keys list --config gatehouse.yaml\n  gatehouse keys list --data-dir .gatehouse --json\n',
      ),
  ).action(async (opts: StoreOptions & { json?: boolean }) => {
    await withStore(opts, async ({ store }) => {
      const now = Date.now();
      const rows = (await store.listKeys())
        .map((r) => row(r, now))
        .sort(
          (a, b) =>
            (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9) ||
            (b.created_at ?? '').localeCompare(a.created_at ?? ''),
        );
      if (opts.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      for (const r of rows) {
        const parts = [`${r.kid}  ${r.alg}  ${r.state.padEnd(7)}  age ${r.age}`, `created ${r.created_at}`];
        if (r.activated_at) parts.push(`activated ${r.activated_at}`);
        if (r.retired_at) parts.push(`retired ${r.retired_at}`);
        if (r.remove_after)
          parts.push(`${r.state === 'removed' ? 'removed after' : 'remove after'} ${r.remove_after}`);
        if (r.sealed_with) parts.push(`sealed with ${r.sealed_with}`);
        process.stdout.write(parts.join('  ') + '\n');
      }
      if (rows.length === 0)
        process.stdout.write('no signing keys yet (a server creates one when it starts)\n');
    });
  });

  withStoreOptions(
    keys
      .command('rotate')
      .description(
        'create a new signing key; running servers publish it at once and sign with it after keys.rotation.propagation',
      )
      .option(
        '--now',
        'sign with it at once (verifiers that cached the JWKS refuse its tokens until they fetch it again)',
      )
      .addHelpText(
        'after',
        '\nExamples:\n  gatehouse keys rotate --config gatehouse.yaml\n  gatehouse keys rotate --now --data-dir .gatehouse\n',
      ),
  ).action(async (opts: StoreOptions & { now?: boolean }) => {
    await withStore(opts, async (ctx) => {
      const kc = keyContext(ctx, opts);
      const audit = new AuditLog(ctx.store);
      try {
        const r = await rotateKeys(
          { store: ctx.store, keks: kc.keks, audit, now: Date.now, by: 'cli' },
          kc.policy,
          {
            now: opts.now === true,
            waitMs: ROTATION_WAIT_MS,
            onWait: () =>
              process.stderr.write(
                `another key rotation is in progress; waiting up to ${ROTATION_WAIT_MS / 1000}s for it to finish\n`,
              ),
          },
        );
        if (r.promoted) {
          process.stderr.write(
            'warning: the new key signs at once; verifiers that cached the JWKS before now refuse its tokens until they fetch the JWKS again\n',
          );
          process.stdout.write(
            `activated ${r.next.kid} (${r.next.alg}); running servers sign with it within a second\n`,
          );
          for (const old of r.retired)
            process.stdout.write(`retired ${old.kid}; it stays in the JWKS until ${iso(old.removeAfter)}\n`);
        } else {
          const at = iso(r.next.createdAt + kc.policy.propagationMs);
          process.stdout.write(
            `${r.created ? 'created' : 'already waiting:'} next key ${r.next.kid} (${r.next.alg}), published now; a running server makes it sign at ${at} (after ${formatDuration(kc.policy.propagationMs)})\n`,
          );
        }
      } finally {
        await audit.close();
      }
    });
  });

  withStoreOptions(
    keys
      .command('rewrap')
      .description(
        're-seal every private key with a new key-encryption key (the old one must still be configured to open them)',
      )
      .option(
        '--new-key-file <file>',
        "the new key-encryption key (default: the config's keys.encryption_key, with the old one in keys.previous_encryption_keys)",
      )
      .addHelpText(
        'after',
        '\nProcedure (docs/operations.md): set the new key as keys.encryption_key and move the old one to\nkeys.previous_encryption_keys, restart, run rewrap, then drop the old one and restart again.\n\nExamples:\n  gatehouse keys rewrap --config gatehouse.yaml\n  gatehouse keys rewrap --data-dir .gatehouse --new-key-file new-kek\n',
      ),
  ).action(async (opts: StoreOptions & { newKeyFile?: string }) => {
    await withStore(opts, async (ctx) => {
      const kc = keyContext(ctx, opts);
      let target: Kek | undefined = kc.keks[0];
      let targetText: string | undefined;
      if (opts.newKeyFile) {
        targetText = readFileSync(opts.newKeyFile, 'utf8').trim();
        target = parseKek(targetText);
      } else if (kc.kekFile) {
        throw new GatehouseError(
          'ERR_USAGE',
          'a data directory needs --new-key-file FILE with the new key-encryption key',
        );
      }
      if (!target) throw new GatehouseError('ERR_CONFIG_INVALID', 'no key-encryption key is configured');
      const result = await rewrapKeys(ctx.store, kc.keks, target);
      const audit = new AuditLog(ctx.store);
      try {
        await audit.append('key.rewrapped', {
          kids: result.rewrapped,
          from_kek_ids: result.fromKekIds,
          to_kek_id: result.toKekId,
          by: 'cli',
        });
      } finally {
        await audit.close();
      }
      // A dev data dir keeps its KEK in a file: it now holds the new one, for the next start.
      if (kc.kekFile && targetText) {
        writeFileSync(kc.kekFile, targetText + '\n', { mode: 0o600 });
        chmodSync(kc.kekFile, 0o600);
      }
      process.stdout.write(
        `re-sealed ${result.rewrapped.length} key(s) with key-encryption key ${result.toKekId}` +
          (result.fromKekIds.length ? ` (were sealed with ${result.fromKekIds.join(', ')})` : '') +
          `; ${result.unchanged.length} already were\n`,
      );
      process.stdout.write(
        kc.kekFile
          ? `${kc.kekFile} now holds the new key-encryption key: restart \`gatehouse dev\`\n`
          : opts.newKeyFile
            ? 'now set keys.encryption_key to the new key-encryption key, remove the old one, and restart every server\n'
            : 'every key is sealed with keys.encryption_key: remove keys.previous_encryption_keys and restart every server\n',
      );
    });
  });
}
