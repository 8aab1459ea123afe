// Decisions in plain words, for `gatehouse policy test` and logs: the verdict on the first line (with
// the closest rule and the criterion it failed on when nothing matched), then every criterion checked.
import { formatValue } from './values.js';
import type { Decision, Reason } from './types.js';

/** `claim ref: expected glob "refs/heads/main", actual "refs/heads/feature/x" (why)` */
export function describeReason(r: Reason): string {
  let subject = r.criterion;
  if (r.operator && subject.endsWith(` ${r.operator}`)) subject = subject.slice(0, -r.operator.length - 1);
  const op = r.operator && r.operator !== 'equals' ? `${r.operator} ` : '';
  let s = `${subject}: expected ${op}${formatValue(r.expected)}, actual ${formatValue(r.actual)}`;
  if (r.message) s += ` (${r.message})`;
  return s;
}

function byRule(reasons: readonly Reason[]): Map<string, Reason[]> {
  const m = new Map<string, Reason[]>();
  for (const r of reasons) {
    let list = m.get(r.rule);
    if (!list) m.set(r.rule, (list = []));
    list.push(r);
  }
  return m;
}

function lines(reasons: readonly Reason[], indent: string): string[] {
  return reasons.map((r) => `${indent}${r.passed ? 'pass' : 'FAIL'}  ${describeReason(r)}  [${r.path}]`);
}

export function explainDecision(d: Decision): string {
  const out: string[] = [];
  if (d.allowed) {
    out.push(`allowed by rule "${d.rule ?? '?'}"`);
  } else if (d.rule) {
    out.push(`denied by rule "${d.rule}"${d.message ? `: ${d.message}` : ''}`);
  } else if (d.closest) {
    out.push(
      `denied: no rule matched; closest rule "${d.closest.rule}" failed on ${describeReason(d.closest.failed)}`,
    );
    if (d.message) out.push(`  ${d.message}`);
  } else if (d.reasons.length === 1 && d.reasons[0]?.criterion === 'evaluation') {
    out.push(`denied: ${d.reasons[0].message ?? 'evaluation failed'}`);
  } else {
    out.push('denied: no rule matched (the policy has no enforced allow rule)');
  }
  for (const [rule, rs] of byRule(d.reasons)) {
    const verdict = rs.every((r) => r.passed) ? 'matched' : 'did not match';
    out.push(`rule "${rule}": ${verdict}`);
    out.push(...lines(rs, '  '));
  }
  for (const s of d.shadow) {
    const effect = s.wouldDeny
      ? 'would deny'
      : s.wouldAllow
        ? 'would allow'
        : s.matched
          ? 'matched, no change'
          : 'did not match';
    out.push(`shadow ${s.effect} rule "${s.rule}": ${effect}`);
    out.push(...lines(s.reasons, '  '));
  }
  return out.join('\n');
}
