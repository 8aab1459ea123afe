// The per-issuer key cache against a real JWKS server on port 0: rotation, outages, floods of unknown
// kids, removed keys, Cache-Control bounds, discovery and weak keys.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { GatehouseError } from '../../../src/lib/errors.js';
import type { ErrorCode } from '../../../src/lib/errors.js';
import { JwksCache } from '../../../src/tokens/jwks-cache.js';
import type { JwksCacheOptions } from '../../../src/tokens/jwks-cache.js';
import { IssuerRegistry } from '../../../src/tokens/issuer-registry.js';
import { verifyJwt } from '../../../src/tokens/verify.js';
import { T0_SEC, makeKey, makeWeakRsaKey, manualClock, startJwksServer } from './helpers.js';
import type { JwksServer, TestKey } from './helpers.js';

let k1: TestKey;
let k2: TestKey;
let srv: JwksServer;

before(async () => {
  [k1, k2] = await Promise.all([makeKey('ES256', 'k1'), makeKey('ES256', 'k2')]);
  srv = await startJwksServer();
});
after(() => srv.close());

function setup(extra: Partial<JwksCacheOptions> = {}): {
  cache: JwksCache;
  clock: ReturnType<typeof manualClock>;
} {
  srv.hits.clear();
  srv.setKeys([k1.jwk]);
  srv.setDown(false);
  srv.setCacheControl(undefined);
  srv.setDiscoveryIssuer(undefined);
  srv.setDelayMs(0);
  const clock = manualClock();
  const cache = new JwksCache({ issuer: srv.url, discovery: true, now: clock.now, ...extra });
  return { cache, clock };
}

const mint = (key: TestKey, kid = key.kid): Promise<string> =>
  new SignJWT({ iss: srv.url, sub: 's', iat: T0_SEC, exp: T0_SEC + 10 * 86400 })
    .setProtectedHeader({ alg: 'ES256', kid })
    .sign(key.privateKey);

const verify = (tok: string, cache: JwksCache, now: () => number) =>
  verifyJwt(tok, { issuer: srv.url, keys: cache, algorithms: ['ES256'], now });

