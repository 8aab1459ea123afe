// The configuration schema: one zod definition that validates the YAML, supplies defaults and is the
// source for docs/configuration.md (a test fails when a key here is not documented there). Durations are
// strings (`10m`) in YAML and milliseconds after parsing. Secrets come by reference (`${env:X}`,
// `${file:X}`) and are resolved by the loader before this schema sees them.
import { z } from 'zod';
import { parseDuration } from '../lib/duration.js';

/** Fields that take a duration; the loader uses this to word its messages ("write 600s, with a unit"). */
export const durationFields = z.registry<{ kind: 'duration' }>();

/** A duration written `90s`, `10m`, `1h`, `7d`; milliseconds after parsing. */
export const duration = () =>
  z
    .string()
    .register(durationFields, { kind: 'duration' })
    .transform((s, ctx) => {
      const ms = parseDuration(s);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `"${s}" is not a duration; write a number and a unit, like 90s, 10m, 1h or 7d`,
        });
        return z.NEVER;
      }
      return ms;
    });

const httpUrl = () =>
  z.string().refine(
    (s) => {
      try {
        const u = new URL(s);
        return (u.protocol === 'http:' || u.protocol === 'https:') && !u.search && !u.hash;
      } catch {
        return false;
      }
    },
    { message: 'must be an absolute http(s) URL without query or fragment, like https://id.example.com' },
  );

/** Fields whose value is a file path relative to the config file; the loader makes them absolute. */
export const relativePaths = z.registry<{ relativeTo: 'config-file' }>();

/** A file path; relative paths are resolved against the config file's directory by the loader. */
export const filePath = () =>
  z.string().min(1, 'a path cannot be empty').register(relativePaths, { relativeTo: 'config-file' });

/** Globs as DESIGN.md defines them: `*` within a segment, `**` across. */
const glob = () => z.string().min(1, 'a pattern cannot be empty');

export const algorithm = z.enum(['ES256', 'RS256', 'EdDSA']);

export const clientSchema = z
  .object({
    /** Client id, as sent in client_id or HTTP Basic. */
    id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'use letters, digits, and . _ : - (at most 128)'),
    /** A human name shown in lists and audit records. */
    name: z.string().optional(),
    /** Grant types this client may use. */
    grant_types: z
      .array(z.enum(['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange']))
      .default(['client_credentials']),
    /** Audiences (globs) this client may ask for; `**` allows any. */
    allowed_audiences: z.array(glob()).min(1, 'list at least one audience pattern'),
    /** Ceiling on a token's lifetime for this client (at most tokens.max_ttl). */
    max_ttl: duration().optional(),
    /** Roles put in the `roles` claim of this client's tokens. */
    roles: z.array(z.string()).default([]),
    /** Static extra claims added to every token (e.g. pipeline, repository). */
    claims: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]))
      .default({}),
    /** Lifetime of a newly created secret; unset means secrets do not expire. */
    secret_ttl: duration().optional(),
  })
  .strict();

/** Claims a token may carry as a whole JSON value; paths are dotted (`a.b`) or JSON Pointers (`/kubernetes.io/namespace`). */
const claimPath = () => z.string().min(1, 'a claim path cannot be empty').max(256);

/** RFC 8693 token exchange: an external issuer whose tokens may be exchanged (docs/federation.md). */
export const externalIssuerSchema = z
  .object({
    /** A short name that trust rules refer to (`github-actions`); `gatehouse` is reserved for Gatehouse's own tokens. */
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'use lower-case letters, digits and . _ - (at most 64)'),
    /** The issuer exactly as its tokens carry it in `iss` (scheme, host, path and trailing slash all count). */
    issuer: httpUrl(),
    /** The token's `aud` must contain one of these exactly (what the job asked its platform for). */
    audiences: z.array(z.string().min(1)).min(1, 'list at least one audience the tokens are minted for'),
    /** Signature algorithms accepted from this issuer, compared exactly. */
    algorithms: z
      .array(z.enum(['RS256', 'ES256', 'PS256', 'EdDSA']))
      .min(1)
      .default(['RS256', 'ES256']),
    /** Where the key set lives, when it is not where discovery says (or the issuer has no discovery). */
    jwks_uri: httpUrl().optional(),
    /** A pinned key set (`{ keys: [...] }`) for issuers without discovery; never fetched. */
    jwks: z
      .object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) })
      .strict()
      .optional(),
    /** Refuse tokens issued longer ago than this (then `iat` is required). */
    max_token_age: duration().optional(),
    /** Leeway for `exp`, `nbf` and `iat` of this issuer's tokens; default tokens.clock_skew. */
    clock_skew: duration().optional(),
  })
  .strict();

