// The return URL after sign-in: the classic open-redirect bypasses are each refused, with the code;
// what is allowed comes back as a normalized absolute URL on an allowed host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkReturnUrl } from '../../src/session/return-url.js';
import { isGatehouseError } from '../../src/lib/errors.js';

const policy = { issuer: 'https://id.example.com', hosts: ['app.example.com', '*.apps.example.com'] };

const refused: Array<[string, string]> = [
  ['protocol-relative', '//evil.com'],
  ['protocol-relative with path', '//evil.com/x'],
  ['backslash', '/\\evil.com'],
  ['double backslash', '\\\\evil.com'],
  ['scheme without slashes', 'https:evil.com'],
  ['scheme without slashes, http', 'http:evil.com'],
  ['tab after slash', '/\t/evil.com'],
  ['newline after slash', '/\n/evil.com'],
  ['percent-encoded tab decoded once', decodeURIComponent('/%09/evil.com')],
  ['encoded double slash', '/%2F%2Fevil.com'],
  ['encoded double slash, lower case', '/%2f/evil.com'],
  ['userinfo', 'https://id.example.com@evil.com'],
  ['userinfo with port', 'https://id.example.com:443@evil.com/'],
  ['userinfo encoded at-sign left in', 'https://app.example.com%40evil.com'],
  ['mixed-case scheme to another host', 'HtTpS://EVIL.com/'],
  ['another host', 'https://evil.com/'],
  ['look-alike suffix', 'https://app.example.com.evil.com/'],
  ['javascript', 'javascript:alert(1)'],
  ['data', 'data:text/html,hi'],
  ['downgrade to http', 'http://app.example.com/'],
  ['triple slash', '///evil.com'],
  ['backslash inside authority', 'https://evil.com\\@app.example.com'],
];

for (const [name, raw] of refused) {
  test(`return URL refused: ${name}`, () => {
    assert.throws(
      () => checkReturnUrl(raw, policy),
      (e: unknown) => isGatehouseError(e, 'ERR_RETURN_URL_REFUSED'),
    );
  });
}

test('allowed return URLs come back normalized and absolute', () => {
  assert.equal(checkReturnUrl('/dashboard?x=1', policy), 'https://id.example.com/dashboard?x=1');
  assert.equal(checkReturnUrl('https://APP.example.com/a', policy), 'https://app.example.com/a');
  assert.equal(checkReturnUrl('https://x.apps.example.com/', policy), 'https://x.apps.example.com/');
  assert.equal(checkReturnUrl('', policy), 'https://id.example.com/');
  assert.equal(checkReturnUrl(null, policy), 'https://id.example.com/');
  // An encoded path stays a path on our host.
  assert.equal(checkReturnUrl('/%252F%252Fevil.com', policy), 'https://id.example.com/%252F%252Fevil.com');
});

// `*.apps.example.com` is one label more, as a TLS wildcard (RFC 6125 §6.4.3): a host an attacker can
// reach by adding labels, the bare apex, or a look-alike never matches it.
const wildcard = {
  issuer: 'https://id.example.com',
  hosts: ['*.apps.example.com', '*.ports.example.com:8443'],
};

const wildcardRefused: Array<[string, string]> = [
  ['two labels under a one-label wildcard', 'https://a.b.apps.example.com/'],
  ['deep subdomain under a wildcard', 'https://evil.attacker.x.apps.example.com/'],
  ['the bare apex of a wildcard', 'https://apps.example.com/'],
  ['hyphenated look-alike of the apex', 'https://evil-apps.example.com/'],
  ['wildcard host as a prefix of another domain', 'https://x.apps.example.com.evil.test/'],
  ['empty label before the wildcard suffix', 'https://.apps.example.com/'],
  ['wildcard with a port: another port', 'https://x.ports.example.com:9443/'],
  ['wildcard with a port: default port', 'https://x.ports.example.com/'],
  ['wildcard with a port: two labels', 'https://a.b.ports.example.com:8443/'],
];

for (const [name, raw] of wildcardRefused) {
  test(`return URL refused: ${name}`, () => {
    assert.throws(
      () => checkReturnUrl(raw, wildcard),
      (e: unknown) => isGatehouseError(e, 'ERR_RETURN_URL_REFUSED'),
    );
  });
}

test('a one-label wildcard allows exactly one label, in any case, on any port unless it names one', () => {
  assert.equal(checkReturnUrl('https://x.apps.example.com/a', wildcard), 'https://x.apps.example.com/a');
  assert.equal(checkReturnUrl('https://X.APPS.Example.COM/', wildcard), 'https://x.apps.example.com/');
  assert.equal(
    checkReturnUrl('https://x.apps.example.com:8443/', wildcard),
    'https://x.apps.example.com:8443/',
  );
  assert.equal(
    checkReturnUrl('https://x.ports.example.com:8443/', wildcard),
    'https://x.ports.example.com:8443/',
  );
});
