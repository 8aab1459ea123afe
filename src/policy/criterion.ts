// The building blocks every criterion shares: the evaluation context, the outcome of a check, the
// leaf that records a Reason (expected against actual), and value helpers for lists, globs and strings.
import { compileGlob } from './glob.js';
import { dottedPathHint, type ClaimPath } from './claim-path.js';
import { typeName } from './values.js';
import type { PolicyProblem } from './errors.js';
import type { PolicyInput, Reason } from './types.js';

/** State of one rule's evaluation. */
export interface EvalContext {
  input: PolicyInput;
  rule: string;
  out: Reason[];
  /** The CEL view of the input, built on first use and shared by the rule set's CEL criteria. */
  cel(): { claims: unknown; request: unknown; now: Date };
}

export interface Outcome {
  passed: boolean;
  /** Leaf criteria that passed, to find the closest rule. */
  passes: number;
  /** The first criterion that failed, as the refusal should name it. */
  failed?: Reason;
  /** The author's message attached to that criterion, if any. */
  failedMessage?: string;
}

export interface Node {
  run(ctx: EvalContext): Outcome;
}

export interface CompileContext {
  problems: PolicyProblem[];
}

export const MAX_LIST = 1000;

export interface Check {
  passed: boolean;
  actual: unknown;
  message?: string;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** A leaf: runs `check`, records the reason, reports the author's message when it fails. */
export function leaf(
  path: string,
  criterion: string,
  operator: string | undefined,
  expected: unknown,
  authorMessage: string | undefined,
  check: (ctx: EvalContext) => Check,
): Node {
  // Reasons hand `expected` to callers on every evaluation; a frozen copy keeps the policy immutable.
  expected = deepFreeze(structuredClone(expected));
  return {
    run(ctx) {
      const c = check(ctx);
      const reason: Reason = {
        rule: ctx.rule,
        criterion,
        path,
        passed: c.passed,
        expected,
        actual: c.actual,
      };
      if (operator) reason.operator = operator;
      if (!c.passed) {
        const msg =
          authorMessage && c.message ? `${authorMessage} (${c.message})` : (authorMessage ?? c.message);
        if (msg) reason.message = msg;
      }
      ctx.out.push(reason);
      return c.passed
        ? { passed: true, passes: 1 }
        : {
            passed: false,
            passes: 0,
            failed: reason,
            ...(authorMessage ? { failedMessage: authorMessage } : {}),
          };
    },
  };
}

export function stringList(v: unknown, path: string, cc: CompileContext, what: string): string[] | undefined {
  const list = typeof v === 'string' ? [v] : v;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    list.length > MAX_LIST ||
    !list.every((x) => typeof x === 'string' && x.length > 0)
  ) {
    cc.problems.push({
      path,
      message: `${what} must be a non-empty string or list of non-empty strings (at most ${MAX_LIST})`,
    });
    return undefined;
  }
  return list as string[];
}

export function compileGlobs(
  patterns: string[],
  path: string,
  cc: CompileContext,
  ignoreCase: boolean,
): RegExp[] | undefined {
  if (patterns.some((p) => p.length > 1024)) {
    cc.problems.push({ path, message: 'glob is longer than 1024 characters' });
    return undefined;
  }
  return patterns.map((p) => {
    const re = compileGlob(p);
    return ignoreCase ? new RegExp(re.source, 'iu') : re;
  });
}

/** Strings to test: the value itself, or each string element of an array claim. */
export function candidates(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return undefined;
}

export function absent(ctx: EvalContext, claim: ClaimPath): Check {
  const hint = dottedPathHint(ctx.input.claims, claim);
  return {
    passed: false,
    actual: undefined,
    message: `claim "${claim.text}" is absent${hint ? `; ${hint}` : ''}`,
  };
}

export function stringMatch(v: unknown, test: (s: string) => boolean): Check {
  const list = candidates(v);
  if (!list)
    return { passed: false, actual: v, message: `type differs: expected string, actual ${typeName(v)}` };
  return { passed: list.some(test), actual: v };
}
