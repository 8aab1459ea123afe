// Compiles the criteria of one rule (`all` / `any` / `not`, claim operators and the route shorthands)
// into a tree of small checks, once, so evaluation only runs precompiled globs, RE2 programs and CEL.
// Every leaf records a Reason (expected against actual) as it runs; composites summarise their children.
import { compileGlob } from './glob.js';
import { compileRe2 } from './regex.js';
import { compileCel, toCelValue, fromCelValue, celErrorMessage, type CelProgram } from './cel.js';
import { parseClaimPath, lookupClaim, dottedPathHint, type ClaimPath, type Lookup } from './claim-path.js';
import { parseCidr, parseIp, matchCidr, type Cidr } from './cidr.js';
import {
  DAYS,
  localClock,
  parseHhMm,
  inWindow,
  formatLocal,
  parseIsoTimestamp,
  parseNowOffset,
  type Day,
  type TimeWindow,
} from './time-window.js';
import { jsonEquals, typeName, typeMismatchNote, formatValue, suggest } from './values.js';
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

const COMBINATORS = ['all', 'any', 'not'] as const;
const CLAIM_OPS = ['equals', 'in', 'glob', 'regex', 'exists', 'gt', 'gte', 'lt', 'lte', 'contains'] as const;
const SHORTHANDS = [
  'roles',
  'groups',
  'email',
  'email_domain',
  'method',
  'path',
  'host',
  'source_ip',
  'time',
  'cel',
] as const;
const MODIFIERS = ['claim', 'ignore_case', 'message'] as const;
export const CRITERIA_KEYS: readonly string[] = [...COMBINATORS, ...CLAIM_OPS, ...SHORTHANDS, ...MODIFIERS];
const MAX_LIST = 1000;

