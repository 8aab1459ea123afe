// RFC 8693 token exchange at the token endpoint: a workload trades its platform's OIDC token (or a
// Gatehouse access token) for a short-lived Gatehouse token under the trust rules. Verification, rules
// and grant come from src/federation; this file reads the request, mints, and audits every refusal.
import type { TokenEndpointGrantContext } from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { IssuerContext } from '../context.js';
import { audienceAllowed } from '../clients.js';
import { oauthError } from '../oauth-error.js';
import { RequestProblem, requestedAudiences, requestedTtlMs } from './requested.js';
import { ExchangeRefusal } from '../../federation/refusal.js';
import {
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
  tokenHash,
  type Grant,
  type VerifiedToken,
} from '../../federation/federation.js';
import { formatDuration } from '../../lib/duration.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** The public client of the `gatehouse` CLI: no secret, the subject token is the credential. */
export const CLI_CLIENT_ID = 'gatehouse-cli';
export const tokenExchangeParams = [
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'audience',
  'resource',
  'requested_token_type',
  'scope',
  'expires_in',
];
export const tokenExchangeDupes = ['audience', 'resource'];

/** Token types that may be asked for: both mean a Gatehouse JWT access token. */
const REQUESTABLE = [TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT];

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

const iso = (sec: number): string => new Date(sec * 1000).toISOString();

/**
 * Under a `single_use` rule, records the subject token's use (issuer + jti) in the store, atomically
 * across replicas; a token already recorded is refused. Runs last before minting, so a refusal for
 * another reason never uses the token up.
 */
async function consumeSingleUse(ic: IssuerContext, grant: Grant): Promise<void> {
  const use = grant.singleUse;
  if (!use) return;
  if (await ic.store.consumeSubjectToken(use, ic.now())) return;
  throw new ExchangeRefusal(
    'invalid_request',
    'policy',
    `subject_token was already exchanged: trust rule "${grant.rule.name}" accepts each token once (single_use); get a fresh token from the issuer`,
    { rule: grant.rule.name, reason: 'subject_token_reused', field: 'jti' },
  );
}

/**
 * RFC 8693 leaves the issued token's lifetime to the server; Gatehouse's never outlives the subject
 * token (unless the rule says `outlive_subject`), so exchanging cannot stretch a platform's short-lived
 * credential. A shorter lifetime than asked is issued, not refused, and the audit record says why.
 */
function capBySubject(
  ic: IssuerContext,
  grant: Grant,
  ttlMs: number,
): { ttlMs: number; cappedBy?: 'subject_token_exp' } {
  if (grant.notAfter === undefined) return { ttlMs };
  const leftMs = grant.notAfter * 1000 - ic.now();
  // The verifier accepts a token up to clock_skew past its exp; a token issued from it would be born expired.
  if (leftMs < 1000) {
    throw new ExchangeRefusal(
      'invalid_request',
      'token',
      `subject_token expires at ${iso(grant.notAfter)} (server time ${new Date(ic.now()).toISOString()}): too late to issue a token that does not outlive it; get a fresh token from the issuer`,
      { field: 'exp', expected: 'at least 1 s left', actual: iso(grant.notAfter), rule: grant.rule.name },
    );
  }
  return leftMs < ttlMs ? { ttlMs: leftMs, cappedBy: 'subject_token_exp' } : { ttlMs };
}

