// One external issuer's signing keys: found by discovery, a configured jwks_uri or a pinned key set,
// cached within Cache-Control bounds, refetched at most once per cooldown, and kept when the issuer is down.
import { createPublicKey } from 'node:crypto';
import type { JsonWebKey as NodeJwk, KeyObject } from 'node:crypto';
import { GatehouseError } from '../lib/errors.js';
import { jwkFitsAlg, jwkWeakness } from './key-policy.js';
import { isJsonObject, parseStrictJson } from './strict-json.js';
import type { JsonObject } from './strict-json.js';
import type { JwsHeader, KeySource } from './verify.js';

export interface JsonWebKeySet {
  keys: readonly Record<string, unknown>[];
}

export interface JwksCacheOptions {
  /** The issuer exactly as tokens carry it in `iss`. */
  issuer: string;
  /** Where the key set lives; overrides discovery. */
  jwksUri?: string;
  /** Find `jwks_uri` in `${issuer}/.well-known/openid-configuration` (default when no jwksUri or pinned set). */
  discovery?: boolean;
  /** A fixed key set, for issuers without discovery; never fetched. */
  pinnedJwks?: JsonWebKeySet;
  fetch?: typeof fetch;
  /** Clock in milliseconds since the epoch. Default Date.now. */
  now?: () => number;
  /** Bounds on the Cache-Control max-age of a key set (seconds). Defaults 60 and 86400. */
  minTtlSec?: number;
  maxTtlSec?: number;
  /** Lifetime when the response says nothing about caching. Default 300. */
  defaultTtlSec?: number;
  /** At most one fetch per this many seconds, however many unknown kids arrive. Default 30. */
  cooldownSec?: number;
  timeoutMs?: number;
  /** Responses larger than this are refused. Default 512 KiB. */
  maxResponseBytes?: number;
  /** Allow plain http to hosts other than loopback (dev setups only). */
  allowInsecureHttp?: boolean;
  /** Called for each key skipped at load, with the reason (never key material). */
  onWarning?: (warning: JwksWarning) => void;
}

export interface JwksWarning {
  issuer: string;
  kid: string | undefined;
  reason: string;
}

export interface JwksStatus {
  issuer: string;
  jwksUri: string | undefined;
  knownKids: string[];
  fetchedAt: number | undefined;
  expiresAt: number | undefined;
  fetches: number;
  lastError: { code: string; message: string } | undefined;
  warnings: JwksWarning[];
}

interface Entry {
  kid: string | undefined;
  jwk: Record<string, unknown>;
  key: KeyObject;
}

const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const;
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

export class JwksCache implements KeySource {
  readonly issuer: string;
  readonly #pinned: boolean;
  readonly #discovery: boolean;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #minTtl: number;
  readonly #maxTtl: number;
  readonly #defaultTtl: number;
  readonly #cooldownMs: number;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #allowHttp: boolean;
  readonly #onWarning: ((w: JwksWarning) => void) | undefined;

  #jwksUri: string | undefined;
  #byKid = new Map<string, Entry>();
  #entries: Entry[] = [];
  #weak = new Map<string, string>();
  #warnings: JwksWarning[] = [];
  #fetchedAt: number | undefined;
  #expiresAt = 0;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #lastError: GatehouseError | undefined;
  #fetches = 0;

