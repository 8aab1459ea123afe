// Every criterion kind, matching and not, with the expected and actual values each reason records.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, type PolicyRequest, type Reason } from '../../../src/policy/index.js';

const NOW = new Date('2024-01-15T10:30:00Z'); // a Monday

function run(criteria: unknown, claims: Record<string, unknown>, request?: PolicyRequest, now = NOW) {
  const d = compilePolicy([{ name: 'r', allow: criteria }]).evaluate({
    claims,
    now,
    ...(request ? { request } : {}),
  });
  return { allowed: d.allowed, reasons: d.reasons, first: d.reasons[0] as Reason, decision: d };
}

describe('claim operators', () => {
  test('equals matches strictly and says when only the JSON type differs', () => {
    assert.equal(run({ claim: 'ref_protected', equals: 'true' }, { ref_protected: 'true' }).allowed, true);
    const r = run({ claim: 'ref_protected', equals: true }, { ref_protected: 'true' });
    assert.equal(r.allowed, false);
    assert.equal(r.first.expected, true);
    assert.equal(r.first.actual, 'true');
    assert.equal(r.first.criterion, 'claim ref_protected equals');
    assert.equal(r.first.path, 'rules[0].allow.equals');
    assert.match(r.first.message ?? '', /true \(boolean\) ≠ "true" \(string\)/);
    const n = run({ claim: 'n', equals: 5 }, { n: '5' });
    assert.match(n.first.message ?? '', /5 \(number\) ≠ "5" \(string\)/);
  });

  test('equals compares arrays and objects deeply, and ignore_case folds strings', () => {
    assert.equal(run({ claim: 'a', equals: [1, { b: 'x' }] }, { a: [1, { b: 'x' }] }).allowed, true);
    assert.equal(run({ claim: 'a', equals: [1, { b: 'x' }] }, { a: [1, { b: 'y' }] }).allowed, false);
    assert.equal(
      run({ claim: 'e', equals: 'Alice@Example.com', ignore_case: true }, { e: 'alice@example.COM' }).allowed,
      true,
    );
    assert.equal(run({ claim: 'e', equals: 'Alice@Example.com' }, { e: 'alice@example.COM' }).allowed, false);
  });

  test('an absent claim fails with actual undefined and says so', () => {
    const r = run({ claim: 'environment', equals: 'prod' }, { sub: 'x' });
    assert.equal(r.allowed, false);
    assert.equal(r.first.actual, undefined);
    assert.match(r.first.message ?? '', /claim "environment" is absent/);
  });

  test('in is any-of, and an array claim passes when any element is listed', () => {
    assert.equal(run({ claim: 'env', in: ['staging', 'prod'] }, { env: 'prod' }).allowed, true);
    const r = run({ claim: 'env', in: ['staging', 'prod'] }, { env: 'dev' });
    assert.equal(r.allowed, false);
    assert.deepEqual(r.first.expected, ['staging', 'prod']);
    assert.equal(r.first.actual, 'dev');
    assert.equal(run({ claim: 'aud', in: ['b', 'c'] }, { aud: ['a', 'c'] }).allowed, true);
    assert.equal(run({ claim: 'aud', in: ['b'] }, { aud: ['a', 'c'] }).allowed, false);
    assert.match(
      run({ claim: 'p', in: [true] }, { p: 'true' }).first.message ?? '',
      /JSON types are compared strictly/,
    );
  });

  test('glob: `*` stays within a segment and never crosses `/` or `:`; `**` does', () => {
    assert.equal(run({ claim: 'sub', glob: 'repo:org/*' }, { sub: 'repo:org/app' }).allowed, true);
    const r = run({ claim: 'sub', glob: 'repo:org/*' }, { sub: 'repo:org/app:ref:refs/heads/main' });
    assert.equal(r.allowed, false);
    assert.equal(r.first.expected, 'repo:org/*');
    assert.equal(r.first.actual, 'repo:org/app:ref:refs/heads/main');
    assert.equal(
      run({ claim: 'sub', glob: 'repo:org/*:**' }, { sub: 'repo:org/app:ref:refs/heads/main' }).allowed,
      true,
    );
    assert.equal(run({ claim: 'ref', glob: 'refs/heads/*' }, { ref: 'refs/heads/feature/x' }).allowed, false);
    assert.equal(run({ claim: 'ref', glob: 'refs/heads/**' }, { ref: 'refs/heads/feature/x' }).allowed, true);
    assert.equal(
      run({ claim: 'ref', glob: ['refs/tags/*', 'refs/heads/main'] }, { ref: 'refs/heads/main' }).allowed,
      true,
    );
    assert.equal(run({ claim: 'r', glob: 'Org/*' }, { r: 'org/app' }).allowed, false);
    assert.equal(run({ claim: 'r', glob: 'Org/*', ignore_case: true }, { r: 'org/app' }).allowed, true);
    const t = run({ claim: 'r', glob: '*' }, { r: 42 });
    assert.equal(t.allowed, false);
    assert.match(t.first.message ?? '', /expected string, actual number/);
  });

  test('regex is RE2 and a full match', () => {
    assert.equal(
      run({ claim: 'ref', regex: 'refs/heads/(main|release-\\d+)' }, { ref: 'refs/heads/release-12' })
        .allowed,
      true,
    );
    // Full match: a pattern never matches a mere substring.
    const r = run({ claim: 'ref', regex: 'refs/heads/main' }, { ref: 'refs/heads/main-evil' });
    assert.equal(r.allowed, false);
    assert.equal(r.first.expected, 'refs/heads/main');
    assert.equal(r.first.actual, 'refs/heads/main-evil');
    assert.equal(run({ claim: 'x', regex: 'abc' }, { x: 'ABC' }).allowed, false);
    assert.equal(run({ claim: 'x', regex: 'abc', ignore_case: true }, { x: 'ABC' }).allowed, true);
  });

  test('exists true and false', () => {
    assert.equal(run({ claim: 'sub', exists: true }, { sub: 'x' }).allowed, true);
    assert.equal(run({ claim: 'sub', exists: true }, {}).allowed, false);
    assert.equal(run({ claim: 'act', exists: false }, { sub: 'x' }).allowed, true);
    const r = run({ claim: 'act', exists: false }, { act: { sub: 'agent' } });
    assert.equal(r.allowed, false);
    assert.deepEqual(r.first.actual, { sub: 'agent' });
    assert.match(r.first.message ?? '', /is present/);
  });

  test('gt/gte/lt/lte on numbers, strictly typed', () => {
    assert.equal(run({ claim: 'n', gt: 5 }, { n: 6 }).allowed, true);
    assert.equal(run({ claim: 'n', gt: 5 }, { n: 5 }).allowed, false);
    assert.equal(run({ claim: 'n', gte: 5 }, { n: 5 }).allowed, true);
    assert.equal(run({ claim: 'n', lt: 5 }, { n: 4.5 }).allowed, true);
    assert.equal(run({ claim: 'n', lte: 5 }, { n: 6 }).allowed, false);
    assert.equal(run({ claim: 'n', gte: 1, lte: 3 }, { n: 2 }).allowed, true);
    const r = run({ claim: 'n', gt: 5 }, { n: '6' });
    assert.equal(r.allowed, false);
    assert.equal(r.first.actual, '6');
    assert.match(r.first.message ?? '', /is a string, not a number/);
  });

  test('time comparisons take ISO timestamps, epoch seconds and now±offset', () => {
    const iat = Math.floor(NOW.getTime() / 1000) - 600; // ten minutes ago
    assert.equal(run({ claim: 'iat', gte: 'now-1h' }, { iat }).allowed, true);
    const r = run({ claim: 'iat', gte: 'now-5m' }, { iat });
    assert.equal(r.allowed, false);
    assert.equal(r.first.expected, 'now-5m');
    assert.equal(r.first.actual, iat);
    assert.match(r.first.message ?? '', /2024-01-15T10:25:00.000Z/);
    assert.equal(
      run({ claim: 'created', lt: '2024-01-01T00:00:00Z' }, { created: '2023-12-31T23:00:00Z' }).allowed,
      true,
    );
    assert.equal(run({ claim: 'created', lt: '2024-01-01' }, { created: 1704067300 }).allowed, false);
    assert.equal(run({ claim: 'created', lt: '2024-01-01' }, { created: true }).allowed, false);
  });

  test('contains: the claim is an array holding the value', () => {
    assert.equal(run({ claim: 'amr', contains: 'mfa' }, { amr: ['pwd', 'mfa'] }).allowed, true);
    const r = run({ claim: 'amr', contains: 'mfa' }, { amr: ['pwd'] });
    assert.equal(r.allowed, false);
    assert.equal(r.first.expected, 'mfa');
    assert.deepEqual(r.first.actual, ['pwd']);
    assert.match(
      run({ claim: 'amr', contains: 'mfa' }, { amr: 'mfa' }).first.message ?? '',
      /expected array, actual string/,
    );
    assert.equal(run({ claim: 'l', contains: 'X', ignore_case: true }, { l: ['x'] }).allowed, true);
  });
});