/** Which external tokens may be exchanged for which Gatehouse tokens (docs/federation.md). */
export const trustRuleSchema = z
  .object({
    /** Unique name, shown in explanations and audit records. */
    name: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'use letters, digits and . _ : - (at most 128)'),
    /** What this rule is for, in words. */
    description: z.string().optional(),
    /** The `name` of an external issuer, or `gatehouse` for Gatehouse's own access tokens. */
    issuer: z.string().min(1),
    /** `shadow` evaluates and reports the rule without ever letting a token in. */
    mode: z.enum(['enforce', 'shadow']).default('enforce'),
    /** Criteria on the subject token's claims, in the policy language (docs/policy.md); a mapping is an implicit `all`. */
    conditions: z.unknown().refine((v) => v !== undefined && v !== null, {
      message: 'conditions are required (an empty block would trust every token of the issuer)',
    }),
    /** Shown to the client when this rule is the closest one and refuses (written by you, so safe to show). */
    message: z.string().max(500).optional(),
    /** `forbid` (default): no actor_token; `allow`: with or without; `require`: only with an actor_token. */
    delegation: z.enum(['forbid', 'allow', 'require']).default('forbid'),
    /** With delegation: criteria the actor token's claims must meet (policy language). */
    actor_conditions: z.unknown().optional(),
    /** Exchange each subject token (its `iss` and `jti`) once only; a second exchange is refused (docs/federation.md#single-use-subject-tokens). */
    single_use: z.boolean().default(false),
    /** What the issued token carries. */
    grant: z
      .object({
        /** Roles put in the `roles` claim. */
        roles: z.array(z.string().min(1)).default([]),
        /** Audiences (globs) the caller may ask for. */
        audiences: z.array(glob()).min(1, 'list at least one audience pattern the caller may ask for'),
        /** Ceiling on the issued token's lifetime (at most tokens.max_ttl). */
        max_ttl: duration().optional(),
        /** Let the issued token expire after the subject token (needs max_ttl; docs/federation.md#lifetime). */
        outlive_subject: z.boolean().default(false),
        /** `sub` of the issued token, a template over claims: `gh:{repository}:{environment}`; default `<issuer name>:{sub}`. */
        subject: z.string().min(1).max(512).optional(),
        /** Claims carried over from the subject token. */
        claims: z
          .object({
            /** Claims copied under the same name (absent ones are skipped). */
            copy: z.array(claimPath()).default([]),
            /** New claim name → claim path in the subject token (absent ones are skipped). */
            map: z.record(z.string().min(1), claimPath()).default({}),
          })
          .strict()
          .default({ copy: [], map: {} }),
      })
      .strict(),
  })
  .strict();

/** How one upstream IdP's claims become a person's subject, email, name, groups and roles. */
export const claimMappingSchema = z
  .object({
    /** Claim (dotted path) that becomes the Gatehouse subject. */
    subject: z.string().default('sub'),
    /** Prefix put before the subject, to keep several connectors' subjects apart. */
    subject_prefix: z.string().default(''),
    /** Claim holding the email address. */
    email: z.string().default('email'),
    /** Claim holding the display name. */
    name: z.string().default('name'),
    /** Claims (dotted paths) whose values are groups: `groups`, `realm_access.roles`, `resource_access.jira.roles`. */
    groups: z.array(z.string()).default(['groups']),
    /** Claims whose values are Gatehouse roles directly (Entra app roles: `roles`). */
    roles: z.array(z.string()).default([]),
    /** Prefixes removed from group and role values (Keycloak's `/`, `okta-`). */
    strip_prefix: z.array(z.string()).default([]),
    /** Rewrites of group values after prefix stripping (an Entra group object id to a name). */
    rename: z.record(z.string(), z.string()).default({}),
    /** Refuse a person whose email is not verified (`email_verified` not true). */
    require_email_verified: z.boolean().default(true),
  })
  .strict();

