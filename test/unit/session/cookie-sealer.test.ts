// CookieSealer: values sealed for storage open whatever their size; a cookie value longer than any cookie
// of ours is refused unread; a value sealed for one purpose never opens for another.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CookieSealer } from '../../../src/session/cookie.js';

const sealer = new CookieSealer(randomBytes(32));

test('a value sealed for storage opens whatever its size (an ID token, a JWT refresh token)', () => {
  for (const size of [10, 600, 4096]) {
    const value = 'x'.repeat(size);
    const sealed = sealer.seal(value, 'id_token:s1');
    assert.equal(sealer.unsealStored(sealed, 'id_token:s1'), value, `${size} characters`);
  }
});

test('a cookie value longer than 512 characters is refused, even sealed by us', () => {
  const short = sealer.seal('session-id', 'session');
  assert.equal(sealer.unsealCookie(short, 'session'), 'session-id');
  const long = sealer.seal('y'.repeat(600), 'session');
  assert.ok(long.length > 512);
  assert.equal(sealer.unsealCookie(long, 'session'), undefined);
});

test('a value sealed for one purpose does not open for another', () => {
  const sealed = sealer.seal('refresh-token', 'refresh:s1');
  assert.equal(sealer.unsealStored(sealed, 'refresh:s2'), undefined);
  assert.equal(sealer.unsealCookie(sealed, 'session'), undefined);
});
