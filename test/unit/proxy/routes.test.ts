// The route table's host matching: a `*.` route host is one label more (RFC 6125 §6.4.3), never the
// apex or a deeper name; `**.` is one label or more; exact hosts win over wildcards; ports as configured.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteTable } from '../../../src/proxy/routes.js';
import type { RouteConfig } from '../../../src/config/schema.js';

function route(name: string, from: string): RouteConfig {
  return {
    name,
    from,
    to: ['http://127.0.0.1:1'],
    policy: [],
    strip_prefix: false,
    preserve_host: false,
    timeout: 30_000,
    mode: 'enforce',
    websocket: { enabled: true, max_lifetime: 3_600_000 },
  };
}

const ISSUER = 'https://id.example.com';

describe('RouteTable host matching', () => {
  const table = new RouteTable(
    [
      route('wild', 'https://*.example.com/'),
      route('exact', 'https://app.example.com/'),
      route('deep', 'https://**.deep.example.com/'),
      route('ported', 'https://*.ported.example.com:8443/'),
    ],
    ISSUER,
  );
  const at = (host: string) => table.match(host, '/x')?.name;

  test('*.example.com is one label more, in any case, on its default port', () => {
    assert.equal(at('team.example.com'), 'wild');
    assert.equal(at('TEAM.Example.COM'), 'wild');
    assert.equal(at('team.example.com:443'), 'wild');
    assert.equal(at('team.example.com.'), 'wild');
  });

  test('not deeper names, the apex or look-alikes', () => {
    assert.equal(at('a.b.example.com'), undefined);
    assert.equal(at('example.com'), undefined);
    assert.equal(at('evil-example.com'), undefined);
    assert.equal(at('team.example.com.evil.test'), undefined);
    assert.equal(at('team.example.com:8443'), undefined, 'another port');
    assert.equal(table.hasHost('a.b.example.com'), false);
  });

  test('an exact host wins over a wildcard that also matches it', () => {
    assert.equal(at('app.example.com'), 'exact');
  });

  test('**.deep.example.com is one label or more, never the apex', () => {
    assert.equal(at('a.deep.example.com'), 'deep');
    assert.equal(at('a.b.deep.example.com'), 'deep');
    assert.equal(at('deep.example.com'), 'wild', 'the apex is not deep; it is one label under example.com');
  });

  test('a wildcard with a port answers on that port only', () => {
    assert.equal(at('x.ported.example.com:8443'), 'ported');
    assert.equal(at('x.ported.example.com'), undefined);
    assert.equal(at('a.b.ported.example.com:8443'), undefined);
  });
});
