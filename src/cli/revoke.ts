// `gatehouse revoke token|subject|client|session`: writes a revocation to the store, where every running
// server picks it up through the change feed within a second, and records it in the audit log.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { decodeJwt, type JWTPayload } from 'jose';
import { AuditLog } from '../audit/index.js';
import { configSchema, type GatehouseConfig } from '../config/schema.js';
import { formatDuration } from '../lib/duration.js';
import { GatehouseError } from '../lib/errors.js';
import { jtiRevocationExpiry, recordRevocation, type JtiExpiry } from '../revocation/index.js';
import type { RevocationKind, Store } from '../store/store.js';
import { withStore, withStoreOptions, type StoreOptions } from './context.js';

interface Target {
  command: string;
  arg: string;
  kind: RevocationKind;
  /** The audit type, `noun.outcome`. */
  event: string;
  /** The audit data key for the value. */
  field: string;
  noun: string;
  description: string;
  example: string;
}

const TARGETS: Target[] = [
  {
    command: 'token',
    arg: 'jti',
    kind: 'jti',
    event: 'token.revoked',
    field: 'jti',
    noun: 'token',
    description: 'revoke one token by its jti, or given the token itself (--token-file)',
    example:
      'gatehouse revoke token 0c9f3e51-6a2d-4c1e-9a55-2f1c7d0b8e21 --reason "leaked in a CI log" --data-dir .gatehouse\n  $ gatehouse revoke token --token-file leaked.jwt --config gatehouse.yaml\n  $ gatehouse revoke token --config gatehouse.yaml -- -a5NPylIe7zf3jV6lTR-3g   # a jti that starts with -',
  },
  {
    command: 'subject',
    arg: 'sub',
    kind: 'subject',
    event: 'subject.revoked',
    field: 'sub',
    noun: 'subject',
    description: 'revoke every token issued to a subject until now (someone left the org)',
    example: 'gatehouse revoke subject alice --reason "left the org" --config gatehouse.yaml',
  },
  {
    command: 'client',
    arg: 'id',
    kind: 'client',
    event: 'client.revoked',
    field: 'client_id',
    noun: 'client',
    description: 'revoke every token issued to a client until now',
    example: 'gatehouse revoke client ci-deployer --reason "runner compromised" --config gatehouse.yaml',
  },
  {
    command: 'session',
    arg: 'id',
    kind: 'session',
    event: 'session.revoked',
    field: 'sid',
    noun: 'session',
    description: 'end a session and every token issued under it until now',
    example:
      'gatehouse revoke session 3Vb1kz… --data-dir .gatehouse\n  $ gatehouse revoke session --data-dir .gatehouse -- -Qx7pd…   # an id that starts with -',
  },
];

interface RevokeOptions extends StoreOptions {
  reason?: string;
  issuer?: string;
  tokenFile?: string;
}

/** What a `revoke token` targets: the jti, its issuer, and when the entry may be forgotten. */
interface JtiTarget {
  jti: string;
  /** Undefined: the jti is revoked whichever issuer minted it. */
  issuer: string | undefined;
  expiry: JtiExpiry;
  /** The expiry's source in words, for the output. */
  because: string;
}

const COMPACT_JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const AUDIT_PAGE = 1000;

function decodeToken(text: string, from: string): JWTPayload {
  try {
    return decodeJwt(text);
  } catch {
    throw new GatehouseError('ERR_USAGE', `${from} is not a JWT (header.payload.signature)`, {
      hint: 'give the token itself, or its jti as the argument',
    });
  }
}

/** The `exp` of this store's `token.issued` record for `jti` (recorded at or after `since`), if any. */
async function issuedExp(store: Store, jti: string, since: number | undefined): Promise<number | undefined> {
  let afterSeq: number | undefined;
  for (;;) {
    const rows = await store.queryAudit({
      type: 'token.issued',
      ...(since !== undefined ? { since } : {}),
      ...(afterSeq !== undefined ? { afterSeq } : {}),
      limit: AUDIT_PAGE,
    });
    for (const r of rows) if (r.data.jti === jti && typeof r.data.exp === 'number') return r.data.exp;
    const last = rows.at(-1);
    if (rows.length < AUDIT_PAGE || !last) return undefined;
    afterSeq = last.seq;
  }
}

