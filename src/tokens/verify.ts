// The one strict JWT verifier (RFC 8725) for every JWT Gatehouse accepts: external subject tokens,
// bearer tokens at the proxy, its own tokens. Every refusal is a GatehouseError whose details say what
// was expected and what the token had, never the token itself.
import type { KeyObject } from 'node:crypto';
import { compactVerify, errors as joseErrors } from 'jose';
import type { CryptoKey } from 'jose';
import { GatehouseError } from '../lib/errors.js';
import type { ErrorCode } from '../lib/errors.js';
import { assertAlgorithmList, describeKeyFor, keyMismatch } from './key-policy.js';
import { StrictJsonError, isJsonObject, parseStrictJson } from './strict-json.js';
import type { JsonObject, JsonValue } from './strict-json.js';

export type { JsonObject, JsonValue } from './strict-json.js';

/** A protected header that passed the checks below: `alg` is allowed, `kid` (when present) is a short string. */
export interface JwsHeader extends JsonObject {
  alg: string;
}

export type VerificationKey = CryptoKey | KeyObject;

/** Anything that finds the key for a header among one issuer's keys (a JwksCache is one). */
export interface KeySource {
  getKey(header: JwsHeader): Promise<VerificationKey>;
}
export type KeyResolver = ((header: JwsHeader) => Promise<VerificationKey>) | KeySource;

export interface JwsVerifyOptions {
  /** Where the key comes from: only this issuer's keys, looked up by `kid`. */
  keys: KeyResolver;
  /** Exact, case-sensitive allow-list; each entry must be one of SUPPORTED_ALGORITHMS. */
  algorithms: readonly string[];
  /** The raw token is refused above this many bytes, before any parsing. Default 16 KiB. */
  maxTokenBytes?: number;
}

export interface VerifyOptions extends JwsVerifyOptions {
  /** Exact match on `iss`. */
  issuer: string;
  /** `aud` (a string or an array) must contain one of these exactly. */
  audience?: string | readonly string[];
  /** Accepted `typ` header values, compared case-insensitively with an optional `application/` prefix. */
  typ?: string | readonly string[];
  /** Leeway for `exp`, `nbf` and `iat`, in seconds. Default 30. */
  clockSkewSec?: number;
  /** Refuse tokens whose `iat` is older than this (then `iat` is required). */
  maxAgeSec?: number;
  /** Claims that must be present (not null). */
  requiredClaims?: readonly string[];
  /** The clock, in milliseconds since the epoch. Default Date.now. */
  now?: () => number;
}

export interface VerifiedJws {
  header: JwsHeader;
  payload: Uint8Array;
  kid: string | undefined;
  alg: string;
}

export interface VerifiedJwt {
  header: JwsHeader;
  /** Null-prototype throughout, so `__proto__` or `constructor` are only claim names. */
  claims: JsonObject;
  kid: string | undefined;
  alg: string;
}

export const DEFAULT_MAX_TOKEN_BYTES = 16 * 1024;
export const DEFAULT_CLOCK_SKEW_SEC = 30;
const MAX_KID_LENGTH = 256;
/** Header parameters that would let the token choose its own key or change how it is verified. */
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'x5c', 'jwk', 'crit', 'b64', 'zip'] as const;
const B64URL = /^[A-Za-z0-9_-]*$/;

const refuse = (code: ErrorCode, message: string, details: Record<string, unknown> = {}): GatehouseError =>
  new GatehouseError(code, message, details);

function assertSize(token: unknown, max: number): asserts token is string {
  if (typeof token !== 'string') throw new TypeError('token must be a string');
  // Checked before anything else: a huge token costs nothing but this comparison.
  if (token.length > max || Buffer.byteLength(token, 'utf8') > max) {
    throw refuse('ERR_TOKEN_TOO_LARGE', `token is larger than ${max} bytes`, {
      field: 'token',
      expected: `at most ${max} bytes`,
      actual: `${Buffer.byteLength(token, 'utf8')} bytes`,
    });
  }
}

