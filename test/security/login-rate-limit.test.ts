// Failed sign-ins are limited per client address: an address that keeps sending bad callbacks
// (guessing states, replaying codes) is refused for a while, even with a genuine sign-in. Behind a
// trusted load balancer the address is the client's, not the balancer's, and X-Forwarded-For from any
// other peer is ignored.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
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

/**
 * A GET of `url` from the local address `from` (any 127.0.0.0/8 address is this machine's own), with
 * X-Forwarded-For `xff` and the cookies `jar` holds for `url`.
 */
function getFrom(
  from: string,
  url: string,
  opts: { xff?: string; jar?: CookieJar } = {},
): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { accept: 'text/html' };
  if (opts.xff !== undefined) headers['x-forwarded-for'] = opts.xff;
  const cookie = opts.jar?.header(url);
  if (cookie) headers.cookie = cookie;
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress: from, agent: false, headers });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('failed sign-ins behind a load balancer', () => {
  // 127.0.0.1 is the trusted load balancer; 127.0.0.3 and 127.0.0.4 are clients connecting directly
  // (the dev IdP has 127.0.0.2). Two failures per address; the window outlasts the tests.
  let lb: SsoStack;
  let bogus: string;
  before(async () => {
    lb = await startSsoStack({
      base: {
        sessions: { max_failures: 2, failure_window: '1h' },
        proxy: { trusted_proxies: ['127.0.0.1/32'] },
      },
    });
    bogus = `${lb.gh.url}/.gatehouse/callback?state=guess&code=guess`;
  });
  after(async () => {
    await lb?.gh.close();
    await lb?.idp.close();
  });

  /** The audit record whose id a refusal page shows. */
  async function refusalRecord(page: string): Promise<Record<string, unknown>> {
    const id = /audit id <code>([^<]+)<\/code>/.exec(page)?.[1];
    assert.ok(id, `the refusal page shows an audit id: ${page}`);
    await lb.gh.gh.audit.flush();
    const [row] = await lb.gh.gh.store.queryAudit({ id });
    assert.ok(row, `audit record ${id} exists`);
    return row.data;
  }

  test('one client using up its failures does not lock everyone behind the balancer out of sign-in', async () => {
    const from = (xff: string) => getFrom('127.0.0.1', bogus, { xff });
    for (let i = 0; i < 2; i++) assert.equal((await from('198.51.100.7')).status, 400);
    assert.equal((await from('198.51.100.7')).status, 429, 'the client that failed is limited');
    // Hops the client prepends (the balancer appends what it saw) do not buy it a fresh count.
    assert.equal((await from('203.0.113.9, 198.51.100.7')).status, 429, 'a prepended hop dodged the limit');

    // Another person behind the same balancer signs in, and the session records their address.
    const jar = new CookieJar();
    const { callback } = await loginUntilCallback(jar, lb.gh.url, {
      username: 'alice',
      password: 'alice-password',
    });
    const ok = await getFrom('127.0.0.1', callback, { xff: '198.51.100.8', jar });
    assert.equal(ok.status, 303, `the balancer's address was locked out: ${ok.text}`);
    await lb.gh.gh.audit.flush();
    const [created] = await lb.gh.gh.store.queryAudit({ type: 'session.created', limit: 1 });
    assert.equal(created?.data.address, '198.51.100.8');
  });

  test('an untrusted peer cannot dodge its limit with a new X-Forwarded-For on every callback', async () => {
    const answers = [];
    for (let i = 0; i < 4; i++)
      answers.push(await getFrom('127.0.0.3', bogus, { xff: `203.0.113.${i + 1}` }));
    assert.deepEqual(
      answers.map((a) => a.status),
      [400, 400, 429, 429],
      'the spoofed addresses got counts of their own',
    );
    const refused = await refusalRecord(answers[3]?.text ?? '');
    assert.equal(refused.code, 'ERR_LOGIN_RATE_LIMITED');
    assert.equal(refused.address, '127.0.0.3', 'recorded against a spoofed address, not the peer');
  });

  test('an untrusted peer cannot spend the failures of a client behind the balancer', async () => {
    const attacker = [];
    for (let i = 0; i < 3; i++)
      attacker.push((await getFrom('127.0.0.4', bogus, { xff: '198.51.100.9' })).status);
    assert.deepEqual(attacker, [400, 400, 429], 'the peer used up its own failures');
    // The address it named still has all of its failures.
    assert.equal(
      (await getFrom('127.0.0.1', bogus, { xff: '198.51.100.9' })).status,
      400,
      "the peer's failures were counted against the address it named",
    );
  });

  test('the audit record of a refused sign-in names the client behind the balancer, not the balancer', async () => {
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await getFrom('127.0.0.1', bogus, { xff: '192.0.2.50' }));
    assert.deepEqual(
      answers.map((a) => a.status),
      [400, 400, 429],
    );
    const failed = await refusalRecord(answers[0]?.text ?? '');
    assert.equal(failed.code, 'ERR_LOGIN_STATE_INVALID');
    assert.equal(failed.address, '192.0.2.50');
    const limited = await refusalRecord(answers[2]?.text ?? '');
    assert.equal(limited.code, 'ERR_LOGIN_RATE_LIMITED');
    assert.equal(limited.address, '192.0.2.50', 'the refusal was recorded against the balancer');
  });
});
