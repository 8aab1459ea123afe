// Nested claim lookup: a dotted path (`realm_access.roles`) or a JSON Pointer (`/kubernetes.io/namespace`,
// RFC 6901) for keys that contain dots. Lookups read own properties only: `__proto__` and `constructor`
// are just names that are usually absent, never a way into the prototype chain.

export interface ClaimPath {
  /** As written in the policy, for reasons and explanations. */
  text: string;
  segments: readonly string[];
  pointer: boolean;
}

/** Parses a claim path, or returns the reason it is not one. */
export function parseClaimPath(text: string): ClaimPath | string {
  if (text.length === 0) return 'claim path is empty';
  if (text.length > 512) return 'claim path is longer than 512 characters';
  if (text.startsWith('/')) {
    const segments: string[] = [];
    for (const raw of text.slice(1).split('/')) {
      // RFC 6901 §3: `~` is only valid as `~0` or `~1`.
      if (/~(?![01])/.test(raw))
        return `invalid JSON Pointer escape in "${raw}" (use ~0 for "~" and ~1 for "/")`;
      segments.push(raw.replace(/~1/g, '/').replace(/~0/g, '~'));
    }
    return { text, segments, pointer: true };
  }
  const segments = text.split('.');
  if (segments.some((s) => s.length === 0)) {
    return `claim path "${text}" has an empty segment (for keys that contain dots, use a JSON Pointer such as "/kubernetes.io/namespace")`;
  }
  return { text, segments, pointer: false };
}

export type Lookup = { found: true; value: unknown } | { found: false };

const ABSENT: Lookup = { found: false };

export function lookupClaim(claims: unknown, path: ClaimPath): Lookup {
  let cur: unknown = claims;
  for (const seg of path.segments) {
    if (cur === null || typeof cur !== 'object') return ABSENT;
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9]\d*)$/.test(seg)) return ABSENT;
    }
    if (!Object.hasOwn(cur, seg)) return ABSENT;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur === undefined ? ABSENT : { found: true, value: cur };
}

/**
 * When a dotted path finds nothing but the claims hold a key made of its first segments joined by dots
 * (`kubernetes.io`), the author almost certainly meant a JSON Pointer; say so in the refusal.
 */
export function dottedPathHint(claims: unknown, path: ClaimPath): string | undefined {
  if (path.pointer || path.segments.length < 2 || claims === null || typeof claims !== 'object')
    return undefined;
  for (let i = path.segments.length; i >= 2; i--) {
    const key = path.segments.slice(0, i).join('.');
    if (Object.hasOwn(claims, key)) {
      const rest = path.segments.slice(i).map((s) => '/' + s.replace(/~/g, '~0').replace(/\//g, '~1'));
      return `the claims have a key "${key}"; a dotted path splits at every dot, so write the JSON Pointer "/${key.replace(/~/g, '~0').replace(/\//g, '~1')}${rest.join('')}"`;
    }
  }
  return undefined;
}
