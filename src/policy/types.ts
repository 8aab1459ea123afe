// The shapes the policy engine reads and returns: the evaluation input, the decision and its reasons.
// Everything in a Decision is plain JSON (no BigInt, no Date) so it can go straight to the audit log.

/** What a request looks like to a route policy; the proxy fills it with the normalized path. */
export interface PolicyRequest {
  method?: string;
  path?: string;
  host?: string;
  sourceIp?: string;
}

export interface PolicyInput {
  /** Verified claims of the caller (a token's payload, or a session's mapped claims). */
  claims: Record<string, unknown>;
  request?: PolicyRequest;
  /** The clock, injected so tests and `policy test` are reproducible. */
  now: Date;
}

/** Why one criterion passed or failed, with the expected pattern against the actual value. */
export interface Reason {
  /** Name of the rule the criterion belongs to. */
  rule: string;
  /** What was checked, in words: `claim repository glob`, `roles`, `cel`, `any`. */
  criterion: string;
  /** The operator, when the criterion has one (`glob`, `equals`, `in`, `gte`…); used in explanations. */
  operator?: string;
  /** Where the criterion is written: `rules[0].allow.all[1].glob`. */
  path: string;
  passed: boolean;
  expected: unknown;
  /** The value seen; `undefined` when the claim or request field is absent. */
  actual: unknown;
  /** Why it failed in words (type mismatch, absent claim, CEL error), or the rule author's message. */
  message?: string;
}

export interface ShadowOutcome {
  rule: string;
  effect: 'allow' | 'deny';
  /** The rule's criteria all passed. */
  matched: boolean;
  /** Enforcing this deny rule would have refused a request that was allowed. */
  wouldDeny: boolean;
  /** Enforcing this allow rule would have let in a request that was refused for lack of a match. */
  wouldAllow: boolean;
  reasons: Reason[];
}

export interface Decision {
  allowed: boolean;
  effect: 'allow' | 'deny';
  /** The allow rule that let the request in, or the deny rule that refused it. */
  rule?: string;
  /** Every enforced rule's criteria, in order, passed or failed. */
  reasons: Reason[];
  /** When no rule matched: the allow rule that came closest and the first criterion it failed on. */
  closest?: { rule: string; failed: Reason };
  /** The rule author's message for this refusal, when one applies (safe to show the client). */
  message?: string;
  shadow: ShadowOutcome[];
}
