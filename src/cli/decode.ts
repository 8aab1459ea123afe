// `gatehouse decode [TOKEN|-] [--verify]`: shows what a token says (header, claims, times in plain
// words) and, with --verify, checks it against a server's discovery, JWKS and introspection, one
// verdict per check. The token itself is never printed back, not even in an error.
import type { Command } from 'commander';
import { decodeJwt, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { GatehouseError, isGatehouseError } from '../lib/errors.js';
import { describeSpan, verifyJws, type VerificationKey } from '../tokens/verify.js';
import { TYP_ACCESS_TOKEN } from '../tokens/sign.js';
import { discover, postForm, serverUrl } from './server-client.js';

export interface DecodedToken {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

export type CheckOutcome = 'ok' | 'fail' | 'skip';

export interface CheckResult {
  check: 'signature' | 'type' | 'issuer' | 'audience' | 'expiry' | 'not-before' | 'revocation';
  outcome: CheckOutcome;
  message: string;
}

const TIME_CLAIMS = ['iat', 'nbf', 'exp', 'auth_time'] as const;

/** Header and payload of a compact JWS, unverified; a coded error (without the input) otherwise. */
export function decodeCompact(token: string): DecodedToken {
  try {
    return {
      header: decodeProtectedHeader(token) as Record<string, unknown>,
      payload: decodeJwt(token) as Record<string, unknown>,
    };
  } catch (cause) {
    throw new GatehouseError(
      'ERR_TOKEN_MALFORMED',
      'the input is not a compact JWT (three base64url parts: header, claims, signature)',
      {},
      { cause },
    );
  }
}

/** "in 7 min" or "3 min ago", relative to `nowSec`. */
export function relativeTime(sec: number, nowSec: number): string {
  const d = sec - nowSec;
  if (d === 0) return 'now';
  return d > 0 ? `in ${describeSpan(d)}` : `${describeSpan(-d)} ago`;
}

function iso(sec: number): string {
  const d = new Date(sec * 1000);
  return Number.isNaN(d.getTime()) ? String(sec) : d.toISOString().replace('.000Z', 'Z');
}

/** One line per time claim: `exp  2025-01-01T10:07:00Z (in 7 min)`. */
export function describeTimes(payload: Record<string, unknown>, nowSec: number): string[] {
  const lines: string[] = [];
  for (const name of TIME_CLAIMS) {
    const v = payload[name];
    if (typeof v !== 'number') continue;
    let words = relativeTime(v, nowSec);
    if (name === 'exp') words = v <= nowSec ? `expired ${describeSpan(nowSec - v)} ago` : `expires ${words}`;
    lines.push(`  ${name.padEnd(9)} ${iso(v)} (${words})`);
  }
  return lines;
}

export interface VerifyAgainstServer {
  server: string;
  audience?: string;
  nowSec: number;
  credentials?: { id: string; secret: string };
}

async function fetchJwks(uri: string): Promise<JWK[]> {
  let res: Response;
  try {
    res = await fetch(uri, { signal: AbortSignal.timeout(15_000) });
  } catch (cause) {
    throw new GatehouseError('ERR_SERVER_UNREACHABLE', `cannot fetch the JWKS at ${uri}`, {}, { cause });
  }
  const body = (await res.json().catch(() => undefined)) as { keys?: unknown } | undefined;
  if (!res.ok || !body || !Array.isArray(body.keys))
    throw new GatehouseError('ERR_SERVER_UNREACHABLE', `${uri} answered ${res.status} without a JWKS`);
  return body.keys as JWK[];
}

async function signatureCheck(
  token: string,
  header: Record<string, unknown>,
  jwks: JWK[],
): Promise<CheckResult> {
  const kid = typeof header.kid === 'string' ? header.kid : undefined;
  if (!kid)
    return {
      check: 'signature',
      outcome: 'fail',
      message: 'the token has no kid, so no key of the server is named',
    };
  const jwk = jwks.find((k) => k.kid === kid);
  if (!jwk)
    return {
      check: 'signature',
      outcome: 'fail',
      message: `kid ${kid} is not in the server's JWKS (signed by another issuer, or by a key removed after rotation)`,
    };
  const alg = typeof jwk.alg === 'string' ? jwk.alg : String(header.alg);
  try {
    const key = (await importJWK(jwk, alg)) as VerificationKey;
    await verifyJws(token, { keys: async () => key, algorithms: [alg] });
    return {
      check: 'signature',
      outcome: 'ok',
      message: `kid ${kid} found in the server's JWKS; ${alg} signature verifies`,
    };
  } catch (e) {
    const why = isGatehouseError(e) ? e.message : 'the key could not be used';
    return { check: 'signature', outcome: 'fail', message: `kid ${kid} found, but ${why}` };
  }
}

/** Every check of `decode --verify`; throws ERR_SERVER_UNREACHABLE when the server cannot be asked. */
export async function verifyAgainstServer(
  token: string,
  decoded: DecodedToken,
  opts: VerifyAgainstServer,
): Promise<CheckResult[]> {
  const { header, payload } = decoded;
  const d = await discover(opts.server);
  const results: CheckResult[] = [await signatureCheck(token, header, await fetchJwks(d.jwks_uri))];

  const typ = typeof header.typ === 'string' ? header.typ : undefined;
  const isAccess = typ !== undefined && typ.toLowerCase().replace(/^application\//, '') === TYP_ACCESS_TOKEN;
  results.push({
    check: 'type',
    outcome: isAccess ? 'ok' : 'fail',
    message: isAccess
      ? `typ ${typ}: an access token`
      : `typ ${typ ?? '(none)'} is not an access token (${TYP_ACCESS_TOKEN})`,
  });

  results.push(
    payload.iss === d.issuer
      ? { check: 'issuer', outcome: 'ok', message: `iss is the server's issuer ${d.issuer}` }
      : {
          check: 'issuer',
          outcome: 'fail',
          message: `iss ${JSON.stringify(payload.iss ?? null)} is not the server's issuer ${d.issuer}`,
        },
  );

  if (opts.audience !== undefined) {
    const aud = payload.aud;
    const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    results.push(
      auds.includes(opts.audience)
        ? { check: 'audience', outcome: 'ok', message: `aud includes ${opts.audience}` }
        : {
            check: 'audience',
            outcome: 'fail',
            message: `aud ${JSON.stringify(aud ?? null)} does not include ${opts.audience}`,
          },
    );
  }

  const exp = payload.exp;
  if (typeof exp !== 'number')
    results.push({ check: 'expiry', outcome: 'fail', message: 'the token has no exp' });
  else if (exp <= opts.nowSec)
    results.push({
      check: 'expiry',
      outcome: 'fail',
      message: `expired ${describeSpan(opts.nowSec - exp)} ago (at ${iso(exp)})`,
    });
  else
    results.push({
      check: 'expiry',
      outcome: 'ok',
      message: `expires in ${describeSpan(exp - opts.nowSec)} (at ${iso(exp)})`,
    });

  const nbf = payload.nbf;
  if (typeof nbf === 'number' && nbf > opts.nowSec)
    results.push({
      check: 'not-before',
      outcome: 'fail',
      message: `not valid yet: valid ${relativeTime(nbf, opts.nowSec)} (at ${iso(nbf)})`,
    });
  else
    results.push({
      check: 'not-before',
      outcome: 'ok',
      message: typeof nbf === 'number' ? `valid since ${iso(nbf)}` : 'no nbf: valid from issuance',
    });

  if (!d.introspection_endpoint) {
    results.push({
      check: 'revocation',
      outcome: 'skip',
      message: 'the server advertises no introspection endpoint',
    });
  } else if (!opts.credentials) {
    results.push({
      check: 'revocation',
      outcome: 'skip',
      message:
        'not asked: set GATEHOUSE_CLIENT_ID and GATEHOUSE_CLIENT_SECRET to ask the server by introspection',
    });
  } else {
    try {
      const body = await postForm(
        d.introspection_endpoint,
        { token, token_type_hint: 'access_token' },
        opts.credentials,
      );
      results.push(
        body.active === true
          ? { check: 'revocation', outcome: 'ok', message: 'active: the server has not revoked it' }
          : {
              check: 'revocation',
              outcome: 'fail',
              message: 'inactive: revoked or expired, says the server',
            },
      );
    } catch (e) {
      if (isGatehouseError(e, 'ERR_SERVER_UNREACHABLE')) throw e;
      results.push({
        check: 'revocation',
        outcome: 'fail',
        message: `could not ask the server: ${isGatehouseError(e) ? e.message : 'unexpected answer'}`,
      });
    }
  }
  return results;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface DecodeOptions {
  verify?: boolean;
  server?: string;
  audience?: string;
}

export function register(program: Command): void {
  program
    .command('decode')
    .description("show a token's header, claims and times; with --verify, check it against a server")
    .argument('[token]', 'the token, or - (or nothing) to read it from stdin')
    .option('--verify', 'check signature, issuer, audience, expiry and revocation against the server')
    .option(
      '-s, --server <url>',
      'Gatehouse server for --verify (default $GATEHOUSE_SERVER or http://127.0.0.1:8080)',
    )
    .option('-a, --audience <aud>', 'with --verify: the audience the token must carry')
    .addHelpText(
      'after',
      `
With --verify, revocation is asked by introspection with GATEHOUSE_CLIENT_ID / GATEHOUSE_CLIENT_SECRET;
without them that check is skipped (and said so).

Exit codes: 0 decoded (and every check passed); 1 not a JWT, or a check failed; 2 usage;
3 server unreachable.

Examples:
  gatehouse token --audience vault | gatehouse decode
  gatehouse decode "$TOKEN" --verify --audience vault --server https://gatehouse.example.com`,
    )
    .action(async (arg: string | undefined, opts: DecodeOptions) => {
      if (!opts.verify && (opts.server !== undefined || opts.audience !== undefined))
        throw new GatehouseError('ERR_USAGE', '--server and --audience only make sense with --verify');
      let input: string;
      if (arg === undefined || arg === '-') {
        if (arg === undefined && process.stdin.isTTY)
          throw new GatehouseError(
            'ERR_USAGE',
            'no token: pass it as an argument or pipe it in (use - for stdin)',
          );
        input = await readStdin();
      } else input = arg;
      const token = input.trim();
      if (!token) throw new GatehouseError('ERR_USAGE', 'no token: the input is empty');
      const decoded = decodeCompact(token);
      const nowSec = Math.floor(Date.now() / 1000);
      const out: string[] = [
        'header',
        JSON.stringify(decoded.header, null, 2),
        'payload',
        JSON.stringify(decoded.payload, null, 2),
      ];
      const times = describeTimes(decoded.payload, nowSec);
      if (times.length) out.push('times', ...times);
      if (!opts.verify) {
        process.stdout.write(out.join('\n') + '\n');
        return;
      }
      const server = serverUrl(opts.server);
      const id = process.env.GATEHOUSE_CLIENT_ID;
      const secret = process.env.GATEHOUSE_CLIENT_SECRET;
      const results = await verifyAgainstServer(token, decoded, {
        server,
        nowSec,
        ...(opts.audience !== undefined ? { audience: opts.audience } : {}),
        ...(id && secret ? { credentials: { id, secret } } : {}),
      });
      out.push(`checks against ${server}`);
      for (const r of results)
        out.push(
          `  ${(r.outcome === 'fail' ? 'FAIL' : r.outcome).padEnd(5)} ${r.check.padEnd(11)} ${r.message}`,
        );
      const failed = results.filter((r) => r.outcome === 'fail').map((r) => r.check);
      out.push(
        failed.length
          ? `verdict: NOT valid (${failed.length} check${failed.length > 1 ? 's' : ''} failed: ${failed.join(', ')})`
          : 'verdict: valid',
      );
      process.stdout.write(out.join('\n') + '\n');
      if (failed.length) process.exitCode = 1;
    });
}
