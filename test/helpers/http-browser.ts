// A browser reduced to what sign-in needs: a cookie jar per origin and redirects followed by hand, so a
// test can stop a login at the IdP's redirect back to Gatehouse and tamper with it before it lands.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';

export interface HttpResponse {
  status: number;
  url: string;
  location: string | undefined;
  setCookies: string[];
  text: string;
}

/** Cookies by origin (scheme://host:port) and name; paths and expiry beyond deletion are ignored. */
export class CookieJar {
  readonly #jars = new Map<string, Map<string, string>>();

  #jar(url: string): Map<string, string> {
    const origin = new URL(url).origin;
    let jar = this.#jars.get(origin);
    if (!jar) this.#jars.set(origin, (jar = new Map()));
    return jar;
  }

  header(url: string): string {
    return [...this.#jar(url)].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  get(url: string, name: string): string | undefined {
    return this.#jar(url).get(name);
  }

  set(url: string, name: string, value: string | undefined): void {
    if (value === undefined) this.#jar(url).delete(name);
    else this.#jar(url).set(name, value);
  }

  store(url: string, setCookies: string[]): void {
    const jar = this.#jar(url);
    for (const sc of setCookies) {
      const [pair = '', ...attrs] = sc.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a));
      if (gone || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }
}

/**
 * One request with the jar's cookies, no redirect followed; the answer's cookies go into the jar.
 * `connect` (`http://127.0.0.1:PORT`) is where the connection goes for a host name DNS does not know
 * (`jira.example.test`): the request keeps the URL's Host, as a browser's would, and the jar its origin.
 */
export async function send(
  jar: CookieJar,
  url: string,
  init: { method?: string; form?: Record<string, string>; connect?: string } = {},
): Promise<HttpResponse> {
  const headers: Record<string, string> = { accept: 'text/html' };
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  if (init.form) headers['content-type'] = 'application/x-www-form-urlencoded';
  if (init.connect) return sendVia(jar, url, init.connect, headers, init);
  const res = await fetch(url, {
    method: init.method ?? (init.form ? 'POST' : 'GET'),
    headers,
    redirect: 'manual',
    ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
  });
  const setCookies = res.headers.getSetCookie();
  jar.store(url, setCookies);
  const loc = res.headers.get('location');
  return {
    status: res.status,
    url,
    location: loc ? new URL(loc, url).href : undefined,
    setCookies,
    text: await res.text(),
  };
}

/** `send` over node:http to `connect`, with the URL's host in the Host header (fetch would not keep it). */
function sendVia(
  jar: CookieJar,
  url: string,
  connect: string,
  headers: Record<string, string>,
  init: { method?: string; form?: Record<string, string> },
): Promise<HttpResponse> {
  const target = new URL(url);
  const via = new URL(connect);
  const body = init.form ? new URLSearchParams(init.form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: via.hostname,
        port: via.port,
        method: init.method ?? (body !== undefined ? 'POST' : 'GET'),
        path: target.pathname + target.search,
        headers: { ...headers, host: target.host },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const setCookies = res.headers['set-cookie'] ?? [];
          jar.store(url, setCookies);
          const loc = res.headers.location;
          resolve({
            status: res.statusCode ?? 0,
            url,
            location: loc ? new URL(loc, url).href : undefined,
            setCookies,
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Starts a sign-in at Gatehouse and walks the dev IdP's login form and consent until the IdP sends the
 * browser back to `/.gatehouse/callback`; returns that URL unvisited, and the authorization URL. `start`
 * is a login URL to begin with instead (one a route's host redirected to, with its hand-off binding);
 * `connect` is where Gatehouse's host name really is (see `send`).
 */
export async function loginUntilCallback(
  jar: CookieJar,
  gatehouseUrl: string,
  person: { username: string; password: string },
  opts: { rd?: string; connector?: string; start?: string; connect?: string } = {},
): Promise<{ callback: string; authorizationUrl: string }> {
  const q = new URLSearchParams({ rd: opts.rd ?? '/.gatehouse/whoami' });
  if (opts.connector) q.set('connector', opts.connector);
  const start = await send(
    jar,
    opts.start ?? `${gatehouseUrl}/.gatehouse/login?${q}`,
    opts.connect ? { connect: opts.connect } : {},
  );
  assert.equal(start.status, 302, `login start: ${start.text}`);
  const authorizationUrl = start.location ?? '';
  let res = await send(jar, authorizationUrl);
  for (let hops = 0; hops < 12; hops++) {
    if (res.location?.startsWith(`${gatehouseUrl}/.gatehouse/callback`))
      return { callback: res.location, authorizationUrl };
    if (res.location) {
      res = await send(jar, res.location);
      continue;
    }
    const action = /<form method="post" action="([^"]+)"/.exec(res.text)?.[1];
    assert.ok(res.status === 200 && action, `unexpected IdP answer ${res.status}: ${res.text.slice(0, 300)}`);
    res = await send(jar, new URL(action.replace(/&#47;/g, '/'), res.url).href, {
      form: { username: person.username, password: person.password },
    });
  }
  assert.fail('the IdP never redirected back to Gatehouse');
}

/** The value a Set-Cookie list gives the cookie `name`, or undefined when it is not set (or cleared). */
export function setCookieValue(setCookies: string[], name: string): string | undefined {
  for (const sc of setCookies) {
    const pair = sc.split(';')[0] ?? '';
    const i = pair.indexOf('=');
    if (pair.slice(0, i).trim() === name) {
      const v = pair.slice(i + 1).trim();
      return v === '' || /max-age=0/i.test(sc) ? undefined : v;
    }
  }
  return undefined;
}
