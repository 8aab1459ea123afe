// Real nginx and Caddy for forward-auth tests and benchmarks: the configs in examples/, templated with
// this run's ports and a temp prefix, started in the foreground and stopped by the caller.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NGINX = '/usr/sbin/nginx';
export const CADDY = '/usr/bin/caddy';
const root = new URL('../../', import.meta.url).pathname;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        r(true);
      });
      c.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}

export interface EdgeProxy {
  port: number;
  url: string;
  dir: string;
  stderr: () => string;
  close(): Promise<void>;
}

/** The example's addresses (Gatehouse 8080, app 3000, proxy 8000) replaced by this run's. */
export function template(text: string, ports: { gatehouse: number; app: number; proxy: number }): string {
  return text
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${ports.gatehouse}`)
    .replaceAll('127.0.0.1:3000', `127.0.0.1:${ports.app}`)
    .replaceAll('127.0.0.1:8000', `127.0.0.1:${ports.proxy}`);
}

async function run(cmd: string, args: string[], dir: string, port: number, env = {}): Promise<EdgeProxy> {
  let err = '';
  const child: ChildProcess = spawn(cmd, args, {
    cwd: dir,
    env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await Promise.race([
      waitForPort(port),
      exited.then(() => {
        throw new Error(`${cmd} exited: ${err}`);
      }),
    ]);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    stderr: () => err,
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** nginx with a full config text (already templated), in the foreground, logging errors to stderr. */
export async function startNginx(conf: string, port: number): Promise<EdgeProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-nginx-'));
  // As root nginx would drop its workers to `nobody`, who cannot write the temp prefix.
  const user = process.getuid?.() === 0 ? 'user root; ' : '';
  writeFileSync(join(dir, 'nginx.conf'), conf);
  return run(
    NGINX,
    [
      '-e',
      'stderr',
      '-p',
      dir,
      '-c',
      join(dir, 'nginx.conf'),
      '-g',
      `${user}daemon off; pid ${join(dir, 'nginx.pid')}; error_log stderr;`,
    ],
    dir,
    port,
  );
}

export async function startCaddy(caddyfile: string, port: number): Promise<EdgeProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-caddy-'));
  writeFileSync(join(dir, 'Caddyfile'), caddyfile);
  return run(CADDY, ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], dir, port);
}

export function example(path: string): string {
  return readFileSync(join(root, 'examples', path), 'utf8');
}

export function hasBinary(path: string): boolean {
  return existsSync(path);
}
