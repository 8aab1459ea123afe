// `gatehouse clients list|rotate-secret` know the downstream apps of the config (`downstream_clients`),
// not only service accounts: a rotated secret authenticates the app at the running server at once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const DOWNSTREAM = `downstream_clients:
  - id: jira
    name: Jira
    redirect_uris: ["https://jira.example.com/plugins/servlet/oauth/callback"]
    secret_ttl: 90d
  - id: dashboard-spa
    redirect_uris: ["https://dash.example.com/cb"]
    public: true
`;
let t: TestGatehouse;
let configFile: string;

before(async () => {
  t = await startTestGatehouse({ yaml: DOWNSTREAM });
  // The operator's config file pointing at the same store.
  configFile = join(t.dir, 'gatehouse.yaml');
  writeFileSync(join(t.dir, 'kek'), 'unused-by-admin-commands-but-required-aaaaaaaa\n');
  writeFileSync(
    configFile,
    `issuer: { url: "${t.url}" }\nstore: { sqlite: { path: gatehouse.db } }\nkeys: { encryption_key: "\${file:kek}" }\n${DOWNSTREAM}`,
  );
});
after(async () => t.close());

/** Whether the server takes this secret for the client (introspection needs an authenticated client). */
async function authenticates(id: string, secret: string): Promise<number> {
  const res = await fetch(`${t.url}/token/introspection`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64'),
    },
    body: new URLSearchParams({ token: 'not-a-token' }),
  });
  await res.arrayBuffer();
  return res.status;
}

test('rotate-secret gives a downstream app a secret the running server takes, with overlap', async () => {
  const first = await runCli(['clients', 'rotate-secret', 'jira', '--config', configFile]);
  assert.equal(first.code, 0, first.stderr);
  const secret1 = /GATEHOUSE_CLIENT_SECRET=(\S+)/.exec(first.stdout)?.[1] ?? '';
  assert.ok(secret1);
  assert.equal(await authenticates('jira', secret1), 200);
  assert.equal(await authenticates('jira', `${secret1}x`), 401);

  const second = await runCli([
    'clients',
    'rotate-secret',
    'jira',
    '--overlap',
    '1h',
    '--config',
    configFile,
  ]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /keeps working until/);
  const secret2 = /GATEHOUSE_CLIENT_SECRET=(\S+)/.exec(second.stdout)?.[1] ?? '';
  assert.notEqual(secret2, secret1);
  assert.equal(await authenticates('jira', secret2), 200);
  assert.equal(await authenticates('jira', secret1), 200, 'the older secret works during the overlap');

  const [row] = (await t.gh.store.queryAudit({ type: 'secret.rotated', limit: 100 })).filter(
    (r) => r.data.client_id === 'jira',
  );
  assert.ok(row, 'the rotation is audited');
});

test('list shows downstream apps with their redirect URIs and secrets', async () => {
  const r = await runCli(['clients', 'list', '--config', configFile, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{
    id: string;
    source: string;
    redirect_uris?: string[];
    public?: boolean;
    secrets: Array<{ expires_at: string | null }>;
  }>;
  const jira = rows.find((x) => x.id === 'jira');
  assert.equal(jira?.source, 'downstream');
  assert.deepEqual(jira?.redirect_uris, ['https://jira.example.com/plugins/servlet/oauth/callback']);
  assert.ok(jira && jira.secrets.length >= 1);
  assert.ok(
    jira.secrets.every((s) => s.expires_at !== null),
    "secret_ttl gives the app's secrets an expiry",
  );
  const spa = rows.find((x) => x.id === 'dashboard-spa');
  assert.equal(spa?.public, true);

  const text = await runCli(['clients', 'list', '--config', configFile]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    /^jira {2}\(downstream app: Jira\) {2}redirect URIs: https:\/\/jira\.example\.com/m,
  );
  assert.match(text.stdout, /^dashboard-spa .*\n {2}public client: no secret \(PKCE only\)/m);
});

test('a public downstream app has no secret to rotate; create refuses a downstream id', async () => {
  const r = await runCli(['clients', 'rotate-secret', 'dashboard-spa', '--config', configFile]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /public downstream client: it has no secret/);
  const c = await runCli(['clients', 'create', 'jira', '--audience', 'x', '--config', configFile]);
  assert.equal(c.code, 2);
  assert.match(c.stderr, /client "jira" already exists/);
});
