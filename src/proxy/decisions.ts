// What the proxy does with a policy decision once it is made: shadow mode (a route in `mode: shadow`,
// or shadow rules in an enforced route, that would have refused), the audit of allowed requests
// (all, sampled or none — denials are always audited by the proxy itself), and decision metrics.
import type { Counter } from 'prom-client';
import type { AuditSink } from '../audit/sink.js';
import type { PartLogger } from '../audit/logger.js';
import type { Decision } from '../policy/index.js';
import type { GatehouseConfig } from '../config/schema.js';

export type AllowAudit = Pick<GatehouseConfig['audit'], 'allows' | 'sample_rate'>;

export interface DecisionRecorderOptions {
  audit: Pick<AuditSink, 'append'>;
  logger: PartLogger;
  settings: AllowAudit;
  decisions?: Counter<'route' | 'outcome' | 'reason'>;
  /** Injected for tests of sampling; default Math.random. */
  random?: () => number;
}

export type Outcome = 'allowed' | 'denied' | 'shadow_denied';

// Reasons become label values only when short and plain (rule names and error codes are), so series
// stay bounded by the configuration.
function reasonLabel(v: string | undefined, fallback: string): string {
  return v !== undefined && /^[A-Za-z0-9._:-]{1,128}$/.test(v) ? v : fallback;
}

/** The label for a denial: the deny rule, the error code, or `no_rule_matched`. */
export function denialReason(d: Decision | undefined, code?: string): string {
  if (code) return reasonLabel(code, 'error');
  return d?.rule ? reasonLabel(d.rule, 'rule') : 'no_rule_matched';
}

export class DecisionRecorder {
  readonly #audit: Pick<AuditSink, 'append'>;
  readonly #logger: PartLogger;
  readonly #decisions: Counter<'route' | 'outcome' | 'reason'> | undefined;
  readonly #random: () => number;
  #settings: AllowAudit;

  constructor(opts: DecisionRecorderOptions) {
    this.#audit = opts.audit;
    this.#logger = opts.logger;
    this.#decisions = opts.decisions;
    this.#random = opts.random ?? Math.random;
    this.#settings = opts.settings;
  }

  /** New audit settings after a configuration reload. */
  configure(settings: AllowAudit): void {
    this.#settings = settings;
  }

  count(route: string, outcome: Outcome, reason: string): void {
    this.#decisions?.inc({ route, outcome, reason });
  }

  /**
   * For a decision that lets the request through — allowed, or denied on a route in shadow mode — records
   * what is owed: `access.shadow_denied` with every reason when enforcing would have refused, then the
   * allow record per `audit.allows`. `data` may be a function, so a request whose allow is not audited
   * (sampled out, or `none`) builds no record. Never throws; audit failures are logged.
   */
  passed(
    routeName: string,
    shadowRoute: boolean,
    decision: Decision,
    data: Record<string, unknown> | (() => Record<string, unknown>),
    routeAudit?: AllowAudit,
  ): void {
    const fields = typeof data === 'function' ? data : () => data;
    const wouldDeny = decision.shadow.length === 0 ? [] : decision.shadow.filter((s) => s.wouldDeny);
    if (!decision.allowed || wouldDeny.length > 0) {
      // Route shadow: the policy itself refused. Rule shadow: a shadow deny rule matched an allowed request.
      const by = !decision.allowed && shadowRoute ? 'route' : 'rule';
      const reason = !decision.allowed ? denialReason(decision) : reasonLabel(wouldDeny[0]?.rule, 'rule');
      this.count(routeName, 'shadow_denied', reason);
      this.#append('access.shadow_denied', {
        ...fields(),
        stage: 'policy',
        shadow: by,
        ...(by === 'rule' ? { rules: wouldDeny.map((s) => s.rule) } : {}),
        decision,
      });
      if (!decision.allowed) return;
    }
    this.count(routeName, 'allowed', reasonLabel(decision.rule, 'rule'));
    const sampled = this.sample(routeAudit);
    if (!sampled) return;
    this.#append('access.allowed', { ...fields(), rule: decision.rule, ...sampled });
  }

  /**
   * Whether a request recorded like an allowed one (an allowed request, a browser sent to sign in) is
   * recorded this time, per the route's `audit` or else `audit.allows`: undefined for no, else the fields the record adds
   * (`sample_rate` when sampled).
   */
  sample(routeAudit?: AllowAudit): Record<string, unknown> | undefined {
    const { allows, sample_rate: rate } = routeAudit ?? this.#settings;
    if (allows === 'none') return undefined;
    if (allows === 'sampled') return this.#random() < rate ? { sample_rate: rate } : undefined;
    return {};
  }

  #append(type: string, data: Record<string, unknown>): void {
    // Without waiting: the batch commit is fast, and the request should not pay for it. A record the
    // secret guard refuses (a synchronous TypeError) is logged too: it must not fail the request.
    try {
      this.#audit
        .append(type, data)
        .catch((err: unknown) => this.#logger.error({ err, type }, 'audit of a proxy decision failed'));
    } catch (err) {
      this.#logger.error({ err, type }, 'audit of a proxy decision failed');
    }
  }
}
