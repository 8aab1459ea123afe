// Requests two servers could read differently: duplicate Host or Authorization, conflicting
// Content-Length / Transfer-Encoding, oversized heads. Each is refused and the upstream never sees it
// (nor a request smuggled inside it).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProxyFixture, rawRequest, type ProxyFixture } from '../helpers/proxy.js';

describe('request smuggling and ambiguous requests', () => {
  let f: ProxyFixture;
  let reader: string;
  let admin: string;
  let host: string;
  before(async () => {
    f = await startProxyFixture();
    reader = await f.token(`${f.url}/app/`, 'reader');
    admin = await f.token(`http://app.example.com/`, 'admin');
    host = `127.0.0.1:${f.port}`;
  });
  after(() => f.close());

  const send = (lines: string[], body = '') => rawRequest(f.port, lines.join('\r\n') + '\r\n\r\n' + body);
  const untouched = async (fn: () => Promise<{ status: number }>, status: number | number[]) => {
    const before = f.up.seen.length;
    const r = await fn();
    const want = Array.isArray(status) ? status : [status];
    assert.ok(want.includes(r.status), `status ${r.status}, expected ${want.join(' or ')}`);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(f.up.seen.length, before, 'the upstream saw the request');
    assert.equal(
      f.up.seen.some((s) => s.url.includes('admin')),
      false,
    );
  };

  /** Each request is refused with `status` and reaches the upstream not at all. */
  const refusals: {
    name: string;
    head: () => string[];
    body?: () => string;
    status: number | number[];
  }[] = [
    {
      name: 'duplicate Host is refused',
      head: () => [
        'GET /app/x HTTP/1.1',
        `Host: ${host}`,
        'Host: app.example.com',
        `Authorization: Bearer ${reader}`,
        'Connection: close',
      ],
      status: 400,
    },
    {
      name: 'duplicate Host naming another route first is refused',
      head: () => [
        'GET /admin HTTP/1.1',
        'Host: app.example.com',
        `Host: ${host}`,
        `Authorization: Bearer ${admin}`,
        'Connection: close',
      ],
      status: 400,
    },
    {
      name: 'duplicate Authorization is refused',
      head: () => [
        'GET /app/x HTTP/1.1',
        `Host: ${host}`,
        `Authorization: Bearer ${reader}`,
        `Authorization: Bearer ${reader}`,
        'Connection: close',
      ],
      status: 400,
    },
    {
      name: 'Content-Length with Transfer-Encoding (CL.TE) is refused, nothing smuggled',
      head: () => [
        'POST /app/x HTTP/1.1',
        `Host: ${host}`,
        `Authorization: Bearer ${reader}`,
        'Content-Length: 4',
        'Transfer-Encoding: chunked',
      ],
      body: () => `0\r\n\r\nGET /app/admin/x HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      status: 400,
    },
    {
      name: 'two different Content-Length values are refused',
      head: () => [
        'POST /app/x HTTP/1.1',
        `Host: ${host}`,
        `Authorization: Bearer ${reader}`,
        'Content-Length: 3',
        'Content-Length: 40',
      ],
      body: () => 'abc',
      status: 400,
    },
    {
      name: 'two equal Content-Length headers are refused',
      head: () => [
        'POST /app/x HTTP/1.1',
        `Host: ${host}`,
        `Authorization: Bearer ${reader}`,
        'Content-Length: 3',
        'Content-Length: 3',
        'Connection: close',
      ],
      body: () => 'abc',
      status: 400,
    },
    {
      name: 'an obfuscated Transfer-Encoding is refused',
      head: () => [
        'POST /app/x HTTP/1.1',
        `Host: ${host}`,
        `Authorization: Bearer ${reader}`,
        'Transfer-Encoding: xchunked',
        'Content-Length: 3',
      ],
      body: () => 'abc',
      status: [400, 501],
    },
    {
      name: 'Transfer-Encoding with a space before the colon is refused',
      head: () => [
        'POST /app/x HTTP/1.1',
        `Host: ${host}`,
        `Authorization: Bearer ${reader}`,
        'Transfer-Encoding : chunked',
        'Content-Length: 3',
      ],
      body: () => 'abc',
      status: 400,
    },
    {
      name: 'an oversized request head gets 431',
      head: () => [
        'GET /app/x HTTP/1.1',
        `Host: ${host}`,
        `Authorization: Bearer ${reader}`,
        `X-Big: ${'a'.repeat(20_000)}`,
        'Connection: close',
      ],
      status: 431,
    },
  ];
  for (const c of refusals) test(c.name, () => untouched(() => send(c.head(), c.body?.()), c.status));

  test('a bare LF line ending smuggling a header is refused', () =>
    untouched(
      () =>
        rawRequest(
          f.port,
          `GET /app/x HTTP/1.1\r\nHost: ${host}\r\nX-A: 1\nX-Gatehouse-User: evil\r\nConnection: close\r\n\r\n`,
        ),
      400,
    ));

  test('a chunked body is streamed through intact (the baseline)', async () => {
    const r = await send(
      [
        'POST /app/x HTTP/1.1',
        `Host: ${host}`,
        `Authorization: Bearer ${reader}`,
        'Transfer-Encoding: chunked',
        'Connection: close',
      ],
      '3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
    );
    assert.equal(r.status, 200);
    assert.equal(f.up.seen.at(-1)?.body, 'abcde');
  });
});
