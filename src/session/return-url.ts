// The post-login return URL: only to the issuer's own host, a route's host or a `sessions.return_hosts`
// host, always handed back as a normalized absolute URL, never as the raw text the browser sent (no open
// redirect through `//evil`, `/\evil`, `https:evil`, tabs, userinfo or encodings).
import { GatehouseError } from '../lib/errors.js';
import { compileHostPortPattern } from '../policy/host-pattern.js';

export interface ReturnUrlPolicy {
  /** The public URL of Gatehouse; relative return URLs resolve against it. */
  issuer: string;
  /**
   * Further hosts: `sessions.return_hosts` and the routes' hosts (`app.example.com`, `*.example.com` for
   * exactly one label more, `**.example.com` for one or more, optionally with `:port`).
   */
  hosts: readonly string[];
}

function refuse(raw: string, why: string): never {
  throw new GatehouseError('ERR_RETURN_URL_REFUSED', `the return URL is refused: ${why}`, {
    field: 'rd',
    actual: raw.slice(0, 200),
  });
}

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

/**
 * Whether the URL's host is one a pattern allows: `*` is exactly one DNS label, never the apex
 * (src/policy/host-pattern.ts); a pattern without a port allows any port. A pattern the config checks
 * would have refused allows nothing.
 */
function hostAllowed(pattern: string, u: URL): boolean {
  try {
    return compileHostPortPattern(pattern)(u.hostname, u.port || (DEFAULT_PORT[u.protocol] ?? ''));
  } catch {
    return false;
  }
}

/** The normalized absolute URL to send the browser to, or ERR_RETURN_URL_REFUSED. */
export function checkReturnUrl(raw: string | null | undefined, policy: ReturnUrlPolicy): string {
  const issuer = new URL(policy.issuer);
  if (raw === null || raw === undefined || raw === '') return issuer.origin + '/';
  if (raw.length > 2048) refuse(raw, 'it is too long');
  // Browsers drop tabs and newlines inside URLs and read `\` as `/`: `/\t/evil` and `/\evil` are `//evil`.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(raw)) refuse(raw, 'it contains control characters or a backslash');
  const relative = raw.startsWith('/');
  if (relative && (raw.startsWith('//') || raw.startsWith('/%2f') || raw.startsWith('/%2F')))
    refuse(raw, 'it starts with two slashes (another host)');
  if (!relative && !/^https?:\/\//i.test(raw))
    refuse(raw, 'it must be a path starting with / or an absolute http(s) URL');
  let u: URL;
  try {
    u = new URL(raw, issuer);
  } catch {
    refuse(raw, 'it is not a URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') refuse(raw, 'only http and https are allowed');
  if (
    u.username ||
    u.password ||
    /@/.test(
      raw
        .split(/[?#]/)[0]
        ?.replace(/^https?:\/\//i, '')
        .split('/')[0] ?? '',
    )
  )
    refuse(raw, 'it has user information (@) before the host');
  const allowed = u.host === issuer.host || policy.hosts.some((p) => hostAllowed(p, u));
  if (!allowed)
    refuse(raw, `host ${u.host} is not ${issuer.host}, a route's host, or one of sessions.return_hosts`);
  // Never downgrade: over an https issuer, only https return URLs.
  if (issuer.protocol === 'https:' && u.protocol !== 'https:') refuse(raw, 'it is not https');
  return u.href;
}
