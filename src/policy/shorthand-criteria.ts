// The shorthands route policies use: roles, groups, email, email_domain, method, path, host,
// source_ip, time, and the `cel:` escape hatch.
import { compileCel, toCelValue, fromCelValue, celErrorMessage, type CelProgram } from './cel.js';
import { parseCidr, parseIp, matchCidr, type Cidr } from './cidr.js';
import { compileHostPattern, hostPatternProblem } from './host-pattern.js';
import {
  DAYS,
  localClock,
  parseHhMm,
  inWindow,
  formatLocal,
  type Day,
  type TimeWindow,
} from './time-window.js';
import { typeName, formatValue, suggest } from './values.js';
import {
  leaf,
  isRecord,
  stringList,
  compileGlobs,
  candidates,
  type Check,
  type CompileContext,
  type EvalContext,
  type Node,
} from './criterion.js';
import type { PolicyInput } from './types.js';

export const SHORTHANDS = [
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

export function compileShorthand(
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
    case 'path': {
      const res = compileGlobs(stringList(v, path, cc, key) ?? [], path, cc, false);
      if (!res?.length) return undefined;
      return leaf(path, key, 'glob', v, authorMessage, (ctx) => {
        const s = requestField(ctx, key);
        return typeof s === 'string' ? { passed: res.some((re) => re.test(s)), actual: s } : s;
      });
    }
    case 'host': {
      // Host patterns as route hosts take them: `*.example.com` is exactly one label more, never the apex,
      // case-insensitive (RFC 9110 §4.2.3); `**.example.com` is one label or more.
      const list = stringList(v, path, cc, key);
      if (!list) return undefined;
      let ok = true;
      for (const [i, p] of list.entries()) {
        const problem = hostPatternProblem(p);
        if (problem) {
          cc.problems.push({ path: Array.isArray(v) ? `${path}[${i}]` : path, message: problem });
          ok = false;
        }
      }
      if (!ok) return undefined;
      const matchers = list.map((p) => compileHostPattern(p));
      return leaf(path, key, 'pattern', v, authorMessage, (ctx) => {
        const s = requestField(ctx, key);
        return typeof s === 'string' ? { passed: matchers.some((m) => m(s)), actual: s } : s;
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
