// A policy: a list of allow and deny rules, compiled once (every problem reported with its path) and
// evaluated many times. Deny beats allow, nothing matching denies, shadow rules only report, and no
// exception ever escapes evaluation: an internal error is a denial with its reason.
import { PolicyError, type PolicyProblem } from './errors.js';
import { compileCriteria, celView, type EvalContext, type Node } from './criteria.js';
import { suggest } from './values.js';
import type { Decision, PolicyInput, Reason, ShadowOutcome } from './types.js';

/** A rule as written in YAML or JSON. */
export interface RuleSpec {
  name?: string;
  description?: string;
  allow?: unknown;
  deny?: unknown;
  mode?: 'enforce' | 'shadow';
  message?: string;
}

interface CompiledRule {
  name: string;
  effect: 'allow' | 'deny';
  shadow: boolean;
  message?: string;
  node: Node;
}

export interface EvaluateOptions {
  /** Evaluate only the rule with this name (for `gatehouse policy test --rule`). */
  only?: string;
}

export interface CompiledPolicy {
  /** Rule names in order (unnamed rules are called by their path, `rules[2]`). */
  readonly ruleNames: readonly string[];
  evaluate(input: PolicyInput, opts?: EvaluateOptions): Decision;
}

const RULE_KEYS = ['name', 'description', 'allow', 'deny', 'mode', 'message'];

function compileRule(
  raw: unknown,
  path: string,
  problems: PolicyProblem[],
  names: Set<string>,
): CompiledRule | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push({ path, message: 'a rule must be an object with allow or deny' });
    return undefined;
  }
  const r = raw as Record<string, unknown>;
  const before = problems.length;
  for (const k of Object.keys(r)) {
    if (!RULE_KEYS.includes(k)) {
      const hint = suggest(k, RULE_KEYS);
      problems.push({
        path: `${path}.${k}`,
        message: `unknown rule key "${k}"${hint || ' (criteria go under allow: or deny:)'}`,
      });
    }
  }
  let name = path;
  if (r.name !== undefined) {
    if (typeof r.name !== 'string' || r.name.length === 0 || r.name.length > 128) {
      problems.push({
        path: `${path}.name`,
        message: 'name must be a non-empty string of at most 128 characters',
      });
    } else if (names.has(r.name)) {
      problems.push({ path: `${path}.name`, message: `another rule is already named "${r.name}"` });
    } else name = r.name;
  }
  names.add(name);
  if (r.description !== undefined && typeof r.description !== 'string') {
    problems.push({ path: `${path}.description`, message: 'description must be a string' });
  }
  if (r.mode !== undefined && r.mode !== 'enforce' && r.mode !== 'shadow') {
    problems.push({ path: `${path}.mode`, message: 'mode must be "enforce" or "shadow"' });
  }
  if (r.message !== undefined && (typeof r.message !== 'string' || r.message.length > 500)) {
    problems.push({ path: `${path}.message`, message: 'message must be a string of at most 500 characters' });
  }
  const hasAllow = r.allow !== undefined;
  const hasDeny = r.deny !== undefined;
  if (hasAllow === hasDeny) {
    problems.push({
      path,
      message: hasAllow
        ? 'a rule has allow or deny, not both: split it into two rules'
        : 'a rule needs allow: or deny:',
    });
    return undefined;
  }
  const effect = hasAllow ? 'allow' : 'deny';
  const node = compileCriteria(hasAllow ? r.allow : r.deny, `${path}.${effect}`, { problems });
  if (!node || problems.length !== before) return undefined;
  return {
    name,
    effect,
    shadow: r.mode === 'shadow',
    node,
    ...(typeof r.message === 'string' ? { message: r.message } : {}),
  };
}

/**
 * Compiles a list of rules. Throws PolicyError (code ERR_POLICY_INVALID) listing every problem, each
 * with its path under `opts.path` (default `rules`): `rules[2].allow.all[0].glob`.
 */
