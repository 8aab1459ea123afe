// A person's sign-in stack for tests: the development IdP on its own loopback address and a Gatehouse
// with it as the `dev` connector, its groups mapped to roles, and Gatehouse's callback let in at the IdP.
import type { DevIdp, DevIdpOptions } from '../../src/server/dev-idp.js';
import { startDevIdp } from '../../src/server/dev-idp.js';
import { startTestGatehouse, type TestGatehouse } from './gatehouse.js';
import { send, type CookieJar, type HttpResponse } from './http-browser.js';

/** The dev IdP's groups as roles, as the dev stack maps them. */
export const DEV_ROLES = { admin: ['admins'], engineer: ['engineering'] };

/** The `dev` connector entry for this IdP; `extra` adds or overrides fields (e.g. `recheck_interval`). */
export function devConnector(idp: DevIdp, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'dev',
    issuer: idp.url,
    client_id: idp.clientId,
    client_secret: idp.clientSecret,
    scopes: ['openid', 'email', 'profile', 'groups'],
    ...extra,
  };
}

export interface SsoStack {
  idp: DevIdp;
  gh: TestGatehouse;
}

/**
 * Starts the dev IdP on 127.0.0.2 (so its cookies and Gatehouse's never share a host) and a test
 * Gatehouse signing people in through it. `base` adds or overrides config sections (`roles` included);
 * `signedOutPage` also lets Gatehouse's signed-out page in as the IdP's post-logout redirect; `idp` adds
 * options of the dev IdP (e.g. `refreshTokenLength`).
 */
export async function startSsoStack(
  opts: {
    base?: Record<string, unknown>;
    connector?: Record<string, unknown>;
    now?: () => number;
    signedOutPage?: boolean;
    idp?: Omit<DevIdpOptions, 'host'>;
  } = {},
): Promise<SsoStack> {
  const idp = await startDevIdp({ ...opts.idp, host: '127.0.0.2' });
  let gh: TestGatehouse;
  try {
    gh = await startTestGatehouse({
      ...(opts.now ? { now: opts.now } : {}),
      base: { connectors: [devConnector(idp, opts.connector)], roles: DEV_ROLES, ...opts.base },
    });
  } catch (e) {
    await idp.close();
    throw e;
  }
  idp.allowRedirect(
    gh.gh.browserAuth.redirectUri,
    opts.signedOutPage ? `${gh.url}/.gatehouse/signed-out` : undefined,
  );
  return { idp, gh };
}

/** A route from `from` (an origin of its own, such as `http://jira.example.test`) to `upstream`, open to anyone signed in. */
export function signedInRoute(name: string, from: string, upstream: string): Record<string, unknown> {
  return {
    name,
    from: `${from}/`,
    to: [upstream],
    policy: [{ name: 'signed-in', allow: { claim: 'sub', exists: true } }],
  };
}

/** A request as a browser would send it to `url`; `*.example.test` names reach the test Gatehouse `gh`. */
export function visitVia(gh: TestGatehouse, jar: CookieJar, url: string): Promise<HttpResponse> {
  return send(jar, url, new URL(url).hostname.endsWith('.example.test') ? { connect: gh.url } : {});
}
