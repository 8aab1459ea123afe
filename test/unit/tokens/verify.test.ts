// The strict verifier: each refusal with its code and the details a person needs to fix it.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import type { CryptoKey, JWTPayload } from 'jose';
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../../../src/lib/errors.js';
import type { ErrorCode } from '../../../src/lib/errors.js';
import { peekIssuer, verifyJwt } from '../../../src/tokens/verify.js';
import type { VerifyOptions } from '../../../src/tokens/verify.js';
import { T0, T0_SEC, makeKey, makeWeakRsaKey, signRaw } from './helpers.js';
import type { TestKey } from './helpers.js';

const ISS = 'https://issuer.example';
let es: TestKey;
let rs: TestKey;
let ed: TestKey;
let rsWeak: ReturnType<typeof makeWeakRsaKey>;

before(async () => {
  [es, rs, ed] = await Promise.all([
    makeKey('ES256', 'es-1'),
    makeKey('RS256', 'rs-1'),
    makeKey('EdDSA', 'ed-1'),
  ]);
  rsWeak = makeWeakRsaKey('rs-weak');
});

function opts(extra: Partial<VerifyOptions> = {}): VerifyOptions {
  const byKid = new Map<string, CryptoKey | KeyObject>([es, rs, ed, rsWeak].map((k) => [k.kid, k.publicKey]));
  return {
    issuer: ISS,
    algorithms: ['ES256', 'RS256', 'EdDSA'],
    keys: async (h) => {
      const k = byKid.get(String(h.kid));
      if (!k) throw new GatehouseError('ERR_TOKEN_KEY_NOT_FOUND', 'no key');
      return k;
    },
    now: () => T0,
    clockSkewSec: 30,
    ...extra,
  };
}

async function mint(
  key: TestKey,
  claims: JWTPayload = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT({ iss: ISS, sub: 'svc', aud: 'api', iat: T0_SEC, exp: T0_SEC + 600, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header })
    .sign(key.privateKey);
}

