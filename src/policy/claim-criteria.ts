// `claim:` criteria: equals, in, glob, regex, exists, the numeric and time comparisons, and contains,
// on a claim found by dotted path or JSON Pointer. JSON types are compared strictly.
import { compileRe2 } from './regex.js';
import { parseClaimPath, lookupClaim, type Lookup } from './claim-path.js';
import { parseIsoTimestamp, parseNowOffset } from './time-window.js';
import { jsonEquals, typeName, typeMismatchNote, formatValue } from './values.js';
import {
  leaf,
  stringList,
  compileGlobs,
  absent,
  stringMatch,
  MAX_LIST,
  type Check,
  type CompileContext,
  type EvalContext,
  type Node,
} from './criterion.js';

export const CLAIM_OPS = [
  'equals',
  'in',
  'glob',
  'regex',
  'exists',
  'gt',
  'gte',
  'lt',
  'lte',
  'contains',
] as const;

type Comparison = 'gt' | 'gte' | 'lt' | 'lte';
const COMPARE: Record<Comparison, (a: number, b: number) => boolean> = {
  gt: (a, b) => a > b,
  gte: (a, b) => a >= b,
  lt: (a, b) => a < b,
  lte: (a, b) => a <= b,
};

/** A comparison bound: a number, an ISO timestamp, or `now` with an offset (`now-1h`). */
function compileBound(
  op: Comparison,
  v: unknown,
  path: string,
  cc: CompileContext,
): ((now: Date) => { time: boolean; value: number; shown: unknown }) | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return () => ({ time: false, value: v, shown: v });
  if (typeof v === 'string') {
    const ms = parseIsoTimestamp(v);
    if (ms !== undefined) return () => ({ time: true, value: ms, shown: v });
    const off = parseNowOffset(v);
    if (off !== undefined)
      return (now) => ({
        time: true,
        value: now.getTime() + off,
        shown: new Date(now.getTime() + off).toISOString(),
      });
  }
  cc.problems.push({
    path,
    message: `${op} takes a number, an ISO 8601 timestamp, or "now" with an optional offset ("now-1h")`,
  });
  return undefined;
}

function compare(op: Comparison, bound: { time: boolean; value: number }, actual: unknown): Check {
  let a: number | undefined;
  if (bound.time) {
    // Time comparisons take JWT-style epoch seconds or an ISO timestamp.
    if (typeof actual === 'number' && Number.isFinite(actual)) a = actual * 1000;
    else if (typeof actual === 'string') a = parseIsoTimestamp(actual);
    if (a === undefined)
      return {
        passed: false,
        actual,
        message: `expected epoch seconds or an ISO 8601 timestamp, actual ${typeName(actual)}`,
      };
  } else {
    if (typeof actual !== 'number') {
      const numeric = typeof actual === 'string' && actual.trim() !== '' && Number.isFinite(Number(actual));
      return {
        passed: false,
        actual,
        message: numeric
          ? `${formatValue(actual)} is a string, not a number: JSON types are compared strictly`
          : `type differs: expected number, actual ${typeName(actual)}`,
      };
    }
    a = actual;
  }
  return { passed: COMPARE[op](a, bound.value), actual };
}

// ---------------------------------------------------------------------------------------------------
// `claim:` leaves.