/**
 * The jti to revoke and when the entry may be forgotten (src/revocation/jti-expiry.ts). Without `--config`
 * (a dev data directory) the token settings are the defaults, as `gatehouse dev` runs with them.
 */
async function jtiTarget(
  value: string | undefined,
  opts: RevokeOptions,
  store: Store,
  config: GatehouseConfig | undefined,
): Promise<JtiTarget> {
  let token: JWTPayload | undefined;
  if (opts.tokenFile) {
    const text = readFileSync(opts.tokenFile === '-' ? 0 : opts.tokenFile, 'utf8').trim();
    token = decodeToken(text, opts.tokenFile === '-' ? 'standard input' : opts.tokenFile);
  } else if (value !== undefined && COMPACT_JWT.test(value)) {
    // A token pasted as the argument; a jti that merely looks like one stays a jti.
    try {
      token = decodeJwt(value);
    } catch {
      token = undefined;
    }
  }
  const jti = token ? token.jti : value;
  if (token && typeof jti !== 'string')
    throw new GatehouseError('ERR_USAGE', 'the token has no jti claim to revoke it by', {
      hint: 'revoke its subject or client instead',
    });
  if (typeof jti !== 'string' || jti === '')
    throw new GatehouseError('ERR_USAGE', "give the token's jti, or the token with --token-file FILE");
  // The argument is not echoed: it may be a token.
  if (token && value !== undefined && opts.tokenFile && value !== jti)
    throw new GatehouseError('ERR_USAGE', `the token's jti is ${jti}, not the jti given as the argument`);
  const tokenIss = typeof token?.iss === 'string' ? token.iss : undefined;
  if (opts.issuer && tokenIss && opts.issuer !== tokenIss)
    throw new GatehouseError('ERR_USAGE', `the token's issuer is ${tokenIss}, not ${opts.issuer}`);
  const issuer = opts.issuer ?? tokenIss ?? config?.issuer.url;

  const tokens = config?.tokens ?? configSchema.shape.tokens.parse(undefined);
  const now = Date.now();
  const external = config && issuer !== undefined && issuer !== config.issuer.url;
  const tokenExp = typeof token?.exp === 'number' ? token.exp : undefined;
  if (external) {
    // Not ours: only the token, or the issuer's max_token_age, says how long it can pass.
    const ext = config.external_issuers.find((i) => i.issuer === issuer);
    const skew = ext?.clock_skew ?? tokens.clock_skew;
    // Its iat may be up to the skew ahead of our clock.
    const age = ext?.max_token_age !== undefined ? ext.max_token_age + skew : undefined;
    const expiry = jtiRevocationExpiry({ now, clockSkewMs: skew, tokenExp, maxLifetimeMs: age });
    const because =
      expiry.basis === 'token'
        ? "the token's exp"
        : expiry.basis === 'lifetime'
          ? `now + max_token_age of issuer ${ext?.name ?? issuer}`
          : `nothing bounds how long tokens of ${issuer} live (set max_token_age on that external issuer)`;
    return { jti, issuer, expiry, because };
  }
  // Ours (or any issuer's, in a dev data dir): every token Gatehouse hands out has a durable token.issued
  // record first. With a config, one still alive was issued within tokens.max_ttl; a dev data dir may
  // have run with another max_ttl, so search all of its (small) log.
  const since = config ? now - tokens.max_ttl - 2 * tokens.clock_skew : undefined;
  const expiry = jtiRevocationExpiry({
    now,
    clockSkewMs: tokens.clock_skew,
    issuedExp: await issuedExp(store, jti, since),
    tokenExp,
    maxLifetimeMs: tokens.max_ttl,
  });
  const because = {
    'token.issued': "the token's exp, from its token.issued audit record",
    token: "the token's exp",
    lifetime: `no token.issued record for it: now + tokens.max_ttl (${formatDuration(tokens.max_ttl)}${config ? '' : ', the dev default'})`,
    none: '',
  }[expiry.basis];
  return { jti, issuer, expiry, because };
}

