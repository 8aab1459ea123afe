// Hot reload: a changed config file swaps in new routes and policies (watched, and on demand), requests in
// flight finish on the old state, a bad file is refused with all its problems and the old state keeps
// serving, and restart-only changes are reported rather than half-applied.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { generateKekText } from '../../src/keys/seal.js';
import { startGatehouse, type Gatehouse } from '../../src/server/app.js';
import { createLogger } from '../../src/lib/logger.js';
import { rotateSecret } from '../../src/issuer/client-secrets.js';
import { requestToken, tempDir } from '../helpers/gatehouse.js';
import { startUpstream, type RecordingUpstream } from '../helpers/proxy.js';

function yaml(
  dir: string,
  kek: string,
  upstream: string,
  extra: { roles: string; more?: string; port?: number },
) {
  return `
issuer: { url: "http://127.0.0.1:1" }
server: { host: 127.0.0.1, port: ${extra.port ?? 0} }
store: { sqlite: { path: ${JSON.stringify(join(dir, 'g.db'))} } }
keys: { encryption_key: "${kek}" }
log: { level: silent }
clients:
  - id: reader
    allowed_audiences: ["**"]
    roles: [reader]
routes:
  - name: app
    from: /app/
    to: [${upstream}]
    policy:
      - name: who
        allow: { roles: [${extra.roles}] }
${extra.more ?? ''}
`;
}

describe('configuration reload', () => {
  let dir: string;
  let file: string;
  let kek: string;
  let gh: Gatehouse;
  let up: RecordingUpstream;
  let token: string;
  const write = (text: string) => {
    // As editors do: write a new file and rename it over the old one.
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  const get = (path = '/app/x') =>
    fetch(`${gh.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

  before(async () => {
    dir = tempDir();
    file = join(dir, 'gatehouse.yaml');
    kek = generateKekText();
    up = await startUpstream();
    writeFileSync(file, yaml(dir, kek, up.url, { roles: 'admin' }));
    const loaded = await loadConfig(file);
    gh = await startGatehouse(loaded.config, {
      issuerFromAddress: true,
      logger: createLogger({ level: 'silent' }),
      configFile: loaded.file,
    });
    const secret = (await rotateSecret(gh.store, 'reader', { overlapMs: 0, now: Date.now() })).secret;
    const r = await requestToken(gh.url, { id: 'reader', secret }, { audience: `${gh.url}/app/` });
    token = r.body.access_token as string;
  });
  after(async () => {
    await gh.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a policy change applies without a restart and is audited', async () => {
    assert.equal((await get()).status, 403);
    write(yaml(dir, kek, up.url, { roles: 'reader' }));
    const r = await gh.reloader!.reload('signal');
    assert.equal(r.outcome, 'applied');
    assert.deepEqual(r.changed, ['routes']);
    assert.equal((await get()).status, 200);
    await gh.audit.flush();
    const rows = await gh.store.queryAudit({ type: 'config.reloaded', limit: 10 });
    assert.equal(rows.at(-1)?.data.trigger, 'signal');
  });

  test('a bad file is refused with every problem and its line; the running routes keep serving', async () => {
    const broken = yaml(dir, kek, up.url, {
      roles: 'reader',
      more: `  - name: second
    from: /second/
    to: [not-a-url]
    strip_prefix: maybe`,
    });
    write(broken);
    const r = await gh.reloader!.reload('manual');
    assert.equal(r.outcome, 'failed');
    assert.ok(r.problems.length >= 2, r.problems.join('\n'));
    assert.ok(
      r.problems.every((p) => /gatehouse\.yaml:\d+:\d+ /.test(p)),
      r.problems.join('\n'),
    );
    assert.ok(r.problems.some((p) => p.includes('routes[1].to')));
    assert.ok(r.problems.some((p) => p.includes('routes[1].strip_prefix')));
    assert.equal((await get()).status, 200);
    assert.equal((await get('/second/x')).status, 404);
    await gh.audit.flush();
    const rows = await gh.store.queryAudit({ type: 'config.reload_failed', limit: 10 });
    assert.ok((rows.at(-1)?.data.problems as string[]).length >= 2);
    const metrics = await (await fetch(`${gh.url}/metrics`)).text();
    assert.match(metrics, /gatehouse_config_reloads_total\{outcome="failed"\} [1-9]/);
  });

  test('a policy that does not compile is refused with its line', async () => {
    write(
      yaml(dir, kek, up.url, {
        roles: 'reader',
        more: `  - name: second
    from: /second/
    to: [${up.url}]
    policy:
      - name: bad
        allow: { rolez: [x] }`,
      }),
    );
    const r = await gh.reloader!.reload('manual');
    assert.equal(r.outcome, 'failed');
    assert.ok(
      r.problems.some((p) => /gatehouse\.yaml:\d+:\d+ routes\[1\]\.policy/.test(p)),
      r.problems.join('\n'),
    );
    assert.equal((await get()).status, 200);
  });

  test('restart-only changes are reported, not applied', async () => {
    write(yaml(dir, kek, up.url, { roles: 'reader', port: 4567 }));
    const r = await gh.reloader!.reload('manual');
    assert.equal(r.outcome, 'unchanged');
    assert.deepEqual(r.needsRestart, ['server.port']);
    assert.equal(gh.reloader!.config.server.port, 0);
  });

  test('a request in flight finishes on the state it started with', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    up.respond = (_req, res) => {
      void gate.then(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('old');
      });
    };
    const seen = up.seen.length;
    const inflight = get('/app/slow');
    while (up.seen.length === seen) await new Promise((r) => setTimeout(r, 10));
    // The route goes away entirely while the request waits on its upstream.
    write(
      yaml(dir, kek, up.url, { roles: 'reader' }).replace(
        'name: app\n    from: /app/',
        'name: app\n    from: /moved/',
      ),
    );
    assert.equal((await gh.reloader!.reload('manual')).outcome, 'applied');
    release();
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'old');
    up.respond = undefined;
    assert.equal((await get('/app/x')).status, 404);
  });

  test('the file is watched: a replaced file is picked up on its own', async () => {
    write(yaml(dir, kek, up.url, { roles: 'admin' }));
    const deadline = Date.now() + 5000;
    while ((await get()).status !== 403) {
      assert.ok(Date.now() < deadline, 'the watched change was not applied within 5s');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});