export function compilePolicy(rules: unknown, opts: { path?: string } = {}): CompiledPolicy {
  const base = opts.path ?? 'rules';
  const problems: PolicyProblem[] = [];
  if (!Array.isArray(rules)) {
    throw new PolicyError([{ path: base, message: 'a policy is a list of rules' }]);
  }
  if (rules.length > 1000)
    throw new PolicyError([{ path: base, message: 'a policy has at most 1000 rules' }]);
  const names = new Set<string>();
  const compiled = rules.map((r, i) => compileRule(r, `${base}[${i}]`, problems, names));
  if (problems.length) throw new PolicyError(problems);
  return new Policy(compiled as CompiledRule[]);
}

function internalError(err: unknown): Decision {
  const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
  const failed: Reason = {
    rule: '(policy)',
    criterion: 'evaluation',
    path: '',
    passed: false,
    expected: 'no error',
    actual: undefined,
    message: `internal error: ${why}`,
  };
  return { allowed: false, effect: 'deny', reasons: [failed], shadow: [] };
}

class Policy implements CompiledPolicy {
  readonly #rules: readonly CompiledRule[];
  readonly ruleNames: readonly string[];

  constructor(rules: CompiledRule[]) {
    this.#rules = Object.freeze(rules);
    this.ruleNames = Object.freeze(rules.map((r) => r.name));
  }

  evaluate(input: PolicyInput, opts: EvaluateOptions = {}): Decision {
    try {
      return this.#evaluate(input, opts);
    } catch (err) {
      return internalError(err);
    }
  }

  #evaluate(input: PolicyInput, opts: EvaluateOptions): Decision {
    if (
      typeof input !== 'object' ||
      input === null ||
      typeof input.claims !== 'object' ||
      input.claims === null ||
      !(input.now instanceof Date) ||
      Number.isNaN(input.now.getTime())
    ) {
      throw new TypeError('evaluate needs { claims: object, now: valid Date }');
    }
    let view: ReturnType<typeof celView> | undefined;
    const cel = (): ReturnType<typeof celView> => (view ??= celView(input));
    const reasons: Reason[] = [];
    const shadowRuns: { rule: CompiledRule; matched: boolean; reasons: Reason[] }[] = [];
    let allowRule: CompiledRule | undefined;
    let denyRule: CompiledRule | undefined;
    let denyMessage: string | undefined;
    let closest: { rule: CompiledRule; passes: number; failed?: Reason; failedMessage?: string } | undefined;

    for (const rule of this.#rules) {
      if (opts.only !== undefined && rule.name !== opts.only) continue;
      const out: Reason[] = rule.shadow ? [] : reasons;
      const ctx: EvalContext = { input, rule: rule.name, out, cel };
      const o = rule.node.run(ctx);
      if (rule.shadow) {
        shadowRuns.push({ rule, matched: o.passed, reasons: out });
      } else if (rule.effect === 'deny') {
        if (o.passed && !denyRule) {
          denyRule = rule;
          denyMessage = rule.message;
        }
      } else {
        if (o.passed) allowRule ??= rule;
        else if (!closest || o.passes > closest.passes) {
          closest = {
            rule,
            passes: o.passes,
            ...(o.failed ? { failed: o.failed } : {}),
            ...(o.failedMessage ? { failedMessage: o.failedMessage } : {}),
          };
        }
      }
    }

    let decision: Decision;
    if (denyRule) {
      decision = { allowed: false, effect: 'deny', rule: denyRule.name, reasons, shadow: [] };
      if (denyMessage) decision.message = denyMessage;
    } else if (allowRule) {
      decision = { allowed: true, effect: 'allow', rule: allowRule.name, reasons, shadow: [] };
    } else {
      decision = { allowed: false, effect: 'deny', reasons, shadow: [] };
      if (closest?.failed) {
        decision.closest = { rule: closest.rule.name, failed: closest.failed };
        const msg = closest.failedMessage ?? closest.rule.message;
        if (msg) decision.message = msg;
      }
    }
    decision.shadow = shadowRuns.map(({ rule, matched, reasons: rs }): ShadowOutcome => ({
      rule: rule.name,
      effect: rule.effect,
      matched,
      wouldDeny: rule.effect === 'deny' && matched && decision.allowed,
      wouldAllow: rule.effect === 'allow' && matched && !decision.allowed && !denyRule,
      reasons: rs,
    }));
    return decision;
  }
}