export function compileClaim(
  obj: Record<string, unknown>,
  path: string,
  cc: CompileContext,
  authorMessage: string | undefined,
): Node[] {
  const pathText = obj.claim;
  if (typeof pathText !== 'string') {
    cc.problems.push({
      path: `${path}.claim`,
      message: 'claim must be a string: a dotted path or a JSON Pointer starting with "/"',
    });
    return [];
  }
  const claim = parseClaimPath(pathText);
  if (typeof claim === 'string') {
    cc.problems.push({ path: `${path}.claim`, message: claim });
    return [];
  }
  const ignoreCase = obj.ignore_case === true;
  if (obj.ignore_case !== undefined && typeof obj.ignore_case !== 'boolean') {
    cc.problems.push({ path: `${path}.ignore_case`, message: 'ignore_case must be true or false' });
  }
  const ops = CLAIM_OPS.filter((op) => obj[op] !== undefined);
  if (ops.length === 0) {
    cc.problems.push({
      path,
      message: `claim "${pathText}" needs an operator: one of ${CLAIM_OPS.join(', ')}`,
    });
    return [];
  }
  const name = `claim ${pathText}`;
  const nodes: Node[] = [];
  const onClaim = (op: string, expected: unknown, f: (v: unknown, ctx: EvalContext) => Check): void => {
    nodes.push(
      leaf(`${path}.${op}`, `${name} ${op}`, op, expected, authorMessage, (ctx) => {
        const found: Lookup = lookupClaim(ctx.input.claims, claim);
        return found.found ? f(found.value, ctx) : absent(ctx, claim);
      }),
    );
  };

  for (const op of ops) {
    const v = obj[op];
    const at = `${path}.${op}`;
    switch (op) {
      case 'equals':
        onClaim(op, v, (actual) => {
          if (jsonEquals(v, actual, ignoreCase)) return { passed: true, actual };
          const note = typeMismatchNote(v, actual);
          return note ? { passed: false, actual, message: note } : { passed: false, actual };
        });
        break;
      case 'in': {
        if (!Array.isArray(v) || v.length === 0 || v.length > MAX_LIST) {
          cc.problems.push({ path: at, message: `in must be a non-empty list (at most ${MAX_LIST})` });
          break;
        }
        const list = v as unknown[];
        const member = (x: unknown): boolean => list.some((e) => jsonEquals(e, x, ignoreCase));
        onClaim(op, list, (actual) => {
          // An array claim (groups, audiences) passes when any of its elements is in the list.
          const passed = Array.isArray(actual) ? actual.some(member) : member(actual);
          if (passed) return { passed, actual };
          const probe = Array.isArray(actual) ? actual : [actual];
          for (const x of probe) {
            for (const e of list) {
              const note = typeMismatchNote(e, x);
              if (note && String(e) === String(x)) return { passed, actual, message: note };
            }
          }
          return { passed, actual };
        });
        break;
      }
      case 'glob': {
        const patterns = stringList(v, at, cc, 'glob');
        const res = patterns && compileGlobs(patterns, at, cc, ignoreCase);
        if (!res) break;
        onClaim(op, v, (actual) => stringMatch(actual, (s) => res.some((re) => re.test(s))));
        break;
      }
      case 'regex': {
        const patterns = stringList(v, at, cc, 'regex');
        if (!patterns) break;
        const res = patterns.map((p) => compileRe2(p, ignoreCase));
        const bad = res.find((r): r is string => typeof r === 'string');
        if (bad) {
          cc.problems.push({ path: at, message: bad });
          break;
        }
        const compiled = res as Exclude<(typeof res)[number], string>[];
        onClaim(op, v, (actual) => stringMatch(actual, (s) => compiled.some((re) => re.test(s))));
        break;
      }
      case 'exists': {
        if (typeof v !== 'boolean') {
          cc.problems.push({ path: at, message: 'exists must be true or false' });
          break;
        }
        nodes.push(
          leaf(at, `${name} exists`, 'exists', v, authorMessage, (ctx) => {
            const found = lookupClaim(ctx.input.claims, claim);
            const actual = found.found ? found.value : undefined;
            if (found.found === v) return { passed: true, actual };
            return v
              ? absent(ctx, claim)
              : { passed: false, actual, message: `claim "${pathText}" is present` };
          }),
        );
        break;
      }
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte': {
        const bound = compileBound(op, v, at, cc);
        if (!bound) break;
        nodes.push(
          leaf(at, `${name} ${op}`, op, v, authorMessage, (ctx) => {
            const found = lookupClaim(ctx.input.claims, claim);
            if (!found.found) return absent(ctx, claim);
            const b = bound(ctx.input.now);
            const c = compare(op, b, found.value);
            if (!c.passed && b.shown !== v && !c.message) c.message = `${String(v)} is ${String(b.shown)}`;
            return c;
          }),
        );
        break;
      }
      case 'contains':
        onClaim(op, v, (actual) => {
          if (!Array.isArray(actual))
            return {
              passed: false,
              actual,
              message: `type differs: expected array, actual ${typeName(actual)}`,
            };
          if (actual.some((x) => jsonEquals(v, x, ignoreCase))) return { passed: true, actual };
          const note = actual.map((x) => typeMismatchNote(v, x)).find((n) => n && n.includes('≠'));
          return note ? { passed: false, actual, message: note } : { passed: false, actual };
        });
        break;
    }
  }
  return nodes;
}
