// Trust rules (workload federation) compiled for evaluation: per external issuer, one policy (src/policy) over the rules that
// name it, so a decision carries every criterion checked and the closest rule when none matched.
// Delegation (RFC 8693 actor tokens) is checked per rule and reported as a reason like any other.
import { compilePolicy, type CompiledPolicy, type Decision, type Reason } from './index.js';
import { PolicyError, type PolicyProblem } from './errors.js';
import { parseClaimPath, type ClaimPath } from './claim-path.js';
import { RESERVED_CLAIMS } from './reserved-claims.js';
import { parseSubjectTemplate, type SubjectTemplate } from './subject-template.js';

/**
 * A trust rule as the config gives it (after validation and defaults; durations in ms). Declared here,
 * not imported, because policy/ depends on nothing else in Gatehouse; `config`'s type fits it.
 */
export interface TrustRuleConfig {
  name: string;
  description?: string | undefined;
  issuer: string;
  mode: 'enforce' | 'shadow';
  conditions: unknown;
  message?: string | undefined;
  delegation: 'forbid' | 'allow' | 'require';
  actor_conditions?: unknown;
  /** Each subject token (issuer + jti) is exchanged at most once under this rule. */
  single_use?: boolean | undefined;
  grant: {
    roles: string[];
    audiences: string[];
    max_ttl?: number | undefined;
    /** The issued token may expire after the subject token does (bounded by max_ttl alone). */
    outlive_subject?: boolean | undefined;
    subject?: string | undefined;
    claims: { copy: string[]; map: Record<string, string> };
  };
}

/** The name trust rules use for Gatehouse's own access tokens. */
export const OWN_ISSUER_NAME = 'gatehouse';

/** Claims the issued token's grant may not set: they are Gatehouse's to decide (and `may_act`, which
 * would let the subject token's issuer grant delegation). */
const RESERVED: ReadonlySet<string> = new Set([...RESERVED_CLAIMS, 'may_act']);

export interface TrustRule {
  readonly name: string;
  /** Position in the config's trust_rules list, for paths in reasons. */
  readonly index: number;
  readonly issuer: string;
  readonly shadow: boolean;
  readonly delegation: 'forbid' | 'allow' | 'require';
  readonly message: string | undefined;
  readonly roles: readonly string[];
  readonly audiences: readonly string[];
  readonly maxTtlMs: number | undefined;
  /** The subject token may be exchanged once only (`single_use`); it must carry a `jti`. */
  readonly singleUse: boolean;
  /** The issued token may outlive the subject token (`grant.outlive_subject`). */
  readonly outliveSubject: boolean;
  readonly subject: SubjectTemplate;
  readonly copy: readonly { name: string; path: ClaimPath }[];
  readonly map: readonly { name: string; path: ClaimPath }[];
  readonly actorPolicy: CompiledPolicy | undefined;
}

interface Compiled {
  policy: CompiledPolicy;
  /** Config index of each rule in the policy, by position. */
  indexes: number[];
}

export interface TrustEvaluation {
  allowed: boolean;
  /** The policy decision, with delegation and actor reasons added. */
  decision: Decision;
  /** Enforced rules whose criteria all passed (delegation and actor included), in config order. */
  matched: TrustRule[];
}

export interface EvaluateTrustInput {
  /** The configured name of the verified token's issuer. */
  issuer: string;
  claims: Record<string, unknown>;
  /** Claims of the verified actor token, when one was sent. */
  actorClaims?: Record<string, unknown>;
  now: Date;
  /** Evaluate only this rule (`gatehouse policy test --rule`). */
  only?: string;
}

function delegationReason(rule: TrustRule, hasActor: boolean): Reason | undefined {
  const ok = rule.delegation === 'allow' || (rule.delegation === 'require' ? hasActor : !hasActor);
  if (ok) return undefined;
  return {
    rule: rule.name,
    criterion: 'delegation',
    path: `trust_rules[${rule.index}].delegation`,
    passed: false,
    expected: rule.delegation === 'require' ? 'an actor_token' : 'no actor_token',
    actual: hasActor ? 'an actor_token' : 'no actor_token',
    message:
      rule.delegation === 'require'
        ? 'this rule is for delegation only: send actor_token'
        : 'this rule forbids delegation (delegation: forbid)',
  };
}

/** Rewrites compilePolicy's `x[0].allow…` paths to `trust_rules[i].conditions…`. */
function rebase(problems: readonly PolicyProblem[], from: string, to: string): PolicyProblem[] {
  return problems.map((p) => ({
    path: p.path.startsWith(from) ? to + p.path.slice(from.length) : p.path,
    message: p.message,
  }));
}

