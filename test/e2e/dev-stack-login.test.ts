// The dev stack as a person meets it after `npm start`: `gatehouse dev` in its own process, DEMO_URL
// opened in real Chromium, sent to sign in with a printed login, back on DEMO_URL with the demo app's
// JSON. The dev IdP and Gatehouse share 127.0.0.1 (cookies are not kept apart by port), as on a laptop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { chromiumSkip as skip, launchChromium, signIn } from '../helpers/browser.js';
import { startCli, type RunningCli } from '../helpers/processes.js';
import { tempDir } from '../helpers/gatehouse.js';

let dir: string;
let dev: RunningCli;
let browser: Browser;
let demoUrl: string;
const logins = new Map<string, string>();

before(async () => {
  if (skip) return;
  dir = tempDir();
  dev = await startCli(['dev', '--port', '0', '--data-dir', dir]);
  demoUrl = dev.vars.DEMO_URL ?? '';
  assert.match(demoUrl, /^http:\/\/127\.0\.0\.1:\d+\/demo\/$/);
  for (const line of dev.lines) {
    const m = /^LOGIN (\S+) \/ (\S+)$/.exec(line);
    if (m) logins.set(m[1] as string, m[2] as string);
  }
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await dev?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens `url`, gets sent to the dev IdP's form, signs in with the printed login, lands back on `url`. */
async function signInAt(page: Page, url: string, who: string): Promise<void> {
  const password = logins.get(who);
  assert.ok(password, `a LOGIN ${who} / … line was printed`);
  await page.goto(url);
  await page.waitForSelector('input[name=username]');
  assert.notEqual(new URL(page.url()).origin, new URL(demoUrl).origin, 'sent to the IdP to sign in');
  await signIn(page, who, password);
  await page.waitForURL(url, { timeout: 10_000 }).catch(async (e: unknown) => {
    throw new Error(`did not land on ${url} but ${page.url()}: ${(await page.content()).slice(0, 500)}`, {
      cause: e,
    });
  });
}

test(
  'alice opens DEMO_URL, signs in, and sees the demo app with her identity; the admin area lets her in',
  { skip },
  async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await signInAt(page, demoUrl, 'alice');
    const body = JSON.parse((await page.textContent('body')) ?? '{}') as {
      path: string;
      headers: Record<string, string>;
    };
    assert.equal(body.path, '/demo/');
    assert.equal(body.headers['x-gatehouse-user'], 'alice');
    assert.match(body.headers['x-gatehouse-roles'] ?? '', /\badmin\b/);
    const admin = await page.goto(`${demoUrl}admin/`);
    assert.equal(admin?.status(), 200);
    const adminBody = JSON.parse((await page.textContent('body')) ?? '{}') as { path: string };
    assert.equal(adminBody.path, '/demo/admin/');
    await ctx.close();
  },
);

test('bob signs in and is refused the admin area with 403', { skip }, async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signInAt(page, demoUrl, 'bob');
  const body = JSON.parse((await page.textContent('body')) ?? '{}') as { headers: Record<string, string> };
  assert.equal(body.headers['x-gatehouse-user'], 'bob');
  assert.doesNotMatch(body.headers['x-gatehouse-roles'] ?? '', /\badmin\b/);
  const admin = await page.goto(`${demoUrl}admin/`);
  assert.equal(admin?.status(), 403);
  assert.match((await page.textContent('body')) ?? '', /admin/);
  await ctx.close();
});
