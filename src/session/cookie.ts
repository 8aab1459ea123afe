// Session cookies: the cookie carries only the session id, sealed (AES-256-GCM under a key derived from
// the key-encryption key, so every replica can open it and nobody can mint one). `__Host-` over https.
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const SESSION_COOKIE_HTTPS = '__Host-gatehouse';
export const SESSION_COOKIE_HTTP = 'gatehouse_session';
export const LOGIN_COOKIE_HTTPS = '__Host-gatehouse-login';
export const LOGIN_COOKIE_HTTP = 'gatehouse_login';

export function sessionCookieName(secure: boolean): string {
  return secure ? SESSION_COOKIE_HTTPS : SESSION_COOKIE_HTTP;
}

export function loginCookieName(secure: boolean): string {
  return secure ? LOGIN_COOKIE_HTTPS : LOGIN_COOKIE_HTTP;
}

/**
 * The longest sealed value a cookie of ours carries (a sealed session id or login state is about 100
 * characters). Cookie values come from the request, so anything longer is refused before any crypto.
 */
const COOKIE_VALUE_MAX = 512;

/**
 * Seals values for cookies (session ids, login states) and for storage (the upstream refresh and ID
 * tokens a session keeps, which can be kilobytes), and makes CSRF tokens.
 */
export class CookieSealer {
  readonly #enc: Buffer;
  readonly #mac: Buffer;

  constructor(kek: Buffer) {
    this.#enc = Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), 'gatehouse session cookie v1', 32));
    this.#mac = Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), 'gatehouse csrf v1', 32));
  }

  seal(value: string, purpose: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#enc, iv);
    c.setAAD(Buffer.from(purpose));
    const ct = Buffer.concat([c.update(value, 'utf8'), c.final()]);
    return [iv, ct, c.getAuthTag()].map((b) => b.toString('base64url')).join('.');
  }

  /** A cookie's value opened, or undefined when it was not sealed by us for this purpose or is too long. */
  unsealCookie(value: string, purpose: string): string | undefined {
    return value.length > COOKIE_VALUE_MAX ? undefined : this.unsealStored(value, purpose);
  }

  /**
   * A value sealed for storage opened (no size limit: an ID token or a JWT refresh token is far longer
   * than any cookie value), or undefined when it was not sealed by us for this purpose.
   */
  unsealStored(sealed: string, purpose: string): string | undefined {
    const parts = sealed.split('.');
    if (parts.length !== 3) return undefined;
    try {
      const [iv, ct, tag] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer];
      if (iv.length !== 12 || tag.length !== 16) return undefined;
      const d = createDecipheriv('aes-256-gcm', this.#enc, iv);
      d.setAAD(Buffer.from(purpose));
      d.setAuthTag(tag);
      return Buffer.concat([d.update(ct), d.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }

  /** A CSRF token bound to a session (nothing to store: an HMAC of its id). */
  csrfToken(sessionId: string): string {
    return createHmac('sha256', this.#mac).update(sessionId).digest('base64url');
  }

  checkCsrf(sessionId: string, presented: string | undefined | null): boolean {
    if (!presented) return false;
    const a = Buffer.from(this.csrfToken(sessionId));
    const b = Buffer.from(presented);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

/** Cookies of a request by name (first wins; values left as sent). */
export function readCookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  const header = req.headers.cookie;
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const name = part.slice(0, i).trim();
    if (!out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

export interface CookieOptions {
  secure: boolean;
  maxAgeSec?: number;
}

/** A Set-Cookie value: HttpOnly, SameSite=Lax, Path=/, Secure over https, never a Domain (`__Host-` rules). */
export function serializeCookie(name: string, value: string, opts: CookieOptions): string {
  const parts = [`${name}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Lax'];
  if (opts.secure) parts.push('Secure');
  if (opts.maxAgeSec !== undefined) parts.push(`Max-Age=${opts.maxAgeSec}`);
  return parts.join('; ');
}

export function appendSetCookie(
  res: { getHeader(n: string): unknown; setHeader(n: string, v: string[]): void },
  value: string,
): void {
  const prev = res.getHeader('set-cookie');
  const list = Array.isArray(prev) ? (prev as string[]) : prev ? [String(prev)] : [];
  res.setHeader('set-cookie', [...list, value]);
}
