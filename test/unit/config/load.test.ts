// The loader: every problem at once with the right lines, did-you-mean, secret references that resolve
// and never leak, defaults, relative paths and the base merge used by `gatehouse dev --config`.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfigText } from '../../../src/config/load.js';
import type { ConfigProblem } from '../../../src/config/problems.js';
import { ConfigError } from '../../../src/config/problems.js';
import { isGatehouseError } from '../../../src/lib/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
const KEK = 'q8Vd7sLx0cRz3TnWf1yHb5KpM2aEjG9uXo4iNeC6AQs';
writeFileSync(join(dir, 'kek'), `${KEK}\n`);

const parse = (text: string, env: Record<string, string | undefined> = {}, base?: Record<string, unknown>) =>
  parseConfigText(text, { file: 'gatehouse.yaml', baseDir: dir, env, base });

function problemsOf(fn: () => unknown): { error: ConfigError; problems: readonly ConfigProblem[] } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return { error: e, problems: e.problems };
  }
  assert.fail('expected the config to be refused');
}

const find = (problems: readonly ConfigProblem[], path: string) => {
  const p = problems.find((x) => x.path === path);
  assert.ok(p, `no problem at ${path}; got ${problems.map((x) => x.path).join(', ')}`);
  return p;
};

const MINIMAL = `issuer:
  url: https://id.example.com
keys:
  encryption_key: \${file:kek}
`;

describe('valid configurations', () => {
  test('defaults are applied', () => {
    const { config } = parse(MINIMAL);
    assert.equal(config.server.host, '127.0.0.1');
    assert.equal(config.server.port, 8080);
    assert.equal(config.keys.algorithm, 'ES256');
    assert.equal(config.tokens.default_ttl, 600_000);
    assert.equal(config.tokens.max_ttl, 3_600_000);
    assert.equal(config.tokens.clock_skew, 60_000);
    assert.deepEqual(config.clients, []);
    assert.deepEqual(config.log, { level: 'info', format: 'json' });
    assert.equal(config.store.sqlite?.path, join(dir, 'gatehouse.db'));
  });

  test('durations become milliseconds and client defaults apply', () => {
    const { config } = parse(`${MINIMAL}tokens:
  default_ttl: 90s
  max_ttl: 2h
clients:
  - id: ci
    allowed_audiences: ["https://api.example.com/**"]
    max_ttl: 10m
`);
    assert.equal(config.tokens.default_ttl, 90_000);
    assert.equal(config.tokens.max_ttl, 7_200_000);
    assert.equal(config.clients[0]?.max_ttl, 600_000);
    assert.deepEqual(config.clients[0]?.grant_types, ['client_credentials']);
    assert.deepEqual(config.clients[0]?.roles, []);
  });

  test('relative paths resolve against the config file directory; absolute ones stay', () => {
    const rel = parse(`${MINIMAL}store:\n  sqlite:\n    path: data/g.db\n`);
    assert.equal(rel.config.store.sqlite?.path, join(dir, 'data/g.db'));
    const abs = parse(`${MINIMAL}store:\n  sqlite:\n    path: /var/lib/g.db\n`);
    assert.equal(abs.config.store.sqlite?.path, '/var/lib/g.db');
    const mem = parse(`${MINIMAL}store:\n  sqlite:\n    path: ":memory:"\n`);
    assert.equal(mem.config.store.sqlite?.path, ':memory:');
  });

  test('a key with an empty value counts as unset, so its default applies', () => {
    const { config } = parse(`${MINIMAL}server:\nclients:\n`);
    assert.equal(config.server.port, 8080);
    assert.deepEqual(config.clients, []);
  });

  test('loadConfig reads the file and reports its absolute path and directory', async () => {
    const file = join(dir, 'gatehouse.yaml');
    writeFileSync(file, MINIMAL);
    const loaded = await loadConfig(file, { env: {} });
    assert.equal(loaded.file, file);
    assert.equal(loaded.baseDir, dir);
    assert.equal(loaded.config.keys.encryption_key, KEK);
  });

  test('a missing file is ERR_CONFIG_NOT_FOUND naming the path', async () => {
    const file = join(dir, 'nope.yaml');
    await assert.rejects(loadConfig(file), (e: unknown) => {
      assert.ok(isGatehouseError(e, 'ERR_CONFIG_NOT_FOUND'));
      assert.match(e.message, /nope\.yaml/);
      return true;
    });
  });
});

