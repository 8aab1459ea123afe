// Forged and malformed tokens: each case builds the attack and proves the verifier refuses it with the
// right code (RFC 8725 §2 lists most of these).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { KeyObject } from 'node:crypto';
import { CompactSign, SignJWT, exportJWK } from 'jose';
import { GatehouseError } from '../../src/lib/errors.js';
import type { ErrorCode } from '../../src/lib/errors.js';
import { JwksCache } from '../../src/tokens/jwks-cache.js';
import { verifyJwt } from '../../src/tokens/verify.js';
import type { VerifyOptions } from '../../src/tokens/verify.js';
import { T0, T0_SEC, makeKey, signRaw } from '../unit/tokens/helpers.js';
import type { TestKey } from '../unit/tokens/helpers.js';

const ISS = 'https://issuer.example';
let rs: TestKey;
let es: TestKey;
let attacker: TestKey;
let opts: VerifyOptions;

before(async () => {
  [rs, es, attacker] = await Promise.all([
    makeKey('RS256', 'rs-1'),
    makeKey('ES256', 'es-1'),
    makeKey('ES256', 'es-1'),
  ]);
  opts = {
    issuer: ISS,
    keys: new JwksCache({ issuer: ISS, pinnedJwks: { keys: [rs.jwk, es.jwk] } }),
    algorithms: ['RS256', 'ES256'],
    now: () => T0,
  };
});

const claims = { iss: ISS, sub: 'alice', exp: T0_SEC + 600 };
const enc = (s: string): string => Buffer.from(s).toString('base64url');

async function refused(
  token: string,
  code: ErrorCode,
  o: Partial<VerifyOptions> = {},
): Promise<GatehouseError> {
  try {
    await verifyJwt(token, { ...opts, ...o });
  } catch (e) {
    assert.ok(e instanceof GatehouseError, String(e));
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`forged token accepted; expected ${code}`);
}

