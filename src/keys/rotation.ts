// Signing-key rotation: a new key is published (`next`) for a propagation window before it signs, the
// old one stays published (`retired`) until every token it may have signed has expired, then leaves.
// One process at a time rotates (a store lease); every change is audited and published on `keys`.
import { randomBytes } from 'node:crypto';
import type { KeyRecord, Store } from '../store/store.js';
import type { AuditSink } from '../audit/sink.js';
import { GatehouseError } from '../lib/errors.js';
import type { Kek } from './seal.js';
import { createKeyRecord, isRemoved, REMOVED_PRIVATE, type SigningAlg } from './keyring.js';

export interface RotationPolicy {
  /** Algorithm of new keys. */
  algorithm: SigningAlg;
  /** Age (since activation) after which the active key is replaced; 0 turns scheduled rotation off. */
  everyMs: number;
  /** How long a `next` key is published before it signs (verifiers cache the JWKS). */
  propagationMs: number;
  /** The longest lifetime of a token a key may have signed (`tokens.max_ttl`). */
  maxTokenTtlMs: number;
  /** Clock skew verifiers allow (`tokens.clock_skew`). */
  clockSkewMs: number;
}

export interface RotationDeps {
  store: Store;
  /** The first KEK seals new keys. */
  keks: Kek[];
  audit: AuditSink;
  now: () => number;
  /** Who acted, for the audit record (`scheduler`, `cli`). */
  by: string;
}

/** One change the rotation makes; `planRotation` lists them, `applyRotationStep` makes one. */
export type RotationStep =
  | { kind: 'create'; reason: string }
  | { kind: 'promote'; kid: string; reason: string }
  | { kind: 'retire'; kid: string; reason: string }
  | { kind: 'remove'; kid: string; reason: string };

export const ROTATION_LEASE = 'key-rotation';
/**
 * How long one rotation may hold the lease: it is held only while steps are applied, and this outlives
 * a slow key generation (RSA); a holder that died frees it after this.
 */
export const ROTATION_LEASE_MS = 30_000;
/** How long an on-demand rotation waits for another one (a scheduled tick takes well under this). */
export const ROTATION_WAIT_MS = 5_000;

/**
 * Takes the `key-rotation` lease, retrying for up to `waitMs` of real time. `now` is the clock the lease
 * expiry is written with (every holder writes with the same kind of clock).
 */
async function takeRotationLease(
  store: Store,
  holder: string,
  now: () => number,
  waitMs: number,
  onWait?: () => void,
): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    if (await store.tryLease(ROTATION_LEASE, holder, ROTATION_LEASE_MS, now())) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    if (!told) onWait?.();
    told = true;
    await new Promise((r) => setTimeout(r, Math.min(100, left)));
  }
}

/** When a key retired at `retiredAt` leaves the JWKS: after the longest token it signed has expired. */
export function removeAfter(retiredAt: number, policy: RotationPolicy): number {
  return retiredAt + policy.maxTokenTtlMs + policy.clockSkewMs;
}

/** What is due now, in order. Pure: the scheduler applies the steps, tests read them. */
export function planRotation(
  records: readonly KeyRecord[],
  policy: RotationPolicy,
  now: number,
): RotationStep[] {
  const steps: RotationStep[] = [];
  const live = records.filter((r) => !isRemoved(r, now));
  const actives = live
    .filter((r) => r.state === 'active')
    .sort((a, b) => (b.activatedAt ?? 0) - (a.activatedAt ?? 0) || b.createdAt - a.createdAt);
  const nexts = live.filter((r) => r.state === 'next').sort((a, b) => a.createdAt - b.createdAt);
  const current = actives[0];
  // Two processes starting on an empty store can each create a first key: the newest signs, the
  // others retire, so exactly one key is active.
  for (const extra of actives.slice(1))
    steps.push({ kind: 'retire', kid: extra.kid, reason: 'more than one active key' });
  const next = nexts[0];
  if (next && now - next.createdAt >= policy.propagationMs) {
    steps.push({ kind: 'promote', kid: next.kid, reason: 'published for the propagation window' });
  } else if (!next && current) {
    const since = current.activatedAt ?? current.createdAt;
    if (policy.everyMs > 0 && now - since >= policy.everyMs)
      steps.push({ kind: 'create', reason: 'the active key reached the rotation age' });
    else if (current.alg !== policy.algorithm)
      steps.push({ kind: 'create', reason: `the configured algorithm is ${policy.algorithm}` });
  }
  for (const r of records) {
    if (r.sealedPrivate === REMOVED_PRIVATE) continue;
    if (r.state === 'retired' && r.removeAfter !== null && r.removeAfter <= now)
      steps.push({ kind: 'remove', kid: r.kid, reason: 'every token it may have signed has expired' });
  }
  return steps;
}