interface Check {
  passed: boolean;
  actual: unknown;
  message?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
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
function leaf(
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

// ---------------------------------------------------------------------------------------------------
// Value checks shared by claim operators and shorthands.

function stringList(v: unknown, path: string, cc: CompileContext, what: string): string[] | undefined {
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

function compileGlobs(
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
function candidates(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return undefined;
}

function absent(ctx: EvalContext, claim: ClaimPath): Check {
  const hint = dottedPathHint(ctx.input.claims, claim);
  return {
    passed: false,
    actual: undefined,
    message: `claim "${claim.text}" is absent${hint ? `; ${hint}` : ''}`,
  };
}

function stringMatch(v: unknown, test: (s: string) => boolean): Check {
  const list = candidates(v);
  if (!list)
    return { passed: false, actual: v, message: `type differs: expected string, actual ${typeName(v)}` };
  return { passed: list.some(test), actual: v };
}

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

function compileClaim(
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

// ---------------------------------------------------------------------------------------------------
// Shorthands the proxy's routes use.

function claimList(
  key: 'roles' | 'groups',
  v: unknown,
  path: string,
  cc: CompileContext,
  authorMessage: string | undefined,
): Node | undefined {
  const list = stringList(v, path, cc, key);
  if (!list) return undefined;
  const wanted = new Set(list);
  return leaf(path, key, 'any of', list, authorMessage, (ctx) => {
    const claims = ctx.input.claims;
    if (!Object.hasOwn(claims, key))
      return { passed: false, actual: undefined, message: `claim "${key}" is absent` };
    const actual = claims[key];
    const have = candidates(actual);
    if (!have)
      return {
        passed: false,
        actual,
        message: `type differs: expected array of strings, actual ${typeName(actual)}`,
      };
    return { passed: have.some((r) => wanted.has(r)), actual };
  });
}

/** The email claim, refused when the IdP says it is not verified. */
function verifiedEmail(ctx: EvalContext): { email: string } | Check {
  const claims = ctx.input.claims;
  const email = Object.hasOwn(claims, 'email') ? claims.email : undefined;
  if (email === undefined) return { passed: false, actual: undefined, message: 'claim "email" is absent' };
  if (typeof email !== 'string')
    return {
      passed: false,
      actual: email,
      message: `type differs: expected string, actual ${typeName(email)}`,
    };
  const verified = Object.hasOwn(claims, 'email_verified') ? claims.email_verified : undefined;
  if (verified === false || verified === 'false')
    return { passed: false, actual: email, message: 'email_verified is false' };
  return { email };
}

function requestField(ctx: EvalContext, field: 'method' | 'path' | 'host' | 'sourceIp'): string | Check {
  const v = ctx.input.request?.[field];
  if (typeof v !== 'string')
    return {
      passed: false,
      actual: undefined,
      message: `request ${field} is not available here (route policies only)`,
    };
  return v;
}

function compileTime(v: unknown, path: string, cc: CompileContext): TimeWindow | undefined {
  if (!isRecord(v)) {
    cc.problems.push({
      path,
      message: 'time must be an object: { after: "HH:MM", before: "HH:MM", days: [mon, …], tz: "UTC" }',
    });
    return undefined;
  }
  let ok = true;
  for (const k of Object.keys(v)) {
    if (!['after', 'before', 'days', 'tz'].includes(k)) {
      cc.problems.push({
        path: `${path}.${k}`,
        message: `unknown key "${k}" in time${suggest(k, ['after', 'before', 'days', 'tz'])}`,
      });
      ok = false;
    }
  }
  const tz = v.tz ?? 'UTC';
  const local = typeof tz === 'string' ? localClock(tz) : undefined;
  if (!local) {
    cc.problems.push({
      path: `${path}.tz`,
      message: `unknown time zone ${formatValue(tz)} (use an IANA name such as "UTC" or "Europe/Berlin")`,
    });
    ok = false;
  }
  const w: { after?: number; before?: number; days?: Set<Day> } = {};
  for (const k of ['after', 'before'] as const) {
    if (v[k] === undefined) continue;
    const m = parseHhMm(v[k]);
    if (m === undefined) {
      cc.problems.push({ path: `${path}.${k}`, message: `${k} must be "HH:MM" (24-hour)` });
      ok = false;
    } else w[k] = m;
  }
  if (v.days !== undefined) {
    const days = Array.isArray(v.days) ? v.days : undefined;
    const bad =
      !days ||
      days.length === 0 ||
      days.some((d) => typeof d !== 'string' || !(DAYS as readonly string[]).includes(d.toLowerCase()));
    if (bad) {
      cc.problems.push({
        path: `${path}.days`,
        message: `days must be a non-empty list of ${DAYS.join(', ')}`,
      });
      ok = false;
    } else w.days = new Set(days.map((d) => (d as string).toLowerCase() as Day));
  }
  if (w.after === undefined && w.before === undefined && !w.days) {
    cc.problems.push({ path, message: 'time needs at least one of after, before, days' });
    ok = false;
  }
  if (!ok || !local || typeof tz !== 'string') return undefined;
  return { ...w, tz, local };
}

function compileShorthand(
  key: string,
  v: unknown,
  path: string,
  cc: CompileContext,
  authorMessage: string | undefined,
): Node | undefined {
  switch (key) {
    case 'roles':
    case 'groups':
      return claimList(key, v, path, cc, authorMessage);
    case 'email': {
      // Email addresses are compared case-insensitively: IdPs disagree on case and nobody means it.
      const res = compileGlobs(stringList(v, path, cc, 'email') ?? [], path, cc, true);
      if (!res?.length) return undefined;
      return leaf(path, 'email', 'glob', v, authorMessage, (ctx) => {
        const e = verifiedEmail(ctx);
        return 'email' in e ? { passed: res.some((re) => re.test(e.email)), actual: e.email } : e;
      });
    }
    case 'email_domain': {
      const list = stringList(v, path, cc, 'email_domain');
      if (!list) return undefined;
      const domains = new Set(list.map((d) => d.toLowerCase().replace(/^@/, '')));
      return leaf(path, 'email domain', 'any of', list, authorMessage, (ctx) => {
        const e = verifiedEmail(ctx);
        if (!('email' in e)) return e;
        const at = e.email.lastIndexOf('@');
        const domain = at === -1 ? '' : e.email.slice(at + 1).toLowerCase();
        return { passed: domain !== '' && domains.has(domain), actual: e.email };
      });
    }
    case 'method': {
      const list = stringList(v, path, cc, 'method');
      if (!list) return undefined;
      const methods = new Set(list.map((m) => m.toUpperCase()));
      if ([...methods].some((m) => !/^[A-Z]+$/.test(m))) {
        cc.problems.push({ path, message: 'method names are letters only (GET, POST, …)' });
        return undefined;
      }
      return leaf(path, 'method', 'any of', [...methods], authorMessage, (ctx) => {
        const m = requestField(ctx, 'method');
        return typeof m === 'string' ? { passed: methods.has(m.toUpperCase()), actual: m } : m;
      });
    }
    case 'path':
    case 'host': {
      // Hosts are case-insensitive (RFC 9110 §4.2.3); paths are not.
      const res = compileGlobs(stringList(v, path, cc, key) ?? [], path, cc, key === 'host');
      if (!res?.length) return undefined;
      return leaf(path, key, 'glob', v, authorMessage, (ctx) => {
        const s = requestField(ctx, key);
        return typeof s === 'string' ? { passed: res.some((re) => re.test(s)), actual: s } : s;
      });
    }
    case 'source_ip': {
      const list = stringList(v, path, cc, 'source_ip');
      if (!list) return undefined;
      const cidrs: Cidr[] = [];
      for (const [i, text] of list.entries()) {
        const c = parseCidr(text);
        if (typeof c === 'string')
          cc.problems.push({ path: Array.isArray(v) ? `${path}[${i}]` : path, message: c });
        else cidrs.push(c);
      }
      if (cidrs.length !== list.length) return undefined;
      return leaf(path, 'source ip', 'in', list, authorMessage, (ctx) => {
        const s = requestField(ctx, 'sourceIp');
        if (typeof s !== 'string') return s;
        const ip = parseIp(s);
        if (!ip) return { passed: false, actual: s, message: 'source address is not an IP address' };
        return { passed: cidrs.some((c) => matchCidr(c, ip)), actual: s };
      });
    }
    case 'time': {
      const w = compileTime(v, path, cc);
      if (!w) return undefined;
      return leaf(path, 'time', 'within', v, authorMessage, (ctx) => ({
        passed: inWindow(w, ctx.input.now),
        actual: formatLocal(w, ctx.input.now),
      }));
    }
    case 'cel': {
      if (typeof v !== 'string') {
        cc.problems.push({ path, message: 'cel must be a string expression' });
        return undefined;
      }
      const prog = compileCel(v);
      if (Array.isArray(prog)) {
        for (const message of prog) cc.problems.push({ path, message });
        return undefined;
      }
      return celLeaf(path, v, prog, authorMessage);
    }
  }
  return undefined;
}

function celLeaf(path: string, expr: string, prog: CelProgram, authorMessage: string | undefined): Node {
  return leaf(path, 'cel', undefined, expr, authorMessage, (ctx) => {
    try {
      const r: unknown = prog(ctx.cel());
      if (r === true) return { passed: true, actual: true };
      if (r === false) return { passed: false, actual: false };
      return {
        passed: false,
        actual: fromCelValue(r),
        message: `expression returned ${typeName(fromCelValue(r))}, not a bool`,
      };
    } catch (err) {
      // Fail closed: an evaluation error (missing key, no overload) is a failed criterion.
      return { passed: false, actual: undefined, message: `CEL error: ${celErrorMessage(err)}` };
    }
  });
}

/** Builds the CEL view of an input (integers as CEL ints, objects without prototypes). */
export function celView(input: PolicyInput): { claims: unknown; request: unknown; now: Date } {
  const r = input.request ?? {};
  const request: Record<string, string> = Object.create(null);
  for (const k of ['method', 'path', 'host', 'sourceIp'] as const)
    if (typeof r[k] === 'string') request[k] = r[k];
  return { claims: toCelValue(input.claims), request, now: input.now };
}

// ---------------------------------------------------------------------------------------------------

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
