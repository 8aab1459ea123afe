// Runs the whole suite: node:test through tsx, with the test files listed explicitly in test/files.txt.
// A *.test.ts file that is not listed fails the run, so no test is silently left out; a file listed twice
// fails it too, since node:test would run it twice (twice the time, and its fixtures would race).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const listed = readFileSync(join(root, 'test/files.txt'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

const found = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) found.push(relative(root, p));
  }
})(join(root, 'test'));

const missing = found.filter((f) => !listed.includes(f));
const stale = listed.filter((f) => !found.includes(f));
const twice = [...new Set(listed.filter((f, i) => listed.indexOf(f) !== i))];
if (missing.length || stale.length || twice.length) {
  if (missing.length) console.error(`test/files.txt does not list: ${missing.join(', ')}`);
  if (stale.length) console.error(`test/files.txt lists files that do not exist: ${stale.join(', ')}`);
  if (twice.length)
    console.error(`test/files.txt lists ${twice.join(', ')} more than once; keep one line for each file`);
  process.exit(2);
}

const only = process.argv.slice(2);
const files = only.length ? only : listed;
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=3', '--test-timeout=120000', ...files],
  { stdio: 'inherit', cwd: root, env: { ...process.env, NODE_NO_WARNINGS: '1' } },
);
process.exit(r.status ?? 3);
