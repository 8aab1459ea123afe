// Regular expressions on an RE2-class engine (re2js): matching time is linear in the input, so a
// pattern like `^(a+)+$` on a crafted claim cannot hang the process as it would with JS RegExp.
// Matching is a FULL match (the pattern must cover the whole value), which is the safe default for
// identifiers: `org/app` never matches `org/app-evil` by accident. Write `.*` to search.
import { RE2JS } from 're2js';

export const MAX_PATTERN_LENGTH = 1024;

export interface Re2 {
  pattern: string;
  test(value: string): boolean;
}

/** Compiles a pattern, or returns the reason it is not a valid RE2 pattern. */
export function compileRe2(pattern: string, ignoreCase = false): Re2 | string {
  if (pattern.length > MAX_PATTERN_LENGTH) return `regex is longer than ${MAX_PATTERN_LENGTH} characters`;
  try {
    const re = RE2JS.compile(pattern, ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
    return { pattern, test: (value) => re.testExact(value) };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return `invalid RE2 regex: ${why} (RE2 has no backreferences or lookaround)`;
  }
}

// Patterns reaching the CEL function are string literals checked at compile time, so this cache holds
// only what policies wrote; the bound is a guard, not an eviction policy.
const celCache = new Map<string, Re2>();

export function re2ForCel(pattern: string): Re2 {
  let re = celCache.get(pattern);
  if (!re) {
    const compiled = compileRe2(pattern);
    if (typeof compiled === 'string') throw new Error(compiled);
    if (celCache.size > 1000) celCache.clear();
    celCache.set(pattern, compiled);
    re = compiled;
  }
  return re;
}
