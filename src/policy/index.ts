// The policy engine's public entry: one rule language for proxy routes and federation trust rules.
// Pure: no I/O and no imports from the rest of Gatehouse.
export { compilePolicy } from './policy.js';
export type { CompiledPolicy, EvaluateOptions, RuleSpec } from './policy.js';
export { explainDecision, describeReason } from './explain.js';
export { PolicyError } from './errors.js';
export type { PolicyProblem, PolicyErrorCode } from './errors.js';
export type { Decision, PolicyInput, PolicyRequest, Reason, ShadowOutcome } from './types.js';
export { compileGlob, matchGlob, isGlob } from './glob.js';
export {
  compileHostPattern,
  compileHostPortPattern,
  hostPatternProblem,
  hostPortPatternProblem,
  matchHostPattern,
  matchOriginPattern,
  originPatternProblem,
  type HostMatcher,
} from './host-pattern.js';
