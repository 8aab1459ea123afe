// `gatehouse dev` as a person runs it: the contract lines, a token for the demo account that third
// parties verify, and a second start on the same data directory reusing keys and accounts.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { runCli, tempDir } from '../helpers/gatehouse.js';
import { startCli } from '../helpers/processes.js';

describe('gatehouse dev', () => {
  const dir = tempDir('gatehouse-dev-');
  after(() => rmSync(dir, { recursive: true, force: true }));

  test(
    'prints the contract lines, serves tokens, and a restart reuses keys and the demo account',
    { timeout: 90_000 },
    async () => {
      const first = await startCli(['dev', '--port', '0', '--data-dir', dir]);
      let kid1: string;
      let secret1: string;
      try {
        const { vars, lines } = first;
        assert.ok(lines.at(-1)?.startsWith('ready'), 'the last line starts with ready');
        assert.equal(vars.GATEHOUSE_CLIENT_ID, 'demo-ci');
        assert.match(vars.GATEHOUSE_CLIENT_SECRET ?? '', /^[A-Za-z0-9_-]{20,}$/);
        const server = vars.GATEHOUSE_SERVER ?? '';
        assert.match(server, /^http:\/\/127\.0\.0\.1:\d+$/);
        for (const l of lines) assert.ok(!/^(export |")/.test(l), `unquoted, without export: ${l}`);

        const d = (await (await fetch(`${server}/.well-known/openid-configuration`)).json()) as Record<
          string,
          string
        >;
        assert.equal(d.issuer, server);

        const env = {
          GATEHOUSE_CLIENT_ID: vars.GATEHOUSE_CLIENT_ID ?? '',
          GATEHOUSE_CLIENT_SECRET: vars.GATEHOUSE_CLIENT_SECRET ?? '',
        };
        const r = await runCli(['token', '--audience', 'sts.amazonaws.com', '--server', server], { env });
        assert.equal(r.code, 0, r.stderr);
        const token = r.stdout.trim();
        const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(d.jwks_uri ?? '')), {
          issuer: server,
          audience: 'sts.amazonaws.com',
        });
        assert.deepEqual(payload.roles, ['reader']);
        kid1 = decodeProtectedHeader(token).kid ?? '';
        secret1 = vars.GATEHOUSE_CLIENT_SECRET ?? '';
      } finally {
        assert.equal(await first.stop(), 0, 'SIGTERM stops cleanly');
      }

      const second = await startCli(['dev', '--port', '0', '--data-dir', dir]);
      try {
        assert.equal(second.vars.GATEHOUSE_CLIENT_SECRET, secret1, 'same demo secret');
        const server = second.vars.GATEHOUSE_SERVER ?? '';
        const jwks = (await (await fetch(`${server}/jwks`)).json()) as { keys: { kid: string }[] };
        assert.deepEqual(
          jwks.keys.map((k) => k.kid),
          [kid1],
          'same signing key',
        );
        assert.ok(
          !second.stderr().includes('generated a key-encryption key'),
          'the KEK is reused, not regenerated',
        );
      } finally {
        await second.stop();
      }
    },
  );

  test(
    'a port already taken is a clear error with exit 3, and nothing is left running',
    { timeout: 60_000 },
    async () => {
      const blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      const port = (blocker.address() as AddressInfo).port;
      try {
        const r = await runCli(['dev', '--port', String(port), '--data-dir', dir], { timeoutMs: 30_000 });
        assert.equal(r.code, 3, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use`),
        );
        assert.ok(!r.stderr.includes('internal error'));
      } finally {
        blocker.close();
      }
    },
  );
});
