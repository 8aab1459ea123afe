// Browser sign-in through upstream IdPs: the BrowserAuth the proxy and the issuer's interactions use.
// It owns the /.gatehouse/ paths for login, callback, cross-host hand-off, sign-out and back-channel
// logout; sessions live in the Store behind SessionManager's cache.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { GatehouseConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';
import type { RevocationSet } from '../revocation/index.js';
import type { AuditSink } from '../audit/sink.js';
import type { Logger } from '../lib/logger.js';
import { GatehouseError, isGatehouseError } from '../lib/errors.js';
import { OidcConnector, newLoginChecks, type LoginChecks } from '../federation/connectors/oidc-connector.js';
import type { Person } from '../federation/role-mapping.js';
import type { BrowserAuth, Identity } from './types.js';
import { SessionManager, type LiveSession } from './sessions.js';
import { checkReturnUrl } from './return-url.js';
import { FailureLimiter } from './rate-limit.js';
import { parseCidr, requestClientAddress, type Cidr } from '../policy/cidr.js';
import {
  CookieSealer,
  appendSetCookie,
  loginCookieName,
  readCookies,
  serializeCookie,
  sessionCookieName,
  SESSION_COOKIE_HTTP,
  SESSION_COOKIE_HTTPS,
  LOGIN_COOKIE_HTTP,
  LOGIN_COOKIE_HTTPS,
} from './cookie.js';
import { escapeHtml, readForm, redirect, sendHtml, sendJson, sendMoveOn } from './html.js';
import {
  BINDING_PARAM,
  HANDOFF_COOKIE_TTL_SEC,
  bindingMatches,
  bindingOf,
  handoffCookieName,
  isBinding,
  newNonce,
} from './handoff-binding.js';

/** Store model names (the oidc table doubles as short-lived single-use records). */
const LOGIN_MODEL = 'GatehouseLogin';
const TICKET_MODEL = 'GatehouseTicket';
export const ACCOUNT_MODEL = 'GatehouseAccount';

const LOGIN_TTL_MS = 10 * 60_000;
const TICKET_TTL_MS = 60_000;
/**
 * The session cookie seals `<host> <session id>` (host as a URL's `host`: lower-case name, non-default
 * port): a cookie is good only on the host it was set for, so one an app behind forward-auth saw (or
 * logged) cannot be replayed on another route's host or on Gatehouse's own. The purpose changed with the
 * binding, so a cookie sealed before it (a bare id) no longer opens: those browsers sign in once more.
 */
const SESSION_PURPOSE = 'session host-bound v2';
const LOGIN_PURPOSE = 'login';

interface LoginRecord {
  [key: string]: unknown;
  connector: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  returnTo: string;
  /** For a return to another host: the hash of the nonce that host's cookie holds (handoff-binding.ts). */
  binding?: string;
  createdAt: number;
}

interface TicketRecord {
  [key: string]: unknown;
  sid: string;
  returnTo: string;
  binding: string;
  createdAt: number;
  consumed?: number;
}

/** The person record `findAccount` reads (src/issuer/accounts.ts): the last mapped claims. */
export interface AccountRecord {
  [key: string]: unknown;
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  groups: string[];
  roles: string[];
  connector: string;
  updatedAt: number;
}

export interface SsoOptions {
  config: GatehouseConfig;
  store: Store;
  revocations: RevocationSet;
  audit: AuditSink;
  logger: Logger;
  /** The key-encryption key: session cookies are sealed under a key derived from it. */
  kek: Buffer;
  now: () => number;
  /** Hosts a login may return to besides the configured ones (the proxy's route hosts). */
  extraReturnHosts?: () => readonly string[];
}

export class SsoBrowserAuth implements BrowserAuth {
  readonly #o: SsoOptions;
  readonly #issuer: URL;
  readonly #prefix: string;
  readonly #secure: boolean;
  readonly #connectors: Map<string, OidcConnector>;
  readonly #sealer: CookieSealer;
  readonly #limiter: FailureLimiter;
  /** `proxy.trusted_proxies` (read at start, as the proxy and the issuer do). */
  readonly #trusted: Cidr[];
  readonly #rechecking = new Set<string>();
  readonly sessions: SessionManager;

