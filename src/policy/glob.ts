// Globs as DESIGN.md defines them, used by every config field that takes a pattern: `*` matches any run
// of characters within one segment and never crosses `/` or `:`; `**` matches across them; everything
// else is literal; matching is anchored and case-sensitive. Compiled to a linear-time RegExp (no
// nested quantifiers, so no catastrophic backtracking).

const cache = new Map<string, RegExp>();

export function compileGlob(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (re) return re;
  let src = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        src += '[\\s\\S]*';
        while (pattern[i + 1] === '*') i++;
      } else {
        src += '[^/:]*';
      }
    } else {
      // Only syntax characters are escaped: in unicode mode an escaped `-` is a SyntaxError.
      src += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  re = new RegExp(src + '$', 'u');
  if (cache.size > 10_000) cache.clear();
  cache.set(pattern, re);
  return re;
}

export function matchGlob(pattern: string, value: string): boolean {
  return compileGlob(pattern).test(value);
}

export function isGlob(pattern: string): boolean {
  return pattern.includes('*');
}
