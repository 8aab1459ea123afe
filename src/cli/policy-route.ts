// `gatehouse policy test --route NAME`: evaluates one proxy route's policy for a method, path and caller
// without a request. The path is normalized exactly as the proxy does (src/proxy/normalize-path.ts), the
// caller's claims become the identity the proxy would see (roles, groups), and the decision is explained
// with every reason, shadow outcomes included.
import type { GatehouseConfig } from '../config/schema.js';
import { EXIT, GatehouseError } from '../lib/errors.js';
import { explainDecision } from '../policy/index.js';
import { parseIp } from '../policy/cidr.js';
import { normalizeTarget, isRefusal } from '../proxy/normalize-path.js';
import { RouteTable } from '../proxy/routes.js';
import { identityOfClaims } from '../proxy/bearer.js';
import type { JsonObject } from '../tokens/strict-json.js';

export interface RouteTestInput {
  route: string;
  method: string;
  path: string;
  claims: Record<string, unknown>;
  /** Whether the claims came from a token (then its audience is checked against the route's). */
  fromToken: boolean;
  sourceIp?: string;
  now?: Date;
}

/** Prints to `out`; returns 0 allowed, 1 denied. Unknown route or bad input: ERR_USAGE (exit 2). */
export function testRoute(config: GatehouseConfig, input: RouteTestInput, out: string[]): number {
  const table = new RouteTable(config.routes, config.issuer.url);
  const route = table.routes.find((r) => r.name === input.route);
  if (!route) {
    const names = config.routes.map((r) => r.name);
    throw new GatehouseError(
      'ERR_USAGE',
      `no route is named "${input.route}"; routes: ${names.join(', ') || '(none)'}`,
      { field: 'route' },
    );
  }
  if (input.sourceIp !== undefined && !parseIp(input.sourceIp))
    throw new GatehouseError('ERR_USAGE', `--source-ip ${input.sourceIp} is not an IP address`, {
      field: 'source-ip',
    });
  const method = input.method.toUpperCase();
  const target = normalizeTarget(input.path);
  if (isRefusal(target)) {
    out.push(`refused: the proxy answers 400 to this path (${target.refused})`);
    return EXIT.no;
  }
  const path = target.path;
  if (path !== input.path.split('?')[0]) out.push(`path normalized to ${path}`);
  if (!(path.startsWith(route.prefix) || path === route.prefix.slice(0, -1))) {
    throw new GatehouseError(
      'ERR_USAGE',
      `${path} is not under route "${route.name}" (prefix ${route.prefix}); the proxy would not send it there`,
      { field: 'path' },
    );
  }
  out.push(
    `route "${route.name}" (${route.scheme}//${route.host}${route.port ? `:${route.port}` : ''}${route.prefix}, mode ${route.config.mode}): ${method} ${path}`,
  );
  if (route.isPublic(path)) {
    out.push('allowed: the path is public on this route (no authentication, no policy)');
    return EXIT.ok;
  }
  let audienceOk = true;
  if (input.fromToken) {
    const aud = input.claims.aud;
    const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!auds.includes(route.audience)) {
      out.push(
        `denied: the token's audience ${JSON.stringify(aud ?? null)} does not contain the route's audience ${JSON.stringify(route.audience)} exactly (the proxy answers 401)`,
      );
      audienceOk = false;
    }
  }
  if (typeof input.claims.sub !== 'string')
    out.push('note: the claims have no string "sub"; a real token without one is refused (401)');
  const identity = identityOfClaims(input.claims as JsonObject);
  const decision = route.policy.evaluate({
    claims: {
      ...identity.claims,
      sub: identity.sub,
      roles: identity.roles,
      groups: identity.groups,
      ...(identity.email !== undefined ? { email: identity.email } : {}),
    },
    request: {
      method,
      path,
      host: route.host,
      ...(input.sourceIp !== undefined ? { sourceIp: input.sourceIp } : {}),
    },
    now: input.now ?? new Date(),
  });
  out.push(explainDecision(decision));
  if (route.config.mode === 'shadow' && !decision.allowed)
    out.push(
      'shadow route: the proxy would let this request through and audit access.shadow_denied; enforced, it would be refused',
    );
  return audienceOk && decision.allowed ? EXIT.ok : EXIT.no;
}
