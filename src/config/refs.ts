// Secrets by reference: `${env:NAME}` and `${file:PATH}` inside any string value of the config, so keys
// and passwords never sit in the YAML itself. `$${` writes a literal `${`. Resolved values are returned
// separately so loggers can redact them; they never appear in a problem message.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { closest } from './suggest.js';

export interface RefContext {
  env: Record<string, string | undefined>;
  /** Directory `${file:…}` paths are relative to (the config file's). */
  baseDir: string;
}

export interface RefProblem {
  message: string;
  suggestion?: string;
  /** True when the reference is well-formed but its target is missing or unreadable. */
  unresolved: boolean;
}

export interface RefResult {
  value: string;
  /** Each value a reference resolved to (the secrets to redact). */
  secrets: string[];
  problems: RefProblem[];
  /** Whether the string held at least one reference. */
  hadRef: boolean;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Resolves every reference in one string value. */
export function resolveRefs(text: string, ctx: RefContext): RefResult {
  const result: RefResult = { value: '', secrets: [], problems: [], hadRef: false };
  if (!text.includes('${')) {
    result.value = text;
    return result;
  }
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      out += text[i];
      i += 1;
      continue;
    }
    const end = text.indexOf('}', i + 2);
    if (end < 0) {
      result.problems.push({
        message: 'unterminated "${"',
        suggestion: 'close it with "}", or write "$${" for a literal "${"',
        unresolved: false,
      });
      return result;
    }
    const inner = text.slice(i + 2, end);
    i = end + 1;
    result.hadRef = true;
    const resolved = resolveOne(inner, ctx, result.problems);
    if (resolved !== undefined) {
      out += resolved;
      result.secrets.push(resolved);
    }
  }
  result.value = out;
  return result;
}

function resolveOne(inner: string, ctx: RefContext, problems: RefProblem[]): string | undefined {
  const colon = inner.indexOf(':');
  const scheme = colon < 0 ? '' : inner.slice(0, colon);
  const arg = colon < 0 ? inner : inner.slice(colon + 1);
  if (scheme === 'env') {
    if (!ENV_NAME.test(arg)) {
      problems.push({
        message: `"\${env:${arg}}" does not name an environment variable`,
        suggestion: 'use letters, digits and _ , like ${env:GATEHOUSE_KEK}',
        unresolved: false,
      });
      return undefined;
    }
    const v = ctx.env[arg];
    // An empty variable is treated as unset: an empty secret is always a mistake.
    if (v === undefined || v === '') {
      problems.push({
        message: `environment variable ${arg} is not set (in "\${env:${arg}}")`,
        unresolved: true,
      });
      return undefined;
    }
    return v;
  }
  if (scheme === 'file') {
    if (!arg) {
      problems.push({
        message: '"${file:}" names no file',
        suggestion: 'like ${file:secrets/kek}',
        unresolved: false,
      });
      return undefined;
    }
    const abs = resolve(ctx.baseDir, arg);
    try {
      return readFileSync(abs, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'does not exist'
          : code === 'EACCES' || code === 'EPERM'
            ? 'cannot be read (permission denied)'
            : code === 'EISDIR'
              ? 'is a directory'
              : `cannot be read (${code ?? 'unknown error'})`;
      problems.push({ message: `file ${abs} ${why} (in "\${file:${arg}}")`, unresolved: true });
      return undefined;
    }
  }
  // Not a reference we know: say what it probably should have been, without guessing at secrets.
  const fixedScheme = colon < 0 ? 'env' : (closest(scheme, ['env', 'file']) ?? 'env');
  const name = colon < 0 ? inner : arg;
  problems.push({
    message: `"\${${inner}}" is not a reference Gatehouse understands`,
    suggestion: `did you mean "\${${fixedScheme}:${name || 'NAME'}}"? (write "$\${" for a literal "\${")`,
    unresolved: false,
  });
  return undefined;
}
