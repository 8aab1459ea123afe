// Long-running `gatehouse` processes for tests: start one, wait for its `ready` line, read what it printed.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface RunningCli {
  child: ChildProcess;
  /** Every stdout line printed up to and including the `ready` line. */
  lines: string[];
  /** `KEY=value` lines as a map. */
  vars: Record<string, string>;
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startCli(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunningCli> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_NO_WARNINGS: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const lines: string[] = [];
  const vars: Record<string, string> = {};
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop('SIGKILL');
      reject(
        new Error(`no ready line within ${opts.timeoutMs ?? 30_000} ms; stdout:\n${out}\nstderr:\n${err}`),
      );
    }, opts.timeoutMs ?? 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      let i: number;
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        lines.push(line);
        const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
        if (m) vars[m[1] as string] = m[2] as string;
        if (line.startsWith('ready')) {
          clearTimeout(timer);
          resolve({ child, lines, vars, stderr: () => err, stop });
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ready; stderr:\n${err}`));
    });
  });
}
