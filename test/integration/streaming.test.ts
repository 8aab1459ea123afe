// Streaming through the proxy: server-sent events and chunked responses arrive as they are sent, large
// bodies go both ways without being buffered, aborts reach the upstream, and max_body cuts cleanly.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { TestGatehouse } from '../helpers/gatehouse.js';
import { startReaderFront } from '../helpers/proxy.js';

const MB = 1024 * 1024;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** What `p` settles to, or `otherwise` after `ms` (a hang guard; the timer does not outlive the race). */
async function orAfter<T>(p: Promise<T>, ms: number, otherwise: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(otherwise), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe('streaming through the proxy', () => {
  let t: TestGatehouse;
  let upstream: Server;
  let token: string;
  let port: number;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, s) => s.end();

  before(async () => {
    upstream = createServer((req, res) => handler(req, res));
    ({ t, token } = await startReaderFront(
      upstream,
      (up) => `
  - name: s
    from: /s/
    to: [${up}]
    policy: [ { name: readers, allow: { roles: [reader] } } ]
  - name: small
    from: /small/
    to: [${up}]
    max_body: 1048576
    policy: [ { name: readers, allow: { roles: [reader] } } ]
`,
      ['/s/', '/small/'],
    ));
    port = Number(new URL(t.url).port);
  });
  after(async () => {
    await t.close();
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  function send(
    method: string,
    path: string,
    opts: { headers?: Record<string, string>; body?: (req: ReturnType<typeof request>) => void } = {},
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { authorization: `Bearer ${token}`, ...opts.headers },
      });
      req.on('response', resolve);
      req.on('error', reject);
      if (opts.body) opts.body(req);
      else req.end();
    });
  }

  test('server-sent events: the first event arrives before the upstream ends', async () => {
    let finish!: () => void;
    const released = new Promise<void>((r) => (finish = r));
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
      void released.then(() => res.end('data: last\n\n'));
    };
    const res = await send('GET', '/s/events', { headers: { accept: 'text/event-stream' } });
    assert.equal(res.headers['content-type'], 'text/event-stream');
    const first = await new Promise<string>((r) => res.once('data', (d: Buffer) => r(d.toString())));
    assert.equal(first, 'data: first\n\n');
    finish();
    let rest = '';
    for await (const d of res) rest += (d as Buffer).toString();
    assert.equal(rest, 'data: last\n\n');
  });

  test('a chunked response is passed on chunk by chunk', async () => {
    let next!: () => void;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('one;');
      next = () => res.end('two');
    };
    const res = await send('GET', '/s/chunks');
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.equal(await new Promise<string>((r) => res.once('data', (d: Buffer) => r(d.toString()))), 'one;');
    next();
    let rest = '';
    for await (const d of res) rest += (d as Buffer).toString();
    assert.equal(rest, 'two');
  });

  test('50 MB up and 50 MB down without buffering (memory stays flat)', async () => {
    const size = 50 * MB;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let received = 0;
    handler = (req, res) => {
      req.on('data', (d: Buffer) => (received += d.length));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let sent = 0;
        const pump = () => {
          while (sent < size) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      });
    };
    // Live memory, not RSS: RSS keeps freed chunks the allocator has not returned. Collected often, so
    // a buffered body (50 MB held at once) would show and garbage would not.
    gc();
    const live = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const base = live();
    let peak = base;
    const sampler = setInterval(() => {
      gc();
      peak = Math.max(peak, live());
    }, 100);
    const res = await send('POST', '/s/upload', {
      headers: { 'content-type': 'application/octet-stream' },
      body: (req) => {
        let sent = 0;
        const pump = () => {
          while (sent < size) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      },
    });
    let down = 0;
    for await (const d of res) down += (d as Buffer).length;
    clearInterval(sampler);
    assert.equal(res.statusCode, 200);
    assert.equal(received, size);
    assert.equal(down, size);
    const growth = peak - base;
    assert.ok(growth < 35 * MB, `live memory grew by ${(growth / MB).toFixed(1)} MB moving 100 MB`);
  });

  test('backpressure: an upstream that stops reading stops the client, and nothing piles up in memory', async () => {
    let paused!: (req: IncomingMessage) => void;
    const got = new Promise<IncomingMessage>((r) => (paused = r));
    handler = (req) => {
      req.pause();
      paused(req);
    };
    const live = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const base = live();
    const attempt = 200 * MB;
    let written = 0;
    const chunk = Buffer.alloc(64 * 1024);
    const client = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/s/slow',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    });
    client.on('error', () => undefined);
    // The proxy sends the upstream its request head with the first body bytes.
    client.write(chunk);
    written += chunk.length;
    const upReq = await got;
    // Write until the proxy stops taking more; a buffering proxy would take all of it. The kernel's
    // socket buffers on two loopback hops can hold tens of MB (tcp_rmem autotunes up to its max), so
    // the count of bytes written only proves the writes stopped; live memory proves they were not
    // held in the process.
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (written < attempt) {
          written += chunk.length;
          if (!client.write(chunk)) {
            const timer = setTimeout(resolve, 500);
            return void client.once('drain', () => {
              clearTimeout(timer);
              pump();
            });
          }
        }
        resolve();
      };
      pump();
    });
    const growth = live() - base;
    client.destroy();
    upReq.destroy();
    assert.ok(written < attempt, `the client wrote all ${attempt / MB} MB to an upstream that reads nothing`);
    assert.ok(
      growth < 16 * MB,
      `live memory grew by ${(growth / MB).toFixed(1)} MB while the upstream was paused`,
    );
  });

  test('a client abort reaches the upstream', async () => {
    let upstreamSaw!: (how: string) => void;
    const saw = new Promise<string>((r) => (upstreamSaw = r));
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: hi\n\n');
      res.on('close', () => upstreamSaw(res.writableFinished ? 'finished' : 'aborted'));
      void req;
    };
    const res = await send('GET', '/s/long');
    await new Promise((r) => res.once('data', r));
    res.destroy();
    const how = await orAfter(saw, 10_000, 'timeout');
    assert.equal(how, 'aborted');
  });

  test('a client abort during an upload reaches the upstream', async () => {
    let upstreamSaw!: (how: string) => void;
    const saw = new Promise<string>((r) => (upstreamSaw = r));
    let upstreamGotIt!: () => void;
    const gotIt = new Promise<void>((r) => (upstreamGotIt = r));
    handler = (req) => {
      upstreamGotIt();
      req.on('data', () => undefined);
      req.on('close', () => upstreamSaw(req.complete ? 'complete' : 'aborted'));
    };
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/s/upload',
      headers: { authorization: `Bearer ${token}`, 'content-length': String(10 * MB) },
    });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(256 * 1024));
    // Abort mid-upload once the upstream has the request (a fixed wait can end before the proxy has even
    // connected upstream on a loaded machine, and then there is nothing to abort).
    await gotIt;
    req.destroy();
    const how = await orAfter(saw, 10_000, 'timeout');
    assert.equal(how, 'aborted');
  });

  test('a chunked body over max_body: 413 to the client, the upstream never gets it whole', async () => {
    let upstreamGot = -1;
    let complete = false;
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    handler = (req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => {
        upstreamGot = n;
        complete = true;
        res.end('ok');
      });
      req.on('close', () => {
        upstreamGot = upstreamGot === -1 ? n : upstreamGot;
        upstreamClosed();
      });
    };
    const res = await send('POST', '/small/upload', {
      headers: { 'content-type': 'application/octet-stream' },
      body: (req) => {
        req.on('error', () => undefined);
        let sent = 0;
        const chunk = Buffer.alloc(64 * 1024);
        const pump = () => {
          while (sent < 3 * MB) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      },
    }).catch((e: Error) => e);
    assert.ok(!(res instanceof Error), `the client got an answer, not ${String(res)}`);
    assert.equal(res.statusCode, 413);
    res.resume();
    // Judge once the upstream's request has ended one way or the other, not after a fixed wait.
    const how = await orAfter(
      closed.then(() => 'closed'),
      10_000,
      'open',
    );
    assert.equal(how, 'closed', 'the upstream request was left open');
    assert.equal(complete, false, `the upstream got a complete body of ${upstreamGot} bytes`);
  });
});
