// The dev stack (`gatehouse dev`, `npm start`): Gatehouse on the embedded store in a local data
// directory, with a generated key-encryption key and a demo service account. Dev-only shortcuts (the
// KEK and the demo secret kept in plain files in the data dir) are announced loudly.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig, parseConfigText } from '../config/load.js';
import { generateKekText } from '../keys/seal.js';
import { rotateSecret } from '../issuer/client-secrets.js';
import type { Logger } from '../lib/logger.js';
import { createLogger } from '../lib/logger.js';
import { startGatehouse, type Gatehouse } from './app.js';
import { startDevIdp } from './dev-idp.js';
import { startDemoApp } from './demo-app.js';

export const DEMO_CLIENT_ID = 'demo-ci';

export interface DevStackOptions {
  port?: number;
  dataDir?: string;
  configFile?: string;
  logger?: Logger;
  /** Where the loud dev-only warnings go (stderr by default). */
  warn?: (line: string) => void;
}

export interface DevStack {
  gatehouse: Gatehouse;
  clientId: string;
  clientSecret: string;
  /** The lines `gatehouse dev` prints, in order, the last starting with `ready`. */
  lines: string[];
  close(): Promise<void>;
}

function readOrCreate(path: string, make: () => string, onCreate: () => void): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const value = make();
  writeFileSync(path, value + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  onCreate();
  return value;
}

export async function startDevStack(opts: DevStackOptions = {}): Promise<DevStack> {
  const dataDir = resolve(opts.dataDir ?? '.gatehouse');
  const warn = opts.warn ?? ((l: string) => process.stderr.write(l + '\n'));
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const kekPath = join(dataDir, 'kek');
  const kek = readOrCreate(kekPath, generateKekText, () =>
    warn(
      `WARNING: dev mode generated a key-encryption key in ${kekPath}; never use a dev data directory in production`,
    ),
  );
  const port = opts.port ?? 8080;
  // The development upstream IdP with the demo people (alice, bob), wired below as connector `dev`.
  const idp = await startDevIdp();
  // The demo upstream of DESIGN.md, routed at DEMO_URL on the issuer's own port (path prefix /demo/).
  const demo = await startDemoApp();
  const base: Record<string, unknown> = {
    issuer: { url: `http://127.0.0.1:${port}` },
    server: { host: '127.0.0.1', port },
    store: { sqlite: { path: join(dataDir, 'gatehouse.db') } },
    keys: { algorithm: 'ES256', encryption_key: kek },
    connectors: [
      {
        id: 'dev',
        name: 'Development IdP',
        issuer: idp.url,
        client_id: idp.clientId,
        client_secret: idp.clientSecret,
        scopes: ['openid', 'email', 'profile', 'groups'],
        email_domains: ['example.com'],
      },
    ],
    roles: { admin: ['admins'], engineer: ['engineering'] },
    log: { level: 'warn', format: 'pretty' },
    routes: [
      {
        name: 'demo',
        from: '/demo/',
        to: [demo.url],
        policy: [
          {
            name: 'admin-area',
            deny: { all: [{ path: ['/demo/admin', '/demo/admin/**'] }, { not: { roles: ['admin'] } }] },
            message: 'the admin area needs role admin',
          },
          { name: 'signed-in', allow: { claim: 'sub', exists: true } },
        ],
      },
    ],
  };
  let gatehouse: Gatehouse;
  try {
    const loaded = opts.configFile
      ? await loadConfig(opts.configFile, { base })
      : parseConfigText('', { file: '(dev defaults)', baseDir: dataDir, base });
    const logger =
      opts.logger ??
      createLogger({
        level: loaded.config.log.level,
        format: loaded.config.log.format,
        secrets: [...loaded.secrets, kek],
      });
    gatehouse = await startGatehouse(loaded.config, { logger, issuerFromAddress: true });
  } catch (e) {
    await demo.close();
    await idp.close();
    throw e;
  }
  try {
    idp.allowRedirect(
      gatehouse.browserAuth.redirectUri,
      `${gatehouse.config.issuer.url}/.gatehouse/signed-out`,
    );
    warn(`WARNING: dev mode runs a development IdP at ${idp.url} whose passwords are printed below`);
    // The dev IdP stops with Gatehouse.
    const closeGatehouse = gatehouse.close.bind(gatehouse);
    gatehouse.close = async () => {
      await closeGatehouse();
      await idp.close();
    };
    // The demo service account lives in the store, so admin commands on the data dir see it too.
    const { store } = gatehouse;
    const now = Date.now();
    if (!(await store.getClient(DEMO_CLIENT_ID))) {
      await store.upsertClient({
        id: DEMO_CLIENT_ID,
        metadata: {
          id: DEMO_CLIENT_ID,
          name: 'Demo service account (dev stack)',
          grant_types: ['client_credentials'],
          allowed_audiences: ['**'],
          roles: ['reader'],
          claims: { pipeline: 'demo' },
        },
        createdAt: now,
      });
      await store.publishChange('clients', DEMO_CLIENT_ID);
    }
    const secretPath = join(dataDir, 'demo-client-secret');
    let secret = existsSync(secretPath) ? readFileSync(secretPath, 'utf8').trim() : '';
    const live = (await store.listSecrets(DEMO_CLIENT_ID)).some(
      (s) => s.expiresAt === null || s.expiresAt > now,
    );
    if (!secret || !live) {
      secret = (await rotateSecret(store, DEMO_CLIENT_ID, { overlapMs: 0, now })).secret;
      writeFileSync(secretPath, secret + '\n', { mode: 0o600 });
      chmodSync(secretPath, 0o600);
      await gatehouse.audit.append('secret.rotated', {
        client_id: DEMO_CLIENT_ID,
        reason: 'dev stack demo account',
      });
    }
    warn(`WARNING: dev mode keeps the demo account's secret in ${secretPath}`);
    const lines = [
      `GATEHOUSE_SERVER=${gatehouse.config.issuer.url}`,
      `GATEHOUSE_CLIENT_ID=${DEMO_CLIENT_ID}`,
      `GATEHOUSE_CLIENT_SECRET=${secret}`,
      `DEMO_URL=${gatehouse.config.issuer.url}/demo/`,
      ...idp.people.map((p) => `LOGIN ${p.username} / ${p.password}`),
      `ready issuer=${gatehouse.config.issuer.url} discovery=${gatehouse.config.issuer.url}/.well-known/openid-configuration data_dir=${dataDir}`,
    ];
    return {
      gatehouse,
      clientId: DEMO_CLIENT_ID,
      clientSecret: secret,
      lines,
      close: async () => {
        await gatehouse.close();
        await demo.close();
      },
    };
  } catch (e) {
    await gatehouse.close();
    await demo.close();
    throw e;
  }
}