describe('every problem at once', () => {
  const BAD = `issuer:
  url: not-a-url
server:
  port: "eighty"
  hots: 0.0.0.0
keys:
  algorithm: ES257
  encryption_key: \${file:kek}
tokens:
  default_ttl: 10 minutes
clients:
  - id: ci
    allowed_audiences: ["a"]
  - id: deploy
    allowd_audiences: ["b"]
log:
  format: text
`;

  test('reports all problems with their lines, columns and paths', () => {
    const { error, problems } = problemsOf(() => parse(BAD));
    assert.equal(error.code, 'ERR_CONFIG_INVALID');
    const at = (path: string) => {
      const p = find(problems, path);
      return [p.line, p.column];
    };
    assert.deepEqual(at('issuer.url'), [2, 8]);
    assert.deepEqual(at('server.port'), [4, 9]);
    assert.deepEqual(at('server.hots'), [5, 3]);
    assert.deepEqual(at('keys.algorithm'), [7, 14]);
    assert.deepEqual(at('tokens.default_ttl'), [10, 16]);
    assert.deepEqual(at('clients[1].allowd_audiences'), [15, 5]);
    assert.deepEqual(at('log.format'), [17, 11]);
    // the missing required key is located at its entry
    assert.equal(find(problems, 'clients[1].allowed_audiences').line, 14);
    assert.equal(problems.length, 8);
    for (const p of problems) assert.equal(p.file, 'gatehouse.yaml');
  });

  test('the message is a readable list, one problem per line', () => {
    const { error } = problemsOf(() => parse(BAD));
    const lines = error.message.split('\n');
    assert.match(lines[0] ?? '', /8 problems/);
    assert.ok(
      lines.includes(
        '  gatehouse.yaml:15:5 clients[1].allowd_audiences: unknown key; did you mean "allowed_audiences"?',
      ),
      error.message,
    );
    assert.deepEqual(error.details.problems, error.problems);
  });

  test('unknown keys suggest the closest valid key at that path', () => {
    const { problems } = problemsOf(() => parse(BAD));
    assert.equal(find(problems, 'server.hots').suggestion, 'did you mean "host"?');
    assert.equal(
      find(problems, 'clients[1].allowd_audiences').suggestion,
      'did you mean "allowed_audiences"?',
    );
  });

  test('a key at the wrong level says where it belongs', () => {
    const { problems } = problemsOf(() => parse(`${MINIMAL}port: 8080\n`));
    assert.equal(find(problems, 'port').suggestion, '"port" belongs under "server.port"');
  });

  test('enum mistakes list the allowed values and suggest the closest', () => {
    const { problems } = problemsOf(() => parse(BAD));
    const alg = find(problems, 'keys.algorithm');
    assert.match(alg.message, /"ES256", "RS256", "EdDSA"/);
    assert.equal(alg.suggestion, 'did you mean "ES256"?');
    assert.match(find(problems, 'log.format').message, /"json", "pretty"/);
  });

  test('duration mistakes say how to write one', () => {
    const { problems } = problemsOf(() => parse(BAD));
    assert.match(find(problems, 'tokens.default_ttl').message, /not a duration.*90s, 10m, 1h or 7d/);
    const num = problemsOf(() => parse(`${MINIMAL}tokens:\n  max_ttl: 600\n`)).problems;
    const p = find(num, 'tokens.max_ttl');
    assert.match(p.message, /expected a duration/);
    assert.match(p.suggestion ?? '', /"600s"/);
  });

  test('duplicate keys are reported with both lines, alongside other problems', () => {
    const { problems } = problemsOf(() =>
      parse(`${MINIMAL}log:\n  level: info\n  level: debug\nserver:\n  port: -1\n`),
    );
    const dup = find(problems, 'log.level');
    assert.equal(dup.line, 7);
    assert.match(dup.message, /duplicate key.*line 6/);
    assert.equal(find(problems, 'server.port').line, 9);
  });

  test('YAML syntax errors carry line and column', () => {
    const { problems } = problemsOf(() => parse('issuer:\n  url: [https://x\nkeys: {\n'));
    assert.ok(problems.length >= 1);
    assert.ok(
      problems.every((p) => p.line >= 2 && p.column >= 1),
      JSON.stringify(problems),
    );
  });

  test('missing required keys are named', () => {
    const { problems } = problemsOf(() => parse('server:\n  port: 80\n'));
    assert.match(find(problems, 'issuer').message, /required key is missing/);
    assert.match(find(problems, 'keys').message, /required key is missing/);
  });

  test('a top level that is not a mapping is refused', () => {
    const { problems } = problemsOf(() => parse('- a\n- b\n'));
    assert.match(problems[0]?.message ?? '', /top level must be a mapping/);
  });

  test('cross-field checks: duplicate client ids and lifetimes above the ceiling', () => {
    const { problems } = problemsOf(() =>
      parse(`${MINIMAL}tokens:
  max_ttl: 1h
clients:
  - id: ci
    allowed_audiences: ["a"]
  - id: ci
    allowed_audiences: ["b"]
    max_ttl: 2h
`),
    );
    assert.match(find(problems, 'clients[1].id').message, /already used by clients\[0\]/);
    assert.equal(find(problems, 'clients[1].id').line, 10);
    assert.match(find(problems, 'clients[1].max_ttl').message, /longer than tokens\.max_ttl/);
  });

  test('alias bombs are refused, not expanded', () => {
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]',
    ].join('\n');
    const { problems } = problemsOf(() => parse(bomb));
    assert.ok(problems.length >= 1);
  });
});

