// Deterministic JSON for the audit hash chain: object keys sorted, no whitespace, only JSON values, so
// the same record always hashes the same, whichever process wrote it and whichever store held it.

/**
 * The canonical text of a JSON value. Keys whose value is `undefined` are left out (as
 * `JSON.stringify` does); anything that is not plain JSON (functions, bigints, non-finite numbers,
 * class instances) is a programmer error and throws a TypeError.
 */
export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

function write(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${path} is not a finite number`);
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new TypeError(`canonicalJson: ${path} is a ${typeof value}, not a JSON value`);
  }
  if (Array.isArray(value)) {
    return `[${value.map((v, i) => (v === undefined ? 'null' : write(v, `${path}[${i}]`))).join(',')}]`;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`canonicalJson: ${path} is not a plain object`);
  }
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  // Sort by UTF-16 code units, the order JavaScript and every JSON canonicalization (RFC 8785) use.
  for (const key of Object.keys(obj).sort()) {
    const v = obj[key];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${write(v, `${path}.${key}`)}`);
  }
  return `{${parts.join(',')}}`;
}