function compileConditions(raw: unknown, name: string, at: string, problems: PolicyProblem[]): boolean {
  try {
    compilePolicy([{ name, allow: raw }], { path: 'x' });
    return true;
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    problems.push(...rebase(e.problems, 'x[0].allow', at));
    return false;
  }
}

export class TrustRules {
  readonly #rules: readonly TrustRule[];
  readonly #byIssuer = new Map<string, { withActor: Compiled; withoutActor: Compiled; rules: TrustRule[] }>();
  readonly #configs: readonly TrustRuleConfig[];

  /**
   * Compiles every rule; throws PolicyError listing every problem with its config path
   * (`trust_rules[2].conditions.all[0].glob`). `issuers` are the configured external issuer names.
   */
  static compile(configs: readonly TrustRuleConfig[], issuers: readonly string[]): TrustRules {
    const problems: PolicyProblem[] = [];
    const names = new Set<string>();
    const known = new Set([...issuers, OWN_ISSUER_NAME]);
    const rules: TrustRule[] = [];
    configs.forEach((c, i) => {
      const at = `trust_rules[${i}]`;
      if (names.has(c.name))
        problems.push({ path: `${at}.name`, message: `another trust rule is already named "${c.name}"` });
      names.add(c.name);
      if (!known.has(c.issuer)) {
        problems.push({
          path: `${at}.issuer`,
          message: `no external issuer is named "${c.issuer}"; configured: ${[...known].join(', ')}`,
        });
      }
      compileConditions(c.conditions, c.name, `${at}.conditions`, problems);
      let actorPolicy: CompiledPolicy | undefined;
      if (c.actor_conditions !== undefined) {
        if (c.delegation === 'forbid') {
          problems.push({
            path: `${at}.actor_conditions`,
            message: 'actor_conditions need delegation: allow or require',
          });
        } else if (compileConditions(c.actor_conditions, c.name, `${at}.actor_conditions`, problems)) {
          actorPolicy = compilePolicy([{ name: c.name, allow: c.actor_conditions }], {
            path: `${at}.actor_conditions`,
          });
        }
      }
      if (c.grant.outlive_subject === true) {
        // Re-exchanging its own tokens under such a rule would renew a token for ever.
        if (c.issuer === OWN_ISSUER_NAME) {
          problems.push({
            path: `${at}.grant.outlive_subject`,
            message: `a token issued from a Gatehouse token may not outlive it (the exchange would renew tokens for ever); remove outlive_subject`,
          });
        } else if (c.grant.max_ttl === undefined) {
          problems.push({
            path: `${at}.grant.outlive_subject`,
            message:
              'outlive_subject needs grant.max_ttl: say how long the issued token may live (e.g. max_ttl: 15m)',
          });
        }
      }
      const subjectSource = c.grant.subject ?? `${c.issuer}:{sub}`;
      const subject = parseSubjectTemplate(subjectSource);
      if (typeof subject === 'string') problems.push({ path: `${at}.grant.subject`, message: subject });
      const claimList = (entries: [string, string][], key: 'copy' | 'map') => {
        const out: { name: string; path: ClaimPath }[] = [];
        for (const [name, pathText] of entries) {
          const where = key === 'copy' ? `${at}.grant.claims.copy` : `${at}.grant.claims.map.${name}`;
          const path = parseClaimPath(pathText);
          if (typeof path === 'string') problems.push({ path: where, message: path });
          else if (RESERVED.has(name)) {
            problems.push({
              path: where,
              message: `"${name}" is set by Gatehouse and cannot be copied or mapped; map it to another name`,
            });
          } else if (key === 'copy' && path.segments.length !== 1) {
            problems.push({
              path: where,
              message: `copy takes top-level claim names; for "${pathText}" use map: { new_name: "${pathText}" }`,
            });
          } else out.push({ name, path });
        }
        return out;
      };
      const copy = claimList(
        c.grant.claims.copy.map((n) => [n, n]),
        'copy',
      );
      const map = claimList(Object.entries(c.grant.claims.map), 'map');
      if (typeof subject === 'string') return;
      rules.push({
        name: c.name,
        index: i,
        issuer: c.issuer,
        shadow: c.mode === 'shadow',
        delegation: c.delegation,
        message: c.message,
        roles: c.grant.roles,
        audiences: c.grant.audiences,
        maxTtlMs: c.grant.max_ttl,
        singleUse: c.single_use === true,
        outliveSubject: c.grant.outlive_subject === true,
        subject,
        copy,
        map,
        actorPolicy,
      });
    });
    if (problems.length) throw new PolicyError(problems);
    return new TrustRules(rules, configs);
  }

