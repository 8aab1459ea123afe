// The end of a jti revocation: the token.issued record's exp, else the token's own exp, else now + the
// longest a token of the issuer lives, each plus the clock skew; nothing to bound it keeps the entry.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { jtiRevocationExpiry } from '../../../src/revocation/index.js';

const T = Date.UTC(2026, 0, 1, 12);
const SKEW = 60_000;
const H = 3_600_000;
const sec = (ms: number) => Math.floor(ms / 1000);

describe('jtiRevocationExpiry', () => {
  test("the token.issued record's exp wins over the token's (decoded, not verified) exp", () => {
    assert.deepEqual(
      jtiRevocationExpiry({
        now: T,
        clockSkewMs: SKEW,
        issuedExp: sec(T + 600_000),
        tokenExp: sec(T + 60_000),
        maxLifetimeMs: H,
      }),
      { expiresAt: T + 600_000 + SKEW, basis: 'token.issued' },
    );
  });

  test('given the token only: its exp plus the clock skew (verifiers accept it until then)', () => {
    assert.deepEqual(
      jtiRevocationExpiry({ now: T, clockSkewMs: SKEW, tokenExp: sec(T + 90_000), maxLifetimeMs: H }),
      {
        expiresAt: T + 90_000 + SKEW,
        basis: 'token',
      },
    );
  });

  test('a jti only: now + the longest lifetime + the clock skew', () => {
    assert.deepEqual(jtiRevocationExpiry({ now: T, clockSkewMs: SKEW, maxLifetimeMs: H }), {
      expiresAt: T + H + SKEW,
      basis: 'lifetime',
    });
  });

  test('nothing bounds the token: kept (null), never an end that could come too early', () => {
    assert.deepEqual(jtiRevocationExpiry({ now: T, clockSkewMs: SKEW }), { expiresAt: null, basis: 'none' });
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -1])
      assert.deepEqual(jtiRevocationExpiry({ now: T, clockSkewMs: SKEW, tokenExp: bad, issuedExp: bad }), {
        expiresAt: null,
        basis: 'none',
      });
  });
});
