// JSON value helpers shared by the criteria: strict equality (JSON types never coerce), type names for
// refusals that say `true` (boolean) ≠ "true" (string), and "did you mean" suggestions for keys.

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Deep JSON equality; strings compare case-insensitively when asked. */
export function jsonEquals(a: unknown, b: unknown, ignoreCase = false): boolean {
  if (typeof a === 'string' && typeof b === 'string')
    return ignoreCase ? a.toLowerCase() === b.toLowerCase() : a === b;
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => jsonEquals(x, b[i], ignoreCase));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every(
    (k) =>
      Object.hasOwn(b, k) &&
      jsonEquals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], ignoreCase),
  );
}

/** Formats a value for an explanation: JSON, shortened, with `(absent)` for a missing value. */
export function formatValue(v: unknown, max = 200): string {
  if (v === undefined) return '(absent)';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

/**
 * When a value differs from what was expected only by its JSON type (`true` against `"true"`, `5`
 * against `"5"`), the refusal says so: that is the mistake people make with GitLab's `ref_protected`.
 */
export function typeMismatchNote(expected: unknown, actual: unknown): string | undefined {
  const te = typeName(expected);
  const ta = typeName(actual);
  if (te === ta || actual === undefined) return undefined;
  const same =
    te !== 'object' &&
    te !== 'array' &&
    ta !== 'object' &&
    ta !== 'array' &&
    String(expected) === String(actual);
  return same
    ? `${formatValue(expected)} (${te}) ≠ ${formatValue(actual)} (${ta}): JSON types are compared strictly`
    : `type differs: expected ${te}, actual ${ta}`;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}

/** ` (did you mean "x"?)` for the closest known key, or an empty string. */
export function suggest(key: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(key.length / 3))
    ? ` (did you mean "${best}"?)`
    : '';
}
