// Signing keys: created here, sealed at rest in the store, loaded into memory for signing and for the
// JWKS. A key moves next → active → retired: published before it signs, published after it stops
// signing until the tokens it signed have expired (rotation: src/keys/rotation.ts).
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { KeyRecord, Store } from '../store/store.js';
import { GatehouseError } from '../lib/errors.js';
import { seal, sealedKekId, unseal, type Kek } from './seal.js';

export type SigningKey = Awaited<ReturnType<typeof importJWK>>;

export type SigningAlg = KeyRecord['alg'];

export interface LoadedKey {
  kid: string;
  alg: SigningAlg;
  state: KeyRecord['state'];
  record: KeyRecord;
  publicJwk: JWK;
  privateJwk: JWK;
  privateKey: SigningKey;
}

export interface KeyRingOptions {
  keks: Kek[];
  algorithm: SigningAlg;
  now?: () => number;
}

const PUBLIC_FIELDS: Record<string, string[]> = {
  EC: ['kty', 'crv', 'x', 'y'],
  RSA: ['kty', 'n', 'e'],
  OKP: ['kty', 'crv', 'x'],
};

/** A fresh key pair as a store record (sealed) plus its private JWK. */
export async function createKeyRecord(
  alg: SigningAlg,
  kek: Kek,
  state: KeyRecord['state'],
  now: number,
): Promise<{ record: KeyRecord; privateJwk: JWK }> {
  const { privateKey } = await generateKeyPair(
    alg,
    alg === 'EdDSA' ? { extractable: true, crv: 'Ed25519' } : { extractable: true, modulusLength: 2048 },
  );
  const full = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(full, 'sha256');
  const publicJwk: Record<string, unknown> = { kid, alg, use: 'sig' };
  for (const f of PUBLIC_FIELDS[full.kty as string] ?? [])
    publicJwk[f] = (full as Record<string, unknown>)[f];
  const privateJwk: JWK = { ...full, kid, alg, use: 'sig' };
  const record: KeyRecord = {
    kid,
    alg,
    state,
    publicJwk,
    sealedPrivate: seal(kek, JSON.stringify(privateJwk), kid),
    createdAt: now,
    activatedAt: state === 'active' ? now : null,
    retiredAt: null,
    removeAfter: null,
  };
  return { record, privateJwk };
}

/**
 * What a removed key's sealed private part is replaced with: the private key is destroyed, the public
 * part stays in the store so audit checkpoints it signed can still be verified.
 */
export const REMOVED_PRIVATE = 'removed';

/** True when a key has left the JWKS: retired and past `removeAfter`, or its private part destroyed. */
export function isRemoved(record: KeyRecord, now: number): boolean {
  return (
    record.sealedPrivate === REMOVED_PRIVATE ||
    (record.state === 'retired' && record.removeAfter !== null && record.removeAfter <= now)
  );
}

/** The lease under which the first signing key of an empty store is created. */
const BOOTSTRAP_LEASE = 'key-bootstrap';
/** Outlives a slow key generation (RSA); a holder that died frees it after this. */
const BOOTSTRAP_LEASE_MS = 15_000;
/** About 20 s of waiting for another starter (attempts of 50–100 ms). */
const BOOTSTRAP_ATTEMPTS = 300;

export class KeyRing {
  readonly #store: Store;
  readonly #opts: KeyRingOptions;
  #keys: LoadedKey[] = [];
  /** What `active()` picks from; trails `#keys` while a new key set is being published. */
  #signing: LoadedKey[] = [];
  #loading: Promise<void> = Promise.resolve();
  #version = 0;

  constructor(store: Store, opts: KeyRingOptions) {
    this.#store = store;
    this.#opts = opts;
  }

  get #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  /** The key-encryption keys this ring opens keys with; the first seals new ones. */
  get keks(): Kek[] {
    return [...this.#opts.keks];
  }

  /** Bumped on every reload; lets callers rebuild what they derived from the key set. */
  get version(): number {
    return this.#version;
  }

  /**
   * Loads every key from the store, unsealing the private parts, and swaps the new set in. The swap has
   * two steps so a key never signs before it is published: first the published view changes (the JWKS,
   * `version`), then `beforeSigning` runs (the issuer rebuilds its provider from that view), and only
   * then does `active()` return the new signing key. Loads are serialized: a load that starts while one
   * runs waits for it, so an older read never overwrites a newer one.
   */
  load(opts: { beforeSigning?: () => Promise<void> } = {}): Promise<void> {
    const run = this.#loading.then(
      () => this.#loadNow(opts),
      () => this.#loadNow(opts),
    );
    this.#loading = run.catch(() => undefined);
    return run;
  }