/** Strict base64url (RFC 7515 §2): no padding, no other characters, and canonical trailing bits. */
function decodeSegment(segment: string, name: string): Buffer {
  const malformed = (): GatehouseError =>
    refuse('ERR_TOKEN_MALFORMED', `token ${name} is not canonical base64url`, { field: name });
  if (!B64URL.test(segment) || segment.length % 4 === 1) throw malformed();
  const bytes = Buffer.from(segment, 'base64url');
  // Node ignores stray trailing bits; two encodings of one byte string must not both verify.
  if (bytes.toString('base64url') !== segment) throw malformed();
  return bytes;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJsonSegment(bytes: Uint8Array, name: 'header' | 'payload'): JsonValue {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw refuse('ERR_TOKEN_MALFORMED', `token ${name} is not UTF-8`, { field: name });
  }
  try {
    return parseStrictJson(text);
  } catch (e) {
    if (e instanceof StrictJsonError && e.reason === 'duplicate-key') {
      throw refuse('ERR_TOKEN_MALFORMED', `token ${name} repeats the member "${e.key}"`, {
        field: `${name}.${e.key}`,
        expected: 'each member name once',
        actual: 'repeated',
        hint: 'two JSON parsers could read such a token differently, so it is refused',
      });
    }
    throw refuse('ERR_TOKEN_MALFORMED', `token ${name} is not JSON`, { field: name });
  }
}

interface Split {
  header: JwsHeader;
  headerB64: string;
  payloadB64: string;
  signatureB64: string;
}

function splitAndCheckHeader(token: string, algorithms: readonly string[]): Split {
  const parts = token.split('.');
  if (parts.length !== 3) {
    throw refuse('ERR_TOKEN_MALFORMED', `token has ${parts.length} segments; a compact JWS has 3`, {
      field: 'token',
      expected: '3 segments (header.payload.signature)',
      actual: `${parts.length} segments`,
      ...(parts.length === 5 ? { hint: 'encrypted tokens (JWE) are not accepted' } : {}),
    });
  }
  const [headerB64, payloadB64, signatureB64] = parts as [string, string, string];
  if (headerB64 === '') throw refuse('ERR_TOKEN_MALFORMED', 'token header is empty', { field: 'header' });
  const parsed = parseJsonSegment(decodeSegment(headerB64, 'header'), 'header');
  decodeSegment(payloadB64, 'payload');
  decodeSegment(signatureB64, 'signature');
  if (!isJsonObject(parsed))
    throw refuse('ERR_TOKEN_MALFORMED', 'token header is not a JSON object', { field: 'header' });

  const alg = parsed.alg;
  if (typeof alg !== 'string') {
    throw refuse('ERR_TOKEN_MALFORMED', 'token header has no "alg"', { field: 'alg', expected: algorithms });
  }
  if (!algorithms.includes(alg)) {
    throw refuse('ERR_TOKEN_ALG_NOT_ALLOWED', `algorithm ${alg.slice(0, 32)} is not allowed`, {
      field: 'alg',
      expected: [...algorithms],
      actual: alg.slice(0, 32),
    });
  }
  // After the algorithm check, so `alg: none` with an empty signature is reported as what it is.
  if (signatureB64 === '') {
    throw refuse('ERR_TOKEN_MALFORMED', 'token is unsigned', { field: 'signature', expected: 'a signature' });
  }
  for (const name of FORBIDDEN_HEADERS) {
    if (Object.prototype.hasOwnProperty.call(parsed, name)) {
      throw refuse('ERR_TOKEN_HEADER_FORBIDDEN', `token header parameter "${name}" is not accepted`, {
        field: name,
        expected: 'absent',
        actual: 'present',
        hint:
          name === 'crit' || name === 'b64'
            ? 'critical extensions and unencoded payloads are refused'
            : 'keys come only from the issuer’s configured key set, never from the token',
      });
    }
  }
  const kid = parsed.kid;
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH)) {
    throw refuse('ERR_TOKEN_MALFORMED', `token "kid" must be a string of 1 to ${MAX_KID_LENGTH} characters`, {
      field: 'kid',
      expected: `string, 1..${MAX_KID_LENGTH} characters`,
      actual:
        typeof kid === 'string' ? `string of ${kid.length} characters` : kid === null ? 'null' : typeof kid,
    });
  }
  return { header: parsed as JwsHeader, headerB64, payloadB64, signatureB64 };
}

async function resolveKey(keys: KeyResolver, header: JwsHeader): Promise<VerificationKey> {
  return typeof keys === 'function' ? keys(header) : keys.getKey(header);
}

/**
 * Verifies a compact JWS under the strict header rules and returns its header and raw payload. Most
 * callers want verifyJwt; this is the layer below it, for payloads that are not JWT claims.
 */
