// Hot-path identifiers come from a pooled CSPRNG buffer: each byte used once, across chunk boundaries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomId } from '../../../src/lib/random.js';
import { newAuditId } from '../../../src/audit/index.js';
import { newJti } from '../../../src/tokens/sign.js';

test('ids never repeat, across many 4 KiB refills, and have the advertised size', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50_000; i++) seen.add(randomId(12)); // ~146 refills
  assert.equal(seen.size, 50_000);
  assert.match(newAuditId(), /^a_[A-Za-z0-9_-]{16}$/);
  assert.match(newJti(), /^[A-Za-z0-9_-]{22}$/);
});

test('consecutive ids share no bytes (no slice is handed out twice)', () => {
  const a = Buffer.from(randomId(4096), 'base64url');
  const b = Buffer.from(randomId(4096), 'base64url');
  assert.equal(a.length, 4096);
  assert.notDeepEqual(a, b);
});
