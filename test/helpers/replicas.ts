// Several Gatehouse replicas on one fresh PostgreSQL database, as a load balancer would front them:
// `gatehouse serve` child processes sharing the issuer URL and the key-encryption key, each on its own
// port; and a TCP forwarder between Gatehouse and PostgreSQL that a test can cut and restore.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKekText } from '../../src/keys/seal.js';
import { testDatabase } from './postgres.js';
import { startCli, type RunningCli } from './processes.js';

/** Why PostgreSQL tests skip here, or undefined when a server was found (checked once per process). */
let probe: Promise<string | undefined> | undefined;
export function postgresSkipReason(): Promise<string | undefined> {
  probe ??= (async () => {
    const db = await testDatabase();
    if ('skip' in db) return db.skip;
    await db.drop();
    return undefined;
  })();
  return probe;
}

export interface ReplicaSetup {
  dir: string;
  /** The shared database (dropped by `close`). */
  databaseUrl: string;
  /** The public issuer URL every replica carries in its tokens. */
  issuer: string;
  kekText: string;
  /** Writes a replica's config file (store URL may point at a forwarder) and returns its path. */
  writeConfig(
    name: string,
    opts?: { databaseUrl?: string; grace?: string; yaml?: string; keys?: string },
  ): string;
  close(): Promise<void>;
}

export const CLIENT_YAML = `clients:
  - id: ci
    allowed_audiences: ["**"]
    max_ttl: 1h
    roles: [deployer]
`;

/** A temp dir, a fresh database and the shared settings; skips (returns the reason) without PostgreSQL. */
export async function setupReplicas(
  opts: { issuer?: string } = {},
): Promise<ReplicaSetup | { skip: string }> {
  const db = await testDatabase();
  if ('skip' in db) return db;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-replicas-'));
  const kekText = generateKekText();
  writeFileSync(join(dir, 'kek'), kekText + '\n', { mode: 0o600 });
  const issuer = opts.issuer ?? 'https://auth.example.test';
  return {
    dir,
    databaseUrl: db.url,
    issuer,
    kekText,
    writeConfig(name, o = {}) {
      const path = join(dir, `${name}.yaml`);
      writeFileSync(
        path,
        [
          `issuer: { url: "${issuer}" }`,
          `server: { host: 127.0.0.1, port: 0 }`,
          `store:`,
          `  postgres:`,
          `    url: "${o.databaseUrl ?? db.url}"`,
          `    pool: 4`,
          `    grace: ${o.grace ?? '30s'}`,
          `keys: { encryption_key: "\${file:kek}"${o.keys ? `, ${o.keys}` : ''} }`,
          `log: { level: warn }`,
          o.yaml ?? CLIENT_YAML,
        ].join('\n'),
      );
      return path;
    },
    async close() {
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Replica {
  cli: RunningCli;
  /** Where this replica listens (its own port; the issuer URL is shared). */
  url: string;
  config: string;
}

/** Starts `gatehouse serve --config FILE` and waits for its ready line. */
export async function startReplica(config: string): Promise<Replica> {
  const cli = await startCli(['serve', '--config', config], { timeoutMs: 30_000 });
  const ready = cli.lines.find((l) => l.startsWith('ready')) ?? '';
  const m = /listening=(\S+)/.exec(ready);
  if (!m) throw new Error(`no listening= in ready line: ${ready}`);
  return { cli, url: m[1] as string, config };
}

/**
 * A TCP forwarder to PostgreSQL that a test controls: `cut()` drops every open connection and refuses
 * new ones (what a database restart or a network partition looks like to a client), `restore()` lets
 * them through again.
 */
export interface TcpForwarder {
  port: number;
  /** The database URL rewritten to go through the forwarder. */
  urlFor(databaseUrl: string): string;
  cut(): void;
  restore(): void;
  readonly connections: number;
  close(): Promise<void>;
}

export async function startForwarder(target: { host: string; port: number }): Promise<TcpForwarder> {
  const open = new Set<Socket>();
  let down = false;
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    open.add(client);
    open.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    urlFor(databaseUrl) {
      const u = new URL(databaseUrl);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut() {
      down = true;
      for (const s of open) s.destroy();
      open.clear();
    },
    restore() {
      down = false;
    },
    get connections() {
      return open.size / 2;
    },
    async close() {
      down = true;
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Where the database URL points (the forwarder's target). */
export function hostPort(databaseUrl: string): { host: string; port: number } {
  const u = new URL(databaseUrl);
  return { host: u.hostname, port: Number(u.port || 5432) };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; returns the value or throws. */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${opts.what ?? 'a condition'}${last ? `: ${String(last)}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}
