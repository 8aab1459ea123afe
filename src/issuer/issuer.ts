// The issuer as the HTTP server sees it: the current oidc-provider instance behind a handler that pins
// the public URL. Every URL the provider hands out comes from the configured issuer, never from the
// request's Host or X-Forwarded-* (a spoofed Host must not move `jwks_uri`).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { IssuerContext } from './context.js';
import { createProvider } from './provider.js';
import { parseCidr, requestClientAddress, type Cidr } from '../policy/cidr.js';

export class Issuer {
  readonly #ic: IssuerContext;
  readonly #cookieKeys: string[];
  readonly #public: URL;
  readonly #prefix: string;
  /** `proxy.trusted_proxies` (read at start, as the proxy does). */
  readonly #trusted: Cidr[];
  #provider: Provider | undefined;
  #callback: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  #builtFor = -1;

  constructor(ic: IssuerContext, cookieKeys: string[]) {
    this.#ic = ic;
    this.#cookieKeys = cookieKeys;
    this.#public = new URL(ic.config.issuer.url);
    this.#prefix = this.#public.pathname.replace(/\/$/, '');
    this.#trusted = ic.config.proxy.trusted_proxies
      .map((t) => parseCidr(t))
      .filter((c): c is Cidr => typeof c !== 'string');
  }

  get provider(): Provider {
    if (!this.#provider) throw new Error('issuer not started');
    return this.#provider;
  }

  get context(): IssuerContext {
    return this.#ic;
  }

  /** Builds a provider for the current key set and swaps it in; requests in flight finish on the old one. */
  async rebuild(): Promise<void> {
    const version = this.#ic.keys.version;
    const provider = await createProvider(this.#ic, this.#cookieKeys);
    this.#provider = provider;
    this.#callback = provider.callback() as (req: IncomingMessage, res: ServerResponse) => void;
    this.#builtFor = version;
  }

  /** Rebuilds when the key ring changed since the last build. */
  async refresh(): Promise<void> {
    if (this.#builtFor !== this.#ic.keys.version) await this.rebuild();
  }

  /** True when the request is for the issuer (its path is under the issuer URL's path). */
  owns(pathname: string): boolean {
    return this.#prefix === '' || pathname === this.#prefix || pathname.startsWith(this.#prefix + '/');
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const cb = this.#callback;
    if (!cb) {
      res.statusCode = 503;
      res.end();
      return;
    }
    // Pin scheme and host to the public URL; the provider trusts these headers (proxy = true) and no one
    // else's. X-Forwarded-For becomes the one client address Gatehouse worked out (the peer, or behind a
    // trusted proxy the first untrusted hop), so `ctx.ip` in audit records is that address.
    const peer = req.socket.remoteAddress ?? '';
    const ip = requestClientAddress(peer, req.headers['x-forwarded-for'], this.#trusted);
    for (const h of Object.keys(req.headers))
      if (h.startsWith('x-forwarded-') || h === 'forwarded') delete req.headers[h];
    if (ip) req.headers['x-forwarded-for'] = ip;
    req.headers.host = this.#public.host;
    req.headers['x-forwarded-host'] = this.#public.host;
    req.headers['x-forwarded-proto'] = this.#public.protocol.slice(0, -1);
    if (this.#prefix) {
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = req.url;
      req.url = (req.url ?? '/').slice(this.#prefix.length) || '/';
    }
    cb(req, res);
  }
}