export function tokenExchangeHandler(ic: IssuerContext) {
  return async function tokenExchange(ctx: TokenEndpointGrantContext): Promise<void> {
    const clientId = ctx.oidc.client.clientId;
    const params = ctx.oidc.params as Record<string, unknown>;
    const subjectToken = str(params.subject_token);
    const actorToken = str(params.actor_token);
    const fingerprint: Record<string, unknown> = {};
    if (subjectToken) fingerprint.subject = { sha256: tokenHash(subjectToken) };
    if (actorToken) fingerprint.actor = { sha256: tokenHash(actorToken) };
    try {
      const federation = ic.federation;
      if (!federation)
        throw new ExchangeRefusal(
          'invalid_request',
          'request',
          'token exchange is not configured on this server (no external_issuers or trust_rules)',
        );
      // RFC 8693 §2.1: subject_token and subject_token_type are required; actor_token_type comes with actor_token.
      if (!subjectToken)
        throw new ExchangeRefusal('invalid_request', 'request', 'subject_token is required', {
          field: 'subject_token',
        });
      const subjectType = str(params.subject_token_type);
      if (!subjectType)
        throw new ExchangeRefusal('invalid_request', 'request', 'subject_token_type is required', {
          field: 'subject_token_type',
        });
      const actorType = str(params.actor_token_type);
      if (actorToken && !actorType)
        throw new ExchangeRefusal(
          'invalid_request',
          'request',
          'actor_token_type is required with actor_token',
          { field: 'actor_token_type' },
        );
      if (!actorToken && actorType)
        throw new ExchangeRefusal(
          'invalid_request',
          'request',
          'actor_token_type was sent without actor_token',
          { field: 'actor_token' },
        );
      const requested = str(params.requested_token_type);
      if (requested && !REQUESTABLE.includes(requested)) {
        throw new ExchangeRefusal(
          'invalid_request',
          'request',
          `requested_token_type "${requested.slice(0, 100)}" is not supported: Gatehouse issues JWT access tokens only (${REQUESTABLE.join(' or ')})`,
          { field: 'requested_token_type', expected: REQUESTABLE, actual: requested.slice(0, 100) },
        );
      }
      const client = clientId === CLI_CLIENT_ID ? undefined : await ic.clients.get(clientId);
      if (clientId !== CLI_CLIENT_ID && !client)
        throw oauthError('invalid_client', `unknown client "${clientId}"`);

      let audiences: string[];
      try {
        audiences = requestedAudiences(params);
      } catch (e) {
        if (e instanceof RequestProblem)
          throw new ExchangeRefusal(e.oauthError, 'request', e.message, { field: e.field });
        throw e;
      }

      const subject = await federation.verify(subjectToken, subjectType, 'subject_token');
      fingerprint.subject = subject.fingerprint;
      let actor: VerifiedToken | undefined;
      if (actorToken && actorType) {
        actor = await federation.verify(actorToken, actorType, 'actor_token');
        fingerprint.actor = actor.fingerprint;
      }
      const grant = federation.decide(subject, actor, audiences);
      // A service account exchanging tokens is bound by its own audiences too.
      if (client) {
        const bad = audiences.find((a) => !audienceAllowed(client, a));
        if (bad !== undefined) {
          throw new ExchangeRefusal(
            'invalid_target',
            'target',
            `audience "${bad}" is not allowed for client "${clientId}"; allowed: ${client.allowed_audiences.join(', ')}`,
            { field: 'audience', expected: client.allowed_audiences, actual: bad },
          );
        }
      }
      const ceilings = [ic.config.tokens.max_ttl, grant.maxTtlMs, client?.max_ttl].filter(
        (x): x is number => x !== undefined,
      );
      const ceiling = Math.min(...ceilings);
      let askedTtlMs: number;
      try {
        askedTtlMs = requestedTtlMs(
          params,
          ic.config.tokens.default_ttl,
          ceiling,
          `trust rule "${grant.rule.name}"`,
        );
      } catch (e) {
        if (e instanceof RequestProblem)
          throw new ExchangeRefusal(e.oauthError, 'request', e.message, {
            field: e.field,
            expected: e.expected,
            actual: e.actual,
          });
        throw e;
      }
      await consumeSingleUse(ic, grant);
      const { ttlMs, cappedBy } = capBySubject(ic, grant, askedTtlMs);
      const minted = await ic.minter.mint({
        sub: grant.sub,
        audiences: grant.audiences,
        ttlMs,
        clientId,
        grant: TOKEN_EXCHANGE,
        roles: grant.roles,
        scope: str(params.scope),
        claims: grant.claims,
        ...(grant.act ? { act: grant.act } : {}),
        ...(grant.notAfter !== undefined ? { notAfter: grant.notAfter } : {}),
        auditData: {
          rule: grant.rule.name,
          external_issuer: subject.issuerName,
          ...fingerprint,
          ...(cappedBy
            ? { capped_by: cappedBy, subject_exp: grant.notAfter, asked_ttl: formatDuration(askedTtlMs) }
            : {}),
          ...(grant.singleUse ? { single_use: true } : {}),
          ...(grant.evaluation.decision.shadow.length ? { shadow: grant.evaluation.decision.shadow } : {}),
        },
      });
      ctx.body = {
        access_token: minted.token,
        issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
        token_type: 'Bearer',
        expires_in: minted.expiresIn,
        ...(str(params.scope) ? { scope: str(params.scope) } : {}),
      };
    } catch (e) {
      if (!(e instanceof ExchangeRefusal)) throw e;
      const { id } = await ic.audit.append('token.refused', {
        client_id: clientId,
        grant: TOKEN_EXCHANGE,
        code: e.oauthError,
        stage: e.stage,
        message: e.message,
        ...fingerprint,
        details: e.details,
        reasons: e.reasons,
      });
      const err =
        e.oauthError === 'temporarily_unavailable'
          ? Object.assign(
              new errors.CustomOIDCProviderError('temporarily_unavailable', `${e.message} (audit id ${id})`),
              { status: 503, statusCode: 503 },
            )
          : oauthError(e.oauthError, `${e.message} (audit id ${id})`);
      throw err;
    }
  };
}
