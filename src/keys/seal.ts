// Seals private keys at rest with the key-encryption key (KEK): AES-256-GCM, a fresh IV per seal, and
// the KEK's id in the envelope so `gatehouse keys rewrap` can tell which KEK sealed what.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { GatehouseError } from '../lib/errors.js';

const VERSION = 'v1';

export interface Kek {
  /** Short, non-secret id of the KEK (a hash prefix), stored beside each sealed key. */
  id: string;
  key: Buffer;
}

/** Parses a KEK given as 32 bytes in base64url (or base64, or 64 hex digits). */
export function parseKek(text: string): Kek {
  const t = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9_\-+/]{43}=?$/.test(t))
    key = Buffer.from(t.replace(/\+/g, '-').replace(/\//g, '_'), 'base64url');
  if (!key || key.length !== 32) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      'keys.encryption_key must be 32 random bytes in base64url',
      {
        field: 'keys.encryption_key',
        hint: "create one with: node -e \"console.log(require('crypto').randomBytes(32).toString('base64url'))\"",
      },
    );
  }
  return { id: createHash('sha256').update(key).digest('base64url').slice(0, 8), key };
}

export function generateKekText(): string {
  return randomBytes(32).toString('base64url');
}

export function seal(kek: Kek, plaintext: string, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek.key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [
    VERSION,
    kek.id,
    iv.toString('base64url'),
    ct.toString('base64url'),
    tag.toString('base64url'),
  ].join('.');
}

export function sealedKekId(sealed: string): string | undefined {
  const parts = sealed.split('.');
  return parts[0] === VERSION ? parts[1] : undefined;
}

/** Opens a sealed value with the first KEK whose id matches; `aad` must equal the one used to seal. */
export function unseal(keks: Kek[], sealed: string, aad: string): string {
  const [version, kekId, iv, ct, tag] = sealed.split('.');
  const kek = keks.find((k) => k.id === kekId);
  if (version !== VERSION || !iv || !ct || !tag) {
    throw new GatehouseError('ERR_KEY_UNSEAL_FAILED', 'a sealed key is not in a format this version reads');
  }
  if (!kek) {
    throw new GatehouseError(
      'ERR_KEY_UNSEAL_FAILED',
      `a key is sealed with key-encryption key ${kekId}, which is not configured`,
      {
        hint: 'configure the key-encryption key the store was sealed with (keys.encryption_key), or rewrap with `gatehouse keys rewrap`',
      },
    );
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw new GatehouseError(
      'ERR_KEY_UNSEAL_FAILED',
      `a key sealed with key-encryption key ${kekId} did not open: the sealed value was altered`,
      {},
      { cause },
    );
  }
}
