// scripts/test.mjs checks test/files.txt before it runs anything: a test file left out, a listed file
// that does not exist, or a file listed twice (node:test would run it twice) stops the run with exit 2.
// Each case runs a copy of the script in a scratch repository, so the real list is never touched.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../helpers/gatehouse.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A scratch repository with the runner, two trivial tests, and test/files.txt as given. */
function scratch(list: string): string {
  const dir = tempDir('gatehouse-runner-');
  dirs.push(dir);
  mkdirSync(join(dir, 'scripts'));
  mkdirSync(join(dir, 'test', 'unit'), { recursive: true });
  copyFileSync(join(ROOT, 'scripts/test.mjs'), join(dir, 'scripts/test.mjs'));
  // tsx is resolved from the scratch directory.
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  for (const name of ['a', 'b'])
    writeFileSync(
      join(dir, 'test/unit', `${name}.test.ts`),
      `import { test } from 'node:test';\ntest('${name} runs', () => {});\n`,
    );
  writeFileSync(join(dir, 'test/files.txt'), list);
  return dir;
}

function run(dir: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(dir, 'scripts/test.mjs')], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
    // Without this the nested node:test would report to this one rather than print.
    env: { ...process.env, NODE_NO_WARNINGS: '1', NODE_TEST_CONTEXT: undefined },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a list naming every test file once runs them', () => {
  const r = run(scratch('test/unit/a.test.ts\n# a comment\ntest/unit/b.test.ts\n'));
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /a runs/);
  assert.match(r.stdout, /b runs/);
});

test('a file listed twice stops the run before any test, naming the file', () => {
  const r = run(scratch('test/unit/a.test.ts\ntest/unit/b.test.ts\n  test/unit/a.test.ts\n'));
  assert.equal(r.code, 2, r.stderr + r.stdout);
  assert.match(r.stderr, /test\/files\.txt lists test\/unit\/a\.test\.ts more than once/);
  assert.doesNotMatch(r.stderr, /b\.test\.ts/);
  assert.doesNotMatch(r.stdout, /runs/, 'tests ran despite the duplicate');
});

test('a file left out, or a listed file that does not exist, still stops the run', () => {
  const left = run(scratch('test/unit/a.test.ts\n'));
  assert.equal(left.code, 2);
  assert.match(left.stderr, /does not list: test\/unit\/b\.test\.ts/);
  const stale = run(scratch('test/unit/a.test.ts\ntest/unit/b.test.ts\ntest/unit/gone.test.ts\n'));
  assert.equal(stale.code, 2);
  assert.match(stale.stderr, /lists files that do not exist: test\/unit\/gone\.test\.ts/);
});
