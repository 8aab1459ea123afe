// Hot-path identifiers come from a pooled CSPRNG buffer: each byte used once, across chunk boundaries;
// none starts with `-`, so a command line never reads one as an option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomId } from '../../../src/lib/random.js';
import { newAuditId } from '../../../src/audit/index.js';
import { newJti } from '../../../src/tokens/sign.js';
import { newSessionId } from '../../../src/session/sessions.js';

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

test('no id starts with -, and every other base64url character still comes first', () => {
  // 1 in 64 ids would start with `-`: in 20 000 of each kind, every kind would have had hundreds.
  for (const [kind, make] of [
    ['randomId(1)', () => randomId(1)],
    ['randomId(12)', () => randomId(12)],
    ['jti', newJti],
    ['session id', newSessionId],
  ] as const) {
    const firsts = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const c = make()[0] as string;
      firsts.set(c, (firsts.get(c) ?? 0) + 1);
    }
    assert.equal(firsts.get('-'), undefined, `a ${kind} started with -`);
    // Drawn again rather than mapped: the other 63 characters all lead, none of them twice as often.
    assert.equal(firsts.size, 63, kind);
    assert.ok(Math.max(...firsts.values()) < 2 * (20_000 / 63), `${kind}: first characters are skewed`);
  }
  assert.equal(randomId(0), '');
});
