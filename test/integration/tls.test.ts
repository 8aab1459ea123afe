// TLS termination: https from certificate files, a replaced certificate served without a restart, a
// broken replacement refused while the old one keeps serving, and the http→https redirect built from
// the configured URL, never from Host.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { request as httpsRequest } from 'node:https';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import { generateKekText } from '../../src/keys/seal.js';
import { startGatehouse, type Gatehouse } from '../../src/server/app.js';
import { createLogger } from '../../src/lib/logger.js';
import { tempDir } from '../helpers/gatehouse.js';
import { selfSignedCert } from '../helpers/tls.js';

function peer(url: string): Promise<{ cn: string; status: number }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/healthz`, { rejectUnauthorized: false, agent: false }, (res) => {
      const cert = (res.socket as TLSSocket).getPeerCertificate();
      res.resume();
      res.on('end', () => resolve({ cn: String(cert.subject?.CN), status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('TLS termination', () => {
  let dir: string;
  let gh: Gatehouse;
  let redirectPort: number;
  // The server's error log, to know when it has looked at replaced files (and refused them).
  let errorLog = '';
  const refusals = () => errorLog.split('\n').filter((l) => l.includes('"tls.reload_failed"')).length;
  const replace = (from: { cert: string; key: string }) => {
    // As certificate tools do: new files renamed over the served ones.
    writeFileSync(join(dir, 'tmp.key'), readText(from.key));
    writeFileSync(join(dir, 'tmp.crt'), readText(from.cert));
    renameSync(join(dir, 'tmp.key'), join(dir, 'server.key'));
    renameSync(join(dir, 'tmp.crt'), join(dir, 'server.crt'));
  };

  before(async () => {
    dir = tempDir();
    const first = selfSignedCert(dir, 'first');
    writeFileSync(join(dir, 'server.key'), readText(first.key));
    writeFileSync(join(dir, 'server.crt'), readText(first.cert));
    redirectPort = await freePort();
    const { config } = parseConfigText(
      `
server:
  tls: { cert: server.crt, key: server.key, redirect_http: ${redirectPort} }
`,
      {
        file: join(dir, 'gatehouse.yaml'),
        baseDir: dir,
        base: {
          issuer: { url: 'https://127.0.0.1:1' },
          server: { host: '127.0.0.1', port: 0 },
          store: { sqlite: { path: join(dir, 'g.db') } },
          keys: { encryption_key: generateKekText() },
          log: { level: 'silent' },
        },
      },
    );
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        errorLog += chunk.toString();
        cb();
      },
    });
    gh = await startGatehouse(config, {
      issuerFromAddress: true,
      logger: createLogger({ level: 'error', destination }),
    });
  });
  after(async () => {
    await gh.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('serves https with the configured certificate', async () => {
    assert.match(gh.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const p = await peer(gh.url);
    assert.equal(p.status, 200);
    assert.equal(p.cn, 'first');
  });

  test('a replaced certificate is served without a restart', async () => {
    replace(selfSignedCert(dir, 'second'));
    const deadline = Date.now() + 5000;
    while ((await peer(gh.url)).cn !== 'second') {
      assert.ok(Date.now() < deadline, 'the new certificate was not served within 5s');
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  test('a key that does not match the certificate is refused; the old pair keeps serving', async () => {
    const other = selfSignedCert(dir, 'third');
    // Only the certificate changes: the key on disk is still the second one's.
    const refusedBefore = refusals();
    writeFileSync(join(dir, 'tmp.crt'), readText(other.cert));
    renameSync(join(dir, 'tmp.crt'), join(dir, 'server.crt'));
    // Wait until the server has tried the new files and refused them; a fixed wait can end before the
    // watcher's debounce has fired on a loaded machine, and then the test proves nothing.
    const deadline = Date.now() + 10_000;
    while (refusals() === refusedBefore) {
      assert.ok(Date.now() < deadline, 'the mismatched pair was not refused (tls.reload_failed) within 10s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const p = await peer(gh.url);
    assert.equal(p.status, 200);
    assert.equal(p.cn, 'second');
  });

  test('plain http redirects (301) to the configured https origin, whatever Host says', async () => {
    const res = await new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: redirectPort, path: '/app/x?y=1', headers: { host: 'evil.example' } },
        (r) => {
          r.resume();
          resolve({ status: r.statusCode ?? 0, location: r.headers.location });
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(res.status, 301);
    assert.equal(res.location, `${gh.url}/app/x?y=1`);
  });
});

function readText(path: string): string {
  return readFileSync(path, 'utf8');
}
