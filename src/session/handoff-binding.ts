// Binds a cross-host hand-off ticket to the browser that started the sign-in (against login CSRF: someone
// else's fresh ticket, opened in this browser, would sign it in as them). Where a route's host sends the
// browser to sign in, it gets a random nonce in a host-only cookie; the nonce's hash travels through the
// sign-in (login URL, login state, ticket), and the hand-off on that host asks for the cookie back.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const HANDOFF_COOKIE_HTTPS = '__Host-gatehouse-handoff';
export const HANDOFF_COOKIE_HTTP = 'gatehouse_handoff';

/** The login URL's parameter that carries the binding (the nonce's hash) to Gatehouse's host. */
export const BINDING_PARAM = 'binding';

/** As long as a sign-in may take (the login state's lifetime). */
export const HANDOFF_COOKIE_TTL_SEC = 10 * 60;

const NONCE = /^[A-Za-z0-9_-]{43}$/;

export function handoffCookieName(secure: boolean): string {
  return secure ? HANDOFF_COOKIE_HTTPS : HANDOFF_COOKIE_HTTP;
}

/** A well-formed binding (or nonce): 32 bytes in base64url. */
export function isBinding(value: string | null | undefined): value is string {
  return typeof value === 'string' && NONCE.test(value);
}

/** A fresh nonce, 256 random bits. */
export function newNonce(): string {
  return randomBytes(32).toString('base64url');
}

/** The binding of a nonce: its SHA-256, base64url. Only this leaves the browser's cookie. */
export function bindingOf(nonce: string): string {
  return createHash('sha256').update(nonce).digest('base64url');
}

/** Whether the nonce a browser presents is the one the binding was made from (constant time). */
export function bindingMatches(presentedNonce: string, binding: string): boolean {
  if (!isBinding(presentedNonce) || !isBinding(binding)) return false;
  return timingSafeEqual(Buffer.from(bindingOf(presentedNonce)), Buffer.from(binding));
}
