// Signing keys: created here, sealed at rest in the store, loaded into memory for signing and for the
// JWKS. A key moves next → active → retired: published before it signs, published after it stops
// signing until the tokens it signed have expired (rotation: src/keys/rotation.ts).
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { KeyRecord, Store } from '../store/store.js';
import { GatehouseError } from '../lib/errors.js';
import { seal, unseal, type Kek } from './seal.js';

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

export class KeyRing {
  readonly #store: Store;
  readonly #opts: KeyRingOptions;
  #keys: LoadedKey[] = [];
  #version = 0;

  constructor(store: Store, opts: KeyRingOptions) {
    this.#store = store;
    this.#opts = opts;
  }

  get #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  /** Bumped on every reload; lets callers rebuild what they derived from the key set. */
  get version(): number {
    return this.#version;
  }

  /** Loads every key from the store, unsealing the private parts. */
  async load(): Promise<void> {
    const records = await this.#store.listKeys();
    const now = this.#now;
    const loaded: LoadedKey[] = [];
    for (const record of records) {
      if (record.state === 'retired' && record.removeAfter !== null && record.removeAfter <= now) continue;
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
    // Active first (it signs), then next (published ahead), then retired (still verifying).
    const order = { active: 0, next: 1, retired: 2 } as const;
    loaded.sort((a, b) => order[a.state] - order[b.state] || b.record.createdAt - a.record.createdAt);
    this.#keys = loaded;
    this.#version++;
  }

  /** On first start there is nothing published yet, so the first key is active at once. */
  async ensureActiveKey(): Promise<void> {
    await this.load();
    if (this.#keys.some((k) => k.state === 'active')) return;
    const kek = this.#opts.keks[0];
    if (!kek) throw new GatehouseError('ERR_CONFIG_INVALID', 'no key-encryption key is configured');
    const { record } = await createKeyRecord(this.#opts.algorithm, kek, 'active', this.#now);
    try {
      await this.#store.insertKey(record);
      await this.#store.publishChange('keys', record.kid);
    } catch (e) {
      // Another process created one at the same moment; theirs is as good as ours.
      if (!(e instanceof GatehouseError && e.code === 'ERR_STORE_CONFLICT')) throw e;
    }
    await this.load();
    if (!this.#keys.some((k) => k.state === 'active')) {
      throw new GatehouseError('ERR_KEY_NOT_FOUND', 'no active signing key after creating one');
    }
  }

  /** The key that signs now. */
  active(alg?: SigningAlg): LoadedKey {
    const key = this.#keys.find((k) => k.state === 'active' && (alg === undefined || k.alg === alg));
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
