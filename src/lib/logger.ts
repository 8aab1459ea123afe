// Logging: pino JSON for machines, or one readable line per event for people (`--log-format pretty`).
// Known secret values (resolved `${env:…}`/`${file:…}` references) are scrubbed from every line, and
// fields that could hold credentials are redacted by name.
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'token',
  'secret',
  'client_secret',
  'password',
  'authorization',
  '*.token',
  '*.secret',
  '*.client_secret',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
];

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

function scrubber(secrets: Iterable<string>): (line: string) => string {
  const list = [...secrets].filter((s) => s.length >= 6);
  if (list.length === 0) return (l) => l;
  return (line) => {
    let out = line;
    for (const s of list) if (out.includes(s)) out = out.split(s).join('[secret]');
    return out;
  };
}

function prettyLine(json: string): string {
  try {
    const o = JSON.parse(json) as Record<string, unknown>;
    const { level, time, msg, pid: _pid, hostname: _h, ...rest } = o;
    const t = new Date(Number(time)).toISOString().slice(11, 23);
    const extra = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${t} ${(LEVELS[Number(level)] ?? String(level)).padEnd(5)} ${String(msg ?? '')}${extra ? ' ' + extra : ''}\n`;
  } catch {
    return json;
  }
}

export function createLogger(opts: {
  level?: string;
  format?: 'json' | 'pretty';
  secrets?: Iterable<string>;
  destination?: NodeJS.WritableStream;
}): Logger {
  const scrub = scrubber(opts.secrets ?? []);
  const out = opts.destination ?? process.stderr;
  const pretty = opts.format === 'pretty';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = scrub(chunk.toString());
      out.write(pretty ? text.split('\n').filter(Boolean).map(prettyLine).join('') : text);
      cb();
    },
  });
  return pino(
    { level: opts.level ?? 'info', redact: { paths: REDACT, censor: '[redacted]' }, base: undefined },
    stream,
  );
}
