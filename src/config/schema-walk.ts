// Reading the zod schema as data: which keys are valid at a path (for "did you mean"), every documented
// key as a dotted path (for the docs test), and which fields hold file paths (resolved by the loader).
import type { z } from 'zod';
import { relativePaths } from './schema.js';

type AnySchema = z.core.$ZodType;

interface Def {
  type: string;
  innerType?: AnySchema;
  in?: AnySchema;
  shape?: Record<string, AnySchema>;
  element?: AnySchema;
  valueType?: AnySchema;
  options?: AnySchema[];
  getter?: () => AnySchema;
}

const defOf = (s: AnySchema): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Every layer of a schema from the outside in, through defaults, optionals and pipes (their input side). */
function layers(schema: AnySchema): AnySchema[] {
  const out: AnySchema[] = [];
  let s: AnySchema | undefined = schema;
  while (s && out.length < 32) {
    out.push(s);
    const def = defOf(s);
    if (def.innerType) s = def.innerType;
    else if (def.type === 'pipe') s = def.in;
    else if (def.type === 'lazy' && def.getter) s = def.getter();
    else s = undefined;
  }
  return out;
}

/** The schema with wrappers (default, optional, pipe…) peeled off. */
export function unwrap(schema: AnySchema): AnySchema {
  const all = layers(schema);
  return all[all.length - 1] as AnySchema;
}

/** The schema that validates the value at `path`, or undefined when the path leaves the schema. */
export function schemaAt(schema: AnySchema, path: readonly PropertyKey[]): AnySchema | undefined {
  let s: AnySchema | undefined = schema;
  for (const seg of path) {
    if (!s) return undefined;
    const def = defOf(unwrap(s));
    if (def.type === 'object' && def.shape) s = def.shape[String(seg)];
    else if (def.type === 'array') s = def.element;
    else if (def.type === 'record') s = def.valueType;
    else return undefined;
  }
  return s;
}

/** The keys an object accepts at `path` (empty when the path is not an object). */
export function keysAt(schema: AnySchema, path: readonly PropertyKey[]): string[] {
  const s = schemaAt(schema, path);
  if (!s) return [];
  const def = defOf(unwrap(s));
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/**
 * Every key of the schema as a dotted path: `issuer.url`, `clients[].allowed_audiences`. Entries of a
 * map (zod record) whose values are objects appear as `name.<key>.field`.
 */
export function listKeys(schema: AnySchema): string[] {
  const out: string[] = [];
  const walk = (s: AnySchema, prefix: string, depth: number): void => {
    if (depth > 16) return;
    const def = defOf(unwrap(s));
    if (def.type === 'object' && def.shape) {
      for (const [key, child] of Object.entries(def.shape)) {
        const p = prefix ? `${prefix}.${key}` : key;
        out.push(p);
        walk(child, p, depth + 1);
      }
    } else if (def.type === 'array' && def.element) {
      walk(def.element, `${prefix}[]`, depth + 1);
    } else if (def.type === 'record' && def.valueType) {
      walk(def.valueType, `${prefix}.<key>`, depth + 1);
    } else if (def.type === 'union' && def.options) {
      for (const o of def.options) walk(o, prefix, depth + 1);
    }
  };
  walk(schema, '', 0);
  return [...new Set(out)];
}

/** Is any layer of this schema registered in `registry` (a marker like `relativePaths`)? */
export function isMarked(schema: AnySchema, registry: { has(schema: AnySchema): boolean }): boolean {
  return layers(schema).some((l) => registry.has(l));
}

/** Does this field hold a file path that is relative to the config file (see `filePath()` in the schema)? */
function isRelativePath(schema: AnySchema): boolean {
  return layers(schema).some((l) => relativePaths.has(l));
}

/**
 * A copy of `value` (parsed config) with every `filePath()` field made absolute against `baseDir`.
 * `:memory:` (SQLite's in-memory database) is left alone.
 */
export function resolveRelativePaths(
  schema: AnySchema,
  value: unknown,
  resolvePath: (p: string) => string,
): unknown {
  if (value === undefined || value === null) return value;
  if (isRelativePath(schema)) {
    return typeof value === 'string' && value !== ':memory:' ? resolvePath(value) : value;
  }
  const def = defOf(unwrap(schema));
  if (def.type === 'object' && def.shape && typeof value === 'object' && !Array.isArray(value)) {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const [key, child] of Object.entries(def.shape)) {
      if (key in out) out[key] = resolveRelativePaths(child, out[key], resolvePath);
    }
    return out;
  }
  if (def.type === 'array' && def.element && Array.isArray(value)) {
    const element = def.element;
    return value.map((v) => resolveRelativePaths(element, v, resolvePath));
  }
  if (def.type === 'record' && def.valueType && typeof value === 'object' && !Array.isArray(value)) {
    const valueType = def.valueType;
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [
        k,
        resolveRelativePaths(valueType, v, resolvePath),
      ]),
    );
  }
  return value;
}
