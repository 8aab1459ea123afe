// The issuer as workloads and third-party verifiers meet it: discovery pinned to the public URL,
// audience-bound client-credentials tokens verified by jose, openid-client and PyJWT, and every refusal
// with its reason.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFile, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { requestToken, startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const YAML = `
tokens:
  max_ttl: 1h
clients:
  - id: ci-deploy
    allowed_audiences: ["sts.amazonaws.com", "https://api.example.com/**", "vault"]
    max_ttl: 15m
    roles: [deployer]
    claims: { pipeline: deploy, repository: acme/app }
  - id: nosecret
    allowed_audiences: ["**"]
`;

function rawGet(url: string, headers: Record<string, string>): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname, headers, setHost: false },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('issuer', () => {
  let t: TestGatehouse;
  let secret: string;
  const client = () => ({ id: 'ci-deploy', secret });

  before(async () => {
    t = await startTestGatehouse({ yaml: YAML });
    secret = await t.secretFor('ci-deploy');
  });
  after(async () => t.close());

  test('discovery names the configured issuer and its endpoints', async () => {
    const d = (await (await fetch(`${t.url}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >;
    assert.equal(d.issuer, t.url);
    assert.equal(d.jwks_uri, `${t.url}/jwks`);
    assert.equal(d.token_endpoint, `${t.url}/token`);
    assert.ok((d.grant_types_supported as string[]).includes('client_credentials'));
  });

  test('the first signing key of a new store is in the audit log', async () => {
    const jwks = (await (await fetch(`${t.url}/jwks`)).json()) as { keys: { kid: string }[] };
    const created = await t.gh.store.queryAudit({ type: 'key.created' });
    const activated = await t.gh.store.queryAudit({ type: 'key.activated' });
    assert.deepEqual(
      created.map((r) => r.data.kid),
      jwks.keys.map((k) => k.kid),
    );
    assert.deepEqual(
      activated.map((r) => r.data.kid),
      jwks.keys.map((k) => k.kid),
    );
  });

  test('a spoofed Host or X-Forwarded-Host does not move the discovery URLs', async () => {
    const variants: Record<string, string>[] = [
      { host: 'evil.example' },
      {
        host: `127.0.0.1:${new URL(t.url).port}`,
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
      },
      { host: 'evil.example', forwarded: 'host=evil.example;proto=https' },
    ];
    for (const headers of variants) {
      const d = JSON.parse(await rawGet(`${t.url}/.well-known/openid-configuration`, headers)) as Record<
        string,
        string
      >;
      assert.equal(d.issuer, t.url);
      assert.equal(d.jwks_uri, `${t.url}/jwks`);
      assert.ok(!JSON.stringify(d).includes('evil.example'));
    }
  });

  test('a token for sts.amazonaws.com verifies with jose against the remote JWKS, with exactly that aud', async () => {
    const { status, body } = await requestToken(t.url, client(), { audience: 'sts.amazonaws.com' });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 600);
    const jwks = createRemoteJWKSet(new URL(`${t.url}/jwks`));
    const { payload, protectedHeader } = await jwtVerify(String(body.access_token), jwks, {
      issuer: t.url,
      audience: 'sts.amazonaws.com',
      typ: 'at+jwt',
    });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.ok(protectedHeader.kid);
    assert.equal(payload.aud, 'sts.amazonaws.com');
    assert.equal(payload.sub, 'ci-deploy');
    assert.equal(payload.client_id, 'ci-deploy');
    assert.deepEqual(payload.roles, ['deployer']);
    assert.equal(payload.pipeline, 'deploy');
    assert.equal(payload.repository, 'acme/app');
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 600);
    assert.ok(typeof payload.jti === 'string' && payload.jti.length >= 16);
  });

  test('openid-client discovers the issuer and gets a token that verifies', async () => {
    const config = await oidc.discovery(
      new URL(t.url),
      'ci-deploy',
      undefined,
      oidc.ClientSecretBasic(secret),
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
    assert.equal(config.serverMetadata().issuer, t.url);
    const tokens = await oidc.clientCredentialsGrant(config, { audience: 'vault' });
    const jwks = createRemoteJWKSet(new URL(String(config.serverMetadata().jwks_uri)));
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: t.url, audience: 'vault' });
    assert.equal(payload.aud, 'vault');
  });

  test('PyJWT verifies the token through discovery and jwks_uri', { timeout: 30_000 }, async (ctx) => {
    const py = '/usr/bin/python3';
    if (!existsSync(py) || spawnSync(py, ['-c', 'import jwt']).status !== 0) {
      ctx.skip('needs PyJWT: apt-get install python3-jwt');
      return;
    }
    const { body } = await requestToken(t.url, client(), { audience: 'sts.amazonaws.com' });
    const script = `
import json, sys, urllib.request, jwt
issuer, token = sys.argv[1], sys.argv[2]
conf = json.load(urllib.request.urlopen(issuer + "/.well-known/openid-configuration"))
key = jwt.PyJWKClient(conf["jwks_uri"]).get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=["ES256"], audience="sts.amazonaws.com", issuer=issuer)
print(json.dumps(claims))
`;
    // Asynchronously: the server answering PyJWT runs in this process.
    const run = (code: string) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          py,
          ['-c', code, t.url, String(body.access_token)],
          { encoding: 'utf8' },
          (err, stdout, stderr) =>
            resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const r = await run(script);
    assert.equal(r.status, 0, r.stderr);
    const claims = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(claims.aud, 'sts.amazonaws.com');
    assert.equal(claims.sub, 'ci-deploy');
    // And PyJWT refuses it for another audience.
    const wrong = await run(script.replace('audience="sts.amazonaws.com"', 'audience="other"'));
    assert.notEqual(wrong.status, 0);
    assert.match(wrong.stderr, /InvalidAudience/);
  });

  test('several audiences (audience repeated, and resource) give an aud array', async () => {
    const { status, body } = await requestToken(t.url, client(), {
      audience: ['vault', 'sts.amazonaws.com'],
      resource: 'https://api.example.com/v1',
    });
    assert.equal(status, 200, JSON.stringify(body));
    const { payload } = await jwtVerify(
      String(body.access_token),
      createRemoteJWKSet(new URL(`${t.url}/jwks`)),
      { audience: 'vault' },
    );
    assert.deepEqual(payload.aud, ['vault', 'sts.amazonaws.com', 'https://api.example.com/v1']);
  });

  test('a shorter lifetime can be asked for', async () => {
    const { body } = await requestToken(t.url, client(), { audience: 'vault', expires_in: '120' });
    assert.equal(body.expires_in, 120);
  });

  describe('refusals say why', () => {
    async function refusedAudit(id: string) {
      const rows = await t.gh.store.queryAudit({ type: 'token.refused' });
      return rows.find((r) => r.id === id);
    }
    const auditId = (d: unknown) => /\(audit id (a_[\w-]+)\)/.exec(String(d))?.[1] ?? '';

    test('unknown client', async () => {
      const { status, body } = await requestToken(
        t.url,
        { id: 'nobody', secret: 'x' },
        { audience: 'vault' },
      );
      assert.equal(status, 401);
      assert.equal(body.error, 'invalid_client');
      assert.match(String(body.error_description), /unknown client "nobody"/);
      assert.ok(await refusedAudit(auditId(body.error_description)));
    });

    test('wrong secret, never echoing it', async () => {
      const { status, body } = await requestToken(
        t.url,
        { id: 'ci-deploy', secret: 'ghs_not-the-secret-123' },
        { audience: 'vault' },
      );
      assert.equal(status, 401);
      assert.equal(body.error, 'invalid_client');
      assert.match(String(body.error_description), /wrong client secret for client "ci-deploy"/);
      assert.ok(!String(body.error_description).includes('ghs_not-the-secret-123'));
      const rec = await refusedAudit(auditId(body.error_description));
      assert.equal(rec?.data.reason, 'wrong_secret');
      assert.ok(!JSON.stringify(rec).includes('ghs_not-the-secret-123'));
    });

    test('expired secret', async () => {
      const s = await t.secretFor('nosecret', { ttlMs: 1 });
      await new Promise((r) => setTimeout(r, 5));
      const { status, body } = await requestToken(
        t.url,
        { id: 'nosecret', secret: s },
        { audience: 'vault' },
      );
      assert.equal(status, 401);
      assert.equal(body.error, 'invalid_client');
      assert.match(
        String(body.error_description),
        /expired at .*rotate it with: gatehouse clients rotate-secret nosecret/,
      );
    });

    test('audience not allowed names the asked value and the allowed ones', async () => {
      const { status, body } = await requestToken(t.url, client(), { audience: 'https://evil.example/' });
      assert.equal(status, 400);
      assert.equal(body.error, 'invalid_target');
      assert.match(
        String(body.error_description),
        /audience "https:\/\/evil.example\/" is not allowed for client "ci-deploy"; allowed: sts.amazonaws.com, https:\/\/api.example.com\/\*\*, vault/,
      );
      const rec = await refusedAudit(auditId(body.error_description));
      assert.equal(rec?.data.actual, 'https://evil.example/');
    });

    test('a glob does not let one segment cross into another', async () => {
      const { body } = await requestToken(t.url, client(), { audience: 'https://api.example.com.evil/x' });
      assert.equal(body.error, 'invalid_target');
    });

    test('lifetime above the ceiling', async () => {
      const { status, body } = await requestToken(t.url, client(), { audience: 'vault', expires_in: '3600' });
      assert.equal(status, 400);
      assert.equal(body.error, 'invalid_request');
      assert.match(
        String(body.error_description),
        /requested lifetime 1h is above the ceiling of 15m for client "ci-deploy"/,
      );
    });

    test('no audience', async () => {
      const { status, body } = await requestToken(t.url, client(), {});
      assert.equal(status, 400);
      assert.equal(body.error, 'invalid_request');
      assert.match(String(body.error_description), /no audience asked/);
    });

    test('the token record names the jti, never the token', async () => {
      const { body } = await requestToken(t.url, client(), { audience: 'vault' });
      const token = String(body.access_token);
      const rows = await t.gh.store.queryAudit({ type: 'token.issued' });
      const jti = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).jti as string;
      const rec = rows.find((r) => r.data.jti === jti);
      assert.ok(rec, 'token.issued record for the jti');
      assert.ok(!JSON.stringify(rows).includes(token.split('.')[2] ?? 'x'));
    });
  });
});

describe('issuer algorithms', () => {
  for (const alg of ['RS256', 'EdDSA'] as const) {
    test(`keys.algorithm ${alg} signs with ${alg}`, async () => {
      const t = await startTestGatehouse({
        yaml: `keys: { algorithm: ${alg} }\nclients: [{ id: a, allowed_audiences: ["**"] }]\n`,
      });
      try {
        const secret = await t.secretFor('a');
        const { body } = await requestToken(t.url, { id: 'a', secret }, { audience: 'x' });
        assert.equal(decodeProtectedHeader(String(body.access_token)).alg, alg);
        await jwtVerify(String(body.access_token), createRemoteJWKSet(new URL(`${t.url}/jwks`)), {
          audience: 'x',
          issuer: t.url,
        });
      } finally {
        await t.close();
      }
    });
  }
});
