// Checks that span several fields (which a per-field schema cannot see): duplicate client ids and
// lifetimes that exceed their ceilings. Run once the schema itself passes.
import { formatDuration } from '../lib/duration.js';
import type { GatehouseConfig } from './schema.js';
import { PolicyError } from '../policy/errors.js';
import { compilePolicy, type RuleSpec } from '../policy/index.js';
import { parseCidr } from '../policy/cidr.js';
import { hostPatternProblem, hostPortPatternProblem, originPatternProblem } from '../policy/host-pattern.js';
import { RESERVED_CLAIMS } from '../policy/reserved-claims.js';
import { TrustRules } from '../policy/trust-rules.js';

/** `trust_rules[2].conditions.all[0].glob` → ['trust_rules', 2, 'conditions', 'all', 0, 'glob']. */
function splitPath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g))
    out.push(m[2] !== undefined ? Number(m[2]) : (m[1] as string));
  return out;
}

/** External issuers and trust rules: unique names and issuers, and every rule compiled (policy problems with their paths). */
function checkFederation(config: GatehouseConfig, problems: CrossProblem[]): void {
  const names = new Map<string, number>();
  const issuers = new Map<string, number>();
  config.external_issuers.forEach((x, i) => {
    if (x.name === 'gatehouse') {
      problems.push({
        path: ['external_issuers', i, 'name'],
        message: '"gatehouse" is reserved for Gatehouse\'s own tokens',
      });
    }
    const n = names.get(x.name);
    if (n !== undefined)
      problems.push({
        path: ['external_issuers', i, 'name'],
        message: `name "${x.name}" is already used by external_issuers[${n}]`,
      });
    else names.set(x.name, i);
    const j = issuers.get(x.issuer);
    if (j !== undefined)
      problems.push({
        path: ['external_issuers', i, 'issuer'],
        message: `issuer ${x.issuer} is already configured as external_issuers[${j}]`,
      });
    else issuers.set(x.issuer, i);
    if (x.issuer === config.issuer.url) {
      problems.push({
        path: ['external_issuers', i, 'issuer'],
        message: 'this is Gatehouse itself; trust rules take its tokens with issuer: gatehouse',
      });
    }
    if (x.jwks && x.jwks_uri)
      problems.push({
        path: ['external_issuers', i, 'jwks'],
        message: 'set either jwks (pinned keys) or jwks_uri, not both',
      });
  });
  config.trust_rules.forEach((r, i) => {
    if (r.grant.max_ttl !== undefined && r.grant.max_ttl > config.tokens.max_ttl) {
      problems.push({
        path: ['trust_rules', i, 'grant', 'max_ttl'],
        message: `${formatDuration(r.grant.max_ttl)} is longer than tokens.max_ttl (${formatDuration(config.tokens.max_ttl)})`,
      });
    }
  });
  try {
    TrustRules.compile(
      config.trust_rules,
      config.external_issuers.map((x) => x.name),
    );
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    for (const p of e.problems) problems.push({ path: splitPath(p.path), message: p.message });
  }
}

/** Claims a client's static `claims` may not set: they are Gatehouse's to decide. */
export { RESERVED_CLAIMS };

export interface CrossProblem {
  path: (string | number)[];
  message: string;
  suggestion?: string;
}

