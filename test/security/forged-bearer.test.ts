// Forged and misused bearer tokens at the proxy: each is refused with 401, an RFC 6750 challenge naming
// invalid_token, and the upstream never sees the request.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { SignJWT, generateKeyPair, exportJWK, decodeJwt, decodeProtectedHeader } from 'jose';
import { startProxyFixture, rawGet, type ProxyFixture } from '../helpers/proxy.js';
import { signJwt, TYP_ACCESS_TOKEN, newJti } from '../../src/tokens/sign.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('forged bearer tokens at the proxy', () => {
  let f: ProxyFixture;
  let aud: string;
  let good: string;
  before(async () => {
    f = await startProxyFixture();
    aud = `${f.url}/app/`;
    good = await f.token(aud, 'admin');
  });
  after(() => f.close());

  const claims = () => {
    const now = Math.floor(Date.now() / 1000);
    return { iss: f.url, sub: 'admin', aud, iat: now, exp: now + 300, jti: newJti(), roles: ['admin'] };
  };

  async function refused(token: string, code?: string) {
    const before = f.up.seen.length;
    const r = await rawGet(f.port, '/app/admin/x', [`Authorization: Bearer ${token}`]);
    assert.equal(r.status, 401, r.body);
    assert.match(
      r.headers['www-authenticate'] ?? '',
      /^Bearer .*error="invalid_token", error_description="[^"]+"/,
    );
    const body = JSON.parse(r.body) as { error: string; audit_id?: string };
    assert.equal(body.error, 'invalid_token');
    if (code) {
      await f.t.gh.audit.flush();
      const rows = await f.t.gh.store.queryAudit({ type: 'access.denied', limit: 1000 });
      const row = rows.find((x) => x.id === body.audit_id);
      assert.equal(row?.data.code, code);
    }
    assert.equal(f.up.seen.length, before);
  }

  test('the genuine token passes (baseline)', async () => {
    const r = await rawGet(f.port, '/app/admin/x', [`Authorization: Bearer ${good}`]);
    assert.equal(r.status, 200);
  });

  test('alg none', async () => {
    await refused(`${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims())}.`);
  });

  test('HS256 signed with the public key as the secret', async () => {
    const jwk = f.t.gh.keys.active().publicJwk;
    const header = b64({ alg: 'HS256', typ: 'at+jwt', kid: f.t.gh.keys.active().kid });
    const payload = b64(claims());
    for (const secret of [JSON.stringify(jwk), String(jwk.x)]) {
      const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      await refused(`${header}.${payload}.${sig}`);
    }
  });

  test('tampered payload (roles raised)', async () => {
    const reader = await f.token(aud, 'reader');
    const [h, p, s] = reader.split('.') as [string, string, string];
    const c = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    c.roles = ['admin'];
    await refused(`${h}.${b64(c)}.${s}`, 'ERR_TOKEN_SIGNATURE_INVALID');
  });

  test("a foreign key using Gatehouse's kid", async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const t = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: f.t.gh.keys.active().kid })
      .sign(privateKey);
    await refused(t, 'ERR_TOKEN_SIGNATURE_INVALID');
  });

  test('a foreign key with its own kid', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const t = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'mine' })
      .sign(privateKey);
    await refused(t, 'ERR_TOKEN_KEY_NOT_FOUND');
  });

  test('an embedded jwk', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const t = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    await refused(t, 'ERR_TOKEN_HEADER_FORBIDDEN');
  });

  test('wrong audience: a token for another route', async () => {
    await refused(await f.token('http://app.example.com/', 'admin'), 'ERR_TOKEN_AUDIENCE_MISMATCH');
  });

  test('wrong audience: a prefix or longer path of the route', async () => {
    await refused(await f.token(`${f.url}/app`, 'admin'), 'ERR_TOKEN_AUDIENCE_MISMATCH');
    await refused(await f.token(`${f.url}/app/admin/`, 'admin'), 'ERR_TOKEN_AUDIENCE_MISMATCH');
  });

  test('expired (signed by Gatehouse itself)', async () => {
    const c = {
      ...claims(),
      iat: Math.floor(Date.now() / 1000) - 3600,
      exp: Math.floor(Date.now() / 1000) - 600,
    };
    const { token } = await signJwt(f.t.gh.keys, c, TYP_ACCESS_TOKEN);
    await refused(token, 'ERR_TOKEN_EXPIRED');
  });

  test('another issuer (signed by Gatehouse key, iss changed)', async () => {
    const { token } = await signJwt(
      f.t.gh.keys,
      { ...claims(), iss: 'https://evil.example.com' },
      TYP_ACCESS_TOKEN,
    );
    await refused(token, 'ERR_TOKEN_ISSUER_MISMATCH');
  });

  test('revoked by jti after it was cached: refused at once', async () => {
    const t = await f.token(aud, 'admin');
    const ok = await rawGet(f.port, '/app/admin/x', [`Authorization: Bearer ${t}`]);
    assert.equal(ok.status, 200);
    const { jti, exp } = decodeJwt(t);
    await f.t.gh.revocations.revoke({
      kind: 'jti',
      value: jti as string,
      issuer: f.url,
      expiresAt: (exp as number) * 1000,
    });
    await refused(t, 'ERR_TOKEN_REVOKED');
  });

  test('revoked by client', async () => {
    const t = await f.token(aud, 'reader');
    await f.t.gh.revocations.revoke({ kind: 'client', value: 'reader' });
    await refused(t, 'ERR_TOKEN_REVOKED');
  });

  test('the X-Gatehouse-Assertion itself, replayed as a bearer token', async () => {
    const ok = await rawGet(f.port, '/app/x', [`Authorization: Bearer ${good}`]);
    assert.equal(ok.status, 200);
    const assertion = f.up.seen.at(-1)?.headers['x-gatehouse-assertion'] as string;
    assert.equal(decodeProtectedHeader(assertion).typ, 'gatehouse-assertion+jwt');
    assert.equal(decodeJwt(assertion).aud, aud);
    await refused(assertion, 'ERR_TOKEN_TYPE_MISMATCH');
  });

  test('garbage and five-segment (JWE-shaped) tokens', async () => {
    await refused('not-a-jwt', 'ERR_TOKEN_MALFORMED');
    await refused(`${b64({ alg: 'ES256' })}.a.b.c.d`, 'ERR_TOKEN_MALFORMED');
  });
});