/** An upstream OpenID Provider people sign in with. */
export const connectorSchema = z
  .object({
    /** Short id, used in URLs and audit records. */
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'use lower-case letters, digits, _ and - (at most 64)'),
    /** Name shown on the login page. */
    name: z.string().optional(),
    /** The IdP's issuer URL (discovery at `/.well-known/openid-configuration` under it). */
    issuer: httpUrl(),
    /** Client id registered at the IdP. */
    client_id: z.string().min(1),
    /** Client secret, by reference (`${env:OKTA_SECRET}`); without one the connector is a public client (PKCE only). */
    client_secret: z.string().optional(),
    /** Scopes asked for. */
    scopes: z.array(z.string()).default(['openid', 'email', 'profile']),
    /** Email domains this IdP signs in (`example.com`); the login page's email hint picks the connector by them. */
    email_domains: z.array(z.string()).default([]),
    /** Fetch userinfo and merge it in: `auto` when the ID token lacks email or groups, `always`, or `never`. */
    userinfo: z.enum(['auto', 'always', 'never']).default('auto'),
    /** How claims map to subject, email, name, groups and roles. */
    mapping: claimMappingSchema.default(claimMappingSchema.parse({})),
    /** How often the IdP is asked again (refresh token) whether the person may still sign in. */
    recheck_interval: duration().default(900_000),
    /** Sign the person out at the IdP too (RP-initiated logout) when it supports it. */
    upstream_logout: z.boolean().default(true),
  })
  .strict();

