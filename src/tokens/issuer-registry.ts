// The configured external issuers, each with its own key cache and rules. A token's `iss` picks the
// entry; an issuer that is not configured is refused before any key lookup, so it never causes a fetch.
import { GatehouseError } from '../lib/errors.js';
import { peekIssuer, verifyJwt } from './verify.js';
import type { KeySource, VerifiedJwt, VerifyOptions } from './verify.js';

/** Everything needed to verify one issuer's tokens, except the token-kind specifics a caller adds. */
export interface IssuerEntry extends Omit<VerifyOptions, 'keys' | 'issuer'> {
  /** The issuer exactly as its tokens carry it in `iss`. */
  issuer: string;
  /** A name for messages and config paths (e.g. `github-actions`). */
  name?: string;
  keys: KeySource;
}

export interface RegistryVerified extends VerifiedJwt {
  entry: IssuerEntry;
}

export class IssuerRegistry {
  readonly #byIssuer: ReadonlyMap<string, IssuerEntry>;

  constructor(entries: Iterable<IssuerEntry>) {
    const map = new Map<string, IssuerEntry>();
    for (const e of entries) {
      if (map.has(e.issuer)) throw new TypeError(`issuer ${e.issuer} is configured twice`);
      map.set(e.issuer, e);
    }
    this.#byIssuer = map;
  }

  /** Exact lookup; undefined for anything not configured. */
  get(issuer: string): IssuerEntry | undefined {
    return this.#byIssuer.get(issuer);
  }

  issuers(): string[] {
    return [...this.#byIssuer.keys()];
  }

  /**
   * Routes by the unverified `iss` to the configured issuer, then verifies strictly with that issuer's
   * keys and rules; `overrides` add what depends on the token kind (typ, audience).
   */
  async verify(
    token: string,
    overrides: Partial<Omit<VerifyOptions, 'keys' | 'issuer'>> = {},
  ): Promise<RegistryVerified> {
    const iss = peekIssuer(token, overrides.maxTokenBytes);
    const entry = iss === undefined ? undefined : this.#byIssuer.get(iss);
    if (entry === undefined) {
      throw new GatehouseError(
        'ERR_TOKEN_ISSUER_UNKNOWN',
        iss === undefined ? 'token names no issuer' : 'token issuer is not configured',
        {
          field: 'iss',
          expected: this.issuers(),
          actual: iss === undefined ? null : iss.slice(0, 512),
          hint: 'issuers are compared exactly, including scheme and trailing slash',
        },
      );
    }
    const { name: _name, ...rules } = entry;
    const verified = await verifyJwt(token, {
      ...rules,
      ...overrides,
      issuer: entry.issuer,
      keys: entry.keys,
    });
    return { ...verified, entry };
  }
}
