// One error hierarchy for all of Gatehouse: a closed union of codes, each with an HTTP status, whether
// its message may be shown to the client, and the CLI exit code it maps to (DESIGN.md: 1 no, 2 usage
// or configuration, 3 could not run). docs/errors.md lists every code; a test keeps the two in step.

/** Exit codes of every command (DESIGN.md). */
export const EXIT = { ok: 0, no: 1, usage: 2, unavailable: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

interface CodeInfo {
  status: number;
  expose: boolean;
  exit: ExitCode;
}

const c = (status: number, expose: boolean, exit: ExitCode): CodeInfo => ({ status, expose, exit });

/** Every error code Gatehouse raises. Adding one means adding it to docs/errors.md too. */
export const ERROR_CODES = {
  // usage and configuration
  ERR_USAGE: c(400, true, EXIT.usage),
  ERR_CONFIG_INVALID: c(500, false, EXIT.usage),
  ERR_CONFIG_NOT_FOUND: c(500, false, EXIT.usage),
  ERR_CONFIG_REF_UNRESOLVED: c(500, false, EXIT.usage),
  // storage
  ERR_STORE_UNAVAILABLE: c(503, false, EXIT.unavailable),
  ERR_STORE_CONFLICT: c(409, false, EXIT.unavailable),
  ERR_STORE_MIGRATION: c(500, false, EXIT.unavailable),
  ERR_NOT_FOUND: c(404, true, EXIT.no),
  // keys
  ERR_KEY_UNSEAL_FAILED: c(500, false, EXIT.unavailable),
  ERR_KEY_NOT_FOUND: c(500, false, EXIT.unavailable),
  // token verification (the strict verifier)
  ERR_TOKEN_MALFORMED: c(401, true, EXIT.no),
  ERR_TOKEN_TOO_LARGE: c(401, true, EXIT.no),
  ERR_TOKEN_ALG_NOT_ALLOWED: c(401, true, EXIT.no),
  ERR_TOKEN_HEADER_FORBIDDEN: c(401, true, EXIT.no),
  ERR_TOKEN_KEY_NOT_FOUND: c(401, true, EXIT.no),
  ERR_TOKEN_SIGNATURE_INVALID: c(401, true, EXIT.no),
  ERR_TOKEN_EXPIRED: c(401, true, EXIT.no),
  ERR_TOKEN_NOT_YET_VALID: c(401, true, EXIT.no),
  ERR_TOKEN_ISSUED_IN_FUTURE: c(401, true, EXIT.no),
  ERR_TOKEN_TOO_OLD: c(401, true, EXIT.no),
  ERR_TOKEN_ISSUER_UNKNOWN: c(401, true, EXIT.no),
  ERR_TOKEN_ISSUER_MISMATCH: c(401, true, EXIT.no),
  ERR_TOKEN_AUDIENCE_MISMATCH: c(401, true, EXIT.no),
  ERR_TOKEN_TYPE_MISMATCH: c(401, true, EXIT.no),
  ERR_TOKEN_CLAIM_INVALID: c(401, true, EXIT.no),
  ERR_TOKEN_REVOKED: c(401, true, EXIT.no),
  ERR_JWKS_FETCH_FAILED: c(503, true, EXIT.unavailable),
  ERR_JWKS_INVALID: c(503, true, EXIT.unavailable),
  ERR_JWKS_KEY_WEAK: c(503, true, EXIT.unavailable),
  // policy
  ERR_POLICY_INVALID: c(500, false, EXIT.usage),
  ERR_POLICY_DENIED: c(403, true, EXIT.no),
  // OAuth refusals at the token endpoint (RFC 6749 §5.2 codes live in the message's `oauthError`)
  ERR_INVALID_CLIENT: c(401, true, EXIT.no),
  ERR_INVALID_REQUEST: c(400, true, EXIT.no),
  ERR_INVALID_TARGET: c(400, true, EXIT.no),
  ERR_INVALID_GRANT: c(400, true, EXIT.no),
  ERR_UNAUTHORIZED_CLIENT: c(400, true, EXIT.no),
  // audit
  ERR_AUDIT_CHAIN_BROKEN: c(500, false, EXIT.no),
  ERR_AUDIT_WRITE_FAILED: c(503, false, EXIT.unavailable),
  // talking to other servers
  ERR_SERVER_UNREACHABLE: c(503, true, EXIT.unavailable),
  ERR_UPSTREAM_UNAVAILABLE: c(502, true, EXIT.unavailable),
  ERR_UPSTREAM_TIMEOUT: c(504, true, EXIT.unavailable),
  // people signing in (SSO)
  ERR_LOGIN_STATE_INVALID: c(400, true, EXIT.no),
  ERR_LOGIN_UPSTREAM_REFUSED: c(401, true, EXIT.no),
  ERR_LOGIN_CLAIMS_REFUSED: c(403, true, EXIT.no),
  ERR_LOGIN_GROUPS_OVERAGE: c(403, true, EXIT.no),
  ERR_LOGIN_RATE_LIMITED: c(429, true, EXIT.no),
  ERR_RETURN_URL_REFUSED: c(400, true, EXIT.no),
  ERR_CSRF: c(403, true, EXIT.no),
  ERR_NOT_LOGGED_IN: c(401, true, EXIT.usage),
  // anything else
  ERR_LISTEN_FAILED: c(500, false, EXIT.unavailable),
  ERR_INTERNAL: c(500, false, EXIT.unavailable),
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorDetails {
  /** Dotted path or claim name the error is about. */
  field?: string;
  expected?: unknown;
  actual?: unknown;
  /** What to do about it, in a sentence. */
  hint?: string;
  [key: string]: unknown;
}

export class GatehouseError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly expose: boolean;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GatehouseError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.expose = ERROR_CODES[code].expose;
    this.details = details;
  }

  get exitCode(): ExitCode {
    return ERROR_CODES[this.code].exit;
  }
}

export function isGatehouseError(e: unknown, code?: ErrorCode): e is GatehouseError {
  return e instanceof GatehouseError && (code === undefined || e.code === code);
}

/** The exit code for any thrown value: ours by code, anything else "could not run". */
export function exitCodeOf(e: unknown): ExitCode {
  return e instanceof GatehouseError ? e.exitCode : EXIT.unavailable;
}
