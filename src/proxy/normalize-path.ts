// Request-target normalization for the proxy: the one path that route matching, policy and the upstream
// all see. Anything two servers could read differently (encoded slashes, path parameters, double
// encoding, control characters) is refused rather than guessed at.

export interface NormalizedTarget {
  /** The normalized path: dot segments resolved, slashes collapsed, unreserved characters decoded once. */
  path: string;
  /** The query as received, with its leading `?`, or ''. Never matched by policy. */
  query: string;
  /** The authority of an absolute-form target (`GET http://host/x`), lower-cased, or undefined. */
  authority?: string;
}

export interface TargetRefusal {
  refused: string;
}

const HEX = /^[0-9A-Fa-f]{2}$/;

function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e
  );
}

// Characters allowed raw in a path (RFC 3986 pchar and `/`), minus `;` which some servers read as a
// path parameter (`/admin;x` is `/admin` to Tomcat and Jetty) and `%` which is handled apart.
const RAW_ALLOWED = new Set(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@/".split(''),
);

/** Percent-decodes unreserved characters once and upper-cases the rest; refuses what is ambiguous. */
function decodeOnce(raw: string): string | TargetRefusal {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (ch !== '%') {
      if (!RAW_ALLOWED.has(ch)) {
        const code = ch.charCodeAt(0);
        if (ch === '\\') return { refused: 'a backslash in the path' };
        if (ch === ';') return { refused: 'a ";" path parameter' };
        if (ch === '#') return { refused: 'a "#" in the request target' };
        if (code < 0x20 || code === 0x7f) return { refused: 'a control character in the path' };
        return { refused: `the character ${JSON.stringify(ch)} unencoded in the path` };
      }
      out += ch;
      continue;
    }
    const hex = raw.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return { refused: 'an invalid percent-encoding in the path' };
    const code = parseInt(hex, 16);
    i += 2;
    if (code === 0x2f) return { refused: 'an encoded "/" (%2F) in the path' };
    if (code === 0x5c) return { refused: 'an encoded "\\" (%5C) in the path' };
    if (code === 0x00) return { refused: 'an encoded NUL (%00) in the path' };
    if (code < 0x20 || code === 0x7f) return { refused: 'an encoded control character in the path' };
    if (code === 0x25 && HEX.test(raw.slice(i + 1, i + 3))) {
      // `%252e` is `%2e` to a server that decodes twice: refuse rather than hope nobody does.
      return { refused: 'double percent-encoding (%25 followed by hex) in the path' };
    }
    out += isUnreserved(code) ? String.fromCharCode(code) : `%${hex.toUpperCase()}`;
  }
  return out;
}

/** RFC 3986 §5.2.4 dot-segment removal on a path whose empty segments are already collapsed. */
function removeDotSegments(path: string): string {
  const segments = path.split('/').slice(1);
  const out: string[] = [];
  let trailing = false;
  for (const seg of segments) {
    trailing = false;
    if (seg === '.') {
      trailing = true;
    } else if (seg === '..') {
      out.pop();
      trailing = true;
    } else if (seg === '') {
      trailing = true;
    } else out.push(seg);
  }
  return '/' + out.join('/') + (trailing && out.length > 0 ? '/' : '');
}

/**
 * Normalizes a request target (`req.url`): origin-form `/path?query` or absolute-form
 * `http://host/path?query`. Returns the normalized path and the untouched query, or why it is refused.
 */
export function normalizeTarget(target: string): NormalizedTarget | TargetRefusal {
  if (target.includes('#')) return { refused: 'a "#" in the request target' };
  let rest = target;
  let authority: string | undefined;
  const abs = /^(https?):\/\/([^/?]*)/i.exec(target);
  if (abs) {
    authority = (abs[2] as string).toLowerCase();
    if (authority === '' || authority.includes('@')) return { refused: 'an invalid absolute-form target' };
    rest = target.slice(abs[0].length);
    if (rest === '' || rest.startsWith('?')) rest = '/' + rest;
  }
  if (!rest.startsWith('/')) return { refused: 'a request target that is not a path' };
  const q = rest.indexOf('?');
  const rawPath = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q);
  for (let i = 0; i < query.length; i++) {
    const code = query.charCodeAt(i);
    if (code < 0x21 || code >= 0x7f) return { refused: 'a control or non-ASCII character in the query' };
  }
  const decoded = decodeOnce(rawPath);
  if (typeof decoded !== 'string') return decoded;
  // `%25%32%65` decodes to `%252e`: the same double encoding, built from decoded hex digits.
  if (/%25[0-9A-Fa-f]{2}/.test(decoded))
    return { refused: 'double percent-encoding (%25 followed by hex) in the path' };
  const collapsed = decoded.replace(/\/{2,}/g, '/');
  const path = removeDotSegments(collapsed);
  return authority === undefined ? { path, query } : { path, query, authority };
}

export function isRefusal(r: NormalizedTarget | TargetRefusal): r is TargetRefusal {
  return 'refused' in r;
}