/** Creates a `next` key: published from now on, signing only once promoted. */
export async function createNextKey(
  deps: RotationDeps,
  policy: RotationPolicy,
  reason: string,
): Promise<KeyRecord> {
  const kek = deps.keks[0];
  if (!kek) throw new GatehouseError('ERR_CONFIG_INVALID', 'no key-encryption key is configured');
  const now = deps.now();
  const { record } = await createKeyRecord(policy.algorithm, kek, 'next', now);
  await deps.store.insertKey(record);
  await deps.audit.append('key.created', {
    kid: record.kid,
    alg: record.alg,
    state: 'next',
    signs_after: new Date(now + policy.propagationMs).toISOString(),
    reason,
    by: deps.by,
  });
  await deps.store.publishChange('keys', record.kid);
  return record;
}

/**
 * Makes `kid` the one active key and retires every other active key. The new key is activated before
 * the old ones retire, so a process reading in between sees two active keys (the newest signs) and
 * never none.
 */
export async function promoteKey(
  deps: RotationDeps,
  policy: RotationPolicy,
  kid: string,
  reason: string,
): Promise<{ activated: KeyRecord; retired: KeyRecord[] }> {
  const records = await deps.store.listKeys();
  const target = records.find((r) => r.kid === kid);
  if (!target || isRemoved(target, deps.now()))
    throw new GatehouseError('ERR_KEY_NOT_FOUND', `no signing key ${kid} to promote`);
  if (target.state !== 'next')
    throw new GatehouseError('ERR_USAGE', `signing key ${kid} is ${target.state}, not next`);
  const now = deps.now();
  await deps.store.updateKey(kid, { state: 'active', activatedAt: now });
  const activated: KeyRecord = { ...target, state: 'active', activatedAt: now };
  const published = now - target.createdAt;
  await deps.audit.append('key.activated', {
    kid,
    alg: target.alg,
    published_ms: published,
    early: published < policy.propagationMs,
    reason,
    by: deps.by,
  });
  const retired: KeyRecord[] = [];
  for (const old of records) {
    if (old.kid === kid || old.state !== 'active') continue;
    retired.push(await retire(deps, policy, old, `replaced by ${kid}`, false));
  }
  await deps.store.publishChange('keys', kid);
  return { activated, retired };
}

async function retire(
  deps: RotationDeps,
  policy: RotationPolicy,
  record: KeyRecord,
  reason: string,
  publish: boolean,
): Promise<KeyRecord> {
  const now = deps.now();
  const patch = { state: 'retired' as const, retiredAt: now, removeAfter: removeAfter(now, policy) };
  await deps.store.updateKey(record.kid, patch);
  await deps.audit.append('key.retired', {
    kid: record.kid,
    alg: record.alg,
    remove_after: new Date(patch.removeAfter).toISOString(),
    reason,
    by: deps.by,
  });
  if (publish) await deps.store.publishChange('keys', record.kid);
  return { ...record, ...patch };
}

/** Takes a retired key out of the JWKS for good: its private part is destroyed, its public part kept. */
export async function removeKey(deps: RotationDeps, record: KeyRecord, reason: string): Promise<void> {
  await deps.store.updateKey(record.kid, { sealedPrivate: REMOVED_PRIVATE });
  await deps.audit.append('key.removed', { kid: record.kid, alg: record.alg, reason, by: deps.by });
  await deps.store.publishChange('keys', record.kid);
}

/** Applies one planned step (re-reading the key so a stale plan does nothing harmful). */
export async function applyRotationStep(
  deps: RotationDeps,
  policy: RotationPolicy,
  step: RotationStep,
): Promise<void> {
  if (step.kind === 'create') {
    await createNextKey(deps, policy, step.reason);
    return;
  }
  if (step.kind === 'promote') {
    await promoteKey(deps, policy, step.kid, step.reason);
    return;
  }
  const record = (await deps.store.listKeys()).find((r) => r.kid === step.kid);
  if (!record) return;
  if (step.kind === 'retire' && record.state === 'active')
    await retire(deps, policy, record, step.reason, true);
  if (step.kind === 'remove' && record.sealedPrivate !== REMOVED_PRIVATE)
    await removeKey(deps, record, step.reason);
}

export interface RotateOptions {
  /** Promote the new key at once instead of after the propagation window. */
  now?: boolean;
  /** How long to wait for the `key-rotation` lease while another process holds it (default 5 s). */
  waitMs?: number;
  /** Told once when the lease is held elsewhere and the rotation starts waiting for it. */
  onWait?: () => void;
}

/**
 * On-demand rotation (`gatehouse keys rotate`): creates a `next` key unless one is waiting. With
 * `now`, promotes it at once: verifiers that cached the JWKS before it was published refuse its
 * tokens until they fetch the JWKS again. It holds the `key-rotation` lease, like the scheduler, so it
 * never runs at the same time as another rotation (which could leave two `next` keys, or promote one
 * the other is retiring); when the lease stays held it fails with ERR_STORE_CONFLICT.
 */
