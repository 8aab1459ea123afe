// Mints Gatehouse access tokens (RFC 9068 JWTs) for every grant: audience-bound, short-lived, signed by
// the active key. A token is handed out only after its `token.issued` record is durable.
import type { JWTPayload } from 'jose';
import type { KeyRing } from '../keys/keyring.js';
import type { AuditSink } from '../audit/sink.js';
import { newJti, signJwt, TYP_ACCESS_TOKEN } from '../tokens/sign.js';

export interface MintRequest {
  sub: string;
  audiences: string[];
  ttlMs: number;
  clientId: string;
  grant: string;
  roles?: string[];
  scope?: string;
  claims?: Record<string, unknown>;
  /** RFC 8693 §4.1 delegation chain. */
  act?: Record<string, unknown>;
  /** Latest `exp` allowed (epoch seconds), e.g. the subject token's in a token exchange. */
  notAfter?: number;
  /** Extra, non-secret fields for the audit record (rule, subject token's jti…). */
  auditData?: Record<string, unknown>;
}

export interface MintedToken {
  token: string;
  jti: string;
  expiresIn: number;
  exp: number;
  auditId: string;
}

export class TokenMinter {
  readonly #issuer: string;
  readonly #keys: KeyRing;
  readonly #audit: AuditSink;
  readonly #now: () => number;

  constructor(issuer: string, keys: KeyRing, audit: AuditSink, now: () => number = Date.now) {
    this.#issuer = issuer;
    this.#keys = keys;
    this.#audit = audit;
    this.#now = now;
  }

  async mint(req: MintRequest): Promise<MintedToken> {
    const iat = Math.floor(this.#now() / 1000);
    let expiresIn = Math.max(1, Math.floor(req.ttlMs / 1000));
    if (req.notAfter !== undefined) {
      // The caller has checked at least a second is left; a token born expired is a bug, not a refusal.
      if (req.notAfter <= iat) throw new RangeError(`mint: notAfter ${req.notAfter} is not after iat ${iat}`);
      expiresIn = Math.min(expiresIn, req.notAfter - iat);
    }
    const jti = newJti();
    const payload: JWTPayload = {
      ...req.claims,
      iss: this.#issuer,
      sub: req.sub,
      aud: req.audiences.length === 1 ? req.audiences[0] : req.audiences,
      iat,
      exp: iat + expiresIn,
      jti,
      client_id: req.clientId,
    };
    if (req.roles?.length) payload.roles = req.roles;
    if (req.scope) payload.scope = req.scope;
    if (req.act) payload.act = req.act;
    const { token, kid } = await signJwt(this.#keys, payload, TYP_ACCESS_TOKEN);
    const { id } = await this.#audit.append('token.issued', {
      jti,
      kid,
      sub: req.sub,
      aud: req.audiences,
      client_id: req.clientId,
      grant: req.grant,
      exp: payload.exp,
      roles: req.roles ?? [],
      ...req.auditData,
    });
    return { token, jti, expiresIn, exp: payload.exp as number, auditId: id };
  }
}