  constructor(o: SsoOptions) {
    this.#o = o;
    this.#issuer = new URL(o.config.issuer.url);
    this.#prefix = this.#issuer.pathname.replace(/\/$/, '');
    this.#secure = this.#issuer.protocol === 'https:';
    const redirectUri = `${this.#issuer.origin}${this.#prefix}/.gatehouse/callback`;
    this.#connectors = new Map(
      o.config.connectors.map((c) => [c.id, new OidcConnector(c, { redirectUri, roles: o.config.roles })]),
    );
    this.#sealer = new CookieSealer(o.kek);
    this.#limiter = new FailureLimiter({
      max: o.config.sessions.max_failures,
      windowMs: o.config.sessions.failure_window,
      now: o.now,
    });
    this.#trusted = o.config.proxy.trusted_proxies
      .map((t) => parseCidr(t))
      .filter((c): c is Cidr => typeof c !== 'string');
    this.sessions = new SessionManager(o.store, o.revocations, {
      idleMs: o.config.sessions.idle_timeout,
      absoluteMs: o.config.sessions.absolute_timeout,
      now: o.now,
    });
  }

  /** The redirect URI to register at every upstream IdP. */
  get redirectUri(): string {
    return `${this.#issuer.origin}${this.#prefix}/.gatehouse/callback`;
  }

  /** A CSRF token for forms shown to this signed-in person (consent). */
  csrfFor(who: Identity): string {
    return this.#sealer.csrfToken(who.sessionId ?? '');
  }

  checkCsrfFor(who: Identity, presented: string | null): boolean {
    return !!who.sessionId && this.#sealer.checkCsrf(who.sessionId, presented);
  }

  connector(id: string): OidcConnector | undefined {
    return this.#connectors.get(id);
  }

  #url(path: string): string {
    return `${this.#issuer.origin}${this.#prefix}${path}`;
  }

  #checkReturn(raw: string | null | undefined): string {
    return checkReturnUrl(raw, {
      issuer: this.#issuer.href,
      hosts: [...this.#o.config.sessions.return_hosts, ...(this.#o.extraReturnHosts?.() ?? [])],
    });
  }

  /**
   * The address failed sign-ins count against and audit records name: the same one policy's `source_ip`,
   * rate limits and the issuer see (src/policy/cidr.ts). Behind a trusted load balancer that is the
   * client, not the balancer (else one client's bad callbacks would lock everyone out); X-Forwarded-For
   * from any other peer is ignored, so a client cannot dodge its own count by naming another address.
   */
  #clientAddress(req: IncomingMessage): string {
    return requestClientAddress(
      req.socket.remoteAddress ?? 'unknown',
      req.headers['x-forwarded-for'],
      this.#trusted,
    );
  }

  /** A session cookie's value for `host` (the host the cookie is set on). */
  #sealSession(sid: string, host: string): string {
    return this.#sealer.seal(`${host.toLowerCase()} ${sid}`, SESSION_PURPOSE);
  }

  /**
   * The live session a request's cookie names on `host`, the host the browser sent it to (by default the
   * request's Host, as the hand-off ticket check reads it). A cookie sealed for another host names nobody,
   * as if it were forged: the request is unauthenticated and audited with `session_cookie: not_valid`.
   */
  async #sessionOf(
    req: IncomingMessage,
    host: string = req.headers.host ?? '',
  ): Promise<LiveSession | undefined> {
    const cookies = readCookies(req);
    const here = host.toLowerCase();
    for (const name of [SESSION_COOKIE_HTTPS, SESSION_COOKIE_HTTP]) {
      const v = cookies.get(name);
      if (!v) continue;
      const opened = this.#sealer.unsealCookie(v, SESSION_PURPOSE);
      const sep = opened?.indexOf(' ') ?? -1;
      if (!opened || sep < 1 || opened.slice(0, sep) !== here) continue;
      const s = await this.sessions.get(opened.slice(sep + 1));
      if (s) return s;
    }
    return undefined;
  }

  async identify(req: IncomingMessage, host: string = this.#issuer.host): Promise<Identity | undefined> {
    const s = await this.#sessionOf(req, host);
    if (!s) return undefined;
    this.#maybeRecheck(s);
    return s.identity;
  }

  /** Asks the IdP again (refresh grant) in the background when the last check is old; a "no" ends the session. */
  #maybeRecheck(s: LiveSession): void {
    const c = this.#connectors.get(s.data.connector);
    const sealedRefresh = s.data.sealedRefresh;
    if (!c || !sealedRefresh) return;
    if (this.#o.now() - s.data.checkedAt < c.config.recheck_interval) return;
    const id = s.record.id;
    if (this.#rechecking.has(id)) return;
    this.#rechecking.add(id);
    void (async () => {
      try {
        const refresh = this.#sealer.unsealStored(sealedRefresh, `refresh:${id}`);
        if (!refresh) {
          // Not the IdP's answer: keep the session, but say so (a stored value that no longer opens).
          this.#o.logger.warn(
            { sid: id, connector: c.id },
            'the stored upstream refresh token did not unseal',
          );
          return;
        }
        const r = await c.recheck(refresh);
        if (!r.ok) {
          await this.sessions.end(id, `the IdP refused the refresh (${r.reason})`);
          await this.#o.audit.append('session.ended', {
            sid: id,
            sub: s.record.subject,
            reason: 'upstream_refused',
            upstream_error: r.reason,
          });
          return;
        }
        await this.sessions.update(id, {
          checkedAt: this.#o.now(),
          ...(r.refreshToken ? { sealedRefresh: this.#sealer.seal(r.refreshToken, `refresh:${id}`) } : {}),
        });
      } catch (err) {
        // The IdP being away is not the IdP saying no: keep the session and try again later.
        this.#o.logger.warn({ err, connector: c.id }, 'upstream recheck failed');
      } finally {
        this.#rechecking.delete(id);
      }
    })();
  }

  async startLogin(req: IncomingMessage, res: ServerResponse, returnTo: string): Promise<void> {
    const q = new URLSearchParams({ rd: returnTo });
    // Coming back to another host goes through a hand-off ticket there: bind it to this browser now,
    // while the browser is on that host (this answer lands there, through the proxy or forward-auth).
    if (!this.#sameHostAsIssuer(returnTo)) q.set(BINDING_PARAM, this.#bindBrowser(req, res, returnTo));
    redirect(res, `${this.#url('/.gatehouse/login')}?${q}`, 302);
  }

  #sameHostAsIssuer(url: string): boolean {
    return new URL(url).host === this.#issuer.host;
  }

  /**
   * Gives the browser a hand-off nonce in a host-only cookie on the return URL's host (the host this
   * response is for) and returns its binding. A nonce the browser already holds is kept, so sign-ins
   * started in several tabs at once all match it; the hand-off that uses it clears it.
   */
  #bindBrowser(req: IncomingMessage, res: ServerResponse, returnTo: string): string {
    const secure = new URL(returnTo).protocol === 'https:';
    const name = handoffCookieName(secure);
    const held = readCookies(req).get(name);
    const nonce = isBinding(held) ? held : newNonce();
    appendSetCookie(res, serializeCookie(name, nonce, { secure, maxAgeSec: HANDOFF_COOKIE_TTL_SEC }));
    return bindingOf(nonce);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', this.#issuer.origin);
    let path = url.pathname;
    if (this.#prefix && path.startsWith(this.#prefix + '/.gatehouse/'))
      path = path.slice(this.#prefix.length);
    const method = req.method ?? 'GET';
    try {
      switch (path) {
        case '/.gatehouse/login':
          if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET');
          await this.#login(req, res, url);
          return true;
        case '/.gatehouse/callback':
          if (method !== 'GET') return methodNotAllowed(res, 'GET');
          await this.#callback(req, res, url);
          return true;
        case '/.gatehouse/session':
          if (method !== 'GET') return methodNotAllowed(res, 'GET');
          await this.#handoff(req, res, url);
          return true;
        case '/.gatehouse/logout':
          if (method === 'POST') await this.#logout(req, res);
          else await this.#logoutPage(req, res);
          return true;
        case '/.gatehouse/signed-out':
          signedOut(res);
          return true;
        case '/.gatehouse/whoami': {
          const s = await this.#sessionOf(req);
          if (!s) sendJson(res, 401, { error: 'not_signed_in' });
          else sendJson(res, 200, { ...s.identity.claims, csrf: this.#sealer.csrfToken(s.record.id) });
          return true;
        }
        default:
          if (path.startsWith('/.gatehouse/backchannel-logout/') && method === 'POST') {
            await this.#backchannel(req, res, path.slice('/.gatehouse/backchannel-logout/'.length));
            return true;
          }
          return false;
      }
    } catch (e) {
      await this.#refuse(req, res, e, path);
      return true;
    }
  }

  async #refuse(req: IncomingMessage, res: ServerResponse, e: unknown, path: string): Promise<void> {
    const err = isGatehouseError(e)
      ? e
      : new GatehouseError('ERR_INTERNAL', 'sign-in failed', {}, { cause: e });
    if (!isGatehouseError(e)) this.#o.logger.error({ err: e }, 'sign-in failed');
    let auditId = '';
    try {
      auditId = (
        await this.#o.audit.append('login.refused', {
          // What the refusal adds for the record (never shown to the client); the fields below win.
          ...(isRecord(err.details.audit) ? err.details.audit : {}),
          path,
          code: err.code,
          reason: err.expose ? err.message : 'internal error',
          address: this.#clientAddress(req),
          ...(err.details.field ? { field: err.details.field } : {}),
          ...(err.details.expected !== undefined ? { expected: err.details.expected } : {}),
          ...(err.details.actual !== undefined ? { actual: err.details.actual } : {}),
        })
      ).id;
    } catch (ae) {
      this.#o.logger.error({ err: ae }, 'audit of a refused sign-in failed');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const hint = err.details.hint ? `<p>${escapeHtml(String(err.details.hint))}</p>` : '';
    // Where to start again: a refusal that knows the page the person was going to names it.
    const again =
      typeof err.details.retry === 'string'
        ? `<a href="${escapeHtml(err.details.retry)}">Start the sign-in again</a>`
        : `<a href="${escapeHtml(this.#url('/.gatehouse/login'))}">Sign in again</a>`;
    sendHtml(
      res,
      err.status,
      'Sign-in refused',
      `<p>${escapeHtml(err.expose ? err.message : 'Something went wrong.')}</p>${hint}<p><code>${escapeHtml(err.code)}</code>${auditId ? ` · audit id <code>${escapeHtml(auditId)}</code>` : ''}</p><p>${again}</p>`,
    );
  }

  async #login(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const returnTo = this.#checkReturn(url.searchParams.get('rd'));
    let binding: string | undefined;
    if (!this.#sameHostAsIssuer(returnTo)) {
      const presented = url.searchParams.get(BINDING_PARAM);
      if (!isBinding(presented)) return this.#bindFirst(req, res, url, returnTo);
      binding = presented;
    }
    const existing = await this.#sessionOf(req);
    if (existing && !url.searchParams.has('connector'))
      return this.#sendBack(res, existing, returnTo, binding);
    if (this.#connectors.size === 0) {
      throw new GatehouseError('ERR_USAGE', 'no upstream IdP is configured (connectors: is empty)', {
        hint: 'add a connectors: entry to the configuration (docs/sso.md)',
      });
    }
    let connector: OidcConnector | undefined;
    const email = url.searchParams.get('email')?.trim() ?? '';
    const wanted = url.searchParams.get('connector');
    if (wanted) {
      connector = this.#connectors.get(wanted);
      if (!connector) throw new GatehouseError('ERR_USAGE', `no connector "${wanted}"`);
    } else if (this.#connectors.size === 1) {
      connector = [...this.#connectors.values()][0];
    } else if (email.includes('@')) {
      const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
      connector = [...this.#connectors.values()].find((c) =>
        c.config.email_domains.some((d) => d.toLowerCase() === domain),
      );
    }
    if (!connector) return this.#chooser(res, returnTo, email, binding);

    const checks = newLoginChecks();
    const record: LoginRecord = {
      connector: connector.id,
      ...checks,
      returnTo,
      ...(binding ? { binding } : {}),
      createdAt: this.#o.now(),
    };
    await this.#o.store.oidcUpsert(LOGIN_MODEL, checks.state, record, this.#o.now() + LOGIN_TTL_MS);
    // `prompt=login` asks the IdP for the password again (switching person on a shared machine).
    const prompt = url.searchParams.get('prompt');
    const target = await connector.authorizationUrl(checks, {
      ...(email.includes('@') ? { loginHint: email } : {}),
      ...(prompt === 'login' || prompt === 'select_account' ? { prompt } : {}),
    });
    // The state is bound to this browser: a callback with someone else's state (login CSRF) is refused.
    appendSetCookie(
      res,
      serializeCookie(loginCookieName(this.#secure), this.#sealer.seal(checks.state, LOGIN_PURPOSE), {
        secure: this.#secure,
        maxAgeSec: LOGIN_TTL_MS / 1000,
      }),
    );
    // From the chooser's form, a redirect to the IdP would be stopped by the form's CSP (sendMoveOn).
    if (url.searchParams.get('via') === 'form') {
      return sendMoveOn(
        res,
        target.href,
        'Signing in',
        `<p><a href="${escapeHtml(target.href)}">Continue to ${escapeHtml(connector.displayName)}</a></p>`,
      );
    }
    redirect(res, target.href, 302);
  }

  /**
   * A sign-in for a page on another host that reached Gatehouse's login without a binding (a link to the
   * login page, nginx's sign-in hint): the browser first goes to that host's own /.gatehouse/login, which
   * gives it the hand-off nonce and sends it back here with the binding.
   */
  #bindFirst(req: IncomingMessage, res: ServerResponse, url: URL, returnTo: string): void {
    const target = new URL(returnTo);
    const q = new URLSearchParams(url.searchParams);
    q.set('rd', returnTo);
    if (req.headers.host?.toLowerCase() === target.host) {
      q.delete('bounced');
      q.set(BINDING_PARAM, this.#bindBrowser(req, res, returnTo));
      return redirect(res, `${this.#url('/.gatehouse/login')}?${q}`, 302);
    }
    // One hop at most: if the route's host does not pass /.gatehouse/ to Gatehouse with its own Host, the
    // request comes back here unbound (or as a return URL pointing at that login page): say so, no loop.
    if (url.searchParams.has('bounced') || target.pathname === '/.gatehouse/login') {
      throw new GatehouseError(
        'ERR_LOGIN_STATE_INVALID',
        `a sign-in for ${target.host} must start on ${target.host}, and ${target.origin}/.gatehouse/login did not reach Gatehouse with that host`,
        {
          field: 'host',
          expected: target.host,
          actual: req.headers.host ?? null,
          hint: `send ${target.origin}/.gatehouse/ to Gatehouse and pass the Host header unchanged (docs/sso.md)`,
        },
      );
    }
    q.set('bounced', '1');
    redirect(res, `${target.origin}/.gatehouse/login?${q}`, 302);
  }

  #chooser(res: ServerResponse, returnTo: string, email: string, binding: string | undefined): void {
    const keep = (q: URLSearchParams): URLSearchParams => {
      q.set('rd', returnTo);
      if (binding) q.set(BINDING_PARAM, binding);
      return q;
    };
    const items = [...this.#connectors.values()]
      .map(
        (c) =>
          `<li><a href="${escapeHtml(`${this.#url('/.gatehouse/login')}?${keep(new URLSearchParams({ connector: c.id }))}`)}">${escapeHtml(c.displayName)}</a></li>`,
      )
      .join('');
    const hidden = [...keep(new URLSearchParams({ via: 'form' }))]
      .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
      .join('');
    const note = email ? `<p>No sign-in is set up for ${escapeHtml(email)}; choose one:</p>` : '';
    sendHtml(
      res,
      200,
      'Sign in',
      `${note}<form method="get" action="${escapeHtml(this.#url('/.gatehouse/login'))}">${hidden}<label>Email <input name="email" type="email" autocomplete="email" value="${escapeHtml(email)}"></label> <button>Continue</button></form><ul>${items}</ul>`,
    );
  }

  async #callback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const addr = this.#clientAddress(req);
    if (this.#limiter.blocked(addr)) {
      throw new GatehouseError(
        'ERR_LOGIN_RATE_LIMITED',
        'too many failed sign-ins from this address; try again later',
      );
    }
    try {
      await this.#finishLogin(req, res, url);
    } catch (e) {
      this.#limiter.fail(addr);
      throw e;
    }
  }

  async #finishLogin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const state = url.searchParams.get('state') ?? '';
    const cookies = readCookies(req);
    const bound =
      this.#sealer.unsealCookie(cookies.get(LOGIN_COOKIE_HTTPS) ?? '', LOGIN_PURPOSE) ??
      this.#sealer.unsealCookie(cookies.get(LOGIN_COOKIE_HTTP) ?? '', LOGIN_PURPOSE);
    // Clear the login cookie whatever happens: one attempt, one state.
    appendSetCookie(
      res,
      serializeCookie(loginCookieName(this.#secure), '', { secure: this.#secure, maxAgeSec: 0 }),
    );
    if (!state || !bound || bound !== state) {
      throw new GatehouseError(
        'ERR_LOGIN_STATE_INVALID',
        'this sign-in answer does not belong to a sign-in started in this browser (state does not match)',
        { field: 'state' },
      );
    }
    const rec = (await this.#o.store.oidcFind(LOGIN_MODEL, state)) as LoginRecord | undefined;
    if (!rec || rec.consumed || this.#o.now() - rec.createdAt > LOGIN_TTL_MS) {
      throw new GatehouseError('ERR_LOGIN_STATE_INVALID', 'this sign-in was already used or has expired', {
        field: 'state',
      });
    }
    if (!(await this.#o.store.oidcConsume(LOGIN_MODEL, state, Math.floor(this.#o.now() / 1000)))) {
      throw new GatehouseError('ERR_LOGIN_STATE_INVALID', 'this sign-in was already used or has expired', {
        field: 'state',
      });
    }
    const connector = this.#connectors.get(rec.connector);
    if (!connector)
      throw new GatehouseError('ERR_LOGIN_STATE_INVALID', `connector "${rec.connector}" is gone`);
    const upstreamError = url.searchParams.get('error');
    if (upstreamError) {
      throw new GatehouseError(
        'ERR_LOGIN_UPSTREAM_REFUSED',
        `the IdP of connector "${connector.id}" answered ${upstreamError}${url.searchParams.get('error_description') ? `: ${url.searchParams.get('error_description')}` : ''}`,
      );
    }
    const checks: LoginChecks = { state: rec.state, nonce: rec.nonce, codeVerifier: rec.codeVerifier };
    const callbackUrl = new URL(this.redirectUri);
    callbackUrl.search = url.search;
    const result = await connector.finish(callbackUrl, checks);
    const live = await this.#createSession(req, res, connector.id, result.person, {
      upstreamSub: result.upstreamSub,
      ...(result.upstreamSid ? { upstreamSid: result.upstreamSid } : {}),
      refreshToken: result.refreshToken,
      idToken: result.idToken,
    });
    await this.#sendBack(res, live, rec.returnTo, rec.binding);
  }

  async #createSession(
    req: IncomingMessage,
    res: ServerResponse,
    connectorId: string,
    person: Person,
    up: { upstreamSub: string; upstreamSid?: string; refreshToken?: string; idToken?: string },
  ): Promise<LiveSession> {
    // A new id at every login (no fixation); the browser's previous session ends.
    const previous = await this.#sessionOf(req);
    if (previous) await this.sessions.end(previous.record.id, 'replaced by a new sign-in');
    const now = this.#o.now();
    const live = await this.sessions.create(person, {
      connector: connectorId,
      upstreamSub: up.upstreamSub,
      ...(up.upstreamSid ? { upstreamSid: up.upstreamSid } : {}),
      checkedAt: now,
    });
    const id = live.record.id;
    const patch: Record<string, string> = {};
    if (up.refreshToken) patch.sealedRefresh = this.#sealer.seal(up.refreshToken, `refresh:${id}`);
    if (up.idToken) patch.sealedIdToken = this.#sealer.seal(up.idToken, `id_token:${id}`);
    if (Object.keys(patch).length) await this.sessions.update(id, patch);
    const account: AccountRecord = {
      sub: person.sub,
      ...(person.email !== undefined
        ? { email: person.email, email_verified: person.emailVerified ?? false }
        : {}),
      ...(person.name !== undefined ? { name: person.name } : {}),
      groups: person.groups,
      roles: person.roles,
      connector: connectorId,
      updatedAt: now,
    };
    await this.#o.store.oidcUpsert(ACCOUNT_MODEL, person.sub, account, null);
    await this.#o.audit.append('session.created', {
      sid: id,
      sub: person.sub,
      connector: connectorId,
      email: person.email ?? null,
      groups: person.groups,
      roles: person.roles,
      address: this.#clientAddress(req),
      ...(previous ? { replaced_sid: previous.record.id } : {}),
    });
    appendSetCookie(
      res,
      serializeCookie(sessionCookieName(this.#secure), this.#sealSession(id, this.#issuer.host), {
        secure: this.#secure,
        maxAgeSec: Math.floor(this.#o.config.sessions.absolute_timeout / 1000),
      }),
    );
    return live;
  }

  /** Back to where the person was going; to another host through a one-time ticket that sets its cookie. */
  async #sendBack(
    res: ServerResponse,
    live: LiveSession,
    returnTo: string,
    binding: string | undefined,
  ): Promise<void> {
    const target = new URL(returnTo);
    if (target.host === this.#issuer.host) return redirect(res, target.href);
    // #login binds every sign-in for another host; a login state from before bindings existed has none.
    if (!binding) {
      throw new GatehouseError(
        'ERR_LOGIN_STATE_INVALID',
        `this sign-in for ${target.host} was not started on ${target.host}`,
        { retry: this.#retryUrl(target) },
      );
    }
    const ticket = randomBytes(24).toString('base64url');
    const record: TicketRecord = {
      sid: live.record.id,
      returnTo: target.href,
      binding,
      createdAt: this.#o.now(),
    };
    await this.#o.store.oidcUpsert(TICKET_MODEL, ticket, record, this.#o.now() + TICKET_TTL_MS);
    redirect(res, `${target.origin}/.gatehouse/session?ticket=${ticket}`);
  }

  async #handoff(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const ticket = url.searchParams.get('ticket') ?? '';
    const rec = ticket
      ? ((await this.#o.store.oidcFind(TICKET_MODEL, ticket)) as TicketRecord | undefined)
      : undefined;
    if (!rec || rec.consumed || this.#o.now() - rec.createdAt > TICKET_TTL_MS) {
      throw new GatehouseError(
        'ERR_LOGIN_STATE_INVALID',
        'this sign-in hand-off was already used or has expired',
      );
    }
    // Only the request that consumes it goes on (concurrent uses of one ticket, on any replica).
    if (!(await this.#o.store.oidcConsume(TICKET_MODEL, ticket, Math.floor(this.#o.now() / 1000)))) {
      throw new GatehouseError(
        'ERR_LOGIN_STATE_INVALID',
        'this sign-in hand-off was already used or has expired',
      );
    }
    const target = new URL(rec.returnTo);
    // The cookie lands on whatever host this request reached; it is only useful on the ticket's own host.
    if (req.headers.host?.toLowerCase() !== target.host) {
      throw new GatehouseError('ERR_LOGIN_STATE_INVALID', 'this sign-in hand-off is for another host');
    }
    const secure = target.protocol === 'https:';
    // Login CSRF: a ticket is good only in the browser that started its sign-in (handoff-binding.ts).
    // Someone else's ticket, opened here, would sign this browser in as them.
    const nonce = readCookies(req).get(handoffCookieName(secure));
    if (!nonce || !isBinding(rec.binding) || !bindingMatches(nonce, rec.binding)) {
      throw new GatehouseError(
        'ERR_LOGIN_STATE_INVALID',
        'this sign-in link was not started in this browser, so it is refused: it would sign you in as whoever started it',
        {
          field: handoffCookieName(secure),
          actual: nonce ? 'another sign-in' : 'missing',
          hint: `If you did not open a sign-in link on purpose, someone may have sent it to you. To sign in to ${target.host} as yourself, start again.`,
          retry: this.#retryUrl(target),
          // Whose ticket it was: the person who may have sent it (the session is theirs to revoke).
          audit: {
            refusal: 'not_this_browser',
            host: target.host,
            ticket_sid: rec.sid,
            ticket_sub: await this.#subjectOf(rec.sid),
          },
        },
      );
    }
    const live = await this.sessions.get(rec.sid);
    if (!live)
      throw new GatehouseError('ERR_LOGIN_STATE_INVALID', 'the session of this hand-off has ended', {
        retry: this.#retryUrl(target),
      });
    appendSetCookie(res, serializeCookie(handoffCookieName(secure), '', { secure, maxAgeSec: 0 }));
    appendSetCookie(
      res,
      serializeCookie(sessionCookieName(secure), this.#sealSession(rec.sid, target.host), {
        secure,
        maxAgeSec: Math.floor(this.#o.config.sessions.absolute_timeout / 1000),
      }),
    );
    redirect(res, target.href);
  }

  /** A fresh sign-in for a page on a route's host, started on that host (so it binds this browser). */
  #retryUrl(target: URL): string {
    return `${target.origin}/.gatehouse/login?${new URLSearchParams({ rd: target.href })}`;
  }

  /** Whose session a ticket names, for the audit record of its refusal (null once it is gone). */
  async #subjectOf(sid: string): Promise<string | null> {
    return (await this.#o.store.getSession(sid).catch(() => undefined))?.subject ?? null;
  }

  async #logoutPage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const s = await this.#sessionOf(req);
    if (!s) return sendHtml(res, 200, 'Signed out', '<p>You are not signed in.</p>');
    sendHtml(
      res,
      200,
      'Sign out',
      // No action: the form posts back to this page, on whatever host showed it (the issuer's, or a route's
      // /.gatehouse/logout). Its CSP (form-action 'self') would block a post to another host.
      `<p>Signed in as ${escapeHtml(s.identity.email ?? s.identity.sub)}.</p><form method="post"><input type="hidden" name="csrf" value="${escapeHtml(this.#sealer.csrfToken(s.record.id))}"><button>Sign out</button></form>`,
    );
  }

  async #logout(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    const s = await this.#sessionOf(req);
    if (!s) return signedOut(res);
    if (!this.#sealer.checkCsrf(s.record.id, form.get('csrf'))) {
      throw new GatehouseError(
        'ERR_CSRF',
        'sign-out needs the form from the sign-out page (CSRF token missing or wrong)',
      );
    }
    const id = s.record.id;
    const idToken = s.data.sealedIdToken
      ? this.#sealer.unsealStored(s.data.sealedIdToken, `id_token:${id}`)
      : undefined;
    await this.sessions.end(id, 'signed out');
    await this.#o.audit.append('session.ended', { sid: id, sub: s.record.subject, reason: 'signed_out' });
    for (const secure of [true, false])
      appendSetCookie(res, serializeCookie(sessionCookieName(secure), '', { secure, maxAgeSec: 0 }));
    let upstream: URL | undefined;
    try {
      upstream = await this.#connectors
        .get(s.data.connector)
        ?.endSessionUrl(idToken, this.#url('/.gatehouse/signed-out'));
    } catch (err) {
      this.#o.logger.warn({ err }, 'upstream logout URL unavailable');
    }
    if (!upstream) return signedOut(res);
    // Not a redirect: the sign-out form's CSP (form-action 'self') covers every redirect after its POST,
    // so the browser would stop before the IdP.
    sendMoveOn(
      res,
      upstream.href,
      'Signing out',
      `<p>You are signed out of Gatehouse.</p><p><a href="${escapeHtml(upstream.href)}">Continue to sign out at your IdP</a></p>`,
    );
  }

  async #backchannel(req: IncomingMessage, res: ServerResponse, connectorId: string): Promise<void> {
    const connector = this.#connectors.get(connectorId);
    if (!connector) return sendJson(res, 404, { error: 'not_found' });
    const form = await readForm(req);
    const token = form.get('logout_token');
    if (!token)
      return sendJson(res, 400, { error: 'invalid_request', error_description: 'logout_token is missing' });
    let who: { sub?: string; sid?: string };
    try {
      who = await connector.verifyLogoutToken(token);
    } catch (e) {
      const { id } = await this.#o.audit.append('logout.refused', {
        connector: connectorId,
        reason: isGatehouseError(e) ? e.message : 'invalid logout token',
      });
      return sendJson(res, 400, {
        error: 'invalid_request',
        error_description: `logout token refused (audit id ${id})`,
      });
    }
    const ended: string[] = [];
    for (const r of await this.sessions.findUpstream(connectorId, who)) {
      await this.sessions.end(r.id, 'back-channel logout');
      ended.push(r.id);
    }
    await this.#o.audit.append('session.ended', {
      reason: 'backchannel_logout',
      connector: connectorId,
      upstream_sub: who.sub ?? null,
      upstream_sid: who.sid ?? null,
      sids: ended,
    });
    res.writeHead(200, { 'cache-control': 'no-store', 'content-length': 0 });
    res.end();
  }
}

/** The answer to a sign-out: a page, not a redirect, so it shows on the host where the form was. */
function signedOut(res: ServerResponse): void {
  sendHtml(res, 200, 'Signed out', '<p>You are signed out of Gatehouse.</p>');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function methodNotAllowed(res: ServerResponse, allow: string): true {
  res.writeHead(405, { allow, 'content-length': 0 });
  res.end();
  return true;
}