describe('secret references', () => {
  test('${env:X} and ${file:X} resolve (file relative to the config, trailing newline trimmed)', () => {
    const { config, secrets } = parse(
      `${MINIMAL}clients:\n  - id: ci\n    allowed_audiences: ["https://\${env:API_HOST}/**"]\n`,
      { API_HOST: 'api.example.com' },
    );
    assert.equal(config.keys.encryption_key, KEK);
    assert.deepEqual(config.clients[0]?.allowed_audiences, ['https://api.example.com/**']);
    assert.ok(secrets.has(KEK));
    assert.ok(secrets.has('api.example.com'));
  });

  test('$${ writes a literal ${', () => {
    const { config } = parse(
      `${MINIMAL}clients:\n  - id: ci\n    name: "cost $${'$'}{x}"\n    allowed_audiences: ["a"]\n`,
    );
    assert.equal(config.clients[0]?.name, 'cost ${x}');
  });

  test('an unset variable and a missing file are ERR_CONFIG_REF_UNRESOLVED with lines', () => {
    const { error, problems } = problemsOf(() =>
      parse(
        `issuer:\n  url: https://id.example.com\nkeys:\n  encryption_key: \${file:missing/kek}\nlog:\n  level: \${env:LEVEL}\n`,
      ),
    );
    assert.equal(error.code, 'ERR_CONFIG_REF_UNRESOLVED');
    const kek = find(problems, 'keys.encryption_key');
    assert.equal(kek.line, 4);
    assert.match(kek.message, /missing\/kek does not exist/);
    const lvl = find(problems, 'log.level');
    assert.equal(lvl.line, 6);
    assert.match(lvl.message, /LEVEL is not set/);
    // the failed reference is the only problem there: no "empty value" noise after it
    assert.equal(problems.length, 2);
  });

  test('unresolved references are collected with the other problems', () => {
    const { error, problems } = problemsOf(() =>
      parse(
        `issuer:\n  url: https://id.example.com\nkeys:\n  encryption_key: \${env:KEK}\n  algoritm: ES256\n`,
      ),
    );
    assert.equal(error.code, 'ERR_CONFIG_INVALID');
    assert.equal(problems.length, 2);
    assert.equal(find(problems, 'keys.encryption_key').code, 'ERR_CONFIG_REF_UNRESOLVED');
  });

  test('anything else inside ${…} is a problem that suggests the right form', () => {
    const { problems } = problemsOf(() =>
      parse(
        `issuer:\n  url: https://id.example.com\nkeys:\n  encryption_key: \${KEK}\nlog:\n  level: \${fiel:lvl}\n  format: "\${env:X"\n`,
      ),
    );
    assert.equal(
      find(problems, 'keys.encryption_key').suggestion?.startsWith('did you mean "${env:KEK}"?'),
      true,
    );
    assert.equal(find(problems, 'log.level').suggestion?.startsWith('did you mean "${file:lvl}"?'), true);
    assert.match(find(problems, 'log.format').message, /unterminated/);
  });

  test('resolved values never appear in any message, even when the value itself is wrong', () => {
    const secretLevel = 'sUp3r-s3cret-LEVEL-value';
    const { error, problems } = problemsOf(() =>
      parse(
        `issuer:\n  url: \${env:URL}\nkeys:\n  encryption_key: \${file:kek}\n  algorithm: \${file:kek}\nlog:\n  level: \${env:LEVEL}\ntokens:\n  max_ttl: "x\${env:LEVEL}"\n`,
        { LEVEL: secretLevel, URL: `https://${secretLevel}?q=1` },
      ),
    );
    assert.ok(problems.length >= 4);
    const text = `${error.message}\n${JSON.stringify(error.details)}`;
    for (const secret of [secretLevel, KEK]) assert.ok(!text.includes(secret), `secret leaked in: ${text}`);
    // the problem shows the reference as written instead
    assert.match(find(problems, 'log.level').message, /\$\{env:LEVEL\}/);
  });
});