  constructor(opts: JwksCacheOptions) {
    if (typeof opts.issuer !== 'string' || opts.issuer === '') throw new TypeError('issuer is required');
    if (opts.pinnedJwks && (opts.jwksUri || opts.discovery)) {
      throw new TypeError(`issuer ${opts.issuer}: a pinned key set excludes jwksUri and discovery`);
    }
    this.issuer = opts.issuer;
    this.#pinned = opts.pinnedJwks !== undefined;
    this.#discovery = !this.#pinned && opts.jwksUri === undefined;
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#now = opts.now ?? Date.now;
    this.#minTtl = (opts.minTtlSec ?? 60) * 1000;
    this.#maxTtl = (opts.maxTtlSec ?? 86_400) * 1000;
    this.#defaultTtl = (opts.defaultTtlSec ?? 300) * 1000;
    this.#cooldownMs = (opts.cooldownSec ?? 30) * 1000;
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#maxBytes = opts.maxResponseBytes ?? 512 * 1024;
    this.#allowHttp = opts.allowInsecureHttp ?? false;
    this.#onWarning = opts.onWarning;
    if (opts.jwksUri !== undefined) this.#jwksUri = this.#checkUrl(opts.jwksUri, 'jwks_uri');
    else if (this.#discovery) this.#checkUrl(opts.issuer, 'issuer');
    if (opts.pinnedJwks) {
      this.#load(opts.pinnedJwks as unknown as JsonObject);
      this.#fetchedAt = this.#now();
      this.#expiresAt = Number.POSITIVE_INFINITY;
    }
  }

  /** The key for `header.kid` among this issuer's keys, refetching once per cooldown on a miss. */
  async getKey(header: JwsHeader): Promise<KeyObject> {
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    let refreshed = false;
    if (!this.#pinned && (this.#fetchedAt === undefined || this.#now() >= this.#expiresAt)) {
      // Expired or never loaded: try to refresh; on failure keep serving what we have (stale-while-error).
      refreshed = await this.#refreshWithinCooldown();
    }
    if (this.#fetchedAt === undefined) {
      throw (
        this.#lastError ??
        new GatehouseError('ERR_JWKS_FETCH_FAILED', `keys of ${this.issuer} are not loaded yet`, {
          field: 'jwks_uri',
          issuer: this.issuer,
        })
      );
    }
    let found = this.#find(kid, header.alg);
    if (found === undefined && !this.#pinned) {
      refreshed = (await this.#refreshWithinCooldown()) || refreshed;
      found = this.#find(kid, header.alg);
    }
    if (found !== undefined) return found.key;
    throw this.#notFound(kid, header.alg, refreshed);
  }

  /** Fetches now, whatever the cooldown (admin action, tests); concurrent callers share one fetch. */
  async refresh(): Promise<void> {
    if (this.#pinned) return;
    await this.#startFetch();
    if (this.#lastError && this.#fetchedAt === undefined) throw this.#lastError;
  }

  status(): JwksStatus {
    return {
      issuer: this.issuer,
      jwksUri: this.#jwksUri,
      knownKids: [...this.#byKid.keys()],
      fetchedAt: this.#fetchedAt,
      expiresAt: this.#expiresAt === 0 ? undefined : this.#expiresAt,
      fetches: this.#fetches,
      lastError: this.#lastError && { code: this.#lastError.code, message: this.#lastError.message },
      warnings: [...this.#warnings],
    };
  }

  #find(kid: string | undefined, alg: string): Entry | undefined {
    if (kid !== undefined) {
      const e = this.#byKid.get(kid);
      if (e === undefined) return undefined;
      if (!jwkFitsAlg(e.jwk, alg)) {
        throw new GatehouseError(
          'ERR_TOKEN_ALG_NOT_ALLOWED',
          `key ${kid} of ${this.issuer} cannot verify ${alg}`,
          {
            field: 'alg',
            expected:
              typeof e.jwk.alg === 'string' ? e.jwk.alg : `an algorithm for a ${String(e.jwk.kty)} key`,
            actual: alg,
            kid,
            issuer: this.issuer,
          },
        );
      }
      return e;
    }
    // No kid: acceptable only when exactly one key can verify this algorithm.
    const fits = this.#entries.filter((e) => jwkFitsAlg(e.jwk, alg));
    return fits.length === 1 ? fits[0] : undefined;
  }

  #notFound(kid: string | undefined, alg: string, refreshed: boolean): GatehouseError {
    const weak = kid !== undefined ? this.#weak.get(kid) : undefined;
    if (weak !== undefined) {
      return new GatehouseError('ERR_JWKS_KEY_WEAK', `key ${kid} of ${this.issuer} is not trusted: ${weak}`, {
        field: 'kid',
        actual: kid,
        reason: weak,
        issuer: this.issuer,
      });
    }
    const knownKids = [...this.#byKid.keys()];
    const ago =
      this.#fetchedAt === undefined ? undefined : Math.round((this.#now() - this.#fetchedAt) / 1000);
    const when = refreshed
      ? 'after refreshing the key set'
      : this.#pinned
        ? 'in the pinned key set'
        : `in the key set fetched ${ago} s ago (next refresh allowed within ${Math.round(this.#cooldownMs / 1000)} s)`;
    const what =
      kid === undefined ? `no kid, and not exactly one key fits ${alg}` : `kid ${kid.slice(0, 64)}`;
    return new GatehouseError('ERR_TOKEN_KEY_NOT_FOUND', `${this.issuer} has no key for ${what} ${when}`, {
      field: 'kid',
      expected: knownKids,
      actual: kid ?? null,
      issuer: this.issuer,
      refreshed,
      ...(this.#lastError ? { lastRefreshError: this.#lastError.message } : {}),
    });
  }

  /** Fetches unless one is running (then joins it) or the last attempt is within the cooldown. */
  async #refreshWithinCooldown(): Promise<boolean> {
    if (this.#inflight) {
      await this.#inflight;
      return true;
    }
    if (this.#now() - this.#lastAttemptAt < this.#cooldownMs) return false;
    await this.#startFetch();
    return true;
  }

  #startFetch(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    this.#lastAttemptAt = this.#now();
    this.#inflight = this.#fetchAndLoad()
      .then(() => {
        this.#lastError = undefined;
      })
      .catch((e: unknown) => {
        this.#lastError =
          e instanceof GatehouseError
            ? e
            : new GatehouseError(
                'ERR_JWKS_FETCH_FAILED',
                `could not fetch the keys of ${this.issuer}`,
                {},
                { cause: e },
              );
        if (this.#discovery) this.#jwksUri = undefined; // rediscover next time
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  async #fetchAndLoad(): Promise<void> {
    if (this.#jwksUri === undefined) this.#jwksUri = await this.#discover();
    const { body, cacheControl } = await this.#get(this.#jwksUri, 'jwks_uri');
    this.#load(body);
    const now = this.#now();
    this.#fetchedAt = now;
    this.#expiresAt = now + this.#ttl(cacheControl);
  }

  async #discover(): Promise<string> {
    const url = `${this.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const { body } = await this.#get(url, 'discovery');
    if (body.issuer !== this.issuer) {
      // OpenID Connect Discovery §4.3: the document must name exactly the issuer we asked about.
      throw new GatehouseError(
        'ERR_TOKEN_ISSUER_MISMATCH',
        `discovery document of ${this.issuer} names another issuer`,
        {
          field: 'issuer',
          expected: this.issuer,
          actual: typeof body.issuer === 'string' ? body.issuer.slice(0, 512) : (body.issuer ?? null),
          url,
          hint: 'configure the issuer exactly as the discovery document spells it (trailing slash included)',
        },
      );
    }
    if (typeof body.jwks_uri !== 'string') {
      throw new GatehouseError('ERR_JWKS_INVALID', `discovery document of ${this.issuer} has no jwks_uri`, {
        field: 'jwks_uri',
        url,
      });
    }
    return this.#checkUrl(body.jwks_uri, 'jwks_uri');
  }

  #checkUrl(raw: string, field: string): string {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new GatehouseError('ERR_JWKS_INVALID', `${field} of ${this.issuer} is not a URL`, {
        field,
        actual: raw,
      });
    }
    const ok =
      u.protocol === 'https:' || (u.protocol === 'http:' && (this.#allowHttp || LOOPBACK.has(u.hostname)));
    if (!ok) {
      throw new GatehouseError('ERR_JWKS_INVALID', `${field} of ${this.issuer} must use https`, {
        field,
        expected: 'https:// (http only for loopback)',
        actual: raw,
      });
    }
    return u.href;
  }

  async #get(url: string, field: string): Promise<{ body: JsonObject; cacheControl: string | null }> {
    this.#fetches++;
    let res: Response;
    try {
      res = await this.#fetch(url, {
        headers: { accept: 'application/json, application/jwk-set+json' },
        redirect: 'error',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (e) {
      throw new GatehouseError(
        'ERR_JWKS_FETCH_FAILED',
        `could not reach ${url} for the keys of ${this.issuer}`,
        { field, url, reason: e instanceof Error ? e.message : String(e) },
        { cause: e },
      );
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      throw new GatehouseError('ERR_JWKS_FETCH_FAILED', `${url} answered ${res.status}`, {
        field,
        url,
        expected: 200,
        actual: res.status,
      });
    }
    const text = await this.#readCapped(res, url, field);
    let body: unknown;
    try {
      body = parseStrictJson(text);
    } catch (e) {
      throw new GatehouseError('ERR_JWKS_INVALID', `${url} did not return valid JSON`, {
        field,
        url,
        reason: e instanceof Error ? e.message : String(e),
      });
    }
    if (!isJsonObject(body)) {
      throw new GatehouseError('ERR_JWKS_INVALID', `${url} did not return a JSON object`, { field, url });
    }
    return { body, cacheControl: res.headers.get('cache-control') };
  }

  async #readCapped(res: Response, url: string, field: string): Promise<string> {
    const tooLarge = (): GatehouseError =>
      new GatehouseError('ERR_JWKS_INVALID', `${url} returned more than ${this.#maxBytes} bytes`, {
        field,
        url,
        expected: `at most ${this.#maxBytes} bytes`,
      });
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > this.#maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw tooLarge();
    }
    if (!res.body) return '';
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > this.#maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  #ttl(cacheControl: string | null): number {
    let ttl = this.#defaultTtl;
    if (cacheControl !== null) {
      const m = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(cacheControl);
      if (m?.[1] !== undefined) ttl = Number(m[1]) * 1000;
      else if (/no-store|no-cache/i.test(cacheControl)) ttl = 0;
    }
    return Math.min(this.#maxTtl, Math.max(this.#minTtl, ttl));
  }

  /** Replaces the trusted keys wholesale: keys gone from the set stop being trusted now. */
  #load(body: JsonObject): void {
    const keys = body.keys;
    if (!Array.isArray(keys)) {
      throw new GatehouseError('ERR_JWKS_INVALID', `key set of ${this.issuer} has no "keys" array`, {
        field: 'keys',
      });
    }
    const warnings: JwksWarning[] = [];
    const weak = new Map<string, string>();
    const entries: Entry[] = [];
    const kidCount = new Map<string, number>();
    for (const k of keys) {
      if (isJsonObject(k) && typeof k.kid === 'string') kidCount.set(k.kid, (kidCount.get(k.kid) ?? 0) + 1);
    }
    for (const k of keys) {
      if (!isJsonObject(k)) {
        warnings.push({ issuer: this.issuer, kid: undefined, reason: 'entry is not a JSON object' });
        continue;
      }
      const kid = typeof k.kid === 'string' ? k.kid : undefined;
      let reason: string | undefined;
      if (k.kid !== undefined && typeof k.kid !== 'string') reason = 'kid is not a string';
      else if (kid !== undefined && (kidCount.get(kid) ?? 0) > 1)
        reason = 'kid appears more than once in the key set';
      else reason = jwkWeakness(k);
      let key: KeyObject | undefined;
      if (reason === undefined) {
        const pub: Record<string, unknown> = {};
        for (const m of PUBLIC_MEMBERS) if (k[m] !== undefined) pub[m] = k[m];
        try {
          key = createPublicKey({ key: pub as NodeJwk, format: 'jwk' });
        } catch {
          reason = 'not a valid public key (bad encoding or point not on the curve)';
        }
      }
      if (reason !== undefined || key === undefined) {
        const w = { issuer: this.issuer, kid, reason: reason ?? 'unusable' };
        warnings.push(w);
        if (kid !== undefined) weak.set(kid, w.reason);
        continue;
      }
      entries.push({ kid, jwk: { ...k }, key });
    }
    this.#entries = entries;
    this.#byKid = new Map(entries.filter((e) => e.kid !== undefined).map((e) => [e.kid as string, e]));
    this.#weak = weak;
    this.#warnings = warnings;
    for (const w of warnings) this.#onWarning?.(w);
  }
}
