// Host patterns as TLS certificates match names (RFC 6125 §6.4.3): `*` is exactly one DNS label, never
// the apex; `**` is one label or more; case-insensitive; origins match scheme and port exactly.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileHostPortPattern,
  hostPatternProblem,
  hostPortPatternProblem,
  matchHostPattern,
  matchOriginPattern,
  originPatternProblem,
} from '../../../src/policy/index.js';

describe('matchHostPattern', () => {
  test('*.example.com is exactly one label more', () => {
    assert.equal(matchHostPattern('*.example.com', 'app.example.com'), true);
    assert.equal(matchHostPattern('*.example.com', 'a.b.example.com'), false, 'two labels');
    assert.equal(matchHostPattern('*.example.com', 'example.com'), false, 'the apex');
    assert.equal(matchHostPattern('*.example.com', '.example.com'), false, 'an empty label');
    assert.equal(matchHostPattern('*.example.com', 'evil-example.com'), false);
    assert.equal(matchHostPattern('*.example.com', 'app.example.com.evil.test'), false);
    assert.equal(matchHostPattern('*.example.com', 'appexample.com'), false);
  });

  test('case-insensitive, and a trailing dot (the DNS root) is the same name', () => {
    assert.equal(matchHostPattern('*.example.com', 'APP.Example.COM'), true);
    assert.equal(matchHostPattern('*.EXAMPLE.com', 'app.example.com'), true);
    assert.equal(matchHostPattern('*.example.com', 'app.example.com.'), true);
    assert.equal(matchHostPattern('App.Example.com', 'app.example.com'), true);
  });

  test('**.example.com is one label or more, still never the apex', () => {
    assert.equal(matchHostPattern('**.example.com', 'app.example.com'), true);
    assert.equal(matchHostPattern('**.example.com', 'a.b.example.com'), true);
    assert.equal(matchHostPattern('**.example.com', 'example.com'), false);
    assert.equal(matchHostPattern('**.example.com', 'a..example.com'), false);
    assert.equal(matchHostPattern('**.example.com', 'evil-example.com'), false);
  });

  test('an exact host is only itself', () => {
    assert.equal(matchHostPattern('app.example.com', 'app.example.com'), true);
    assert.equal(matchHostPattern('app.example.com', 'x.app.example.com'), false);
    assert.equal(matchHostPattern('[::1]', '[::1]'), true);
  });
});

describe('host patterns with a port (sessions.return_hosts)', () => {
  test('without a port any port matches; with one, only that port', () => {
    const any = compileHostPortPattern('*.example.com');
    assert.equal(any('app.example.com', '443'), true);
    assert.equal(any('app.example.com', '8443'), true);
    assert.equal(any('a.b.example.com', '443'), false);
    const p = compileHostPortPattern('*.example.com:8443');
    assert.equal(p('app.example.com', '8443'), true);
    assert.equal(p('app.example.com', '443'), false);
    assert.equal(p('a.b.example.com', '8443'), false);
    assert.equal(p('example.com', '8443'), false);
  });
});

describe('origin patterns (websocket allowed_origins)', () => {
  test('scheme and port must match exactly; the host as a host pattern', () => {
    const p = 'https://*.example.com';
    assert.equal(matchOriginPattern(p, 'https://app.example.com'), true);
    assert.equal(matchOriginPattern(p, 'https://APP.EXAMPLE.COM'), true);
    assert.equal(matchOriginPattern(p, 'https://app.example.com:443'), true, 'the default port written out');
    assert.equal(matchOriginPattern(p, 'https://a.b.example.com'), false);
    assert.equal(matchOriginPattern(p, 'https://example.com'), false);
    assert.equal(matchOriginPattern(p, 'https://evil-example.com'), false);
    assert.equal(matchOriginPattern(p, 'https://app.example.com.evil.test'), false);
    assert.equal(matchOriginPattern(p, 'http://app.example.com'), false, 'another scheme');
    assert.equal(matchOriginPattern(p, 'https://app.example.com:8443'), false, 'another port');
    assert.equal(matchOriginPattern(p, 'https://app.example.com/path'), false, 'not an origin');
    assert.equal(matchOriginPattern(p, 'null'), false);
    assert.equal(matchOriginPattern('https://*.example.com:8443', 'https://app.example.com:8443'), true);
    assert.equal(matchOriginPattern('https://*.example.com:8443', 'https://app.example.com'), false);
  });
});

describe('problems, for the config checks', () => {
  test('a wildcard is the whole leftmost label, with a domain after it', () => {
    for (const ok of [
      'app.example.com',
      '*.example.com',
      '**.example.com',
      '*.localhost',
      '10.0.0.1',
      '[::1]',
    ])
      assert.equal(hostPatternProblem(ok), undefined, ok);
    for (const bad of [
      '',
      '*',
      '**',
      'app-*.example.com',
      '*app.example.com',
      'a.*.example.com',
      '*.*.example.com',
      '*.example..com',
      '*.',
    ])
      assert.ok(hostPatternProblem(bad), `"${bad}" is refused`);
    assert.match(hostPatternProblem('a.*.example.com') ?? '', /whole leftmost label/);
    assert.ok(hostPatternProblem('app.example.com:443'), 'a port is not part of a host');
    assert.equal(hostPortPatternProblem('*.example.com:8443'), undefined);
    assert.ok(hostPortPatternProblem('*.example.com:https'));
    assert.equal(originPatternProblem('https://*.example.com'), undefined);
    assert.ok(originPatternProblem('*.example.com'), 'an origin has a scheme');
    assert.ok(originPatternProblem('https://*.example.com/path'));
  });
});
