// Regular-expression denial of service: a crafted claim against a catastrophically backtracking pattern.
// Policy regexes run on RE2 (linear time), and the JS-RegExp path (CEL's `matches`) is refused at load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, PolicyError } from '../../src/policy/index.js';

const EVIL = '^(a+)+$';
const crafted = 'a'.repeat(50_000) + '!';
const now = new Date('2024-01-15T10:30:00Z');

// Under JS RegExp each of these would take longer than the age of the universe; the timeout is generous
// and only proves that evaluation completes.
test('a regex criterion with (a+)+ on a crafted claim completes and denies', { timeout: 30_000 }, () => {
  const p = compilePolicy([{ name: 'evil', allow: { claim: 'sub', regex: EVIL } }]);
  const d = p.evaluate({ claims: { sub: crafted }, now });
  assert.equal(d.allowed, false);
  assert.equal(d.closest?.rule, 'evil');
  assert.equal(p.evaluate({ claims: { sub: 'aaaa' }, now }).allowed, true);
});

test('re2Matches in CEL with (a+)+ on a crafted claim completes and denies', { timeout: 30_000 }, () => {
  const p = compilePolicy([
    { allow: { cel: `re2Matches(claims.sub, "${EVIL}") || claims.sub.re2Matches("${EVIL}")` } },
  ]);
  assert.equal(p.evaluate({ claims: { sub: crafted }, now }).allowed, false);
  assert.equal(p.evaluate({ claims: { sub: 'aaaa' }, now }).allowed, true);
});

test('CEL matches (JS RegExp) is refused when the policy loads', () => {
  for (const expr of [`claims.sub.matches("${EVIL}")`, `matches(claims.sub, "${EVIL}")`]) {
    assert.throws(
      () => compilePolicy([{ allow: { cel: expr } }]),
      (err: unknown) =>
        err instanceof PolicyError &&
        err.code === 'ERR_POLICY_INVALID' &&
        err.problems.some((p) => p.path === 'rules[0].allow.cel' && /re2Matches/.test(p.message)),
    );
  }
});

test('a pattern taken from the token itself is refused when the policy loads', () => {
  assert.throws(
    () => compilePolicy([{ allow: { cel: 're2Matches(claims.sub, claims.pattern)' } }]),
    (err: unknown) =>
      err instanceof PolicyError && err.problems.some((p) => /string literal/.test(p.message)),
  );
});
