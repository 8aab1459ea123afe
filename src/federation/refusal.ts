// A refused token exchange: the OAuth error code the client gets (RFC 8693 §2.2.2), a description safe
// to show it, and the whole explanation for the audit record. Never holds a token.
import type { Reason } from '../policy/index.js';

/** `token`: the subject or actor token is not valid; `policy`: valid, but no rule lets it in; `target`: the audience asked is not granted; `request`: malformed request. */
export type RefusalStage = 'request' | 'token' | 'policy' | 'target' | 'unavailable';

export class ExchangeRefusal extends Error {
  constructor(
    readonly oauthError: 'invalid_request' | 'invalid_target' | 'temporarily_unavailable',
    readonly stage: RefusalStage,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly reasons: readonly Reason[] = [],
  ) {
    super(message);
    this.name = 'ExchangeRefusal';
  }

  get status(): number {
    return this.oauthError === 'temporarily_unavailable' ? 503 : 400;
  }
}
