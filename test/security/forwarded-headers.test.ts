// X-Forwarded-For/Proto/Host and friends from a peer that is not a trusted proxy are replaced, so a
// client cannot pick its own source address (policy's source_ip) or what the upstream believes.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProxyFixture, rawGet, defaultRoutes, type ProxyFixture } from '../helpers/proxy.js';

const officeOnly = (up: string) =>
  defaultRoutes(up) +
  `
  - name: office
    from: /office/
    to: [${up}]
    policy:
      - name: office-network
        allow: { source_ip: [10.0.0.0/8] }
`;

describe('X-Forwarded-* from an untrusted peer', () => {
  let f: ProxyFixture;
  after(() => f.close());

  test('spoofed X-Forwarded-For does not satisfy source_ip and is replaced upstream', async () => {
    f = await startProxyFixture({ yaml: officeOnly });
    const token = await f.token(`${f.url}/office/`);
    const r = await rawGet(f.port, '/office/x', [
      `Authorization: Bearer ${token}`,
      'X-Forwarded-For: 10.1.2.3',
      'X-Real-IP: 10.1.2.3',
      'Forwarded: for=10.1.2.3',
    ]);
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).missing.criterion, 'source ip');
  });

  test('X-Forwarded-For/Proto/Host and their `_` spellings are replaced with what Gatehouse saw', async () => {
    const token = await f.token(`${f.url}/app/`);
    const r = await rawGet(f.port, '/app/x', [
      `Authorization: Bearer ${token}`,
      'X-Forwarded-For: 10.1.2.3',
      'X-Forwarded-Proto: https',
      'X-Forwarded-Host: evil.example.com',
      'X_Forwarded_For: 10.9.9.9',
      'X-Forwarded-Port: 443',
      'X-Real-IP: 10.1.2.3',
      'Forwarded: for=10.1.2.3;proto=https',
    ]);
    assert.equal(r.status, 200);
    const h = f.up.seen.at(-1)?.headers ?? {};
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], `127.0.0.1:${f.port}`);
    assert.equal(h['x_forwarded_for'], undefined);
    assert.equal(h['x-forwarded-port'], undefined);
    assert.equal(h['x-real-ip'], undefined);
    assert.equal(h.forwarded, undefined);
  });
});

describe('X-Forwarded-* from a trusted proxy', () => {
  let f: ProxyFixture;
  after(() => f.close());

  test('are believed: source_ip from X-Forwarded-For, our peer appended', async () => {
    f = await startProxyFixture({
      yaml: (up) => officeOnly(up) + `proxy:\n  trusted_proxies: [127.0.0.0/8]\n`,
    });
    const token = await f.token(`${f.url}/office/`);
    const r = await rawGet(f.port, '/office/x', [
      `Authorization: Bearer ${token}`,
      'X-Forwarded-For: 10.1.2.3',
      'X-Forwarded-Proto: https',
      'X-Forwarded-Host: office.example.com',
    ]);
    assert.equal(r.status, 200, r.body);
    const h = f.up.seen.at(-1)?.headers ?? {};
    assert.equal(h['x-forwarded-for'], '10.1.2.3, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'https');
    assert.equal(h['x-forwarded-host'], 'office.example.com');
  });
});