describe('forged tokens', () => {
  test('alg none, with and without a signature', async () => {
    await refused(
      `${enc('{"alg":"none","kid":"rs-1"}')}.${enc(JSON.stringify(claims))}.`,
      'ERR_TOKEN_ALG_NOT_ALLOWED',
    );
    await refused(
      `${enc('{"alg":"none"}')}.${enc(JSON.stringify(claims))}.c2ln`,
      'ERR_TOKEN_ALG_NOT_ALLOWED',
    );
    await refused(
      `${enc('{"alg":"\\u006eone"}')}.${enc(JSON.stringify(claims))}.c2ln`,
      'ERR_TOKEN_ALG_NOT_ALLOWED',
    );
    await refused(
      `${enc('{"alg":"None"}')}.${enc(JSON.stringify(claims))}.c2ln`,
      'ERR_TOKEN_ALG_NOT_ALLOWED',
    );
  });

  test('HS256 signed with the RSA public key as the HMAC secret (key confusion)', async () => {
    const pem = KeyObject.from(rs.publicKey).export({ type: 'spki', format: 'pem' }) as string;
    const jwkBytes = new TextEncoder().encode(JSON.stringify(await exportJWK(rs.publicKey)));
    for (const secret of [new TextEncoder().encode(pem), jwkBytes]) {
      const tok = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'rs-1' }).sign(secret);
      await refused(tok, 'ERR_TOKEN_ALG_NOT_ALLOWED');
    }
    // Even a misconfigured allow-list cannot open this door.
    const tok = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: 'rs-1' })
      .sign(new TextEncoder().encode(pem));
    await assert.rejects(verifyJwt(tok, { ...opts, algorithms: ['RS256', 'HS256'] }), TypeError);
  });

  test('RS256 header over the ES256 key (algorithm/key-type mismatch)', async () => {
    const tok = signRaw('{"alg":"RS256","kid":"es-1"}', JSON.stringify(claims), rs.privateKey, 'RS256');
    await refused(tok, 'ERR_TOKEN_ALG_NOT_ALLOWED');
  });

  test('tampered payload', async () => {
    const tok = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'es-1' })
      .sign(es.privateKey);
    const [h, , s] = tok.split('.');
    await refused(
      `${h}.${enc(JSON.stringify({ ...claims, sub: 'admin' }))}.${s}`,
      'ERR_TOKEN_SIGNATURE_INVALID',
    );
  });

  test('foreign key with the same kid', async () => {
    const tok = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'es-1' })
      .sign(attacker.privateKey);
    await refused(tok, 'ERR_TOKEN_SIGNATURE_INVALID');
  });

  test('embedded jwk, jku, x5u and x5c headers', async () => {
    const embedded: Record<string, unknown>[] = [
      { jwk: attacker.jwk },
      { jku: 'https://evil.example/jwks' },
      { x5u: 'https://evil.example/cert.pem' },
      { x5c: ['MIIB'] },
    ];
    for (const extra of embedded) {
      const tok = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
        .setProtectedHeader({ alg: 'ES256', kid: 'es-1', ...extra })
        .sign(attacker.privateKey);
      const e = await refused(tok, 'ERR_TOKEN_HEADER_FORBIDDEN');
      assert.equal(e.details.field, Object.keys(extra)[0]);
    }
  });

  test('crit and b64:false', async () => {
    const crit = signRaw(
      '{"alg":"ES256","kid":"es-1","crit":["exp"],"exp":1}',
      JSON.stringify(claims),
      es.privateKey,
      'ES256',
    );
    assert.equal((await refused(crit, 'ERR_TOKEN_HEADER_FORBIDDEN')).details.field, 'crit');
    const b64 = signRaw(
      '{"alg":"ES256","kid":"es-1","b64":false,"crit":["b64"]}',
      JSON.stringify(claims),
      es.privateKey,
      'ES256',
    );
    await refused(b64, 'ERR_TOKEN_HEADER_FORBIDDEN');
    const b64Only = signRaw(
      '{"alg":"ES256","kid":"es-1","b64":false}',
      JSON.stringify(claims),
      es.privateKey,
      'ES256',
    );
    assert.equal((await refused(b64Only, 'ERR_TOKEN_HEADER_FORBIDDEN')).details.field, 'b64');
  });

  test('JWE-shaped five-segment token', async () => {
    const jwe = [enc('{"alg":"RSA-OAEP","enc":"A256GCM"}'), 'a', 'b', 'c', 'd'].join('.');
    const e = await refused(jwe, 'ERR_TOKEN_MALFORMED');
    assert.match(String(e.details.hint), /JWE/);
  });

  test('oversized token, refused before parsing', async () => {
    const big = `${enc('{"alg":"ES256"}')}.${enc(JSON.stringify({ ...claims, pad: 'x'.repeat(20_000) }))}.c2ln`;
    await refused(big, 'ERR_TOKEN_TOO_LARGE');
  });

  test('duplicate alg in the header', async () => {
    const tok = signRaw(
      '{"alg":"none","alg":"ES256","kid":"es-1"}',
      JSON.stringify(claims),
      es.privateKey,
      'ES256',
    );
    const e = await refused(tok, 'ERR_TOKEN_MALFORMED');
    assert.equal(e.details.field, 'header.alg');
  });

  test('duplicate sub in the payload, validly signed', async () => {
    const payload = `{"iss":"${ISS}","sub":"alice","exp":${T0_SEC + 600},"sub":"admin"}`;
    const tok = signRaw('{"alg":"ES256","kid":"es-1"}', payload, es.privateKey, 'ES256');
    const e = await refused(tok, 'ERR_TOKEN_MALFORMED');
    assert.equal(e.details.field, 'payload.sub');
  });

  test('__proto__ and constructor claims are only names', async () => {
    const payload = `{"iss":"${ISS}","exp":${T0_SEC + 600},"__proto__":{"admin":true},"constructor":{"prototype":{"admin":true}}}`;
    const tok = signRaw('{"alg":"ES256","kid":"es-1"}', payload, es.privateKey, 'ES256');
    const v = await verifyJwt(tok, opts);
    assert.equal(Object.getPrototypeOf(v.claims), null);
    assert.equal((v.claims as Record<string, unknown>).admin, undefined);
    assert.ok(Object.keys(v.claims).includes('__proto__'));
    assert.deepEqual({ ...(v.claims.__proto__ as object) }, { admin: true });
    assert.equal(({} as Record<string, unknown>).admin, undefined, 'Object.prototype untouched');
  });

  test('non-canonical base64url (padding, stray characters, trailing bits)', async () => {
    const tok = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'es-1' })
      .sign(es.privateKey);
    const [h, p, s] = tok.split('.') as [string, string, string];
    await refused(`${h}.${p}.${s}=`, 'ERR_TOKEN_MALFORMED');
    await refused(`${h} .${p}.${s}`, 'ERR_TOKEN_MALFORMED');
    // A changed character inside the signature (the last one carries unused bits, see below).
    const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
    await refused(`${h}.${p}.${flipped}`, 'ERR_TOKEN_SIGNATURE_INVALID');
    // ES256 signature: 64 bytes = 86 chars, 2 trailing bits unused; setting one re-encodes differently.
    const last = s.at(-1) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twisted = alphabet[alphabet.indexOf(last) ^ 1] as string;
    await refused(`${h}.${p}.${s.slice(0, -1)}${twisted}`, 'ERR_TOKEN_MALFORMED');
  });

  test('kid that is not a string, or absurdly long', async () => {
    await refused(
      signRaw('{"alg":"ES256","kid":{"$ne":null}}', JSON.stringify(claims), es.privateKey, 'ES256'),
      'ERR_TOKEN_MALFORMED',
    );
    await refused(
      signRaw(
        JSON.stringify({ alg: 'ES256', kid: '../'.repeat(200) }),
        JSON.stringify(claims),
        es.privateKey,
        'ES256',
      ),
      'ERR_TOKEN_MALFORMED',
    );
  });
});