/** An application that signs people in with Gatehouse as its OpenID Provider (Jira, Jenkins, Grafana…). */
export const downstreamClientSchema = z
  .object({
    /** Client id the application sends. */
    id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'use letters, digits, and . _ : - (at most 128)'),
    /** A human name shown on consent and in audit records. */
    name: z.string().optional(),
    /** Redirect URIs, matched exactly. */
    redirect_uris: z
      .array(z.string().regex(/^https?:\/\/[^#\s]+$/, 'must be an absolute http(s) URL without a fragment'))
      .min(1, 'list at least one redirect URI'),
    /** Where the application may send people after sign-out. */
    post_logout_redirect_uris: z.array(z.string()).default([]),
    /** Scopes the application may ask for; claims released follow them (email, profile, groups, roles). */
    scopes: z
      .array(z.enum(['openid', 'email', 'profile', 'groups', 'roles', 'offline_access']))
      .default(['openid', 'email', 'profile', 'groups', 'roles']),
    /** A public client (no secret, PKCE only), like a single-page app. */
    public: z.boolean().default(false),
    /** Trusted, first-party application: no consent screen. */
    first_party: z.boolean().default(true),
    /** Require PKCE (S256); turn off only for applications that cannot send it. */
    require_pkce: z.boolean().default(true),
    /** Lifetime of a newly created secret; unset means secrets do not expire. */
    secret_ttl: duration().optional(),
  })
  .strict();

/** An identity-aware proxy route (docs/proxy.md). Policies are compiled by checks.ts, with their paths. */
export const routeSchema = z
  .object({
    /** A name for logs, audit records and error pages. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'use letters, digits, and . _ - (at most 64)'),
    /** The public URL the route answers: scheme, host (may start with `*.`), optional port, path prefix; or a path alone (on the issuer's host). */
    from: z.string().min(1, 'give the public URL, like https://app.example.com/ or /demo/'),
    /** Upstream URLs, used in turn; each gets a keep-alive connection pool. */
    to: z.array(httpUrl()).min(1, 'list at least one upstream URL'),
    /** The audience bearer tokens must carry and the assertion gets; default the route's public URL. */
    audience: z.string().min(1).optional(),
    /** The rules that decide who gets through (docs/policy.md). */
    policy: z.array(z.unknown()).default([]),
    /** `true`: no authentication at all; a list of path globs: these paths are open. */
    public: z.union([z.literal(true), z.array(glob())]).optional(),
    /** Remove the route's path prefix before forwarding. */
    strip_prefix: z.boolean().default(false),
    /** Send the client's Host to the upstream instead of the upstream's own. */
    preserve_host: z.boolean().default(false),
    /** How long the upstream may take to answer (headers), and to go quiet while sending the body. */
    timeout: duration().default(30_000),
    /** Largest request body, in bytes; unset: no limit. */
    max_body: z.number().int().min(0).optional(),
    /** `shadow`: evaluate the policy and audit would-be denials, but let authenticated requests through. */
    mode: z.enum(['enforce', 'shadow']).default('enforce'),
    /** Websocket upgrades on this route (docs/proxy.md#websockets). */
    websocket: z
      .object({
        /** Whether websocket upgrades are proxied at all. */
        enabled: z.boolean().default(true),
        /** A websocket is closed after this long, whatever its credentials. */
        max_lifetime: duration().default(3_600_000),
      })
      .strict()
      .default({ enabled: true, max_lifetime: 3_600_000 }),
    /** Origins (`https://app.example.com`) a websocket may be opened from; default the route's own origin. */
    allowed_origins: z.array(z.string().min(1)).optional(),
    /** Names of `trust_rules` through which external issuers' bearer tokens are accepted on this route (docs/proxy.md#external-issuers-tokens). */
    trust_rules: z.array(z.string().min(1)).optional(),
    /** This route's audit of allowed requests, instead of the top-level `audit.allows` (denials are always recorded). */
    audit: z
      .object({
        /** `all`, `sampled` (a `sample_rate` share) or `none`. */
        allows: z.enum(['all', 'sampled', 'none']),
        /** With `allows: sampled`, the share recorded, 0–1. */
        sample_rate: z.number().min(0).max(1).default(0.01),
      })
      .strict()
      .optional(),
  })
  .strict();

/** The forward-auth endpoint `/.gatehouse/auth` for nginx, Caddy and Traefik (docs/forward-auth.md). */
export const forwardAuthSchema = z
  .object({
    /** CIDRs allowed to call `/.gatehouse/auth` and whose X-Original-* / X-Forwarded-* are read; others get 403. */
    trusted_proxies: z.array(z.string()).default(['127.0.0.0/8', '::1/128']),
    /** How long a decision is reused for the same credential, route, method and path (never past the token's expiry). */
    cache_ttl: duration().default(5_000),
    /** Decisions kept in memory (`0`: no cache). */
    cache_size: z.number().int().min(0).default(10_000),
  })
  .strict();

/** Proxy-wide settings. */
export const proxySchema = z
  .object({
    /** CIDRs of proxies in front of Gatehouse whose X-Forwarded-For/Proto/Host are believed. */
    trusted_proxies: z.array(z.string()).default([]),
    /** Largest request head (request line and headers) in bytes; larger gets 431. */
    max_header_bytes: z.number().int().min(1024).max(1_048_576).default(16_384),
    /** Requests served on one connection before it is closed. */
    max_requests_per_socket: z.number().int().min(0).default(1000),
    /** How long a client may take to send the request head. */
    headers_timeout: duration().default(15_000),
    /** How long a client may take to send a whole request. */
    request_timeout: duration().default(60_000),
    /** Lifetime of the X-Gatehouse-Assertion JWT sent upstream. */
    assertion_ttl: duration().default(60_000),
    /** Verified bearer tokens kept in memory (keyed by a SHA-256 of the whole token). */
    token_cache_size: z.number().int().min(0).default(10_000),
  })
  .strict();

/** A token bucket per client address: `burst` requests at once, refilled at `per_minute`. */
export const rateLimitSchema = z
  .object({
    /** Requests per minute each client address may make, on average. */
    per_minute: z.number().int().min(1),
    /** Requests one address may make at once before the average applies; default `per_minute`. */
    burst: z.number().int().min(1).optional(),
  })
  .strict();

/** Audit records for unauthenticated refusals before they are coalesced (see `audit.unauthenticated`). */
const UNAUTHENTICATED_AUDIT_DEFAULT = {
  per_address: { per_minute: 60, burst: 120 },
  overall: { per_minute: 1200, burst: 1200 },
};

export const configSchema = z
  .object({
    /** Who Gatehouse is. */
    issuer: z
      .object({
        /** The public URL of Gatehouse: the `iss` of every token and the base of every URL it hands out. */
        url: httpUrl(),
      })
      .strict(),
    /** Where the HTTP server listens. */
    server: z
      .object({
        /** Address to listen on. */
        host: z.string().default('127.0.0.1'),
        /** Port to listen on. */
        port: z.number().int().min(0).max(65535).default(8080),
        /** Serve https: certificate and key files (PEM), reloaded when they change. */
        tls: z
          .object({
            /** Certificate chain file (PEM), leaf first. */
            cert: filePath(),
            /** Private key file (PEM) of the certificate. */
            key: filePath(),
            /** Also listen for plain http on this port and redirect (301) to the issuer URL's https origin. */
            redirect_http: z.number().int().min(0).max(65535).optional(),
          })
          .strict()
          .optional(),
        /** On SIGTERM, how long in-flight requests may take to finish before connections are cut. */
        shutdown_grace: duration().default(10_000),
        /** Worker processes sharing the port (`gatehouse serve` only): a number, or `auto` for one per CPU. */
        workers: z.union([z.number().int().min(1).max(64), z.literal('auto')]).default(1),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8080, shutdown_grace: 10_000, workers: 1 }),
    /** Where clients, keys, sessions, revocations and the audit log are kept. */
    store: z
      .object({
        /** The SQLite backend (the default). */
        sqlite: z
          .object({
            /** Path of the SQLite database file (relative to the config file). */
            path: filePath().default('gatehouse.db'),
          })
          .strict()
          .optional(),
        /** The PostgreSQL backend, shared by several replicas. */
        postgres: z
          .object({
            /** Connection URL, by reference (`${env:DATABASE_URL}`): it may hold a password. */
            url: z
              .string()
              .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL, like ${env:DATABASE_URL}'),
            /** Connections in the pool of each replica. */
            pool: z.number().int().min(1).max(1000).default(10),
            /** How long cached keys and the revocation set keep serving while the database is away. */
            grace: duration().default(30_000),
          })
          .strict()
          .optional(),
      })
      .strict()
      .refine((s) => !(s.sqlite && s.postgres), {
        message: 'set either store.sqlite or store.postgres, not both',
      })
      .default({ sqlite: { path: 'gatehouse.db' } }),
    /** Signing keys. */
    keys: z
      .object({
        /** Signing algorithm of new keys. */
        algorithm: algorithm.default('ES256'),
        /** Key-encryption key (32 random bytes, base64url) that seals private keys at rest; by reference. */
        encryption_key: z
          .string()
          .min(1, 'give the key-encryption key by reference, like ${file:/etc/gatehouse/kek}'),
        /** Earlier key-encryption keys, only to open keys sealed with them (while `gatehouse keys rewrap` runs). */
        previous_encryption_keys: z
          .array(z.string().min(1, 'give each key-encryption key by reference'))
          .default([]),
        /** Scheduled rotation of signing keys. */
        rotation: z
          .object({
            /** Age of the active key after which a new one is created; `0s` turns scheduled rotation off. */
            every: duration().default(2_592_000_000),
            /** How long a new key is published in the JWKS before it signs (verifiers cache the JWKS). */
            propagation: duration().default(3_600_000),
            /** How often a server checks whether a rotation step is due. */
            check_interval: duration().default(60_000),
          })
          .strict()
          .refine((r) => r.check_interval > 0, {
            message: 'check_interval must be longer than 0s',
            path: ['check_interval'],
          })
          .default({ every: 2_592_000_000, propagation: 3_600_000, check_interval: 60_000 }),
      })
      .strict(),
    /** Lifetimes and clock tolerance of tokens. */
    tokens: z
      .object({
        /** Lifetime of a token when the client does not ask for one. */
        default_ttl: duration().default(600_000),
        /** Ceiling on any token's lifetime. */
        max_ttl: duration().default(3_600_000),
        /** Allowed clock skew when checking `exp`, `nbf` and `iat`. */
        clock_skew: duration().default(60_000),
      })
      .strict()
      .default({ default_ttl: 600_000, max_ttl: 3_600_000, clock_skew: 60_000 }),
    /** Service accounts and other clients. Their secrets live hashed in the store (`gatehouse clients`). */
    clients: z.array(clientSchema).default([]),
    /** External issuers whose tokens may be exchanged (RFC 8693); see docs/federation.md. */
    external_issuers: z.array(externalIssuerSchema).default([]),
    /** Trust rules: which external tokens get which Gatehouse tokens; see docs/federation.md. */
    trust_rules: z.array(trustRuleSchema).default([]),
    /** Upstream IdPs people sign in with (Okta, Entra ID, Google, Keycloak…). */
    connectors: z.array(connectorSchema).default([]),
    /** Role name → the groups (globs) that grant it, after each connector's mapping. */
    roles: z.record(z.string(), z.array(glob())).default({}),
    /** Browser sessions. */
    sessions: z
      .object({
        /** A session ends after this long without a request. */
        idle_timeout: duration().default(8 * 3_600_000),
        /** A session ends this long after sign-in, whatever happens. */
        absolute_timeout: duration().default(24 * 3_600_000),
        /** Hosts (besides the issuer's) a login may return to, like `app.example.com` or `*.example.com`. */
        return_hosts: z.array(glob()).default([]),
        /** Failed sign-ins allowed per client address within `failure_window` before it is refused. */
        max_failures: z.number().int().min(1).default(10),
        /** The window of `max_failures`. */
        failure_window: duration().default(300_000),
      })
      .strict()
      .default({
        idle_timeout: 8 * 3_600_000,
        absolute_timeout: 24 * 3_600_000,
        return_hosts: [],
        max_failures: 10,
        failure_window: 300_000,
      }),
    /** Applications that sign people in through Gatehouse (it is their OpenID Provider). */
    downstream_clients: z.array(downstreamClientSchema).default([]),
    /** Identity-aware proxy routes. */
    routes: z.array(routeSchema).default([]),
    /** Identity-aware proxy settings. */
    proxy: proxySchema.default({
      trusted_proxies: [],
      max_header_bytes: 16_384,
      max_requests_per_socket: 1000,
      headers_timeout: 15_000,
      request_timeout: 60_000,
      assertion_ttl: 60_000,
      token_cache_size: 10_000,
    }),
    /** The forward-auth endpoint for proxies in front of applications (docs/forward-auth.md). */
    forward_auth: forwardAuthSchema.default({
      trusted_proxies: ['127.0.0.0/8', '::1/128'],
      cache_ttl: 5_000,
      cache_size: 10_000,
    }),
    /** Per-address rate limits; unset: no limit. */
    rate_limits: z
      .object({
        /** On the token endpoint (`POST /token`). */
        token: rateLimitSchema.optional(),
        /** On browser sign-in (`/.gatehouse/login` and `/.gatehouse/callback`). */
        login: rateLimitSchema.optional(),
        /** Client addresses remembered; the least recently seen are forgotten first. */
        max_addresses: z.number().int().min(100).default(100_000),
      })
      .strict()
      .default({ max_addresses: 100_000 }),
    /** What the proxy writes to the audit log besides denials (which are always recorded). */
    audit: z
      .object({
        /** Allowed requests (and browsers sent to sign in): `all`, `sampled` (a `sample_rate` share of them) or `none`. */
        allows: z.enum(['all', 'sampled', 'none']).default('all'),
        /** With `allows: sampled`, the share of allowed requests recorded, 0–1. */
        sample_rate: z.number().min(0).max(1).default(0.01),
        /**
         * Refusals of requests that proved no identity (no or refused credentials at the proxy, failed
         * client authentication at the token endpoint): one record each within these budgets, past them
         * one summary record a minute per address and code (docs/operations.md#audit-log-floods).
         */
        unauthenticated: z
          .object({
            /** Records one client address may cause. */
            per_address: rateLimitSchema.default(UNAUTHENTICATED_AUDIT_DEFAULT.per_address),
            /** Records all addresses together may cause. */
            overall: rateLimitSchema.default(UNAUTHENTICATED_AUDIT_DEFAULT.overall),
          })
          .strict()
          .default(UNAUTHENTICATED_AUDIT_DEFAULT),
      })
      .strict()
      .default({ allows: 'all', sample_rate: 0.01, unauthenticated: UNAUTHENTICATED_AUDIT_DEFAULT }),
    /** Logging; values from `${env:…}`/`${file:…}` references are redacted. */
    log: z
      .object({
        /** pino log level. */
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** `json` for machines, `pretty` for people. */
        format: z.enum(['json', 'pretty']).default('json'),
      })
      .strict()
      .default({ level: 'info', format: 'json' }),
  })
  .strict();

export type GatehouseConfig = z.output<typeof configSchema>;
export type ClientConfig = z.output<typeof clientSchema>;
export type ConnectorConfig = z.output<typeof connectorSchema>;
export type ClaimMapping = z.output<typeof claimMappingSchema>;
export type DownstreamClientConfig = z.output<typeof downstreamClientSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type ProxyConfig = z.output<typeof proxySchema>;
export type RateLimitConfig = z.output<typeof rateLimitSchema>;
export type ForwardAuthConfig = z.output<typeof forwardAuthSchema>;
export type ExternalIssuerConfig = z.output<typeof externalIssuerSchema>;
export type TrustRuleConfig = z.output<typeof trustRuleSchema>;
