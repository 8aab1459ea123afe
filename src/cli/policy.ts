// `gatehouse policy test`: evaluates the trust rules of a config file against a token's claims, offline,
// and prints the whole explanation without issuing anything. The signature is NOT verified (there is no
// network and no key): it says so, and checks what it can — issuer and audience — against the config.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { decodeJwt } from 'jose';
import { ConfigError, formatProblem } from '../config/problems.js';
import { loadConfig } from '../config/load.js';
import type { GatehouseConfig } from '../config/schema.js';
import { EXIT, GatehouseError } from '../lib/errors.js';
import { explainDecision } from '../policy/index.js';
import { OWN_ISSUER_NAME, TrustRules } from '../policy/trust-rules.js';
import { testRoute } from './policy-route.js';

interface PolicyTestOptions {
  config: string;
  token?: string;
  actorToken?: string;
  rule?: string;
  claims?: string;
  /** A proxy route's policy instead of the trust rules (with --method and --path). */
  route?: string;
  method?: string;
  path?: string;
  sourceIp?: string;
}

async function readClaims(file: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (e) {
    throw new GatehouseError(
      'ERR_USAGE',
      `cannot read ${what} file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
  try {
    return decodeJwt(text) as Record<string, unknown>;
  } catch {
    throw new GatehouseError(
      'ERR_USAGE',
      `${what} file ${file} does not hold a JWT (header.payload.signature)`,
    );
  }
}

function parseClaimsOption(json: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(json);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new GatehouseError('ERR_USAGE', '--claims must be a JSON object, like \'{"repository":"octo/app"}\'');
}

/** The configured issuer name for `iss`, or undefined. */
function issuerName(config: GatehouseConfig, iss: unknown): string | undefined {
  if (iss === config.issuer.url) return OWN_ISSUER_NAME;
  return config.external_issuers.find((x) => x.issuer === iss)?.name;
}

/** Trust-rule mode: prints the explanation; returns the exit code (0 allowed, 1 denied). */
function testTrustRules(
  config: GatehouseConfig,
  claims: Record<string, unknown>,
  actor: Record<string, unknown> | undefined,
  only: string | undefined,
  out: string[],
): number {
  const rules = TrustRules.compile(
    config.trust_rules,
    config.external_issuers.map((x) => x.name),
  );
  if (only !== undefined && !rules.get(only)) {
    throw new GatehouseError(
      'ERR_USAGE',
      `no trust rule is named "${only}"; rules: ${rules.rules.map((r) => r.name).join(', ') || '(none)'}`,
    );
  }
  const name = issuerName(config, claims.iss);
  if (name === undefined) {
    const known = [...config.external_issuers.map((x) => x.issuer), config.issuer.url];
    out.push(
      `denied: token issuer ${JSON.stringify(claims.iss ?? null)} is not configured; configured: ${known.map((k) => JSON.stringify(k)).join(', ')} (compared exactly, trailing slash included)`,
    );
    return EXIT.no;
  }
  if (only !== undefined) {
    const r = rules.get(only);
    if (r && r.issuer !== name) {
      out.push(
        `denied: rule "${only}" is for issuer "${r.issuer}", but the token is from "${name}" (${String(claims.iss)})`,
      );
      return EXIT.no;
    }
  }
  let ok = true;
  const ext = config.external_issuers.find((x) => x.name === name);
  const aud = claims.aud;
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  const expectedAud = ext ? ext.audiences : [config.issuer.url];
  if (!auds.some((a) => expectedAud.includes(a as string))) {
    out.push(
      `denied: token audience ${JSON.stringify(aud ?? null)} does not include ${expectedAud.map((a) => JSON.stringify(a)).join(' or ')} (issuer "${name}")`,
    );
    ok = false;
  }
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) {
    out.push(
      `note: the token expired at ${new Date(claims.exp * 1000).toISOString()}; the exchange would refuse it (rules are evaluated anyway)`,
    );
  }
  const ev = rules.evaluate({
    issuer: name,
    claims,
    ...(actor ? { actorClaims: actor } : {}),
    now: new Date(),
    ...(only ? { only } : {}),
  });
  out.push(explainDecision(ev.decision));
  const rule = ev.matched[0];
  if (ev.allowed && rule) {
    const sub = rule.subject.render(claims);
    out.push(
      `grant (rule "${rule.name}"): sub ${sub.ok ? JSON.stringify(sub.value) : `(refused: claim ${sub.missing} ${sub.why})`}, roles ${JSON.stringify(rule.roles)}, audiences ${JSON.stringify(rule.audiences)}`,
    );
    if (!sub.ok) ok = false;
  }
  return ok && ev.allowed ? EXIT.ok : EXIT.no;
}

export function register(program: Command): void {
  const policy =
    program.commands.find((c) => c.name() === 'policy') ??
    program.command('policy').description('test policies and trust rules offline');
  policy
    .command('test')
    .description(
      "evaluate the trust rules, or a proxy route's policy (--route), against a token or claims (offline)",
    )
    .requiredOption('-c, --config <file>', 'the configuration file holding the trust rules')
    .option('--token <file>', 'a file holding the token (JWT) to test')
    .option('--actor-token <file>', 'a file holding an actor token (delegation)')
    .option('--rule <name>', 'evaluate only this rule')
    .option('--claims <json>', 'claims as a JSON object, instead of a token or laid over its claims')
    .option('--route <name>', "evaluate this proxy route's policy instead of the trust rules")
    .option('--method <method>', 'with --route: the request method', 'GET')
    .option('--path <path>', 'with --route: the request path (normalized as the proxy does)')
    .option('--source-ip <ip>', 'with --route: the client address policies see')
    .addHelpText(
      'after',
      `
Nothing is issued and nothing is fetched: the token is decoded WITHOUT verifying its signature, then its
issuer and audience are checked against the config and every trust rule of that issuer is explained.

Exit codes: 0 allowed, 1 denied, 2 usage or configuration error.

Examples:
  gatehouse policy test --config gatehouse.yaml --token token.jwt
  gatehouse policy test --config gatehouse.yaml --token token.jwt --rule deploy-prod
  gatehouse policy test --config gatehouse.yaml --route app --method GET --path /app/admin --claims '{"sub":"alice","roles":["engineer"]}'
  gatehouse policy test --config gatehouse.yaml --claims '{"iss":"https://token.actions.githubusercontent.com","aud":"https://gatehouse.example.com","repository":"octo/app"}'`,
    )
    .action(async (opts: PolicyTestOptions) => {
      if (!opts.token && !opts.claims)
        throw new GatehouseError('ERR_USAGE', 'give --token FILE or --claims JSON');
      let config: GatehouseConfig;
      try {
        config = (await loadConfig(opts.config)).config;
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        for (const p of e.problems) process.stderr.write(`${formatProblem(p)}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      const claims: Record<string, unknown> = {
        ...(opts.token ? await readClaims(opts.token, 'token') : {}),
        ...(opts.claims ? parseClaimsOption(opts.claims) : {}),
      };
      const actor = opts.actorToken ? await readClaims(opts.actorToken, 'actor token') : undefined;
      const out: string[] = [];
      if (opts.route !== undefined) {
        if (opts.path === undefined) throw new GatehouseError('ERR_USAGE', '--route needs --path');
        if (opts.token) out.push('note: the token signature was NOT verified (offline test)');
        const code = testRoute(
          config,
          {
            route: opts.route,
            method: opts.method ?? 'GET',
            path: opts.path,
            claims,
            fromToken: opts.token !== undefined,
            ...(opts.sourceIp !== undefined ? { sourceIp: opts.sourceIp } : {}),
          },
          out,
        );
        process.stdout.write(out.join('\n') + '\n');
        process.exitCode = code;
        return;
      }
      if (opts.token)
        out.push('note: the token signature was NOT verified (offline test); the exchange verifies it');
      const code = testTrustRules(config, claims, actor, opts.rule, out);
      process.stdout.write(out.join('\n') + '\n');
      process.exitCode = code;
    });
}
