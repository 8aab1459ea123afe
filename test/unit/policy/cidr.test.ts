// The one client address every part of Gatehouse counts and records (rate limits, sign-in failures, the
// issuer's audit records, the proxy's source_ip): X-Forwarded-For is believed only from a trusted peer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr, requestClientAddress, type Cidr } from '../../../src/policy/cidr.js';

const trusted = ['127.0.0.1/32', '10.0.0.0/8'].map((c) => parseCidr(c) as Cidr);

test('a peer that is not a trusted proxy is the client, whatever X-Forwarded-For says', () => {
  assert.equal(requestClientAddress('203.0.113.9', '198.51.100.1', trusted), '203.0.113.9');
  assert.equal(requestClientAddress('203.0.113.9', ['198.51.100.1', '10.1.1.1'], trusted), '203.0.113.9');
});

test('behind trusted proxies: the first hop from the right that is not trusted', () => {
  assert.equal(requestClientAddress('127.0.0.1', '198.51.100.1', trusted), '198.51.100.1');
  // A client that prepends a hop through the balancer does not get to choose.
  assert.equal(requestClientAddress('127.0.0.1', '6.6.6.6, 198.51.100.1, 10.2.3.4', trusted), '198.51.100.1');
  // Several header lines join in order.
  assert.equal(requestClientAddress('127.0.0.1', ['6.6.6.6', '198.51.100.1'], trusted), '198.51.100.1');
});

test('behind trusted proxies with no usable header: the peer, or the first hop when every hop is trusted', () => {
  assert.equal(requestClientAddress('127.0.0.1', undefined, trusted), '127.0.0.1');
  assert.equal(requestClientAddress('127.0.0.1', 'not-an-address', trusted), '127.0.0.1');
  assert.equal(requestClientAddress('127.0.0.1', '10.9.9.9, 10.2.3.4', trusted), '10.9.9.9');
});
