// The `sub` of an exchanged token, written as a template over the subject token's claims
// (`gh:{repository}:{environment}`): parsed once at load, rendered per exchange, and a missing claim
// is a refusal that names it, never an empty segment.
import { lookupClaim, parseClaimPath, type ClaimPath } from './claim-path.js';

type Part = { literal: string } | { claim: string; path: ClaimPath };

export interface SubjectTemplate {
  readonly source: string;
  readonly claims: readonly string[];
  render(
    claims: Record<string, unknown>,
  ): { ok: true; value: string } | { ok: false; missing: string; why: string };
}

/** Parses `a:{claim}:{/pointer}`; `{{` and `}}` are literal braces. Returns the problem as a string. */
export function parseSubjectTemplate(source: string): SubjectTemplate | string {
  const parts: Part[] = [];
  let lit = '';
  for (let i = 0; i < source.length; i++) {
    const c = source[i] as string;
    if (c === '{' && source[i + 1] === '{') {
      lit += '{';
      i++;
    } else if (c === '}' && source[i + 1] === '}') {
      lit += '}';
      i++;
    } else if (c === '{') {
      const end = source.indexOf('}', i);
      if (end < 0) return `unclosed "{" at character ${i + 1}; write {{ for a literal brace`;
      const name = source.slice(i + 1, end).trim();
      const path = parseClaimPath(name);
      if (typeof path === 'string') return `{${name}}: ${path}`;
      if (lit) parts.push({ literal: lit });
      lit = '';
      parts.push({ claim: name, path });
      i = end;
    } else if (c === '}') {
      return `stray "}" at character ${i + 1}; write }} for a literal brace`;
    } else lit += c;
  }
  if (lit) parts.push({ literal: lit });
  const claimParts = parts.filter((p): p is Extract<Part, { claim: string }> => 'claim' in p);
  return {
    source,
    claims: claimParts.map((p) => p.claim),
    render(claims) {
      let out = '';
      for (const p of parts) {
        if ('literal' in p) {
          out += p.literal;
          continue;
        }
        const found = lookupClaim(claims, p.path);
        if (!found.found || found.value === null || found.value === '') {
          return { ok: false, missing: p.claim, why: found.found ? 'is empty' : 'is absent' };
        }
        const v = found.value;
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
          return {
            ok: false,
            missing: p.claim,
            why: `is ${Array.isArray(v) ? 'an array' : 'an object'}, not a single value`,
          };
        }
        out += String(v);
      }
      return { ok: true, value: out };
    },
  };
}
