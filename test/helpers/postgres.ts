// Finds a PostgreSQL server for tests and gives each caller a fresh database of its own, so runs never
// see each other's data. Order: GATEHOUSE_TEST_DATABASE_URL, then 127.0.0.1:5432 (trust auth), then a
// throwaway cluster from Debian's initdb/pg_ctl. With none, tests skip and say why.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';

export const NO_POSTGRES = 'no PostgreSQL: set GATEHOUSE_TEST_DATABASE_URL or install postgresql';

const LOCAL_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** The admin URL of the server found, once per process. */
let server: Promise<string | undefined> | undefined;

export async function testDatabase(): Promise<{ url: string; drop: () => Promise<void> } | { skip: string }> {
  server ??= findServer();
  const admin = await server;
  if (!admin) return { skip: NO_POSTGRES };
  const name = `gatehouse_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdmin(admin, (sql) => sql.unsafe(`CREATE DATABASE "${name}" ENCODING 'UTF8' TEMPLATE template0`));
  const url = new URL(admin);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    drop: async () => {
      if (dropped) return;
      dropped = true;
      // FORCE (PostgreSQL 13+) ends connections a failed test left open.
      await withAdmin(admin, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

async function findServer(): Promise<string | undefined> {
  const fromEnv = process.env.GATEHOUSE_TEST_DATABASE_URL;
  if (fromEnv) return (await answers(fromEnv)) ? fromEnv : undefined;
  if (await answers(LOCAL_URL)) return LOCAL_URL;
  return startThrowawayCluster();
}

async function answers(url: string): Promise<boolean> {
  try {
    await withAdmin(url, (sql) => sql`SELECT 1`);
    return true;
  } catch {
    return false;
  }
}

async function withAdmin<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** initdb refuses to run as root, so the cluster belongs to the postgres user; stopped at exit. */
async function startThrowawayCluster(): Promise<string | undefined> {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const version = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')) && existsSync(join(base, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a))[0];
  if (!version) return undefined;
  const bin = join(base, version, 'bin');
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]): boolean => {
    const full = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
    const r = spawnSync(full[0] as string, full[1] as string[], { stdio: 'ignore', timeout: 60_000 });
    return r.status === 0;
  };
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pg-'));
  // The postgres user must be able to reach and write the directory.
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  const port = await sparePort();
  if (!run(join(bin, 'initdb'), ['-A', 'trust', '-U', 'postgres', '-D', data])) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  if (!run(join(bin, 'pg_ctl'), ['-D', data, '-o', options, '-w', '-l', join(dir, 'log'), 'start'])) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  process.on('exit', () => {
    run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
    rmSync(dir, { recursive: true, force: true });
  });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return (await answers(url)) ? url : undefined;
}

function sparePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
