// Signed audit checkpoints: a compact JWS over { seq, hash, ts } of the chain's head, so the head can be
// kept elsewhere and checked later; nobody without a Gatehouse signing key can forge one.
import {
  CompactSign,
  compactVerify,
  createLocalJWKSet,
  type CryptoKey,
  type JWK,
  type KeyObject,
} from 'jose';
import type { AuditCheckpoint, Store } from '../store/store.js';

export interface CheckpointPayload {
  seq: number;
  hash: string;
  ts: number;
}

export type CheckpointSigner = (payload: CheckpointPayload) => Promise<string>;
export type CheckpointVerifier = (jws: string) => Promise<CheckpointPayload>;

/** The `typ` of a checkpoint JWS, so no other JWS signed by the same key passes as one. */
export const CHECKPOINT_TYP = 'gatehouse-audit-checkpoint+jws';
const ALGORITHMS = ['ES256', 'RS256', 'EdDSA'];
const HEX64 = /^[0-9a-f]{64}$/;

/** Signs checkpoints with one private key (the active signing key). */
export function createCheckpointSigner(key: {
  privateKey: CryptoKey | KeyObject | JWK | Uint8Array;
  kid: string;
  alg: string;
}): CheckpointSigner {
  return async (payload) =>
    new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: CHECKPOINT_TYP })
      .sign(key.privateKey);
}

/** Verifies checkpoints against public JWKs (those of the store's keys, or a copy kept elsewhere). */
export function createCheckpointVerifier(publicJwks: JWK[]): CheckpointVerifier {
  const jwks = createLocalJWKSet({ keys: publicJwks });
  return async (jws) => {
    const { payload, protectedHeader } = await compactVerify(jws, jwks, { algorithms: ALGORITHMS });
    if (protectedHeader.typ !== CHECKPOINT_TYP) throw new TypeError('not an audit checkpoint (typ)');
    return parsePayload(new TextDecoder().decode(payload));
  };
}

/** A verifier over every key the store publishes (retired ones included, while they are kept). */
export async function checkpointVerifierFromStore(store: Store): Promise<CheckpointVerifier> {
  const keys = await store.listKeys();
  return createCheckpointVerifier(keys.map((k) => k.publicJwk as JWK));
}

/** Signs a payload and returns the checkpoint as the store keeps it. */
export async function signedCheckpoint(
  payload: CheckpointPayload,
  sign: CheckpointSigner,
): Promise<AuditCheckpoint> {
  const jws = await sign(payload);
  return { seq: payload.seq, hash: payload.hash, jws, createdAt: payload.ts };
}

function parsePayload(text: string): CheckpointPayload {
  const p = JSON.parse(text) as Partial<CheckpointPayload>;
  if (
    !Number.isSafeInteger(p.seq) ||
    typeof p.hash !== 'string' ||
    !HEX64.test(p.hash) ||
    typeof p.ts !== 'number' ||
    !Number.isFinite(p.ts)
  ) {
    throw new TypeError('malformed audit checkpoint payload');
  }
  return { seq: p.seq as number, hash: p.hash, ts: p.ts };
}
