// Keeps secrets out of the audit log: a record that looks like it carries a token, secret or key is a
// programmer error (record the `jti` or a hash prefix instead), refused before it is written.

import { sha256hex } from './seal.js';

// Key names compared lower-cased with `_` and `-` removed, so `client_secret`, `clientSecret` and
// `Client-Secret` are all caught.
const SECRET_KEYS = new Set([
  'token',
  'secret',
  'clientsecret',
  'password',
  'passphrase',
  'assertion',
  'clientassertion',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'subjecttoken',
  'actortoken',
  'logintoken',
  'privatekey',
  'privatejwk',
  'sealedprivate',
  'encryptionkey',
  'kek',
  'apikey',
  'cookie',
  'authorization',
  'devicecode',
  'authorizationcode',
  'codeverifier',
]);

// A compact JWS or JWE: its protected header is base64url JSON, so it starts with `eyJ` (`{"`).
const COMPACT_JOSE = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/;
const COMPACT_JOSE_ALL = new RegExp(COMPACT_JOSE.source, 'g');

/**
 * What the audit log may keep of a string the request chose (a path, a client id, a parameter): any
 * compact JWS/JWE in it becomes `[token sha256:<16 hex>]`, and it is cut to `max` characters. A token
 * in a URL is then neither written nor a reason to lose the record (assertNoSecrets would refuse it).
 */
export function redactUntrusted(value: string, max = 512): string {
  const clean = COMPACT_JOSE.test(value)
    ? value.replace(COMPACT_JOSE_ALL, (t) => `[token sha256:${sha256hex(t).slice(0, 16)}]`)
    : value;
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** Throws a TypeError naming the path (never the value) when `data` seems to hold a secret. */
export function assertNoSecrets(data: unknown, path = 'data'): void {
  if (typeof data === 'string') {
    if (COMPACT_JOSE.test(data)) {
      throw new TypeError(
        `audit ${path} looks like a token (compact JWS/JWE); record its jti or a hash prefix instead`,
      );
    }
    return;
  }
  if (data === null || typeof data !== 'object') return;
  if (Array.isArray(data)) {
    data.forEach((v, i) => assertNoSecrets(v, `${path}[${i}]`));
    return;
  }
  const obj = data as Record<string, unknown>;
  // A private JWK, whatever key it sits under.
  if (typeof obj.kty === 'string' && obj.d !== undefined) {
    throw new TypeError(`audit ${path} looks like a private key; record its kid instead`);
  }
  for (const [key, value] of Object.entries(obj)) {
    if (value !== undefined && value !== null && SECRET_KEYS.has(key.toLowerCase().replace(/[_-]/g, ''))) {
      throw new TypeError(`audit ${path}.${key} may hold a secret; record a jti or a hash prefix instead`);
    }
    assertNoSecrets(value, `${path}.${key}`);
  }
}