async function refused(p: Promise<unknown>, code: ErrorCode): Promise<GatehouseError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof GatehouseError, String(e));
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe('JwksCache', () => {
  test('discovers jwks_uri, verifies, and serves later tokens from the cache', async () => {
    const { cache, clock } = setup();
    await verify(await mint(k1), cache, clock.now);
    await verify(await mint(k1), cache, clock.now);
    assert.equal(srv.hits.get('/.well-known/openid-configuration'), 1);
    assert.equal(srv.jwksHits(), 1);
  });

  test('rotation: a new kid causes one refetch and is then accepted', async () => {
    const { cache, clock } = setup();
    await verify(await mint(k1), cache, clock.now);
    srv.setKeys([k1.jwk, k2.jwk]);
    clock.advance(31);
    const v = await verify(await mint(k2), cache, clock.now);
    assert.equal(v.kid, 'k2');
    assert.equal(srv.jwksHits(), 2);
  });

  test('a flood of unknown kids makes at most one fetch per cooldown', async () => {
    const { cache, clock } = setup();
    await verify(await mint(k1), cache, clock.now);
    clock.advance(31);
    const toks = await Promise.all(Array.from({ length: 50 }, (_, i) => mint(k1, `unknown-${i}`)));
    const results = await Promise.allSettled(toks.map((t) => verify(t, cache, clock.now)));
    assert.ok(results.every((r) => r.status === 'rejected'));
    assert.equal(srv.jwksHits(), 2, 'initial load + one refetch');
    for (const t of toks.slice(0, 10)) await verify(t, cache, clock.now).catch(() => undefined);
    assert.equal(srv.jwksHits(), 2, 'still within the cooldown');
    const e = await refused(verify(toks[0] as string, cache, clock.now), 'ERR_TOKEN_KEY_NOT_FOUND');
    assert.deepEqual(e.details.expected, ['k1']);
    assert.equal(e.details.actual, 'unknown-0');
    clock.advance(31);
    const e2 = await refused(verify(toks[1] as string, cache, clock.now), 'ERR_TOKEN_KEY_NOT_FOUND');
    assert.equal(e2.details.refreshed, true);
    assert.match(e2.message, /after refreshing/);
    assert.equal(srv.jwksHits(), 3);
  });

  test('concurrent misses share one in-flight fetch', async () => {
    const { cache, clock } = setup();
    srv.setDelayMs(50);
    await Promise.all(Array.from({ length: 20 }, async () => verify(await mint(k1), cache, clock.now)));
    assert.equal(srv.jwksHits(), 1);
  });

  test('issuer down: cached keys keep verifying after expiry (stale-while-error)', async () => {
    const { cache, clock } = setup();
    await verify(await mint(k1), cache, clock.now);
    srv.setDown(true);
    clock.advance(3600);
    await verify(await mint(k1), cache, clock.now);
    assert.equal(cache.status().lastError?.code, 'ERR_JWKS_FETCH_FAILED');
  });

  test('issuer down with nothing cached: ERR_JWKS_FETCH_FAILED, distinct from key-not-found', async () => {
    const { cache, clock } = setup();
    srv.setDown(true);
    await refused(verify(await mint(k1), cache, clock.now), 'ERR_JWKS_FETCH_FAILED');
    const unreachable = new JwksCache({
      issuer: 'http://127.0.0.1:1',
      discovery: true,
      now: clock.now,
      timeoutMs: 500,
    });
    await refused(verify(await mint(k1), unreachable, clock.now), 'ERR_JWKS_FETCH_FAILED');
  });

  test('a key removed from the JWKS stops working after the next fetch', async () => {
    const { cache, clock } = setup();
    srv.setKeys([k1.jwk, k2.jwk]);
    await verify(await mint(k1), cache, clock.now);
    srv.setKeys([k2.jwk]);
    clock.advance(301); // default TTL 300 s
    await refused(verify(await mint(k1), cache, clock.now), 'ERR_TOKEN_KEY_NOT_FOUND');
    await verify(await mint(k2), cache, clock.now);
  });

  test('Cache-Control max-age is honoured within [minTtl, maxTtl]', async () => {
    const { cache, clock } = setup({ jwksUri: `${srv.url}/jwks`, discovery: false });
    srv.setCacheControl('public, max-age=600');
    await verify(await mint(k1), cache, clock.now);
    clock.advance(599);
    await verify(await mint(k1), cache, clock.now);
    assert.equal(srv.jwksHits(), 1);
    clock.advance(2);
    await verify(await mint(k1), cache, clock.now);
    assert.equal(srv.jwksHits(), 2);

    // max-age=0 is raised to minTtl (60 s); a huge one is capped at maxTtl.
    const a = setup({ jwksUri: `${srv.url}/jwks`, discovery: false });
    srv.setCacheControl('max-age=0');
    await verify(await mint(k1), a.cache, a.clock.now);
    a.clock.advance(59);
    await verify(await mint(k1), a.cache, a.clock.now);
    assert.equal(srv.jwksHits(), 1);
    const b = setup({ jwksUri: `${srv.url}/jwks`, discovery: false, maxTtlSec: 3600 });
    srv.setCacheControl('max-age=99999999');
    await verify(await mint(k1), b.cache, b.clock.now);
    assert.equal((b.cache.status().expiresAt ?? 0) - (b.cache.status().fetchedAt ?? 0), 3600_000);
  });

  test('discovery naming another issuer (trailing slash) is refused naming both', async () => {
    const { cache, clock } = setup();
    srv.setDiscoveryIssuer(`${srv.url}/`);
    const e = await refused(verify(await mint(k1), cache, clock.now), 'ERR_TOKEN_ISSUER_MISMATCH');
    assert.equal(e.details.expected, srv.url);
    assert.equal(e.details.actual, `${srv.url}/`);
    assert.equal(srv.jwksHits(), 0);
  });

  test('weak and unusable keys are skipped with a warning and refused by kid', async () => {
    const weak = makeWeakRsaKey('weak');
    const warnings: string[] = [];
    const { cache, clock } = setup({ onWarning: (w) => warnings.push(`${w.kid}: ${w.reason}`) });
    srv.setKeys([
      k1.jwk,
      weak.jwk,
      { kty: 'oct', k: 'c2VjcmV0', kid: 'sym' },
      { ...k2.jwk, use: 'enc' },
      { kty: 'EC', crv: 'secp256k1', x: 'AA', y: 'AA', kid: 'k256' },
      { ...k2.jwk, kid: 'bad-e', kty: 'RSA', n: weak.jwk.n, e: 'Aw' },
    ]);
    await verify(await mint(k1), cache, clock.now);
    assert.deepEqual(cache.status().knownKids, ['k1']);
    assert.equal(warnings.length, 5);
    assert.ok(!warnings.join('\n').includes(String(weak.jwk.n)), 'warnings carry no key material');
    const tok = await new SignJWT({ iss: srv.url, exp: T0_SEC + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'k256' })
      .sign(k1.privateKey);
    const e = await refused(verify(tok, cache, clock.now), 'ERR_JWKS_KEY_WEAK');
    assert.match(e.message, /unknown curve/);
  });

  test('duplicate kids in a key set are ambiguous and trusted for neither', async () => {
    const { cache, clock } = setup();
    srv.setKeys([k1.jwk, { ...k2.jwk, kid: 'k1' }, k2.jwk]);
    await refused(verify(await mint(k1), cache, clock.now), 'ERR_JWKS_KEY_WEAK');
    await verify(await mint(k2), cache, clock.now);
  });

  test('a response over the size cap is refused', async () => {
    const { cache, clock } = setup({ jwksUri: `${srv.url}/huge`, discovery: false });
    await refused(verify(await mint(k1), cache, clock.now), 'ERR_JWKS_INVALID');
  });

  test('a pinned key set never fetches', async () => {
    const { clock } = setup();
    const cache = new JwksCache({ issuer: srv.url, pinnedJwks: { keys: [k1.jwk] }, now: clock.now });
    await verify(await mint(k1), cache, clock.now);
    await refused(verify(await mint(k2), cache, clock.now), 'ERR_TOKEN_KEY_NOT_FOUND');
    assert.equal(srv.hits.size, 0);
  });

  test('plain http to a non-loopback host is refused at construction', () => {
    assert.throws(
      () => new JwksCache({ issuer: 'http://issuer.example' }),
      (e) => e instanceof GatehouseError && e.code === 'ERR_JWKS_INVALID',
    );
  });
});

describe('IssuerRegistry', () => {
  test('an unknown iss is refused without any fetch; a known one verifies', async () => {
    const { cache, clock } = setup();
    const reg = new IssuerRegistry([{ issuer: srv.url, keys: cache, algorithms: ['ES256'], now: clock.now }]);
    const foreign = await new SignJWT({ iss: 'https://evil.example', exp: T0_SEC + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .sign(k1.privateKey);
    const e = await refused(reg.verify(foreign), 'ERR_TOKEN_ISSUER_UNKNOWN');
    assert.deepEqual(e.details.expected, [srv.url]);
    assert.equal(srv.hits.size, 0);
    const v = await reg.verify(await mint(k1));
    assert.equal(v.entry.issuer, srv.url);
  });
});
