// Every refused request at the token endpoint family (token, introspection, revocation, device
// authorization) leaves exactly one `token.refused` record, whoever refused it: a grant handler or the
// secret check (which write their own, richer record and mark the request), or oidc-provider itself
// (malformed requests, unsupported grant types, unknown clients), recorded here after the fact. Refusals of
// callers that did not authenticate go through the flood guard, so a flood cannot grow the log unbounded.
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';
import { GatehouseError } from '../lib/errors.js';
import { redactUntrusted } from '../audit/secret-guard.js';
import type { AuditSink } from '../audit/sink.js';
import type { FloodGuard } from '../audit/flood-guard.js';
import type { IssuerContext } from './context.js';

/** The provider's routes whose refusals are token refusals (oidc-provider route names). */
export const REFUSAL_ROUTES: ReadonlySet<string> = new Set([
  'token',
  'introspection',
  'revocation',
  'device_authorization',
]);

/** The provider's error events for those routes (and server errors anywhere). */
export const REFUSAL_ERROR_EVENTS = [
  'grant.error',
  'introspection.error',
  'revocation.error',
  'device_authorization.error',
  'server_error',
] as const;

/** Record types that are a refusal of the request being handled. */
const REFUSAL_TYPES = new Set(['token.refused', 'token.revoke_refused']);

/** What the issuer keeps on a request's `ctx.state` about its refusal. */
export interface RefusalState {
  /** The error the provider answered with (from its error events). */
  gatehouseError?: unknown;
  /** The audit id of the record that stands for this request's refusal, once one is written. */
  gatehouseRefusalId?: string;
  /** Set by the secret check when the client's secret matched. */
  gatehouseSecretId?: string;
}

/** Errors that mean the store could not answer or write, as opposed to a bug. */
export function isStoreFailure(e: unknown): e is GatehouseError {
  return (
    e instanceof GatehouseError && (e.code === 'ERR_STORE_UNAVAILABLE' || e.code === 'ERR_AUDIT_WRITE_FAILED')
  );
}