export function register(program: Command): void {
  const revoke = program
    .command('revoke')
    .description(
      'revoke a token, or every token of a subject, client or session, on every server within a second',
    );
  for (const t of TARGETS) {
    const cmd = withStoreOptions(revoke.command(t.command))
      .description(t.description)
      .argument(
        t.kind === 'jti' ? `[${t.arg}]` : `<${t.arg}>`,
        t.kind === 'jti' ? "the token's jti (or the token itself)" : `the ${t.noun}'s ${t.arg}`,
      )
      .option('--reason <text>', 'why (kept with the revocation and in the audit log)');
    if (t.kind === 'jti') {
      cmd
        .option(
          '--token-file <file>',
          "read the token itself from FILE ('-' for standard input): its jti, issuer and exp are used",
        )
        .option(
          '--issuer <url>',
          "the issuer that minted the token (default: the token's iss, else the config's issuer; any issuer without --config)",
        );
    }
    cmd
      .addHelpText(
        'after',
        `\nExample:\n  $ ${t.example}\n\nIf the ${t.noun}'s ${t.arg} starts with '-', put it last, after '--' (which ends the options).\n`,
      )
      // Commander reads `-Qx7…` as an option it does not know: say how to pass it as the argument.
      .configureOutput({
        outputError: (text, write) =>
          write(
            /^error: unknown option '-[^-]/.test(text)
              ? `${text}hint: if that is the ${t.noun}'s ${t.arg}, put it last, after '--': gatehouse revoke ${t.command} [options] -- ${t.arg.toUpperCase()}\n`
              : text,
          ),
      })
      .action(async (arg: string | undefined, opts: RevokeOptions) => {
        await withStore(opts, async ({ store, config }) => {
          const target = t.kind === 'jti' ? await jtiTarget(arg, opts, store, config) : undefined;
          const value = target?.jti ?? (arg as string);
          const record = await recordRevocation(
            store,
            {
              kind: t.kind,
              value,
              ...(target?.issuer ? { issuer: target.issuer } : {}),
              ...(opts.reason ? { reason: opts.reason } : {}),
              // A revoked jti only matters until its token can no longer pass: then every server forgets it.
              ...(target && target.expiry.expiresAt !== null ? { expiresAt: target.expiry.expiresAt } : {}),
            },
            Date.now(),
          );
          const forgetAfter = record.expiresAt === null ? null : new Date(record.expiresAt).toISOString();
          // No signer here: the running server's next checkpoint covers this record.
          const audit = new AuditLog(store);
          try {
            const { id } = await audit.append(t.event, {
              [t.field]: value,
              ...(record.issuer ? { issuer: record.issuer } : {}),
              ...(record.reason ? { reason: record.reason } : {}),
              revocation_id: record.id,
              ...(target ? { forget_after: forgetAfter, forget_basis: target.expiry.basis } : {}),
              by: 'cli',
            });
            const at = new Date(record.revokedAt).toISOString();
            const what =
              t.kind === 'jti'
                ? `token ${value} (${record.issuer ? `issuer ${record.issuer}` : 'any issuer'}) at ${at}`
                : `${t.noun} ${value} at ${at}: tokens issued until then are refused`;
            process.stdout.write(`revoked ${what}\n`);
            if (target)
              process.stdout.write(
                record.expiresAt === null
                  ? `kept with no end: ${target.because}\n`
                  : record.expiresAt <= record.revokedAt
                    ? `the token can no longer pass (it expired; ${target.because}): nothing is refused\n`
                    : `kept until ${forgetAfter} (${target.because}), when the token can no longer pass anyway\n`,
              );
            process.stdout.write(`${record.reason ? `reason: ${record.reason}; ` : ''}audit record ${id}\n`);
          } finally {
            await audit.close();
          }
        });
      });
  }
}
