// Client secrets: generated here, shown once, stored only as a hash, with an expiry. Rotation adds a new
// secret and lets the old one work until the end of an overlap. Secrets are 256 random bits, so a fast
// hash is enough (no password stretching needed); comparison is constant-time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SecretRecord, Store } from '../store/store.js';

const PREFIX = 'ghs_';

/** A new secret: only `A–Z a–z 0–9 _ -`, so it needs no encoding in HTTP Basic or a form. */
export function generateSecret(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return 'sha256:' + createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A short, non-secret fingerprint of a secret, safe for logs and lists. */
export function secretId(): string {
  return 'sec_' + randomBytes(6).toString('base64url');
}

export type SecretCheck =
  | { ok: true; secret: SecretRecord }
  | { ok: false; reason: 'no_secret' | 'wrong_secret' }
  | { ok: false; reason: 'expired_secret'; secret: SecretRecord };

/** Checks a presented secret against a client's stored hashes. */
export function checkSecret(presented: string, secrets: SecretRecord[], now: number): SecretCheck {
  if (secrets.length === 0) return { ok: false, reason: 'no_secret' };
  const digest = Buffer.from(hashSecret(presented));
  for (const s of secrets) {
    const stored = Buffer.from(s.hash);
    if (stored.length !== digest.length || !timingSafeEqual(stored, digest)) continue;
    if (s.expiresAt !== null && s.expiresAt <= now) return { ok: false, reason: 'expired_secret', secret: s };
    return { ok: true, secret: s };
  }
  return { ok: false, reason: 'wrong_secret' };
}

export interface RotateResult {
  secret: string;
  record: SecretRecord;
  /** The secrets that keep working until the end of the overlap. */
  overlapping: SecretRecord[];
}

/**
 * Adds a new secret for `clientId` and makes every older one stop at now + overlap (0: at once).
 * With no previous secret this simply creates the first one.
 */
export async function rotateSecret(
  store: Store,
  clientId: string,
  opts: { ttlMs?: number; overlapMs: number; now: number },
): Promise<RotateResult> {
  const secret = generateSecret();
  const record: SecretRecord = {
    id: secretId(),
    clientId,
    hash: hashSecret(secret),
    createdAt: opts.now,
    expiresAt: opts.ttlMs ? opts.now + opts.ttlMs : null,
  };
  const previous = (await store.listSecrets(clientId)).filter(
    (s) => s.expiresAt === null || s.expiresAt > opts.now,
  );
  await store.insertSecret(record);
  const overlapEnd = opts.now + opts.overlapMs;
  const overlapping: SecretRecord[] = [];
  for (const s of previous) {
    const end = s.expiresAt === null ? overlapEnd : Math.min(s.expiresAt, overlapEnd);
    await store.expireSecret(s.id, end);
    if (end > opts.now) overlapping.push({ ...s, expiresAt: end });
  }
  await store.publishChange('secrets', clientId);
  return { secret, record, overlapping };
}
