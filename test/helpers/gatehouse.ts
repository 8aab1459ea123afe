// Starts a real Gatehouse for a test: its own temp directory, SQLite store and key-encryption key, on
// port 0, with the issuer URL taken from the bound address.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { parseConfigText } from '../../src/config/load.js';
import { generateKekText } from '../../src/keys/seal.js';
import { rotateSecret } from '../../src/issuer/client-secrets.js';
import { startGatehouse, type Gatehouse } from '../../src/server/app.js';
import { createLogger } from '../../src/lib/logger.js';
import { testDatabase } from './postgres.js';

export interface TestGatehouse {
  gh: Gatehouse;
  url: string;
  dir: string;
  /** Creates (or rotates) a secret for a client and returns it. */
  secretFor(clientId: string, opts?: { ttlMs?: number; overlapMs?: number }): Promise<string>;
  close(): Promise<void>;
}

export function tempDir(prefix = 'gatehouse-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The store tests run on unless they say: GATEHOUSE_TEST_STORE=postgres runs them on a fresh database. */
export function defaultTestStore(): 'sqlite' | 'postgres' {
  return process.env.GATEHOUSE_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';
}

export async function startTestGatehouse(
  opts: {
    yaml?: string;
    base?: Record<string, unknown>;
    now?: () => number;
    /** sqlite (a temp file) or postgres (a fresh database from testDatabase(), dropped on close). */
    store?: 'sqlite' | 'postgres';
    /** How often the server's housekeeping looks for expired rows (default 5 minutes). */
    maintenanceIntervalMs?: number;
  } = {},
): Promise<TestGatehouse> {
  const dir = tempDir();
  let dropDatabase: (() => Promise<void>) | undefined;
  let storeSection: Record<string, unknown> = { sqlite: { path: join(dir, 'gatehouse.db') } };
  if ((opts.store ?? defaultTestStore()) === 'postgres') {
    const db = await testDatabase();
    if ('skip' in db) throw new Error(db.skip);
    dropDatabase = db.drop;
    storeSection = { postgres: { url: db.url, pool: 4 } };
  }
  const base: Record<string, unknown> = {
    issuer: { url: 'http://127.0.0.1:1' },
    server: { host: '127.0.0.1', port: 0 },
    store: storeSection,
    keys: { encryption_key: generateKekText() },
    log: { level: 'silent' },
    ...opts.base,
  };
  const { config } = parseConfigText(opts.yaml ?? '', { file: 'test.yaml', baseDir: dir, base });
  const gh = await startGatehouse(config, {
    issuerFromAddress: true,
    logger: createLogger({ level: 'silent' }),
    now: opts.now,
    maintenanceIntervalMs: opts.maintenanceIntervalMs,
  });
  return {
    gh,
    url: gh.config.issuer.url,
    dir,
    async secretFor(clientId, o = {}) {
      const r = await rotateSecret(gh.store, clientId, {
        ttlMs: o.ttlMs,
        overlapMs: o.overlapMs ?? 0,
        now: (opts.now ?? Date.now)(),
      });
      return r.secret;
    },
    async close() {
      await gh.close();
      await dropDatabase?.();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** POSTs a client-credentials request the way a CI job would. */
export async function requestToken(
  url: string,
  client: { id: string; secret: string },
  form: Record<string, string | string[]>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  for (const [k, v] of Object.entries(form))
    for (const item of Array.isArray(v) ? v : [v]) body.append(k, item);
  const res = await fetch(`${url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from(`${client.id}:${client.secret}`).toString('base64'),
    },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** POSTs an RFC 8693 token exchange: as the public `gatehouse-cli` client, or a service account with `basic`. */
export async function exchangeToken(
  url: string,
  form: Record<string, string | undefined>,
  basic?: { id: string; secret: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange' });
  if (!basic) body.set('client_id', 'gatehouse-cli');
  for (const [k, v] of Object.entries(form)) if (v !== undefined) body.append(k, v);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic) headers.authorization = 'Basic ' + Buffer.from(`${basic.id}:${basic.secret}`).toString('base64');
  const res = await fetch(`${url}/token`, { method: 'POST', headers, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const ROOT = new URL('../../', import.meta.url).pathname;

/** Runs the `gatehouse` CLI from source as a child process. */
export function runCli(
  args: string[],
  opts: {
    env?: Record<string, string | undefined>;
    input?: string;
    timeoutMs?: number;
    /** Sees stderr as it arrives (to act on a message while the command still runs). */
    onStderr?: (soFar: string) => void;
  } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, NODE_NO_WARNINGS: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(stderr);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
