// The `cel:` escape hatch: expressions over `claims`, `request` and `now`, parsed and type-checked when
// the policy compiles. The library's `matches` runs on JS RegExp (catastrophic backtracking), so any
// call to it is refused at compile time in favour of `re2Matches`, which runs on RE2.
import { Environment } from '@marcbachmann/cel-js';
import type { ASTNode } from '@marcbachmann/cel-js';
import { compileRe2, re2ForCel } from './regex.js';

export const MAX_CEL_LENGTH = 4096;
const MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

let env: Environment | undefined;

// Building an Environment is the expensive part; one serves every policy.
function celEnvironment(): Environment {
  env ??= new Environment({
    // Parse-time bounds: with no loops beyond one comprehension level, these bound evaluation too.
    limits: { maxAstNodes: 500, maxDepth: 32, maxListElements: 256, maxMapEntries: 256, maxCallArguments: 8 },
  })
    .registerVariable('claims', 'map', {
      description: 'The verified claims (JSON numbers that are integers are CEL ints).',
    })
    .registerVariable('request', 'map', {
      description: 'method, path, host and sourceIp of the request (empty for trust rules).',
    })
    .registerVariable('now', 'google.protobuf.Timestamp', { description: 'The evaluation clock.' })
    .registerFunction('re2Matches(string, string): bool', (s: string, p: string) => re2ForCel(p).test(s), {
      description: 'RE2 full match of the string against a literal pattern.',
    })
    .registerFunction({
      name: 're2Matches',
      receiverType: 'string',
      returnType: 'bool',
      handler: (s: string, p: string) => re2ForCel(p).test(s),
      description: 'RE2 full match of the receiver against a literal pattern.',
      params: [{ name: 'pattern', type: 'string' }],
    });
  return env;
}

export type CelProgram = (ctx: { claims: unknown; request: unknown; now: Date }) => unknown;

function firstLine(err: unknown): string {
  const e = err as { summary?: unknown; message?: unknown };
  if (typeof e?.summary === 'string' && e.summary) return e.summary;
  return String(typeof e?.message === 'string' ? e.message : err).split('\n')[0] as string;
}

/** Walks the AST for what the type checker cannot see: refused functions, regex literals, nesting. */
function inspect(node: ASTNode, problems: string[], comprehensionDepth: number): void {
  const visit = (n: unknown, depth: number): void => {
    if (n && typeof n === 'object' && 'op' in n && 'args' in n) inspect(n as ASTNode, problems, depth);
    else if (Array.isArray(n)) for (const c of n) visit(c, depth);
  };
  if (node.op === 'call' || node.op === 'rcall') {
    const name = node.args[0];
    const args = node.op === 'call' ? node.args[1] : node.args[2];
    if (name === 'matches') {
      problems.push(
        '`matches` runs on JavaScript RegExp, which can backtrack for minutes on a crafted claim; use re2Matches(value, "pattern") or value.re2Matches("pattern") instead (RE2, full match)',
      );
    }
    if (name === 're2Matches') {
      const pattern = args[args.length - 1];
      if (!pattern || pattern.op !== 'value' || typeof pattern.args !== 'string') {
        problems.push('re2Matches takes its pattern as a string literal, never from claims or the request');
      } else {
        const re = compileRe2(pattern.args);
        if (typeof re === 'string')
          problems.push(`re2Matches pattern ${JSON.stringify(pattern.args)}: ${re}`);
      }
    }
    let depth = comprehensionDepth;
    if (node.op === 'rcall' && MACROS.has(name)) {
      depth++;
      // One level over a claim list is linear in the token; nesting makes it a product of list sizes.
      if (depth > 1)
        problems.push(`nested comprehensions (${name} inside another) are refused to bound evaluation cost`);
    }
    if (node.op === 'rcall') visit(node.args[1], comprehensionDepth);
    visit(args, depth);
    return;
  }
  visit(node.args, comprehensionDepth);
}

/** Compiles an expression, or returns every problem found. */
export function compileCel(expr: string): CelProgram | string[] {
  if (expr.trim().length === 0) return ['CEL expression is empty'];
  if (expr.length > MAX_CEL_LENGTH) return [`CEL expression is longer than ${MAX_CEL_LENGTH} characters`];
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = celEnvironment().parse(expr);
  } catch (err) {
    return [`CEL syntax: ${firstLine(err)}`];
  }
  const problems: string[] = [];
  inspect(parsed.ast, problems, 0);
  if (problems.length) return problems;
  let checked: ReturnType<typeof parsed.check>;
  try {
    checked = parsed.check();
  } catch (err) {
    return [`CEL type check: ${firstLine(err)}`];
  }
  if (!checked.valid) return [`CEL type check: ${firstLine(checked.error)}`];
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return [`CEL expression must return a bool, this one returns ${checked.type}`];
  }
  return (ctx) => parsed(ctx);
}

/**
 * JSON numbers as CEL sees them: integers become CEL ints (BigInt) so `claims.exp > 100` and
 * `claims.n + 1` work; other numbers stay doubles. Objects are copied without their prototype.
 */
export function toCelValue(v: unknown, depth = 0): unknown {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : v;
  if (v === null || typeof v !== 'object' || depth > 64) return v;
  if (Array.isArray(v)) return v.map((x) => toCelValue(x, depth + 1));
  const out: Record<string, unknown> = Object.create(null);
  for (const k of Object.keys(v)) out[k] = toCelValue((v as Record<string, unknown>)[k], depth + 1);
  return out;
}

/** A CEL result as plain JSON for reasons and the audit log. */
export function fromCelValue(v: unknown): unknown {
  if (typeof v === 'bigint')
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : String(v);
  if (v instanceof Date) return v.toISOString();
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(fromCelValue);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), fromCelValue(x)]));
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto === null || proto === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromCelValue(x)]));
  }
  return String(v);
}

export function celErrorMessage(err: unknown): string {
  return firstLine(err);
}
