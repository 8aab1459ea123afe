// Durations everywhere in Gatehouse are written `90s`, `10m`, `1h`, `7d` (DESIGN.md); this is the one parser.

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+)(ms|s|m|h|d)$/;

/** Milliseconds for a duration string, or undefined when it is not one (`10m` → 600000). */
export function parseDuration(text: string): number | undefined {
  const m = PATTERN.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = UNITS[m[2] as string];
  return Number.isSafeInteger(n) && unit ? n * unit : undefined;
}

/** The shortest exact spelling of a duration in milliseconds (600000 → `10m`). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
