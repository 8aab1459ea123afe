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