  async #loadNow(opts: { beforeSigning?: () => Promise<void> }): Promise<void> {
    const records = await this.#store.listKeys();
    const now = this.#now;
    const loaded: LoadedKey[] = [];
    for (const record of records) {
      if (isRemoved(record, now)) continue;
      const privateJwk = JSON.parse(unseal(this.#opts.keks, record.sealedPrivate, record.kid)) as JWK;
      const privateKey = await importJWK(privateJwk, record.alg);
      loaded.push({
        kid: record.kid,
        alg: record.alg,
        state: record.state,
        record,
        publicJwk: record.publicJwk as JWK,
        privateJwk,
        privateKey,
      });
    }
    // Active first (it signs; the newest wins if a promotion is half done), then next (published
    // ahead), then retired (still verifying).
    const order = { active: 0, next: 1, retired: 2 } as const;
    loaded.sort(
      (a, b) =>
        order[a.state] - order[b.state] ||
        (b.record.activatedAt ?? 0) - (a.record.activatedAt ?? 0) ||
        b.record.createdAt - a.record.createdAt,
    );
    this.#keys = loaded;
    this.#version++;
    // Until the new view is published, keep signing with the old key while it is in that view (an old
    // active key becomes retired, so it is): every token then verifies against what is served.
    const stillPublished = this.#signing.filter(
      (k) => k.state === 'active' && loaded.some((l) => l.kid === k.kid),
    );
    this.#signing = opts.beforeSigning && stillPublished.length > 0 ? stillPublished : loaded;
    // When publishing fails, the old key keeps signing (it is what is served); the next load retries.
    if (opts.beforeSigning) await opts.beforeSigning();
    this.#signing = loaded;
  }

  /** On first start there is nothing published yet, so the first key is active at once. */
  /** Returns the key it created, when this process created the first one (for the audit log). */
  async ensureActiveKey(): Promise<KeyRecord | undefined> {
    await this.load();
    if (this.#keys.some((k) => k.state === 'active')) return undefined;
    let created: KeyRecord | undefined;
    const kek = this.#opts.keks[0];
    if (!kek) throw new GatehouseError('ERR_CONFIG_INVALID', 'no key-encryption key is configured');
    // Replicas starting together on an empty store would each create a different first key (different
    // kids never conflict), and each sign with its own until the other's is loaded. One holder of a
    // lease creates it; the others wait and load it.
    const holder = `bootstrap-${randomUUID()}`;
    for (let attempt = 0; attempt < BOOTSTRAP_ATTEMPTS; attempt++) {
      if (await this.#store.tryLease(BOOTSTRAP_LEASE, holder, BOOTSTRAP_LEASE_MS, this.#now)) {
        try {
          await this.load();
          if (!this.#keys.some((k) => k.state === 'active')) {
            const { record } = await createKeyRecord(this.#opts.algorithm, kek, 'active', this.#now);
            await this.#store.insertKey(record);
            await this.#store.publishChange('keys', record.kid);
            created = record;
            await this.load();
          }
        } finally {
          await this.#store.releaseLease(BOOTSTRAP_LEASE, holder).catch(() => undefined);
        }
      } else {
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 50));
        await this.load();
      }
      if (this.#keys.some((k) => k.state === 'active')) return created;
    }
    throw new GatehouseError(
      'ERR_KEY_NOT_FOUND',
      'no active signing key: another process holds the key lease',
    );
  }

  /** The key that signs now. */
  active(alg?: SigningAlg): LoadedKey {
    const key = this.#signing.find((k) => k.state === 'active' && (alg === undefined || k.alg === alg));
    if (!key)
      throw new GatehouseError('ERR_KEY_NOT_FOUND', `no active ${alg ?? ''} signing key`.replace('  ', ' '));
    return key;
  }

  all(): readonly LoadedKey[] {
    return this.#keys;
  }

  find(kid: string): LoadedKey | undefined {
    return this.#keys.find((k) => k.kid === kid);
  }

  /** The public JWKS: every key that is published (next, active, retired not yet removed). */
  publicJwks(): { keys: JWK[] } {
    return { keys: this.#keys.map((k) => ({ ...k.publicJwk })) };
  }

  /**
   * The private JWKS for oidc-provider, which signs with the first key matching an algorithm: the
   * active key comes first, and keys that must not sign are marked verify-only.
   */
  providerJwks(): { keys: JWK[] } {
    return {
      keys: this.#keys.map((k) =>
        k.state === 'active' ? { ...k.privateJwk } : { ...k.privateJwk, key_ops: ['verify'] as string[] },
      ),
    };
  }
}

export interface RewrapResult {
  /** Keys re-sealed with the target KEK. */
  rewrapped: string[];
  /** Keys already sealed with it. */
  unchanged: string[];
  /** Ids of the KEKs the rewrapped keys were sealed with before. */
  fromKekIds: string[];
  toKekId: string;
}

/**
 * Re-seals every private key with `target` (`gatehouse keys rewrap`). Every key is opened first, with
 * `keks` (the old KEKs) or `target`, so a KEK that is missing fails the whole run before anything is
 * written; each new envelope is opened again before it replaces the old one.
 */
export async function rewrapKeys(store: Store, keks: Kek[], target: Kek): Promise<RewrapResult> {
  const all = [target, ...keks.filter((k) => k.id !== target.id)];
  const records = (await store.listKeys()).filter((r) => r.sealedPrivate !== REMOVED_PRIVATE);
  const todo: Array<{ kid: string; sealed: string }> = [];
  const unchanged: string[] = [];
  const from = new Set<string>();
  for (const r of records) {
    const plain = unseal(all, r.sealedPrivate, r.kid);
    const was = sealedKekId(r.sealedPrivate);
    if (was === target.id) {
      unchanged.push(r.kid);
      continue;
    }
    if (was) from.add(was);
    const sealed = seal(target, plain, r.kid);
    if (unseal([target], sealed, r.kid) !== plain) {
      throw new GatehouseError('ERR_INTERNAL', `re-sealing signing key ${r.kid} did not round-trip`);
    }
    todo.push({ kid: r.kid, sealed });
  }
  for (const t of todo) await store.updateKey(t.kid, { sealedPrivate: t.sealed });
  return { rewrapped: todo.map((t) => t.kid), unchanged, fromKekIds: [...from], toKekId: target.id };
}
