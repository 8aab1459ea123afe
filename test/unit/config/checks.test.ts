// Cross-field checks: what a per-field schema cannot see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/config/problems.js';

const BASE = 'issuer: { url: "https://id.example.com" }\nkeys: { encryption_key: "k" }\n';

test('a static claim cannot override what Gatehouse sets (sub, aud, roles…)', () => {
  const yaml = `${BASE}clients:\n  - id: a\n    allowed_audiences: ["x"]\n    claims: { sub: admin, aud: other, pipeline: ok }\n`;
  assert.throws(
    () => parseConfigText(yaml, { file: 'g.yaml', baseDir: '/tmp' }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      const paths = e.problems.map((p) => p.path);
      assert.deepEqual(paths.sort(), ['clients[0].claims.aud', 'clients[0].claims.sub']);
      assert.ok(e.problems.every((p) => p.line === 6));
      assert.match(e.message, /"sub" is set by Gatehouse and cannot be a static claim/);
      return true;
    },
  );
});

const FEDERATION = `${BASE}external_issuers:
  - { name: github, issuer: "https://token.actions.githubusercontent.com", audiences: ["https://id.example.com"] }
`;

function problemsOf(yaml: string): { path: string; message: string }[] {
  try {
    parseConfigText(yaml, { file: 'g.yaml', baseDir: '/tmp' });
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.problems.map((p) => ({ path: p.path, message: p.message }));
  }
  return [];
}

test('trust rules: single_use and outlive_subject default to false, and load when set', () => {
  const { config } = parseConfigText(
    `${FEDERATION}trust_rules:
  - { name: plain, issuer: github, conditions: { claim: repository, equals: a/b }, grant: { audiences: [vault] } }
  - name: once-long
    issuer: github
    single_use: true
    conditions: { claim: repository, equals: a/c }
    grant: { audiences: [vault], max_ttl: 15m, outlive_subject: true }
`,
    { file: 'g.yaml', baseDir: '/tmp' },
  );
  const [plain, once] = config.trust_rules;
  assert.equal(plain?.single_use, false);
  assert.equal(plain?.grant.outlive_subject, false);
  assert.equal(once?.single_use, true);
  assert.equal(once?.grant.outlive_subject, true);
});

test('trust rules: outlive_subject needs max_ttl, and is refused for Gatehouse’s own tokens', () => {
  const problems = problemsOf(`${FEDERATION}trust_rules:
  - name: unbounded
    issuer: github
    conditions: { claim: repository, equals: a/b }
    grant: { audiences: [vault], outlive_subject: true }
  - name: renew-forever
    issuer: gatehouse
    conditions: { claim: roles, contains: x }
    grant: { audiences: [vault], max_ttl: 10m, outlive_subject: true }
`);
  assert.deepEqual(
    problems.map((p) => p.path),
    ['trust_rules[0].grant.outlive_subject', 'trust_rules[1].grant.outlive_subject'],
  );
  assert.match(problems[0]?.message ?? '', /needs grant.max_ttl/);
  assert.match(problems[1]?.message ?? '', /renew tokens for ever/);
});

test('a route cannot accept bearer tokens through a single_use trust rule', () => {
  const problems = problemsOf(`${FEDERATION}trust_rules:
  - { name: once, issuer: github, single_use: true, conditions: { claim: repository, equals: a/b }, grant: { audiences: ["**"] } }
  - { name: many, issuer: github, conditions: { claim: repository, equals: a/b }, grant: { audiences: ["**"] } }
routes:
  - { name: ci, from: /ci/, to: ["http://127.0.0.1:9"], trust_rules: [many, once] }
`);
  assert.deepEqual(
    problems.map((p) => p.path),
    ['routes[0].trust_rules[1]'],
  );
  assert.match(problems[0]?.message ?? '', /"once" is single_use, which only token exchange can keep/);
});

test('host wildcards are whole leftmost labels: routes, return hosts, websocket origins', () => {
  const problems = problemsOf(`${BASE}sessions:
  return_hosts: ["*.example.com", "**.example.com:8443", "app-*.example.com", "a.*.example.com"]
routes:
  - { name: ok, from: "https://*.example.com/", to: ["http://127.0.0.1:1"], allowed_origins: ["https://*.example.com"] }
  - { name: partial, from: "https://app-*.example.com/", to: ["http://127.0.0.1:1"] }
  - { name: bare, from: "https://*/", to: ["http://127.0.0.1:1"] }
  - { name: origins, from: /o/, to: ["http://127.0.0.1:1"], allowed_origins: ["https://*.*.example.com", "*.example.com"] }
`);
  assert.deepEqual(
    problems.map((p) => p.path),
    [
      'sessions.return_hosts[2]',
      'sessions.return_hosts[3]',
      'routes[1].from',
      'routes[2].from',
      'routes[3].allowed_origins[0]',
      'routes[3].allowed_origins[1]',
    ],
  );
  assert.match(problems[2]?.message ?? '', /whole leftmost label, as in \*\.example\.com/);
  assert.match(problems[5]?.message ?? '', /not an origin/);
});

test('worker processes need a store they can share: not an in-memory SQLite', () => {
  const memory = `${BASE}store: { sqlite: { path: ":memory:" } }\n`;
  assert.deepEqual(problemsOf(`${memory}server: { workers: 2 }\n`), [
    {
      path: 'server.workers',
      message: 'worker processes cannot share an in-memory SQLite store (each would have its own)',
    },
  ]);
  assert.equal(problemsOf(`${memory}server: { workers: auto }\n`).length, 1);
  assert.deepEqual(problemsOf(`${memory}server: { workers: 1 }\n`), []);
  assert.deepEqual(problemsOf(`${BASE}store: { sqlite: { path: g.db } }\nserver: { workers: 2 }\n`), []);
});
