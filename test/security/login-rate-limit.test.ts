// Failed sign-ins are limited per client address: an address that keeps sending bad callbacks
// (guessing states, replaying codes) is refused for a while, even with a genuine sign-in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSsoStack, type SsoStack } from '../helpers/sso.js';
import { CookieJar, loginUntilCallback, send } from '../helpers/http-browser.js';

let stack: SsoStack;
let clock = Date.now();

before(async () => {
  stack = await startSsoStack({
    base: { sessions: { max_failures: 3, failure_window: '5m' } },
    now: () => clock,
  });
});
after(async () => {
  await stack?.gh.close();
  await stack?.idp.close();
});

test('after max_failures bad callbacks the address gets 429, even for a real sign-in, until the window passes', async () => {
  const { gh } = stack;
  const bogus = () => send(new CookieJar(), `${gh.url}/.gatehouse/callback?state=guess&code=guess`);
  for (let i = 0; i < 3; i++) assert.equal((await bogus()).status, 400, `failure ${i + 1} is refused as bad`);
  const limited = await bogus();
  assert.equal(limited.status, 429);
  assert.match(limited.text, /too many failed sign-ins from this address/);

  // A genuine sign-in from the same address is held back too: the callback is where guessing happens.
  const jar = new CookieJar();
  const { callback } = await loginUntilCallback(jar, gh.url, {
    username: 'alice',
    password: 'alice-password',
  });
  assert.equal((await send(jar, callback)).status, 429);

  // Once the window has passed, sign-in works again.
  clock += 5 * 60_000 + 1;
  const jar2 = new CookieJar();
  const second = await loginUntilCallback(jar2, gh.url, { username: 'alice', password: 'alice-password' });
  const ok = await send(jar2, second.callback);
  assert.equal(ok.status, 303, ok.text);
  assert.ok(
    ok.setCookies.some((c) => c.startsWith('gatehouse_session=')),
    'a session is set',
  );
});
