// Real external issuers for federation tests: an in-process oidc-provider per platform on port 0
// serving discovery and JWKS, and tokens shaped like that platform's, signed with the provider's own
// private key. Keys rotate (a new provider instance with a new key swaps in) and the issuer can go down.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import Provider from 'oidc-provider';

export type Platform = 'github' | 'gitlab' | 'gitpod' | 'kubernetes' | 'jenkins';

export interface MintOptions {
  /** Seconds relative to the issuer's clock; defaults iat now, exp now + 5 min. */
  iat?: number;
  exp?: number;
  nbf?: number;
  aud?: string | string[];
  iss?: string;
  kid?: string;
  typ?: string;
}

export interface ExternalIssuer {
  platform: Platform;
  /** The issuer URL (`http://127.0.0.1:PORT`, or with a path for GitLab-like setups). */
  issuer: string;
  /** How many times the JWKS was fetched. */
  jwksFetches(): number;
  /** Signs a token with the current key; `claims` override the platform defaults. */
  mint(claims?: Record<string, unknown>, opts?: MintOptions): Promise<string>;
  /** Replaces the signing key (new kid); the old key leaves the JWKS unless `keepOld`. */
  rotateKey(opts?: { keepOld?: boolean }): Promise<string>;
  currentKid(): string;
  /** While down, every connection is dropped. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

/** The claims each platform puts in its tokens, for the defaults of `mint`. */
export function platformClaims(platform: Platform): Record<string, unknown> {
  switch (platform) {
    case 'github':
      return {
        sub: 'repo:octo/app:ref:refs/heads/main',
        repository: 'octo/app',
        repository_owner: 'octo',
        repository_id: '123',
        repository_owner_id: '9',
        repository_visibility: 'private',
        ref: 'refs/heads/main',
        ref_type: 'branch',
        sha: 'a'.repeat(40),
        workflow: 'deploy',
        job_workflow_ref: 'octo/app/.github/workflows/deploy.yml@refs/heads/main',
        event_name: 'push',
        actor: 'mona',
        run_id: '42',
        run_attempt: '1',
        runner_environment: 'github-hosted',
      };
    case 'gitlab':
      return {
        sub: 'project_path:platform/api:ref_type:branch:ref:main',
        namespace_path: 'platform',
        project_path: 'platform/api',
        project_id: '77',
        pipeline_source: 'push',
        ref: 'main',
        ref_type: 'branch',
        ref_protected: 'true',
        user_login: 'alice',
        environment: 'production',
        environment_protected: 'true',
      };
    case 'gitpod':
      return {
        sub: 'https://gitpod.io/idp/user/1234',
        org_id: 'org-1',
        workspace_id: 'ws-abc',
        email: 'alice@example.com',
        email_verified: true,
      };
    case 'kubernetes':
      return {
        sub: 'system:serviceaccount:ci:deployer',
        'kubernetes.io': {
          namespace: 'ci',
          serviceaccount: { name: 'deployer', uid: '0c5b6e7a-1111-2222-3333-444455556666' },
          pod: { name: 'runner-1', uid: '9f2e' },
        },
      };
    case 'jenkins':
      return { sub: 'https://jenkins.example.com/job/app/', build_number: 12 };
  }
}

/** A GitHub Actions `sub` for each context: push on a branch, an environment, a pull request. */
export function githubSub(
  repo: string,
  ctx: { ref?: string; environment?: string; pullRequest?: boolean },
): string {
  if (ctx.environment) return `repo:${repo}:environment:${ctx.environment}`;
  if (ctx.pullRequest) return `repo:${repo}:pull_request`;
  return `repo:${repo}:ref:${ctx.ref ?? 'refs/heads/main'}`;
}

interface Key {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

async function newKey(): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomUUID();
  return {
    kid,
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' },
  };
}

function buildProvider(issuer: string, keys: Key[]): (req: IncomingMessage, res: ServerResponse) => void {
  const provider = new Provider(issuer, {
    jwks: { keys: keys.map((k) => k.privateJwk) } as never,
    features: { devInteractions: { enabled: false } },
    clients: [],
  });
  return provider.callback() as (req: IncomingMessage, res: ServerResponse) => void;
}

export async function startExternalIssuer(
  platform: Platform,
  opts: { now?: () => number; path?: string; defaultAud?: string } = {},
): Promise<ExternalIssuer> {
  const now = opts.now ?? Date.now;
  let keys = [await newKey()];
  let fetches = 0;
  let down = false;
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server: Server = createServer((req, res) => {
    if (down) {
      req.socket.destroy();
      return;
    }
    if ((req.url ?? '').split('?')[0]?.endsWith('/jwks')) fetches++;
    if (opts.path) {
      if (!req.url?.startsWith(opts.path)) {
        res.statusCode = 404;
        res.end();
        return;
      }
      req.url = req.url.slice(opts.path.length) || '/';
    }
    handler?.(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}${opts.path ?? ''}`;
  handler = buildProvider(issuer, keys);
  const defaultAud = opts.defaultAud ?? 'https://gatehouse.test';

  return {
    platform,
    issuer,
    jwksFetches: () => fetches,
    currentKid: () => (keys[0] as Key).kid,
    async mint(claims = {}, o = {}) {
      const key = keys[0] as Key;
      const t = Math.floor(now() / 1000);
      const payload: Record<string, unknown> = {
        ...platformClaims(platform),
        jti: randomUUID(),
        ...claims,
        iss: o.iss ?? issuer,
        aud: o.aud ?? defaultAud,
        iat: o.iat ?? t,
        exp: o.exp ?? t + 300,
      };
      if (o.nbf !== undefined) payload.nbf = o.nbf;
      else if (platform === 'github') payload.nbf = t - 5;
      for (const [k, v] of Object.entries(claims)) if (v === undefined) delete payload[k];
      return new SignJWT(payload)
        .setProtectedHeader({ alg: 'RS256', kid: o.kid ?? key.kid, typ: o.typ ?? 'JWT' })
        .sign(await importJWK(key.privateJwk, 'RS256'));
    },
    async rotateKey(o = {}) {
      const k = await newKey();
      keys = o.keepOld ? [k, ...keys] : [k];
      handler = buildProvider(issuer, keys);
      return k.kid;
    },
    setDown(d) {
      down = d;
    },
    close() {
      return new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
}
