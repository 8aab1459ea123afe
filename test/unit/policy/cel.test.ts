// The `cel:` criterion: numbers as users expect them, compile-time type checks with the rule's path,
// `matches` refused in favour of the RE2-backed `re2Matches`, and evaluation errors that fail closed.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, PolicyError } from '../../../src/policy/index.js';

const NOW = new Date('2024-01-15T10:30:00Z');

function cel(expr: string, claims: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const d = compilePolicy([{ name: 'c', allow: { cel: expr, ...extra } }]).evaluate({
    claims,
    now: NOW,
    request: { method: 'GET', path: '/admin/x', host: 'app.example.com', sourceIp: '10.0.0.1' },
  });
  const reason = d.reasons[0];
  assert.ok(reason);
  return { allowed: d.allowed, reason, decision: d };
}

function compileProblems(expr: string): { path: string; message: string }[] {
  try {
    compilePolicy([{ allow: { all: [{ claim: 'sub', exists: true }, { cel: expr }] } }]);
  } catch (err) {
    assert.ok(err instanceof PolicyError);
    assert.equal(err.code, 'ERR_POLICY_INVALID');
    return [...err.problems];
  }
  assert.fail(`expected ${expr} to be refused`);
}

describe('CEL numbers', () => {
  test('JSON integers compare and add as CEL ints', () => {
    assert.equal(cel('claims.exp > 100', { exp: 1_700_000_000 }).allowed, true);
    assert.equal(cel('claims.exp > 100', { exp: 50 }).allowed, false);
    assert.equal(cel('claims.n + 1 == 6', { n: 5 }).allowed, true);
    assert.equal(cel('claims.n == 5.0', { n: 5 }).allowed, true);
    assert.equal(cel('claims.ratio > 0.5', { ratio: 0.75 }).allowed, true);
    assert.equal(cel('size(claims.groups) >= 2', { groups: ['a', 'b'] }).allowed, true);
  });

  test('timestamps: now, and epoch seconds through timestamp()', () => {
    assert.equal(cel('timestamp(claims.iat) < now', { iat: 1_700_000_000 }).allowed, true);
    assert.equal(
      cel('now - timestamp(claims.iat) < duration("1h")', { iat: NOW.getTime() / 1000 - 60 }).allowed,
      true,
    );
    assert.equal(cel('now.getDayOfWeek() == 1 && now.getHours() == 10', {}).allowed, true);
  });

  test('claims, request and nested keys with dots', () => {
    assert.equal(
      cel('"admin" in claims.roles && request.method == "GET"', { roles: ['admin'] }).allowed,
      true,
    );
    assert.equal(
      cel('claims["kubernetes.io"].namespace == "ci"', { 'kubernetes.io': { namespace: 'ci' } }).allowed,
      true,
    );
    assert.equal(cel('request.path.startsWith("/admin/")', {}).allowed, true);
    assert.equal(cel('claims.ref_protected == "true"', { ref_protected: 'true' }).allowed, true);
  });
});

describe('CEL evaluation fails closed', () => {
  test('a missing key is a failed criterion with the error, and the author message', () => {
    const r = cel('claims.environment == "prod"', {}, { message: 'deploys need the prod environment' });
    assert.equal(r.allowed, false);
    assert.equal(r.reason.expected, 'claims.environment == "prod"');
    assert.equal(r.reason.actual, undefined);
    assert.match(r.reason.message ?? '', /^deploys need the prod environment \(CEL error: .*environment/);
    assert.equal(r.decision.message, 'deploys need the prod environment');
  });

  test('a runtime type error is a failed criterion', () => {
    const r = cel('claims.exp > 100', { exp: 'soon' });
    assert.equal(r.allowed, false);
    assert.match(r.reason.message ?? '', /CEL error/);
  });

  test('false is recorded as the actual value', () => {
    const r = cel('claims.n > 10', { n: 3 });
    assert.equal(r.reason.passed, false);
    assert.equal(r.reason.actual, false);
  });
});

describe('CEL at compile time', () => {
  test('syntax errors, unknown functions, unknown variables and non-bool results are problems at the rule path', () => {
    for (const expr of ['claims.a +', 'frobnicate(claims.a)', 'user.name == "x"', '"a" + 1', '1 + 2']) {
      const problems = compileProblems(expr);
      assert.equal(problems.length, 1, expr);
      assert.equal(problems[0]?.path, 'rules[0].allow.all[1].cel', expr);
    }
    assert.match(compileProblems('1 + 2')[0]?.message ?? '', /must return a bool/);
  });

  test('matches is refused, pointing at re2Matches', () => {
    for (const expr of [
      'claims.ref.matches("^refs/heads/.*$")',
      'claims.a == "x" || request.path.matches(".*")',
    ]) {
      const [p] = compileProblems(expr);
      assert.match(p?.message ?? '', /`matches` runs on JavaScript RegExp/);
      assert.match(p?.message ?? '', /re2Matches\(value, "pattern"\)/);
    }
  });

  test('re2Matches: function and method forms, full match, literal patterns only', () => {
    assert.equal(
      cel('re2Matches(claims.ref, "refs/heads/(main|release-[0-9]+)")', { ref: 'refs/heads/main' }).allowed,
      true,
    );
    assert.equal(
      cel('claims.ref.re2Matches("refs/heads/main")', { ref: 'refs/heads/main-evil' }).allowed,
      false,
    );
    assert.equal(cel('claims.ref.re2Matches(".*main.*")', { ref: 'refs/heads/main-evil' }).allowed, true);
    assert.equal(
      cel('claims.email.re2Matches("(?i).*@EXAMPLE\\\\.com")', { email: 'a@example.com' }).allowed,
      true,
    );
    assert.match(compileProblems('re2Matches(claims.a, claims.pattern)')[0]?.message ?? '', /string literal/);
    assert.match(compileProblems('claims.a.re2Matches("(a")')[0]?.message ?? '', /invalid RE2 regex/);
    assert.match(compileProblems('claims.a.re2Matches("(a)\\\\1")')[0]?.message ?? '', /invalid RE2 regex/);
  });

  test('cost bounds: length, nesting and nested comprehensions', () => {
    assert.match(
      compileProblems('true && '.repeat(600) + 'true')[0]?.message ?? '',
      /longer than|maxAstNodes|maxDepth/,
    );
    assert.match(
      compileProblems('claims.a.exists(x, claims.b.exists(y, x == y))')[0]?.message ?? '',
      /nested comprehensions/,
    );
    assert.doesNotThrow(() =>
      compilePolicy([{ allow: { cel: 'claims.groups.exists(g, g in ["a", "b"])' } }]),
    );
  });
});
