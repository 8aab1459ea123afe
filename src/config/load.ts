// Loads gatehouse.yaml: YAML with positions, `${env:…}`/`${file:…}` secrets, the zod schema, cross-field
// checks and relative paths made absolute. Every problem is collected and thrown at once as ConfigError.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Document, Node as YamlNode } from 'yaml';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { GatehouseError } from '../lib/errors.js';
import { checkConfig } from './checks.js';
import type { ConfigProblem } from './problems.js';
import { ConfigError, formatPath } from './problems.js';
import { resolveRefs } from './refs.js';
import type { GatehouseConfig } from './schema.js';
import { configSchema, durationFields } from './schema.js';
import { isMarked, keysAt, listKeys, resolveRelativePaths, schemaAt } from './schema-walk.js';
import { closest } from './suggest.js';

export interface LoadedConfig {
  config: GatehouseConfig;
  /** The config file (absolute when loaded with loadConfig). */
  file: string;
  /** Directory relative paths and `${file:…}` references were resolved against. */
  baseDir: string;
  /** Every value a `${env:…}` or `${file:…}` reference resolved to, for loggers to redact. */
  secrets: Set<string>;
}

export interface LoadOptions {
  /** Environment for `${env:…}`; default `process.env`. */
  env?: Record<string, string | undefined>;
  /**
   * A raw config merged UNDER the file: objects deep-merged, arrays concatenated (base entries first).
   * `gatehouse dev --config FILE` passes its defaults here. Taken literally (no `${…}` references).
   */
  base?: Record<string, unknown>;
}

export interface ParseOptions extends LoadOptions {
  /** Name shown in problems (the path as the user gave it). */
  file: string;
  baseDir: string;
}

/** Where problems inside `base` are reported: they have no line in the file. */
const BASE_LABEL = '(built-in defaults)';

type Path = (string | number)[];

