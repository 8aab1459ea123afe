// `gatehouse login` end to end (RFC 8628): the CLI shows a URL and code, a person approves in Chromium
// after signing in through the dev IdP, the CLI keeps the refresh token (0600); `gatehouse token` then
// issues a token with the person's claims, and `gatehouse logout` revokes it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import type { Browser } from 'playwright-core';
import { chromiumSkip as skip, launchChromium, signIn } from '../helpers/browser.js';
import { runCli, tempDir, type TestGatehouse } from '../helpers/gatehouse.js';
import { startSsoStack } from '../helpers/sso.js';
import type { DevIdp } from '../../src/server/dev-idp.js';

const ROOT = new URL('../../', import.meta.url).pathname;
let idp: DevIdp;
let gh: TestGatehouse;
let browser: Browser;
const xdg = tempDir('gatehouse-xdg-');

before(async () => {
  if (skip) return;
  ({ idp, gh } = await startSsoStack());
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gh?.close();
  await idp?.close();
});

test(
  'gatehouse login, approve in the browser, gatehouse token for a person, gatehouse logout',
  { skip },
  async () => {
    const env = {
      ...process.env,
      NODE_NO_WARNINGS: '1',
      XDG_CONFIG_HOME: xdg,
      GATEHOUSE_CLIENT_ID: '',
      GATEHOUSE_CLIENT_SECRET: '',
    };
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'login', '--server', gh.url],
      { cwd: ROOT, env },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', () => undefined);
    const exited = new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
    while (!/^CODE /m.test(out)) await new Promise((r) => setTimeout(r, 100));
    const url = /^URL (\S+)/m.exec(out)?.[1] ?? '';
    const code = /^CODE (\S+)/m.exec(out)?.[1] ?? '';
    assert.ok(url.startsWith(gh.url) && code);

    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(url);
    assert.ok((await page.textContent('body'))?.includes(code), 'the page shows the same code');
    await page.click('button:has-text("Allow")');
    await signIn(page, 'alice', 'alice-password');
    await page.waitForSelector('text=Device signed in');
    assert.equal(await exited, 0, out);
    assert.match(out, /signed in as alice@example.com/);
    const file = join(xdg, 'gatehouse', 'logins.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);

    const t = await runCli(
      ['token', '--server', gh.url, '--audience', 'https://api.example.com/', '--decode'],
      { env },
    );
    assert.equal(t.code, 0, t.stderr);
    const { header, payload } = JSON.parse(t.stdout) as {
      header: Record<string, unknown>;
      payload: Record<string, unknown>;
    };
    assert.equal(header.typ, 'at+jwt');
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.aud, 'https://api.example.com/');
    assert.equal(payload.email, 'alice@example.com');
    assert.equal(payload.name, 'Alice Example');
    assert.deepEqual(payload.groups, ['admins', 'engineering']);
    assert.deepEqual(payload.roles, ['admin', 'engineer']);
    assert.equal(payload.client_id, 'gatehouse-cli');

    const saved = (JSON.parse(readFileSync(file, 'utf8')) as Record<string, { refresh_token: string }>)[
      gh.url
    ];
    const lo = await runCli(['logout', '--server', gh.url], { env });
    assert.equal(lo.code, 0, lo.stderr);
    const after = await runCli(['token', '--server', gh.url, '--audience', 'x'], { env });
    assert.equal(after.code, 2, 'no saved login any more: usage');
    // The refresh token itself is dead at the server, not only forgotten.
    const res = await fetch(`${gh.url}/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'urn:gatehouse:params:oauth:grant-type:person-token',
        client_id: 'gatehouse-cli',
        refresh_token: saved?.refresh_token ?? '',
        audience: 'x',
      }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_grant');
    await ctx.close();
  },
);
