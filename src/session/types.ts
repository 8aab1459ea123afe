// The contract between browser sign-in (src/session, the SSO part) and the proxy: the proxy asks who a
// browser is, sends it to login when nobody, and lets sign-in handle its own /.gatehouse/ paths.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Who a request is, however it authenticated; what policy and the identity headers see. */
export interface Identity {
  sub: string;
  email?: string;
  name?: string;
  groups: string[];
  roles: string[];
  /** Every claim policy may look at (for a bearer token: its verified claims). */
  claims: Record<string, unknown>;
  /** Set for browser sessions: the server-side session id (revocable). */
  sessionId?: string;
  source: 'session' | 'bearer';
  /** For bearer tokens: the token's jti and expiry (seconds). */
  jti?: string;
  exp?: number;
}

/** Gatehouse's own cookies; the proxy never forwards them upstream. */
export const GATEHOUSE_COOKIE_PREFIXES = ['__Host-gatehouse', 'gatehouse_'] as const;

export interface BrowserAuth {
  /**
   * The identity of a valid, unrevoked session cookie on this request, or undefined. No database on the
   * hot path. `host` is the public host the browser sent the cookie to (a URL's `host`: name and
   * non-default port), by default Gatehouse's own: a cookie set for another host identifies nobody.
   */
  identify(req: IncomingMessage, host?: string): Promise<Identity | undefined>;
  /**
   * Sends the browser to sign in, bringing it back afterwards to `returnTo` (an absolute URL the caller
   * built from the configured public URL and the normalized path, never from the Host header).
   */
  startLogin(req: IncomingMessage, res: ServerResponse, returnTo: string): Promise<void>;
  /** Handles the /.gatehouse/* paths sign-in owns (callback, sign-out, login page); false when not its path. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}
