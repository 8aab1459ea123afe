// What the issuer's parts share: one object built by the composition root and handed to each grant.
import type { GatehouseConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';
import type { KeyRing } from '../keys/keyring.js';
import type { AuditSink } from '../audit/sink.js';
import type { FloodGuard } from '../audit/flood-guard.js';
import type { RevocationSet } from '../revocation/index.js';
import type { ClientRegistry } from './clients.js';
import type { TokenMinter } from './mint.js';
import type { SsoBrowserAuth } from '../session/browser-auth.js';
import type { Federation } from '../federation/federation.js';

export interface IssuerContext {
  config: GatehouseConfig;
  store: Store;
  keys: KeyRing;
  clients: ClientRegistry;
  minter: TokenMinter;
  /**
   * The issuer's records. Wrap it with refusalAuditSink (src/issuer/refusals.ts) so refusals written
   * while a request is handled carry its address, are flood-guarded and are not recorded twice.
   */
  audit: AuditSink;
  /** Bounds the records of refusals of callers that did not authenticate; none: one record each. */
  refusalGuard?: FloodGuard;
  /** Revoked jti, subjects, clients and sessions: consulted by introspection and client authentication. */
  revocations: RevocationSet;
  now: () => number;
  /** Browser sign-in: who is signed in, for the provider's login interactions and accounts. */
  sso?: SsoBrowserAuth;
  /** External issuers and trust rules for token exchange; absent when none are configured. */
  federation?: Federation;
  /** Told when a request failed because the store could not answer (marks it down for /readyz). */
  onStoreError?: (e: unknown) => void;
}