export function checkConfig(config: GatehouseConfig): CrossProblem[] {
  const problems: CrossProblem[] = [];
  checkRoutes(config, problems);
  const { tokens } = config;
  if (tokens.default_ttl > tokens.max_ttl) {
    problems.push({
      path: ['tokens', 'default_ttl'],
      message: `${formatDuration(tokens.default_ttl)} is longer than tokens.max_ttl (${formatDuration(tokens.max_ttl)})`,
    });
  }
  const seen = new Map<string, number>();
  config.clients.forEach((client, i) => {
    const first = seen.get(client.id);
    if (first !== undefined) {
      problems.push({
        path: ['clients', i, 'id'],
        message: `client id "${client.id}" is already used by clients[${first}]`,
      });
    } else seen.set(client.id, i);
    for (const name of Object.keys(client.claims)) {
      if (RESERVED_CLAIMS.has(name)) {
        problems.push({
          path: ['clients', i, 'claims', name],
          message: `"${name}" is set by Gatehouse and cannot be a static claim`,
          suggestion: name === 'roles' ? 'use clients[].roles' : 'rename the claim',
        });
      }
    }
    if (client.max_ttl !== undefined && client.max_ttl > tokens.max_ttl) {
      problems.push({
        path: ['clients', i, 'max_ttl'],
        message: `${formatDuration(client.max_ttl)} is longer than tokens.max_ttl (${formatDuration(tokens.max_ttl)})`,
      });
    }
  });
  checkFederation(config, problems);
  config.sessions.return_hosts.forEach((h, i) => {
    const problem = hostPortPatternProblem(h);
    if (problem) problems.push({ path: ['sessions', 'return_hosts', i], message: problem });
  });
  if (config.server.workers !== 1 && config.store.sqlite?.path === ':memory:') {
    problems.push({
      path: ['server', 'workers'],
      message: 'worker processes cannot share an in-memory SQLite store (each would have its own)',
      suggestion: 'give store.sqlite.path a file, use store.postgres, or set server.workers: 1',
    });
  }
  return problems;
}

/** Routes: unique names, a `from` that parses, trusted proxy CIDRs, and every policy compiled with its path. */
function checkRoutes(config: GatehouseConfig, problems: CrossProblem[]): void {
  const names = new Map<string, number>();
  config.routes.forEach((route, i) => {
    const first = names.get(route.name);
    if (first !== undefined)
      problems.push({
        path: ['routes', i, 'name'],
        message: `route name "${route.name}" is already used by routes[${first}]`,
      });
    else names.set(route.name, i);
    if (!fromParses(route.from)) {
      problems.push({
        path: ['routes', i, 'from'],
        message:
          'must be an http(s) URL without query or fragment (https://app.example.com/prefix/) or a path (/demo/)',
      });
    } else if (!route.from.startsWith('/')) {
      const problem = hostPatternProblem(new URL(route.from).hostname);
      if (problem) problems.push({ path: ['routes', i, 'from'], message: problem });
    }
    (route.allowed_origins ?? []).forEach((o, j) => {
      const problem = originPatternProblem(o);
      if (problem) problems.push({ path: ['routes', i, 'allowed_origins', j], message: problem });
    });
    // A route's trust_rules name configured rules; a typo would silently refuse every external token.
    const ruleNames = config.trust_rules.map((r) => r.name);
    (route.trust_rules ?? []).forEach((name, j) => {
      if (!ruleNames.includes(name))
        problems.push({
          path: ['routes', i, 'trust_rules', j],
          message: `no trust rule is named "${name}"${ruleNames.length ? `; configured: ${ruleNames.map((n) => `"${n}"`).join(', ')}` : ' (trust_rules is empty)'}`,
        });
      // A bearer token comes with every request, and the proxy's hot path keeps no record of uses.
      else if (config.trust_rules.find((r) => r.name === name)?.single_use)
        problems.push({
          path: ['routes', i, 'trust_rules', j],
          message: `trust rule "${name}" is single_use, which only token exchange can keep: a route sees the same bearer token on every request; name a rule without single_use here`,
        });
    });
    try {
      compilePolicy(route.policy as RuleSpec[], { path: `routes[${i}].policy` });
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      for (const p of e.problems) {
        const path: (string | number)[] = [];
        for (const m of p.path.matchAll(/([^.[\]]+)|\[(\d+)\]/g))
          path.push(m[2] !== undefined ? Number(m[2]) : (m[1] as string));
        problems.push({ path, message: p.message });
      }
    }
  });
  config.proxy.trusted_proxies.forEach((cidr, i) => {
    const c = parseCidr(cidr);
    if (typeof c === 'string') problems.push({ path: ['proxy', 'trusted_proxies', i], message: c });
  });
}

/** The same test as the proxy's route table applies: an http(s) URL (host may be `*.x`, `**.x`) or a path. */
function fromParses(from: string): boolean {
  try {
    const u = from.startsWith('/') ? new URL(from, 'http://localhost') : new URL(from);
    return (
      (u.protocol === 'http:' || u.protocol === 'https:') &&
      !u.search &&
      !u.hash &&
      !u.username &&
      !u.password
    );
  } catch {
    return false;
  }
}