describe('nested claims', () => {
  const k8s = {
    'kubernetes.io': { namespace: 'ci', serviceaccount: { name: 'deployer' } },
    realm_access: { roles: ['deploy'] },
  };

  test('dotted paths and JSON Pointers', () => {
    assert.equal(run({ claim: 'realm_access.roles', contains: 'deploy' }, k8s).allowed, true);
    assert.equal(run({ claim: '/kubernetes.io/namespace', equals: 'ci' }, k8s).allowed, true);
    assert.equal(run({ claim: '/kubernetes.io/serviceaccount/name', equals: 'deployer' }, k8s).allowed, true);
    assert.equal(run({ claim: '/realm_access/roles/0', equals: 'deploy' }, k8s).allowed, true);
    assert.equal(run({ claim: '/a~1b/c~0d', equals: 1 }, { 'a/b': { 'c~d': 1 } }).allowed, true);
  });

  test('a dotted path through a key with dots is absent, and the refusal suggests the pointer', () => {
    const r = run({ claim: 'kubernetes.io.namespace', equals: 'ci' }, k8s);
    assert.equal(r.allowed, false);
    assert.match(r.first.message ?? '', /JSON Pointer "\/kubernetes\.io\/namespace"/);
  });

  test('lookups never reach the prototype', () => {
    for (const path of [
      '__proto__',
      'constructor',
      'toString',
      'a.__proto__',
      'a.constructor.name',
      '/__proto__',
    ]) {
      assert.equal(run({ claim: path, exists: true }, { a: {} }).allowed, false, path);
    }
    const own = JSON.parse('{"__proto__": {"admin": true}}') as Record<string, unknown>;
    assert.equal(run({ claim: '__proto__.admin', equals: true }, own).allowed, true);
  });
});