export async function rotateKeys(
  deps: RotationDeps,
  policy: RotationPolicy,
  opts: RotateOptions = {},
): Promise<{ next: KeyRecord; created: boolean; promoted: boolean; retired: KeyRecord[] }> {
  const holder = `rotate-${deps.by}-${randomBytes(6).toString('base64url')}`;
  const waitMs = opts.waitMs ?? ROTATION_WAIT_MS;
  if (!(await takeRotationLease(deps.store, holder, deps.now, waitMs, opts.onWait)))
    throw new GatehouseError(
      'ERR_STORE_CONFLICT',
      `another key rotation is in progress: the ${ROTATION_LEASE} lease is still held by another process after ${waitMs / 1000}s`,
      {
        hint: `retry in a few seconds; a lease left by a process that stopped mid-rotation frees itself within ${ROTATION_LEASE_MS / 1000}s`,
      },
    );
  try {
    return await rotateUnderLease(deps, policy, opts);
  } finally {
    await deps.store.releaseLease(ROTATION_LEASE, holder).catch(() => undefined);
  }
}

async function rotateUnderLease(
  deps: RotationDeps,
  policy: RotationPolicy,
  opts: RotateOptions,
): Promise<{ next: KeyRecord; created: boolean; promoted: boolean; retired: KeyRecord[] }> {
  const now = deps.now();
  const waiting = (await deps.store.listKeys())
    .filter((r) => r.state === 'next' && !isRemoved(r, now))
    .sort((a, b) => a.createdAt - b.createdAt)[0];
  const next =
    waiting ?? (await createNextKey(deps, policy, opts.now ? 'rotated now on demand' : 'rotated on demand'));
  if (!opts.now) return { next, created: !waiting, promoted: false, retired: [] };
  const { activated, retired } = await promoteKey(deps, policy, next.kid, 'rotated now on demand');
  return { next: activated, created: !waiting, promoted: true, retired };
}

export interface SchedulerOptions extends RotationDeps {
  policy: RotationPolicy;
  checkIntervalMs: number;
  /** This process's lease holder id (random by default). */
  holderId?: string;
  /** Told about each failed check (the scheduler keeps going). */
  onError?: (err: unknown) => void;
  /** Told about each step applied. */
  onStep?: (step: RotationStep) => void;
}

/**
 * Checks every `checkIntervalMs` whether a rotation step is due and applies it, while holding the
 * `key-rotation` lease so that one process of many rotates. The lease is held for one check only:
 * held between checks, it would shut out `gatehouse keys rotate`, which takes the same lease.
 */
export class RotationScheduler {
  readonly #opts: SchedulerOptions;
  readonly #holder: string;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<RotationStep[]> | undefined;
  #stopped = false;

  constructor(opts: SchedulerOptions) {
    if (!(opts.checkIntervalMs > 0)) throw new TypeError('checkIntervalMs must be > 0');
    this.#opts = opts;
    this.#holder = opts.holderId ?? `rotation-${randomBytes(6).toString('base64url')}`;
  }

  get holderId(): string {
    return this.#holder;
  }

  /** Checks at once (a server restarted late catches up) and then every `checkIntervalMs`. */
  start(): void {
    if (this.#timer || this.#stopped) return;
    this.tick().catch((err: unknown) => this.#opts.onError?.(err));
    this.#timer = setInterval(() => {
      this.tick().catch((err: unknown) => this.#opts.onError?.(err));
    }, this.#opts.checkIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
    await this.#opts.store.releaseLease(ROTATION_LEASE, this.#holder).catch(() => undefined);
  }

  /** One check: takes the lease, applies what is due, releases it. Returns the steps applied. */
  tick(): Promise<RotationStep[]> {
    // A slow check (key generation) must not overlap the next one.
    this.#running ??= this.#tick().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #tick(): Promise<RotationStep[]> {
    if (this.#stopped) return [];
    const { store, policy, now } = this.#opts;
    // Another holder is rotating: what it does is on the change feed, and the next check sees the rest.
    if (!(await store.tryLease(ROTATION_LEASE, this.#holder, ROTATION_LEASE_MS, now()))) return [];
    try {
      const applied: RotationStep[] = [];
      // Planned under the lease, from keys read under it, so a step another holder already applied is
      // not applied twice.
      for (const step of planRotation(await store.listKeys(), policy, now())) {
        await applyRotationStep(this.#opts, policy, step);
        applied.push(step);
        this.#opts.onStep?.(step);
      }
      return applied;
    } finally {
      await store.releaseLease(ROTATION_LEASE, this.#holder).catch(() => undefined);
    }
  }
}
