// `gatehouse config check FILE` as a user runs it: a child process, its output and DESIGN.md exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-check-'));
// Resolved here because the child runs in a temp dir, where `--import tsx` would not find the package.
const TSX = import.meta.resolve('tsx');
const KEK = 'q8Vd7sLx0cRz3TnWf1yHb5KpM2aEjG9uXo4iNeC6AQs';

function gatehouse(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(
      process.execPath,
      ['--import', TSX, join(root, 'src/cli/main.ts'), ...args],
      { cwd: dir, env: { ...process.env, NODE_NO_WARNINGS: '1', ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

test('a valid file prints "FILE: ok" with a summary and exits 0', async () => {
  copyFileSync(join(root, 'examples/gatehouse.yaml'), join(dir, 'gatehouse.yaml'));
  mkdirSync(join(dir, 'secrets'), { recursive: true });
  writeFileSync(join(dir, 'secrets/kek'), `${KEK}\n`);
  const r = await gatehouse(['config', 'check', 'gatehouse.yaml']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'gatehouse.yaml: ok (issuer https://id.example.com, 2 clients)\n');
  assert.ok(!r.stdout.includes(KEK));
});

test('an invalid file lists every problem on stderr with lines, and exits 2', async () => {
  writeFileSync(
    join(dir, 'bad.yaml'),
    'issuer:\n  url: https://id.example.com\nkeys:\n  encryption_key: ${env:KEK}\n  algoritm: ES256\nlog:\n  level: loud\n',
  );
  const r = await gatehouse(['config', 'check', 'bad.yaml'], { KEK });
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.deepEqual(lines, [
    'bad.yaml:5:3 keys.algoritm: unknown key; did you mean "algorithm"?',
    'bad.yaml:7:10 log.level: "loud" is not allowed; use one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
    'bad.yaml: 2 problems',
  ]);
});

test('a wrong value from a reference is reported without printing the value', async () => {
  const secret = 'zz-very-secret-level-zz';
  writeFileSync(
    join(dir, 'ref.yaml'),
    'issuer:\n  url: https://id.example.com\nkeys:\n  encryption_key: ${env:KEK}\nlog:\n  level: ${env:LEVEL}\n',
  );
  const r = await gatehouse(['config', 'check', 'ref.yaml'], { KEK, LEVEL: secret });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /ref\.yaml:6:10 log\.level: "\$\{env:LEVEL\}" is not allowed/);
  assert.ok(!r.stderr.includes(secret) && !r.stderr.includes(KEK), r.stderr);
});

test('an unset variable is named with its line, and exits 2', async () => {
  const r = await gatehouse(['config', 'check', 'ref.yaml'], { KEK: '', LEVEL: 'info' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /ref\.yaml:4:19 keys\.encryption_key: environment variable KEK is not set/);
});

test('a missing file names the path and exits 2', async () => {
  const r = await gatehouse(['config', 'check', 'nowhere.yaml']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nowhere\.yaml does not exist/);
});

test('--help explains the command with an example', async () => {
  const r = await gatehouse(['config', 'check', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: gatehouse config check \[options\] <file>/);
  assert.match(r.stdout, /Example:\n\s+\$ gatehouse config check/);
});