export async function verifyJws(token: string, opts: JwsVerifyOptions): Promise<VerifiedJws> {
  const max = opts.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES;
  assertSize(token, max);
  assertAlgorithmList(opts.algorithms);
  const { header } = splitAndCheckHeader(token, opts.algorithms);
  const { alg } = header;
  const kid = typeof header.kid === 'string' ? header.kid : undefined;

  const key = await resolveKey(opts.keys, header);
  const mismatch = keyMismatch(key, alg);
  if (mismatch !== undefined) {
    throw refuse(
      'ERR_TOKEN_ALG_NOT_ALLOWED',
      `the key ${kid ?? '(no kid)'} cannot verify ${alg}: ${mismatch}`,
      {
        field: 'alg',
        expected: describeKeyFor(alg),
        actual: mismatch,
        kid,
      },
    );
  }
  try {
    const { payload } = await compactVerify(token, key, { algorithms: [alg] });
    return { header, payload, kid, alg };
  } catch (e) {
    const code = e instanceof joseErrors.JOSEError ? e.code : undefined;
    throw new GatehouseError(
      'ERR_TOKEN_SIGNATURE_INVALID',
      'token signature does not verify',
      { field: 'signature', kid, alg, ...(code ? { reason: code } : {}) },
      { cause: e },
    );
  }
}

/** "3 min", "2 h 5 min", "40 s": how far apart two instants are, for people. */
export function describeSpan(seconds: number): string {
  const s = Math.round(Math.abs(seconds));
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

const iso = (sec: number): string => {
  const d = new Date(sec * 1000);
  return Number.isNaN(d.getTime()) ? String(sec) : d.toISOString();
};

function normalizeTyp(t: string): string {
  const l = t.toLowerCase();
  return l.startsWith('application/') ? l.slice('application/'.length) : l;
}

function numericClaim(claims: JsonObject, name: string, required: boolean): number | undefined {
  const v = claims[name];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw refuse(
      'ERR_TOKEN_CLAIM_INVALID',
      `claim "${name}" ${v === undefined ? 'is missing' : 'is not a number'}`,
      {
        field: name,
        expected: 'NumericDate (seconds since the epoch)',
        actual: v === undefined ? 'missing' : v === null ? 'null' : typeof v,
      },
    );
  }
  return v;
}

/**
 * Verifies a JWT: the strict JWS rules of verifyJws, then `iss`, `exp`/`nbf`/`iat` with a stated
 * leeway, maximum age, `aud`, `typ` and required claims. Claims come back in null-prototype objects.
 */
