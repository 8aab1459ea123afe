// A strict JSON reader for token headers, claims and JWKS documents: it refuses duplicate member names
// (JSON.parse silently keeps the last one, which lets two parsers disagree about a token) and builds
// null-prototype objects, so a member named `__proto__` is only a name.

/** Thrown for any text that is not exactly one JSON value; the message says where, never the text. */
export class StrictJsonError extends Error {
  readonly reason: 'syntax' | 'duplicate-key' | 'too-deep';
  readonly key: string | undefined;
  constructor(reason: 'syntax' | 'duplicate-key' | 'too-deep', message: string, key?: string) {
    super(message);
    this.name = 'StrictJsonError';
    this.reason = reason;
    this.key = key;
  }
}

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const MAX_DEPTH = 64;

/** Parses `text` as one JSON value (RFC 8259), refusing duplicate member names at any depth. */
export function parseStrictJson(text: string): JsonValue {
  let i = 0;

  const fail = (message: string): never => {
    throw new StrictJsonError('syntax', `${message} at offset ${i}`);
  };
  const ws = (): void => {
    for (;;) {
      const ch = text.charCodeAt(i);
      if (ch === 0x20 || ch === 0x09 || ch === 0x0a || ch === 0x0d) i++;
      else return;
    }
  };

  const str = (): string => {
    // caller saw the opening quote
    i++;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const ch = text.charCodeAt(i);
      if (ch === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (ch < 0x20) fail('control character in string');
      if (ch !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      const esc = text[i + 1];
      i += 2;
      switch (esc) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hex = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          fail('bad escape');
      }
      start = i;
    }
  };

  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) throw new StrictJsonError('too-deep', `nested deeper than ${MAX_DEPTH}`);
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      const obj = Object.create(null) as JsonObject;
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a member name');
        const key = str();
        if (Object.prototype.hasOwnProperty.call(obj, key)) {
          throw new StrictJsonError('duplicate-key', `duplicate member name "${key.slice(0, 64)}"`, key);
        }
        ws();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        obj[key] = value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail('expected "," or "}"');
      }
    }
    if (ch === '[') {
      i++;
      const arr: JsonValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail('expected "," or "]"');
      }
    }
    if (ch === '"') return str();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m) {
      i += m[0].length;
      return Number(m[0]);
    }
    return fail('unexpected character');
  };

  const result = value(0);
  ws();
  if (i !== text.length) fail('trailing characters');
  return result;
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