/** Reads, resolves and validates a config file. Throws ERR_CONFIG_NOT_FOUND or a ConfigError. */
export async function loadConfig(file: string, opts: LoadOptions = {}): Promise<LoadedConfig> {
  const abs = resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') {
      throw new GatehouseError('ERR_CONFIG_INVALID', `${file} is a directory, not a configuration file`, {
        field: file,
      });
    }
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'unknown error'})`;
    throw new GatehouseError(
      'ERR_CONFIG_NOT_FOUND',
      `configuration file ${file} ${why}`,
      { field: file, hint: 'pass the path of a gatehouse.yaml; see examples/gatehouse.yaml' },
      { cause: e },
    );
  }
  const loaded = parseConfigText(text, { file, baseDir: dirname(abs), env: opts.env, base: opts.base });
  return { ...loaded, file: abs };
}

/** Parses config text as if read from `opts.file`. Synchronous; `${file:…}` reads happen here. */
export function parseConfigText(text: string, opts: ParseOptions): LoadedConfig {
  return new ConfigParse(text, opts).run();
}

/** One parse: holds the document, its line counter and the problems found so far. */
class ConfigParse {
  readonly #opts: ParseOptions;
  readonly #text: string;
  readonly #lines = new LineCounter();
  readonly #problems: ConfigProblem[] = [];
  readonly #secrets = new Set<string>();
  /** File path (formatted) → the text before resolution, for strings that held references. */
  readonly #refs = new Map<string, { raw: string; resolved: string }>();
  /** File paths (formatted) whose references failed: schema complaints there would only be noise. */
  readonly #brokenRefs = new Set<string>();
  #doc!: Document.Parsed;

  constructor(text: string, opts: ParseOptions) {
    this.#text = text;
    this.#opts = opts;
  }

  run(): LoadedConfig {
    // Duplicate keys are found by our own walk so they are reported with the other problems instead of
    // stopping the parse; merge keys (`<<`) are allowed so anchors can share blocks.
    this.#doc = parseDocument(this.#text, {
      lineCounter: this.#lines,
      uniqueKeys: false,
      prettyErrors: false,
      merge: true,
    });
    for (const e of this.#doc.errors)
      this.#add(this.#at(e.pos[0]), [], e.message.split('\n')[0] ?? e.message);
    if (this.#doc.errors.length) this.#fail();
    for (const w of this.#doc.warnings)
      this.#add(this.#at(w.pos[0]), [], w.message.split('\n')[0] ?? w.message);
    this.#findDuplicates(this.#doc.contents, []);

    let raw: unknown;
    try {
      raw = this.#doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      this.#add({ line: 1, column: 1 }, [], (e as Error).message);
      this.#fail();
    }
    if (raw === null || raw === undefined) raw = {};
    if (!isPlainObject(raw)) {
      this.#add(this.#locate([], false), [], 'the top level must be a mapping of keys (issuer:, keys:, …)');
      this.#fail();
    }
    const fromFile = this.#resolveRefs(raw, []) as Record<string, unknown>;
    const merged = this.#opts.base ? mergeUnder(this.#opts.base, fromFile) : fromFile;

    const parsed = configSchema.safeParse(merged);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) this.#addIssue(issue, merged);
      this.#fail();
    }
    for (const p of checkConfig(parsed.data)) this.#addAt(p.path, false, p.message, p.suggestion);
    if (this.#problems.length) this.#fail();

    const config = resolveRelativePaths(configSchema, parsed.data, (p) =>
      resolve(this.#opts.baseDir, p),
    ) as GatehouseConfig;
    return { config, file: this.#opts.file, baseDir: this.#opts.baseDir, secrets: this.#secrets };
  }

  #fail(): never {
    throw new ConfigError(this.#problems.map((p) => this.#redact(p)));
  }

  /** Last line of defence: no resolved value, anywhere in any problem. */
  #redact(p: ConfigProblem): ConfigProblem {
    let { message, suggestion } = p;
    for (const s of this.#secrets) {
      // Values this short cannot be secrets, and redacting them would shred ordinary words.
      if (s.length < 4) continue;
      message = message.split(s).join('[redacted]');
      suggestion = suggestion?.split(s).join('[redacted]');
    }
    return suggestion === undefined ? { ...p, message } : { ...p, message, suggestion };
  }

  #at(offset: number): { line: number; column: number } {
    const { line, col } = this.#lines.linePos(offset);
    return { line, column: col };
  }

  #add(
    at: { line: number; column: number; file?: string },
    path: Path,
    message: string,
    suggestion?: string,
    code: ConfigProblem['code'] = 'ERR_CONFIG_INVALID',
  ): void {
    const p: ConfigProblem = {
      file: at.file ?? this.#opts.file,
      line: at.line,
      column: at.column,
      path: formatPath(path),
      message,
      code,
    };
    if (suggestion) p.suggestion = suggestion;
    this.#problems.push(p);
  }

  /** A problem at a path of the merged config: located in the file, or in the base when it came from there. */
  #addAt(mergedPath: Path, preferKey: boolean, message: string, suggestion?: string): void {
    const filePath = this.#toFilePath(mergedPath);
    if (filePath === null)
      this.#add({ file: BASE_LABEL, line: 0, column: 0 }, mergedPath, message, suggestion);
    else
      this.#add(this.#locate(filePath, preferKey), filePath, this.#unresolve(filePath, message), suggestion);
  }

  /** Messages that would echo a value from a reference show the reference instead. */
  #unresolve(filePath: Path, message: string): string {
    const ref = this.#refs.get(formatPath(filePath));
    return ref && ref.resolved ? message.split(ref.resolved).join(ref.raw) : message;
  }

  /** Maps a path of the merged config to the file's own path, or null when the entry came from `base`. */
  #toFilePath(mergedPath: Path): Path | null {
    let base: unknown = this.#opts.base;
    const out: Path = [];
    for (const seg of mergedPath) {
      if (typeof seg === 'number') {
        const len = Array.isArray(base) ? base.length : 0;
        if (seg < len) return null;
        out.push(seg - len);
        base = undefined;
      } else {
        out.push(seg);
        base = isPlainObject(base) ? base[seg] : undefined;
      }
    }
    return out;
  }

  /** Line and column of a path in the file: its value (or key), else the nearest ancestor that exists. */
  #locate(path: Path, preferKey: boolean): { line: number; column: number } {
    let node: unknown = this.#doc.contents;
    let offset = rangeStart(node) ?? 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      if (isAlias(node)) node = node.resolve(this.#doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => keyText(p.key) === String(seg));
        if (!pair) break;
        const keyAt = rangeStart(pair.key);
        if (i === path.length - 1 && preferKey && keyAt !== undefined) return this.#at(keyAt);
        node = pair.value;
        offset = rangeStart(node) ?? keyAt ?? offset;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        node = item;
        offset = rangeStart(node) ?? offset;
      } else break;
    }
    return this.#at(offset);
  }

  #findDuplicates(node: unknown, path: Path): void {
    if (isMap(node)) {
      const seen = new Map<string, number>();
      for (const pair of node.items) {
        const key = keyText(pair.key);
        const at = rangeStart(pair.key) ?? 0;
        const first = seen.get(key);
        if (first !== undefined) {
          this.#add(
            this.#at(at),
            [...path, key],
            `duplicate key; it is already set on line ${this.#at(first).line}, and only one value can win`,
          );
        } else seen.set(key, at);
        this.#findDuplicates(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => this.#findDuplicates(item, [...path, i]));
    }
  }

  /** Resolves references in every string of the file's value; drops keys with empty values. */
  #resolveRefs(value: unknown, path: Path): unknown {
    if (typeof value === 'string') {
      const r = resolveRefs(value, { env: this.#opts.env ?? process.env, baseDir: this.#opts.baseDir });
      for (const s of r.secrets) if (s) this.#secrets.add(s);
      for (const p of r.problems) {
        this.#add(
          this.#locate(path, false),
          path,
          p.message,
          p.suggestion,
          p.unresolved ? 'ERR_CONFIG_REF_UNRESOLVED' : 'ERR_CONFIG_INVALID',
        );
      }
      if (r.problems.length) this.#brokenRefs.add(formatPath(path));
      if (r.hadRef) this.#refs.set(formatPath(path), { raw: value, resolved: r.value });
      return r.value;
    }
    if (Array.isArray(value)) return value.map((v, i) => this.#resolveRefs(v, [...path, i]));
    if (isPlainObject(value)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        // `key:` with nothing after it means "not set" here, so defaults apply (YAML would say null).
        if (v === null) continue;
        out[k] = this.#resolveRefs(v, [...path, k]);
      }
      return out;
    }
    return value;
  }

  #addIssue(issue: z.core.$ZodIssue, merged: unknown): void {
    const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
    const filePath = this.#toFilePath(path);
    if (filePath && this.#brokenRefs.has(formatPath(filePath))) return;
    const actual = getIn(merged, path);
    switch (issue.code) {
      case 'unrecognized_keys': {
        for (const key of issue.keys)
          this.#addAt([...path, key], true, 'unknown key', this.#suggestKey(path, key));
        return;
      }
      case 'invalid_type': {
        if (actual === undefined) {
          this.#addAt(path, false, 'required key is missing');
          return;
        }
        const field = schemaAt(configSchema, path);
        if (field && isMarked(field, durationFields)) {
          const hint =
            typeof actual === 'number'
              ? `write it with a unit, like "${actual}s" or "${actual}m"`
              : undefined;
          this.#addAt(
            path,
            false,
            `expected a duration like 90s, 10m, 1h or 7d, got ${describe(actual)}`,
            hint,
          );
          return;
        }
        this.#addAt(path, false, `expected ${expectedText(issue.expected)}, got ${describe(actual)}`);
        return;
      }
      case 'invalid_value': {
        const allowed = issue.values.map((v) => JSON.stringify(v));
        const guess = typeof actual === 'string' ? closest(actual, issue.values.map(String)) : undefined;
        const shown = typeof actual === 'string' ? JSON.stringify(actual) : describe(actual);
        this.#addAt(
          path,
          false,
          `${shown} is not allowed; use one of ${allowed.join(', ')}`,
          guess ? `did you mean "${guess}"?` : undefined,
        );
        return;
      }
      case 'invalid_union': {
        const expected = new Set<string>();
        for (const branch of issue.errors) {
          const first = branch[0];
          if (first?.code === 'invalid_type')
            expected.add(
              expectedText(first.expected).replace(/^an? /, '').replace('true or false', 'true/false'),
            );
        }
        const list = [...expected];
        this.#addAt(
          path,
          false,
          list.length ? `expected one of: ${list.join(', ')}; got ${describe(actual)}` : issue.message,
        );
        return;
      }
      default:
        this.#addAt(path, false, issue.message);
    }
  }

  /** "did you mean" for an unknown key: a close key at this level, or the same key elsewhere. */
  #suggestKey(parent: Path, key: string): string | undefined {
    const here = keysAt(configSchema, parent);
    const near = closest(key, here);
    if (near) return `did you mean "${near}"?`;
    const elsewhere = listKeys(configSchema).filter(
      (p) => p.split('.').pop() === key && !p.includes('<key>'),
    );
    if (elsewhere.length) return `"${key}" belongs under ${elsewhere.map((p) => `"${p}"`).join(' or ')}`;
    return here.length ? `keys here are ${here.join(', ')}` : undefined;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects deep-merged, arrays concatenated (base first); otherwise the top value wins. */
function mergeUnder(base: unknown, top: unknown): unknown {
  if (top === undefined) return base;
  if (Array.isArray(base) && Array.isArray(top)) return [...base, ...top];
  if (isPlainObject(base) && isPlainObject(top)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(top)) out[k] = mergeUnder(base[k], v);
    return out;
  }
  return top;
}

function getIn(value: unknown, path: Path): unknown {
  let v = value;
  for (const seg of path) {
    if (Array.isArray(v) && typeof seg === 'number') v = v[seg];
    else if (isPlainObject(v)) v = v[String(seg)];
    else return undefined;
  }
  return v;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as YamlNode | null | undefined)?.range;
  return range ? range[0] : undefined;
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

function expectedText(expected: string): string {
  switch (expected) {
    case 'array':
      return 'a list';
    case 'object':
      return 'a mapping';
    case 'boolean':
      return 'true or false';
    case 'number':
    case 'int':
      return 'a number';
    default:
      return `a ${expected}`;
  }
}

/** What a value is, never the value itself (it may be a secret). */
function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'boolean') return 'true/false';
  return `a ${typeof v}`;
}
