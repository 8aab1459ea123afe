// `npm run bench`: runs every bench/*.bench.ts (each exports `run(): Promise<BenchResult[]>`), or only
// those named on the command line, and prints one table with absolute figures and ratios against the
// reference measured in the same run (absolute figures drift between runs; ratios hold).
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult } from './lib.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.includes(basename(f, '.bench.ts')))
  .sort();

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined
    ? ''
    : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

const all: BenchResult[] = [];
for (const f of files) {
  const mod = (await import(pathToFileURL(join(dir, f)).href)) as { run?: () => Promise<BenchResult[]> };
  if (typeof mod.run !== 'function') throw new TypeError(`${f} does not export run()`);
  process.stderr.write(`running ${f}…\n`);
  all.push(...(await mod.run()));
}

const lines: string[][] = [['group', 'case', 'ops/s', 'unit', 'p50 ms', 'p99 ms', 'ratio']];
for (const r of all) {
  const ref = r.vs ? all.find((o) => o.group === r.group && o.name === r.vs) : undefined;
  lines.push([
    r.group,
    r.name,
    fmt(r.value),
    r.unit,
    fmt(r.p50Ms, 2),
    fmt(r.p99Ms, 2),
    ref ? `${(r.value / ref.value).toFixed(2)}× ${r.vs}` : '',
  ]);
}
const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
for (const l of lines) {
  process.stdout.write(
    l
      .map((c, i) => ([2, 4, 5].includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd() + '\n',
  );
}
process.stdout.write(
  `\nnode ${process.version}, ${process.platform}/${process.arch}; each case ${process.env.BENCH_SECONDS ?? '3'} s on 127.0.0.1\n`,
);