export async function verifyJwt(token: string, opts: VerifyOptions): Promise<VerifiedJwt> {
  if (typeof opts.issuer !== 'string' || opts.issuer === '') throw new TypeError('issuer is required');
  const { header, payload, kid, alg } = await verifyJws(token, opts);

  const parsed = parseJsonSegment(payload, 'payload');
  if (!isJsonObject(parsed)) {
    throw refuse('ERR_TOKEN_MALFORMED', 'token payload is not a JSON object', {
      field: 'payload',
      expected: 'a JSON object of claims',
      actual: Array.isArray(parsed) ? 'array' : parsed === null ? 'null' : typeof parsed,
    });
  }
  const claims = parsed;

  if (opts.typ !== undefined) {
    const accepted = (typeof opts.typ === 'string' ? [opts.typ] : [...opts.typ]).map(normalizeTyp);
    const typ = header.typ;
    if (typeof typ !== 'string' || !accepted.includes(normalizeTyp(typ))) {
      throw refuse(
        'ERR_TOKEN_TYPE_MISMATCH',
        `token type ${typeof typ === 'string' ? `"${typ.slice(0, 64)}"` : '(none)'} is not accepted here`,
        {
          field: 'typ',
          expected: typeof opts.typ === 'string' ? opts.typ : [...opts.typ],
          actual: typeof typ === 'string' ? typ.slice(0, 64) : null,
          hint: 'each kind of token has its own typ, so one kind is never taken for another',
        },
      );
    }
  }

  if (claims.iss !== opts.issuer) {
    throw refuse('ERR_TOKEN_ISSUER_MISMATCH', 'token issuer does not match', {
      field: 'iss',
      expected: opts.issuer,
      actual: typeof claims.iss === 'string' ? claims.iss.slice(0, 512) : (claims.iss ?? null),
      hint: 'issuers are compared exactly, including scheme and trailing slash',
    });
  }

  const nowSec = Math.floor((opts.now ?? Date.now)() / 1000);
  const leeway = opts.clockSkewSec ?? DEFAULT_CLOCK_SKEW_SEC;
  const timeDetails = { serverTime: nowSec, serverTimeIso: iso(nowSec), leewaySec: leeway };

  const exp = numericClaim(claims, 'exp', true) as number;
  const nbf = numericClaim(claims, 'nbf', false);
  const iat = numericClaim(claims, 'iat', opts.maxAgeSec !== undefined);

  if (nowSec >= exp + leeway) {
    throw refuse(
      'ERR_TOKEN_EXPIRED',
      `token expired ${describeSpan(nowSec - exp)} ago (leeway ${leeway} s)`,
      {
        field: 'exp',
        expected: `exp + ${leeway} s leeway > server time`,
        actual: exp,
        exp,
        expIso: iso(exp),
        ...timeDetails,
      },
    );
  }
  if (nbf !== undefined && nbf > nowSec + leeway) {
    throw refuse(
      'ERR_TOKEN_NOT_YET_VALID',
      `token is not valid for another ${describeSpan(nbf - nowSec)} (leeway ${leeway} s)`,
      {
        field: 'nbf',
        expected: `nbf <= server time + ${leeway} s leeway`,
        actual: nbf,
        nbf,
        nbfIso: iso(nbf),
        ...timeDetails,
        hint: 'check the clocks of the issuer and of this server',
      },
    );
  }
  if (iat !== undefined && iat > nowSec + leeway) {
    throw refuse(
      'ERR_TOKEN_ISSUED_IN_FUTURE',
      `token was issued ${describeSpan(iat - nowSec)} in the future (leeway ${leeway} s)`,
      {
        field: 'iat',
        expected: `iat <= server time + ${leeway} s leeway`,
        actual: iat,
        iat,
        iatIso: iso(iat),
        ...timeDetails,
        hint: 'check the clocks of the issuer and of this server',
      },
    );
  }
  if (opts.maxAgeSec !== undefined && iat !== undefined && nowSec - iat > opts.maxAgeSec + leeway) {
    throw refuse(
      'ERR_TOKEN_TOO_OLD',
      `token was issued ${describeSpan(nowSec - iat)} ago, more than the ${describeSpan(opts.maxAgeSec)} allowed`,
      {
        field: 'iat',
        expected: `issued at most ${opts.maxAgeSec} s (+ ${leeway} s leeway) ago`,
        actual: iat,
        iat,
        iatIso: iso(iat),
        maxAgeSec: opts.maxAgeSec,
        ...timeDetails,
      },
    );
  }

  if (opts.audience !== undefined) {
    const expected = typeof opts.audience === 'string' ? [opts.audience] : [...opts.audience];
    const aud = claims.aud;
    const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    const ok = auds.some((a) => typeof a === 'string' && expected.includes(a));
    if (!ok) {
      throw refuse('ERR_TOKEN_AUDIENCE_MISMATCH', 'token audience does not include the expected audience', {
        field: 'aud',
        expected: typeof opts.audience === 'string' ? opts.audience : expected,
        actual: aud === undefined ? 'missing' : aud,
        hint: 'the token must be requested for this audience exactly',
      });
    }
  }

  for (const name of opts.requiredClaims ?? []) {
    if (claims[name] === undefined || claims[name] === null) {
      throw refuse('ERR_TOKEN_CLAIM_INVALID', `claim "${name}" is required`, {
        field: name,
        expected: 'present',
        actual: 'missing',
      });
    }
  }

  return { header, claims, kid, alg };
}

/**
 * Reads `iss` WITHOUT verifying anything, only to pick which configured issuer's keys to verify with.
 * Never trust the result for anything else; undefined for anything that is not a plausible JWT.
 */
export function peekIssuer(token: unknown, maxTokenBytes = DEFAULT_MAX_TOKEN_BYTES): string | undefined {
  try {
    assertSize(token, maxTokenBytes);
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const payload = parseJsonSegment(decodeSegment(parts[1] ?? '', 'payload'), 'payload');
    return isJsonObject(payload) && typeof payload.iss === 'string' ? payload.iss : undefined;
  } catch {
    return undefined;
  }
}