describe('base merge (gatehouse dev --config)', () => {
  const base = {
    issuer: { url: 'http://127.0.0.1:8080' },
    keys: { encryption_key: 'dev-kek' },
    server: { port: 8080 },
    clients: [{ id: 'demo', allowed_audiences: ['**'], roles: ['reader'] }],
  };

  test('objects deep-merge, arrays concatenate with the base first', () => {
    const { config } = parse(
      `server:\n  host: 0.0.0.0\nclients:\n  - id: ci\n    allowed_audiences: ["a"]\n`,
      {},
      base,
    );
    assert.equal(config.issuer.url, 'http://127.0.0.1:8080');
    assert.deepEqual(config.server, { host: '0.0.0.0', port: 8080, shutdown_grace: 10_000, workers: 1 });
    assert.deepEqual(
      config.clients.map((c) => c.id),
      ['demo', 'ci'],
    );
  });

  test('an empty file leaves the base as it is', () => {
    const { config } = parse('', {}, base);
    assert.deepEqual(
      config.clients.map((c) => c.id),
      ['demo'],
    );
  });

  test("problems in the file keep the file's paths and lines", () => {
    const { problems } = problemsOf(() =>
      parse(
        `clients:\n  - id: ci\n    allowed_audiences: ["a"]\n  - id: bad\n    allowd_audiences: ["b"]\n`,
        {},
        base,
      ),
    );
    const p = find(problems, 'clients[1].allowd_audiences');
    assert.equal(p.line, 5);
    assert.equal(p.file, 'gatehouse.yaml');
  });

  test('a duplicate of a base client id is reported at the file entry', () => {
    const { problems } = problemsOf(() =>
      parse(`clients:\n  - id: demo\n    allowed_audiences: ["a"]\n`, {}, base),
    );
    const p = find(problems, 'clients[0].id');
    assert.equal(p.line, 2);
  });
});