async function refused(p: Promise<unknown>, code: ErrorCode): Promise<GatehouseError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof GatehouseError, `expected GatehouseError, got ${String(e)}`);
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}, but the token was accepted`);
}

describe('verifyJwt accepts', () => {
  test('ES256, RS256 and EdDSA tokens from the issuer', async () => {
    for (const k of [es, rs, ed]) {
      const v = await verifyJwt(await mint(k), opts({ audience: 'api', typ: 'at+jwt' }));
      assert.equal(v.kid, k.kid);
      assert.equal(v.alg, k.alg);
      assert.equal(v.claims.sub, 'svc');
    }
  });
  test('aud as an array containing the audience', async () => {
    const v = await verifyJwt(await mint(es, { aud: ['other', 'api'] }), opts({ audience: 'api' }));
    assert.deepEqual(v.claims.aud, ['other', 'api']);
  });
  test('typ compared case-insensitively, with or without application/', async () => {
    await verifyJwt(await mint(es, {}, { typ: 'application/AT+JWT' }), opts({ typ: 'at+jwt' }));
  });
  test('claims and header come back in null-prototype objects, deeply', async () => {
    const v = await verifyJwt(await mint(es, { nested: { a: [{ b: 1 }] } }), opts());
    assert.equal(Object.getPrototypeOf(v.claims), null);
    assert.equal(Object.getPrototypeOf(v.header), null);
    const nested = v.claims.nested as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(nested), null);
    assert.equal(Object.getPrototypeOf((nested.a as object[])[0]), null);
  });
  test('within the leeway on either side', async () => {
    await verifyJwt(await mint(es, { exp: T0_SEC - 10, nbf: T0_SEC + 20, iat: T0_SEC + 20 }), opts());
  });
});

describe('verifyJwt refuses', () => {
  test('an expired token, saying how long ago, the server time and the leeway', async () => {
    const e = await refused(verifyJwt(await mint(es, { exp: T0_SEC - 180 }), opts()), 'ERR_TOKEN_EXPIRED');
    assert.match(e.message, /expired 3 min ago \(leeway 30 s\)/);
    assert.equal(e.details.field, 'exp');
    assert.equal(e.details.exp, T0_SEC - 180);
    assert.equal(e.details.serverTime, T0_SEC);
    assert.equal(e.details.leewaySec, 30);
  });
  test('a token without exp, or with a non-numeric exp', async () => {
    const tok = signRaw('{"alg":"ES256","kid":"es-1"}', JSON.stringify({ iss: ISS }), es.privateKey, 'ES256');
    const e = await refused(verifyJwt(tok, opts()), 'ERR_TOKEN_CLAIM_INVALID');
    assert.equal(e.details.field, 'exp');
    const tok2 = signRaw(
      '{"alg":"ES256","kid":"es-1"}',
      JSON.stringify({ iss: ISS, exp: '9999999999' }),
      es.privateKey,
      'ES256',
    );
    await refused(verifyJwt(tok2, opts()), 'ERR_TOKEN_CLAIM_INVALID');
  });
  test('nbf in the future beyond the leeway', async () => {
    const e = await refused(
      verifyJwt(await mint(es, { nbf: T0_SEC + 300 }), opts()),
      'ERR_TOKEN_NOT_YET_VALID',
    );
    assert.equal(e.details.nbf, T0_SEC + 300);
    assert.equal(e.details.serverTime, T0_SEC);
    assert.equal(e.details.leewaySec, 30);
  });
  test('iat in the future beyond the leeway', async () => {
    const e = await refused(
      verifyJwt(await mint(es, { iat: T0_SEC + 300 }), opts()),
      'ERR_TOKEN_ISSUED_IN_FUTURE',
    );
    assert.equal(e.details.iat, T0_SEC + 300);
  });
  test('a token older than maxAge, and one without iat when maxAge is set', async () => {
    const e = await refused(
      verifyJwt(await mint(es, { iat: T0_SEC - 3600, exp: T0_SEC + 600 }), opts({ maxAgeSec: 600 })),
      'ERR_TOKEN_TOO_OLD',
    );
    assert.equal(e.details.maxAgeSec, 600);
    const noIat = signRaw(
      '{"alg":"ES256","kid":"es-1"}',
      JSON.stringify({ iss: ISS, exp: T0_SEC + 60 }),
      es.privateKey,
      'ES256',
    );
    const e2 = await refused(verifyJwt(noIat, opts({ maxAgeSec: 600 })), 'ERR_TOKEN_CLAIM_INVALID');
    assert.equal(e2.details.field, 'iat');
  });
  test('a different issuer, even by a trailing slash', async () => {
    const e = await refused(
      verifyJwt(await mint(es, { iss: `${ISS}/` }), opts()),
      'ERR_TOKEN_ISSUER_MISMATCH',
    );
    assert.equal(e.details.expected, ISS);
    assert.equal(e.details.actual, `${ISS}/`);
  });
  test('an audience that is not contained exactly, naming both', async () => {
    const e = await refused(
      verifyJwt(await mint(es, { aud: ['API', 'api/'] }), opts({ audience: 'api' })),
      'ERR_TOKEN_AUDIENCE_MISMATCH',
    );
    assert.equal(e.details.expected, 'api');
    assert.deepEqual(e.details.actual, ['API', 'api/']);
    await refused(
      verifyJwt(await mint(es, { aud: undefined }), opts({ audience: 'api' })),
      'ERR_TOKEN_AUDIENCE_MISMATCH',
    );
  });
  test('an ID token where an access token is expected (typ)', async () => {
    const e = await refused(
      verifyJwt(await mint(es, {}, { typ: 'JWT' }), opts({ typ: 'at+jwt' })),
      'ERR_TOKEN_TYPE_MISMATCH',
    );
    assert.equal(e.details.actual, 'JWT');
    const noTyp = signRaw(
      '{"alg":"ES256","kid":"es-1"}',
      JSON.stringify({ iss: ISS, exp: T0_SEC + 60 }),
      es.privateKey,
      'ES256',
    );
    await refused(verifyJwt(noTyp, opts({ typ: 'at+jwt' })), 'ERR_TOKEN_TYPE_MISMATCH');
  });
  test('a missing required claim', async () => {
    const e = await refused(
      verifyJwt(await mint(es), opts({ requiredClaims: ['sub', 'jti'] })),
      'ERR_TOKEN_CLAIM_INVALID',
    );
    assert.equal(e.details.field, 'jti');
  });
  test('an algorithm outside the allow-list, with the list', async () => {
    const e = await refused(
      verifyJwt(await mint(rs), opts({ algorithms: ['ES256'] })),
      'ERR_TOKEN_ALG_NOT_ALLOWED',
    );
    assert.deepEqual(e.details.expected, ['ES256']);
    assert.equal(e.details.actual, 'RS256');
  });
  test('an allow-list compared case-sensitively', async () => {
    const tok = signRaw(
      '{"alg":"es256","kid":"es-1"}',
      JSON.stringify({ iss: ISS, exp: T0_SEC + 60 }),
      es.privateKey,
      'ES256',
    );
    await refused(verifyJwt(tok, opts()), 'ERR_TOKEN_ALG_NOT_ALLOWED');
  });
  test('a key that does not fit the algorithm (RSA key for an ES256 header)', async () => {
    const tok = signRaw(
      '{"alg":"ES256","kid":"rs-1"}',
      JSON.stringify({ iss: ISS, exp: T0_SEC + 60 }),
      es.privateKey,
      'ES256',
    );
    const e = await refused(verifyJwt(tok, opts()), 'ERR_TOKEN_ALG_NOT_ALLOWED');
    assert.match(String(e.details.actual), /needs an EC key/);
  });
  test('an RSA key under 2048 bits handed in by a resolver', async () => {
    const tok = signRaw(
      '{"alg":"RS256","kid":"rs-weak"}',
      JSON.stringify({ iss: ISS, exp: T0_SEC + 60 }),
      rsWeak.privateKey,
      'RS256',
    );
    const e = await refused(verifyJwt(tok, opts()), 'ERR_TOKEN_ALG_NOT_ALLOWED');
    assert.match(String(e.details.actual), /1024 bits/);
  });
  test('a kid that is too long or not a string', async () => {
    const long = signRaw(
      JSON.stringify({ alg: 'ES256', kid: 'k'.repeat(257) }),
      '{}',
      es.privateKey,
      'ES256',
    );
    const e = await refused(verifyJwt(long, opts()), 'ERR_TOKEN_MALFORMED');
    assert.equal(e.details.field, 'kid');
    const num = signRaw('{"alg":"ES256","kid":7}', '{}', es.privateKey, 'ES256');
    await refused(verifyJwt(num, opts()), 'ERR_TOKEN_MALFORMED');
  });
  test('a payload that is not an object', async () => {
    const tok = signRaw('{"alg":"ES256","kid":"es-1"}', '[1,2]', es.privateKey, 'ES256');
    await refused(verifyJwt(tok, opts()), 'ERR_TOKEN_MALFORMED');
  });
  test('a key the resolver does not know', async () => {
    await refused(verifyJwt(await mint(es, {}, { kid: 'nope' }), opts()), 'ERR_TOKEN_KEY_NOT_FOUND');
  });
  test('a token over the size cap, before parsing', async () => {
    const e = await refused(verifyJwt('x'.repeat(20_000), opts()), 'ERR_TOKEN_TOO_LARGE');
    assert.equal(e.details.expected, 'at most 16384 bytes');
    await refused(verifyJwt(await mint(es), opts({ maxTokenBytes: 100 })), 'ERR_TOKEN_TOO_LARGE');
  });
  test('error messages and details never contain the token', async () => {
    const tok = await mint(es, { exp: T0_SEC - 1000 });
    const e = await refused(verifyJwt(tok, opts()), 'ERR_TOKEN_EXPIRED');
    const sig = tok.split('.')[2] ?? '';
    assert.ok(!JSON.stringify({ m: e.message, d: e.details }).includes(sig));
  });
  test('HMAC or none in the allow-list is a programming error', async () => {
    await assert.rejects(verifyJwt(await mint(es), opts({ algorithms: ['HS256'] })), TypeError);
    await assert.rejects(verifyJwt(await mint(es), opts({ algorithms: ['none'] })), TypeError);
  });
});

describe('peekIssuer', () => {
  test('reads iss without verifying, and nothing from junk or oversized input', async () => {
    assert.equal(peekIssuer(await mint(es)), ISS);
    assert.equal(peekIssuer('a.b'), undefined);
    assert.equal(peekIssuer('x'.repeat(20_000)), undefined);
    assert.equal(peekIssuer(`e30.${Buffer.from('{"iss":1}').toString('base64url')}.x`), undefined);
  });
});