describe('shorthands', () => {
  test('roles and groups are any-of against the claim array', () => {
    assert.equal(run({ roles: ['admin', 'ops'] }, { roles: ['engineer', 'admin'] }).allowed, true);
    const r = run({ roles: ['admin'] }, { roles: ['engineer'] });
    assert.equal(r.allowed, false);
    assert.deepEqual(r.first.expected, ['admin']);
    assert.deepEqual(r.first.actual, ['engineer']);
    assert.equal(r.first.criterion, 'roles');
    assert.equal(run({ groups: ['eng'] }, { groups: ['eng'] }).allowed, true);
    assert.match(run({ groups: ['eng'] }, {}).first.message ?? '', /absent/);
  });

  test('email glob and email_domain, case-insensitive, refused when not verified', () => {
    assert.equal(run({ email: '*@example.com' }, { email: 'Alice@Example.com' }).allowed, true);
    assert.equal(run({ email: '*@example.com' }, { email: 'alice@example.com.evil.io' }).allowed, false);
    assert.equal(run({ email_domain: ['example.com'] }, { email: 'bob@EXAMPLE.com' }).allowed, true);
    const r = run({ email_domain: ['example.com'] }, { email: 'bob@sub.example.com' });
    assert.equal(r.allowed, false);
    assert.equal(r.first.actual, 'bob@sub.example.com');
    const u = run({ email_domain: ['example.com'] }, { email: 'bob@example.com', email_verified: false });
    assert.equal(u.allowed, false);
    assert.match(u.first.message ?? '', /email_verified is false/);
  });

  test('method, path and host against the request', () => {
    const req = { method: 'get', path: '/admin/users', host: 'App.example.com', sourceIp: '10.1.2.3' };
    assert.equal(run({ method: ['GET', 'HEAD'] }, {}, req).allowed, true);
    assert.equal(run({ method: ['POST'] }, {}, req).first.actual, 'get');
    assert.equal(run({ path: '/admin/**' }, {}, req).allowed, true);
    const p = run({ path: '/admin/*/x' }, {}, req);
    assert.equal(p.allowed, false);
    assert.equal(p.first.expected, '/admin/*/x');
    assert.equal(p.first.actual, '/admin/users');
    assert.equal(run({ host: '*.example.com' }, {}, req).allowed, true);
    const none = run({ path: '/**' }, {});
    assert.equal(none.allowed, false);
    assert.match(none.first.message ?? '', /not available/);
  });

  test('host: *.example.com is one label more (RFC 6125), never the apex; **. is any depth', () => {
    const host = (h: string, pattern: string | string[] = '*.example.com') =>
      run({ host: pattern }, {}, { method: 'GET', path: '/', host: h, sourceIp: '10.0.0.1' });
    assert.equal(host('app.example.com').allowed, true);
    assert.equal(host('APP.Example.com').allowed, true);
    for (const h of ['a.b.example.com', 'example.com', 'evil-example.com', 'app.example.com.evil.test'])
      assert.equal(host(h).allowed, false, h);
    const deep = host('a.b.example.com');
    assert.equal(deep.first.expected, '*.example.com');
    assert.equal(deep.first.actual, 'a.b.example.com');
    assert.equal(host('a.b.example.com', '**.example.com').allowed, true);
    assert.equal(host('example.com', '**.example.com').allowed, false);
    // A wildcard anywhere but the whole leftmost label is refused when the policy compiles.
    assert.throws(
      () => compilePolicy([{ name: 'r', allow: { host: ['ok.example.com', 'app-*.example.com'] } }]),
      /host\[1\].*whole leftmost label/s,
    );
  });

  test('source_ip CIDRs, IPv4 and IPv6, mapped addresses as IPv4', () => {
    const ip = (sourceIp: string) => ({ sourceIp });
    assert.equal(run({ source_ip: ['10.0.0.0/8'] }, {}, ip('10.200.1.1')).allowed, true);
    assert.equal(run({ source_ip: ['10.0.0.0/8'] }, {}, ip('11.0.0.1')).allowed, false);
    assert.equal(run({ source_ip: ['10.0.0.0/8'] }, {}, ip('::ffff:10.0.0.1')).allowed, true);
    assert.equal(run({ source_ip: ['192.0.2.7'] }, {}, ip('192.0.2.7')).allowed, true);
    assert.equal(run({ source_ip: ['2001:db8::/32'] }, {}, ip('2001:db8:1::5')).allowed, true);
    assert.equal(run({ source_ip: ['2001:db8::/32'] }, {}, ip('2001:db9::5')).allowed, false);
    assert.equal(run({ source_ip: ['::1'] }, {}, ip('::1')).allowed, true);
    assert.equal(run({ source_ip: ['0.0.0.0/0'] }, {}, ip('::1')).allowed, false);
    const r = run({ source_ip: ['10.0.0.0/8'] }, {}, ip('not-an-ip'));
    assert.equal(r.allowed, false);
    assert.equal(r.first.actual, 'not-an-ip');
  });

  test('time windows, days and zones', () => {
    const at = (iso: string) => new Date(iso);
    const office = { time: { after: '09:00', before: '17:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'] } };
    assert.equal(run(office, {}, undefined, at('2024-01-15T10:30:00Z')).allowed, true);
    const late = run(office, {}, undefined, at('2024-01-15T17:00:00Z'));
    assert.equal(late.allowed, false);
    assert.equal(late.first.actual, 'mon 17:00 UTC');
    assert.equal(run(office, {}, undefined, at('2024-01-13T10:00:00Z')).allowed, false); // Saturday
    const night = { time: { after: '22:00', before: '06:00' } };
    assert.equal(run(night, {}, undefined, at('2024-01-15T23:30:00Z')).allowed, true);
    assert.equal(run(night, {}, undefined, at('2024-01-15T05:59:00Z')).allowed, true);
    assert.equal(run(night, {}, undefined, at('2024-01-15T12:00:00Z')).allowed, false);
    const berlin = { time: { after: '09:00', before: '10:00', tz: 'Europe/Berlin' } };
    assert.equal(run(berlin, {}, undefined, at('2024-01-15T08:30:00Z')).allowed, true);
    assert.equal(run(berlin, {}, undefined, at('2024-01-15T09:30:00Z')).allowed, false);
  });
});

describe('combinators', () => {
  test('all, any, not; several keys in one object must all pass', () => {
    const c = { any: [{ claim: 'env', equals: 'prod' }, { roles: ['admin'] }] };
    assert.equal(run(c, { env: 'dev', roles: ['admin'] }).allowed, true);
    const r = run(c, { env: 'dev', roles: [] });
    assert.equal(r.allowed, false);
    assert.equal(r.first.criterion, 'any');
    assert.equal(r.first.passed, false);
    assert.equal(r.decision.closest?.failed.criterion, 'any');
    assert.equal(
      run({ not: { claim: 'event_name', equals: 'pull_request' } }, { event_name: 'push' }).allowed,
      true,
    );
    const n = run({ not: { claim: 'event_name', equals: 'pull_request' } }, { event_name: 'pull_request' });
    assert.equal(n.allowed, false);
    assert.equal(n.first.criterion, 'not');
    assert.equal(run({ roles: ['a'], claim: 'x', equals: 1 }, { roles: ['a'], x: 1 }).allowed, true);
    assert.equal(run({ roles: ['a'], claim: 'x', equals: 1 }, { roles: ['a'], x: 2 }).allowed, false);
  });
});
