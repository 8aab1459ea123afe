// The one error the policy engine throws: a policy that does not compile. It lists every problem with
// its path (`rules[2].allow.all[0].glob`) so the config loader can add file and line to each.

/** One thing wrong with a policy, at a dotted path into the rules. */
export interface PolicyProblem {
  path: string;
  message: string;
}

/** Codes this module raises; the config loader maps them onto its own. */
export type PolicyErrorCode = 'ERR_POLICY_INVALID';

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  readonly code: PolicyErrorCode;
  readonly problems: readonly PolicyProblem[];

  constructor(problems: readonly PolicyProblem[], code: PolicyErrorCode = 'ERR_POLICY_INVALID') {
    const lines = problems.map((p) => `  ${p.path}: ${p.message}`);
    super(
      `invalid policy (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
    );
    this.code = code;
    this.problems = problems;
  }
}
