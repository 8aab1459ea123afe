// The hand-off binding: a nonce matches only the binding made from it; anything malformed matches nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bindingMatches, bindingOf, isBinding, newNonce } from '../../../src/session/handoff-binding.js';

test('a nonce matches the binding made from it, and no other', () => {
  const nonce = newNonce();
  assert.ok(isBinding(nonce));
  const binding = bindingOf(nonce);
  assert.ok(isBinding(binding));
  assert.notEqual(binding, nonce, 'the binding is a hash, not the nonce');
  assert.equal(bindingMatches(nonce, binding), true);
  assert.equal(bindingMatches(newNonce(), binding), false);
  // Presenting the binding itself as the cookie (someone who saw the login URL) does not match.
  assert.equal(bindingMatches(binding, binding), false);
});

test('malformed nonces or bindings match nothing', () => {
  const nonce = newNonce();
  const binding = bindingOf(nonce);
  for (const bad of ['', 'short', `${nonce}A`, `${nonce.slice(0, -1)}=`, `${nonce.slice(0, -1)}.`])
    assert.equal(bindingMatches(bad, binding), false, bad);
  assert.equal(bindingMatches(nonce, ''), false);
  assert.equal(bindingMatches(nonce, `${binding}A`), false);
});