  private constructor(rules: TrustRule[], configs: readonly TrustRuleConfig[]) {
    this.#rules = Object.freeze(rules);
    this.#configs = configs;
    const issuers = new Set(rules.map((r) => r.issuer));
    for (const issuer of issuers) {
      const mine = rules.filter((r) => r.issuer === issuer);
      const build = (withActor: boolean): Compiled => {
        const eligible = mine.filter((r) => !delegationReason(r, withActor));
        const specs = eligible.map((r) => {
          const c = configs[r.index] as TrustRuleConfig;
          return {
            name: r.name,
            allow: c.conditions,
            mode: c.mode,
            ...(c.message ? { message: c.message } : {}),
          };
        });
        return { policy: compilePolicy(specs, { path: 'p' }), indexes: eligible.map((r) => r.index) };
      };
      this.#byIssuer.set(issuer, { withActor: build(true), withoutActor: build(false), rules: mine });
    }
  }

  get rules(): readonly TrustRule[] {
    return this.#rules;
  }

  get(name: string): TrustRule | undefined {
    return this.#rules.find((r) => r.name === name);
  }

  /** Rules that name this issuer, in config order. */
  forIssuer(issuer: string): TrustRule[] {
    return this.#rules.filter((r) => r.issuer === issuer);
  }

  /** Never throws: problems become denials with their reasons (the policy engine's contract). */
  evaluate(input: EvaluateTrustInput): TrustEvaluation {
    const entry = this.#byIssuer.get(input.issuer);
    const hasActor = input.actorClaims !== undefined;
    if (!entry) {
      const reason: Reason = {
        rule: '(none)',
        criterion: 'issuer',
        path: 'trust_rules',
        passed: false,
        expected: `a trust rule with issuer: ${input.issuer}`,
        actual: 'none configured',
        message: `no trust rule names the issuer "${input.issuer}"`,
      };
      return {
        allowed: false,
        matched: [],
        decision: { allowed: false, effect: 'deny', reasons: [reason], shadow: [] },
      };
    }
    const { policy, indexes } = hasActor ? entry.withActor : entry.withoutActor;
    const only = input.only !== undefined && policy.ruleNames.includes(input.only) ? input.only : undefined;
    const decision: Decision = policy.evaluate(
      { claims: input.claims, now: input.now },
      only ? { only } : {},
    );
    // Paths as the operator wrote them: `trust_rules[3].conditions.all[1]`, not the per-issuer policy's.
    const fix = (r: Reason): void => {
      r.path = r.path.replace(
        /^p\[(\d+)\]\.allow/,
        (_m, k: string) => `trust_rules[${indexes[Number(k)] ?? '?'}].conditions`,
      );
    };
    decision.reasons.forEach(fix);
    if (decision.closest) fix(decision.closest.failed);
    for (const s of decision.shadow) s.reasons.forEach(fix);
    // Rules left out of the policy because of delegation: each gets its reason, so nothing is silent.
    const excluded: Reason[] = [];
    for (const r of entry.rules) {
      if (input.only !== undefined && r.name !== input.only) continue;
      const why = delegationReason(r, hasActor);
      if (why && !r.shadow) excluded.push(why);
    }
    decision.reasons = [...excluded, ...decision.reasons];

    const matched: TrustRule[] = [];
    if (decision.allowed) {
      const byRule = new Map<string, boolean>();
      for (const r of decision.reasons) byRule.set(r.rule, (byRule.get(r.rule) ?? true) && r.passed);
      for (const rule of entry.rules) {
        if (rule.shadow || byRule.get(rule.name) !== true) continue;
        if (rule.actorPolicy && input.actorClaims) {
          const a = rule.actorPolicy.evaluate({ claims: input.actorClaims, now: input.now });
          const actorReasons = a.reasons.map((x) => ({ ...x, criterion: `actor ${x.criterion}` }));
          decision.reasons.push(...actorReasons);
          if (!a.allowed) continue;
        }
        matched.push(rule);
      }
      if (matched.length === 0) {
        const failed = decision.reasons.find((r) => !r.passed && r.criterion.startsWith('actor '));
        decision.allowed = false;
        decision.effect = 'deny';
        delete decision.rule;
        if (failed) decision.closest = { rule: failed.rule, failed };
      } else decision.rule = matched[0]?.name;
    } else if (!decision.closest && excluded[0]) {
      decision.closest = { rule: excluded[0].rule, failed: excluded[0] };
    }
    return { allowed: matched.length > 0, decision, matched };
  }

  /** The rule specs as configured (for `gatehouse policy test`). */
  get configs(): readonly TrustRuleConfig[] {
    return this.#configs;
  }
}
