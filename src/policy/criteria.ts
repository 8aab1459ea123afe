// Compiles the criteria of one rule (`all` / `any` / `not` over claim criteria and shorthands) into a
// tree of small checks, once, so evaluation only runs precompiled globs, RE2 programs and CEL.
// Leaves record their Reasons as they run; composites summarise their children.
import { suggest, typeName } from './values.js';
import { isRecord, type CompileContext, type Node, type Outcome } from './criterion.js';
import { CLAIM_OPS, compileClaim } from './claim-criteria.js';
import { SHORTHANDS, compileShorthand } from './shorthand-criteria.js';
import type { Reason } from './types.js';

export type { CompileContext, EvalContext, Node, Outcome } from './criterion.js';
export { celView } from './shorthand-criteria.js';

const COMBINATORS = ['all', 'any', 'not'] as const;
const MODIFIERS = ['claim', 'ignore_case', 'message'] as const;
export const CRITERIA_KEYS: readonly string[] = [...COMBINATORS, ...CLAIM_OPS, ...SHORTHANDS, ...MODIFIERS];

function allOf(children: Node[]): Node {
  if (children.length === 1) return children[0] as Node;
  return {
    run(ctx) {
      let passed = true;
      let passes = 0;
      let first: Outcome | undefined;
      // No short-circuit: every criterion is reported, and the closest rule is the one with most passes.
      for (const c of children) {
        const o = c.run(ctx);
        passes += o.passes;
        if (!o.passed) {
          passed = false;
          first ??= o;
        }
      }
      if (passed || !first) return { passed: true, passes };
      return {
        passed: false,
        passes,
        ...(first.failed ? { failed: first.failed } : {}),
        ...(first.failedMessage ? { failedMessage: first.failedMessage } : {}),
      };
    },
  };
}

function anyOf(path: string, children: Node[], authorMessage: string | undefined): Node {
  return {
    run(ctx) {
      const reason: Reason = {
        rule: ctx.rule,
        criterion: 'any',
        path,
        passed: false,
        expected: `at least one of ${children.length}`,
        actual: 'none passed',
      };
      ctx.out.push(reason);
      let passes = 0;
      let count = 0;
      for (const c of children) {
        const o = c.run(ctx);
        passes += o.passes;
        if (o.passed) count++;
      }
      reason.passed = count > 0;
      reason.actual = `${count} passed`;
      if (reason.passed) return { passed: true, passes: passes + 1 };
      if (authorMessage) reason.message = authorMessage;
      return {
        passed: false,
        passes,
        failed: reason,
        ...(authorMessage ? { failedMessage: authorMessage } : {}),
      };
    },
  };
}

function notOf(path: string, child: Node, authorMessage: string | undefined): Node {
  return {
    run(ctx) {
      const reason: Reason = {
        rule: ctx.rule,
        criterion: 'not',
        path,
        passed: false,
        expected: 'the criteria below to fail',
        actual: '',
      };
      ctx.out.push(reason);
      const o = child.run(ctx);
      reason.passed = !o.passed;
      reason.actual = o.passed ? 'they passed' : 'they failed';
      if (reason.passed) return { passed: true, passes: 1 };
      if (authorMessage) reason.message = authorMessage;
      return {
        passed: false,
        passes: 0,
        failed: reason,
        ...(authorMessage ? { failedMessage: authorMessage } : {}),
      };
    },
  };
}

/** Compiles one criteria object; every key is a check and all of them must pass. */
export function compileCriteria(raw: unknown, path: string, cc: CompileContext, depth = 0): Node | undefined {
  if (depth > 32) {
    cc.problems.push({ path, message: 'criteria are nested more than 32 levels deep' });
    return undefined;
  }
  if (!isRecord(raw)) {
    cc.problems.push({
      path,
      message: `criteria must be an object (for example { claim: sub, exists: true }), not ${typeName(raw)}`,
    });
    return undefined;
  }
  const keys = Object.keys(raw);
  if (keys.length === 0 || keys.every((k) => k === 'message')) {
    // An empty block would match everyone; say what to write instead.
    cc.problems.push({
      path,
      message: 'criteria are empty; to match every authenticated caller write { claim: sub, exists: true }',
    });
    return undefined;
  }
  let ok = true;
  for (const k of keys) {
    if (!CRITERIA_KEYS.includes(k)) {
      cc.problems.push({
        path: `${path}.${k}`,
        message: `unknown criterion "${k}"${suggest(k, CRITERIA_KEYS)}`,
      });
      ok = false;
    }
  }
  let authorMessage: string | undefined;
  if (raw.message !== undefined) {
    if (typeof raw.message !== 'string' || raw.message.length > 500) {
      cc.problems.push({
        path: `${path}.message`,
        message: 'message must be a string of at most 500 characters',
      });
    } else authorMessage = raw.message;
  }
  const hasClaim = raw.claim !== undefined;
  if (!hasClaim) {
    for (const op of [...CLAIM_OPS, 'ignore_case'] as const) {
      if (raw[op] !== undefined) {
        cc.problems.push({
          path: `${path}.${op}`,
          message: `${op} needs a claim: { claim: <path>, ${op}: … }`,
        });
        ok = false;
      }
    }
  }

  const nodes: Node[] = [];
  const before = cc.problems.length;
  for (const k of keys) {
    const v = raw[k];
    const at = `${path}.${k}`;
    if (k === 'all' || k === 'any') {
      if (!Array.isArray(v) || v.length === 0) {
        cc.problems.push({ path: at, message: `${k} must be a non-empty list of criteria` });
        continue;
      }
      const children = v.map((c, i) => compileCriteria(c, `${at}[${i}]`, cc, depth + 1));
      if (children.every((c): c is Node => c !== undefined))
        nodes.push(k === 'all' ? allOf(children) : anyOf(at, children, authorMessage));
    } else if (k === 'not') {
      const child = compileCriteria(v, at, cc, depth + 1);
      if (child) nodes.push(notOf(at, child, authorMessage));
    } else if ((SHORTHANDS as readonly string[]).includes(k)) {
      const n = compileShorthand(k, v, at, cc, authorMessage);
      if (n) nodes.push(n);
    }
  }
  if (hasClaim) nodes.push(...compileClaim(raw, path, cc, authorMessage));
  if (!ok || cc.problems.length !== before || nodes.length === 0) return undefined;
  return allOf(nodes);
}