/** The client id of an HTTP Basic header (form-url-decoded, RFC 6749 §2.3.1), or undefined. */
export function basicClientId(header: string | undefined): string | undefined {
  if (!header?.toLowerCase().startsWith('basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const id = decoded.split(':')[0];
  try {
    return id ? decodeURIComponent(id.replace(/\+/g, ' ')).slice(0, 128) : undefined;
  } catch {
    return undefined;
  }
}

function isPending(body: unknown): boolean {
  return (
    body !== null &&
    typeof body === 'object' &&
    (body as { error?: unknown }).error === 'authorization_pending'
  );
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The request's parameters as the provider assembled them; none when it failed before that. */
function paramsOf(ctx: KoaContextWithOIDC): Record<string, unknown> {
  try {
    return (ctx.oidc?.params ?? {}) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/**
 * Whether the caller proved who it is: a confidential client whose secret matched. A public client
 * (`gatehouse-cli`, no secret) proves nothing, so anyone may call as it.
 */
function authenticated(ctx: KoaContextWithOIDC, code: unknown): boolean {
  const state = ctx.state as RefusalState;
  const client = ctx.oidc?.client;
  return (
    state.gatehouseSecretId !== undefined &&
    client !== undefined &&
    client.clientAuthMethod !== 'none' &&
    code !== 'invalid_client'
  );
}

/**
 * Appends one refusal record for a request: straight to the log when the caller authenticated, through
 * the flood guard (by client address) when it did not. Marks the request, so no second record follows.
 */
async function appendRefusal(
  ctx: KoaContextWithOIDC,
  sink: Pick<AuditSink, 'append'>,
  guard: FloodGuard | undefined,
  type: string,
  data: Record<string, unknown>,
  opts?: { id?: string },
): Promise<{ id: string; seq: number }> {
  const state = ctx.state as RefusalState;
  const sourceIp = ctx.ip || 'unknown';
  const route = ctx.oidc?.route;
  const record = {
    ...(route !== undefined && data.endpoint === undefined ? { endpoint: route } : {}),
    ...data,
    ...(data.source_ip === undefined ? { source_ip: sourceIp } : {}),
  };
  let r: { id: string; seq: number };
  if (guard && !authenticated(ctx, data.code)) {
    const g = await guard.append(type, record, sourceIp, opts);
    // Coalesced: the id is the summary's that will stand for this refusal (no seq yet).
    r = { id: g.id, seq: -1 };
  } else {
    r = await sink.append(type, record, opts);
  }
  state.gatehouseRefusalId = r.id;
  return r;
}

/**
 * The issuer's audit sink: refusal records written while the provider handles a request (the grant
 * handlers' and the secret check's, found through the provider's per-request context) get the client
 * address, go through the flood guard when the caller did not authenticate, and mark the request as
 * audited. Everything else passes through unchanged.
 */
export function refusalAuditSink(sink: AuditSink, guard?: FloodGuard): AuditSink {
  return {
    append(type, data, opts) {
      const ctx = REFUSAL_TYPES.has(type) ? (Provider.ctx as KoaContextWithOIDC | undefined) : undefined;
      if (!ctx) return sink.append(type, data, opts);
      return appendRefusal(ctx, sink, guard, type, data, opts);
    },
  };
}

/** The grant types Gatehouse serves: only these become the `grant` field (a metrics label). */
export type KnownGrants = ReadonlySet<string>;

/**
 * Provider middleware, outermost: answers store failures as 503, and records the refusals nobody else
 * recorded (the library's own), adding the audit id to the answer. An audit write that fails turns the
 * answer into 503 as well: a refusal is never left unrecorded silently.
 */
export function auditRefusals(ic: IssuerContext, grants: KnownGrants) {
  const unavailable = (ctx: KoaContextWithOIDC, failure: GatehouseError, what: string) => {
    ic.onStoreError?.(failure);
    ctx.status = 503;
    ctx.set('retry-after', '5');
    ctx.type = 'json';
    ctx.body = {
      error: 'temporarily_unavailable',
      error_description: `the store is unreachable; ${what}; try again shortly`,
    };
  };

  return async function auditRefusal(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
    try {
      await next();
    } catch (e) {
      // A step after the library's own (JWT introspection and revocation) could not reach the store.
      if (!isStoreFailure(e)) throw e;
      return unavailable(ctx, e, 'nothing was changed');
    }
    const state = ctx.state as RefusalState;
    const failure = state.gatehouseError;
    // A store that cannot be written (the durable token.issued record, a refusal's record, a secret
    // lookup) is not a bug: answer 503 temporarily_unavailable so clients retry, and tell the health
    // tracker at once. No record: the log is what could not be written.
    if (ctx.status >= 500 && isStoreFailure(failure)) return unavailable(ctx, failure, 'nothing was issued');

    const route = ctx.oidc?.route;
    if (!route || !REFUSAL_ROUTES.has(route) || ctx.status < 400) return;
    if (state.gatehouseRefusalId !== undefined) return;
    // RFC 8628 §3.5: a device still waiting for its person is told to poll again, not refused.
    if (isPending(ctx.body)) return;

    const body = ctx.body as Record<string, unknown> | string | undefined;
    const err = failure as
      { expose?: boolean; message?: string; error_description?: string; error_detail?: string } | undefined;
    const json = body !== null && typeof body === 'object' && !Buffer.isBuffer(body) ? body : undefined;
    const code = str(json?.error) ?? (err?.expose ? str(err.message) : undefined) ?? 'server_error';
    const description =
      str(json?.error_description) ?? (err?.expose ? str(err.error_description) : undefined);
    const detail = err?.expose ? str(err.error_detail) : undefined;
    const params = paramsOf(ctx);
    const clientId =
      ctx.oidc?.client?.clientId ?? str(params.client_id) ?? basicClientId(ctx.headers.authorization);
    const grantType = route === 'token' ? str(params.grant_type) : undefined;
    const data: Record<string, unknown> = {
      endpoint: route,
      client_id: clientId !== undefined ? redactUntrusted(clientId, 128) : null,
      ...(grantType !== undefined
        ? grants.has(grantType)
          ? { grant: grantType }
          : { grant_type: redactUntrusted(grantType, 128) }
        : {}),
      code: redactUntrusted(code, 64),
      ...(description !== undefined ? { message: redactUntrusted(description) } : {}),
      ...(detail !== undefined ? { reason: redactUntrusted(detail, 256) } : {}),
    };
    let id: string;
    try {
      ({ id } = await appendRefusal(ctx, ic.audit, ic.refusalGuard, 'token.refused', data));
    } catch (e) {
      if (!isStoreFailure(e)) throw e;
      return unavailable(ctx, e, 'the refusal could not be recorded');
    }

    if (json) {
      // The library answers an unknown client with the same words as a wrong secret; say which it was.
      if (code === 'invalid_client' && json.error_description === 'client authentication failed') {
        json.error_description =
          detail === 'client not found'
            ? `unknown client "${String(clientId)}": no client with this id is configured`
            : `client authentication failed: ${detail ?? 'no detail'}`;
      }
      json.error_description = `${str(json.error_description) ?? code} (audit id ${id})`;
    } else if (typeof body === 'string') {
      ctx.body = `${body}<p>Audit id <code>${id}</code></p>`;
    }
  };
}
