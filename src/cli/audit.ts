// `gatehouse audit tail|export|verify|prune`: reads, ships, checks and trims the audit log, acting on
// the store directly (safe while servers run).
import { createWriteStream, readFileSync } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import type { JWK } from 'jose';
import {
  checkpointVerifierFromStore,
  createCheckpointVerifier,
  pruneAudit,
  verifyAuditLog,
  type AuditVerifyResult,
} from '../audit/index.js';
import { parseDuration } from '../lib/duration.js';
import { EXIT, GatehouseError } from '../lib/errors.js';
import type { AuditRow, Store } from '../store/store.js';
import { withStore, withStoreOptions, type StoreOptions } from './context.js';

const PAGE = 1000;

export function register(program: Command): void {
  const audit = program
    .command('audit')
    .description('read, export, verify and prune the tamper-evident audit log');

  withStoreOptions(audit.command('tail'))
    .description('print the latest audit records')
    .option('-n, --lines <n>', 'how many records', '20')
    .option('-f, --follow', 'keep printing new records as they are written (Ctrl-C stops)')
    .option('-t, --type <type>', 'only records of this type, like token.refused')
    .option('--json', 'one JSON object per line')
    .addHelpText(
      'after',
      `
Example:
  $ gatehouse audit tail -n 5 --type token.refused --data-dir .gatehouse
  2026-01-01T12:00:00.000Z  #1042  token.refused  a_Qm9vZ1xY3hLk0c2  {"client_id":"ci","reason":"aud"}
`,
    )
    .action(
      async (opts: StoreOptions & { lines: string; follow?: boolean; type?: string; json?: boolean }) => {
        const n = Number(opts.lines);
        if (!Number.isSafeInteger(n) || n < 0)
          throw usage(`--lines must be a whole number, got ${opts.lines}`);
        await withStore(opts, async ({ store }) => {
          const rows = await lastRows(store, n, opts.type);
          for (const r of rows) print(r, opts.json);
          if (!opts.follow) return;
          let after = rows.at(-1)?.seq ?? (await store.auditHead())?.seq ?? 0;
          const stop = new AbortController();
          const onSignal = () => stop.abort();
          process.once('SIGINT', onSignal);
          process.once('SIGTERM', onSignal);
          try {
            while (!stop.signal.aborted) {
              const q =
                opts.type === undefined
                  ? { afterSeq: after, limit: PAGE }
                  : { afterSeq: after, type: opts.type, limit: PAGE };
              const page = await store.queryAudit(q);
              for (const r of page) print(r, opts.json);
              after = page.at(-1)?.seq ?? after;
              if (page.length < PAGE) await sleep(500, stop.signal);
            }
          } finally {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
          }
        });
      },
    );

  withStoreOptions(audit.command('show'))
    .argument('<id>', 'the audit id a client was shown, like a_Qm9vZ1xY3hLk0c2Q')
    .description('print one audit record in full: the whole explanation behind a refusal')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
A refusal tells the client "(audit id a_…)"; this prints the record behind it, with every reason.

Example:
  $ gatehouse audit show a_Qm9vZ1xY3hLk0c2Q --config /etc/gatehouse/gatehouse.yaml
`,
    )
    .action(async (id: string, opts: StoreOptions & { json?: boolean }) => {
      await withStore(opts, async ({ store }) => {
        const [row] = await store.queryAudit({ id, limit: 1 });
        if (!row) {
          throw new GatehouseError('ERR_NOT_FOUND', `no audit record with id ${id}`, {
            hint: 'check the id, and that this is the store of the server that answered (--config or --data-dir)',
          });
        }
        if (opts.json) {
          process.stdout.write(JSON.stringify(row) + '\n');
          return;
        }
        process.stdout.write(
          `${new Date(row.ts).toISOString()}  #${row.seq}  ${row.type}  ${row.id}\n${JSON.stringify(row.data, null, 2)}\n`,
        );
      });
    });

  withStoreOptions(audit.command('export'))
    .description('write audit records as JSON lines, for a SIEM')
    .option('--format <format>', 'output format (only jsonl)', 'jsonl')
    .option(
      '--since <date>',
      'records from this time on: a date (2026-01-31, ISO 8601) or a duration ago (7d)',
    )
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .addHelpText(
      'after',
      `
Each line holds seq, ts (epoch ms), time (ISO 8601), type, id, data, prev_hash and hash, so the
receiver can check the chain too.

Example:
  $ gatehouse audit export --format jsonl --since 24h --output audit.jsonl --config gatehouse.yaml
  exported 1042 records (seq 1 to 1042) to audit.jsonl
`,
    )
    .action(async (opts: StoreOptions & { format: string; since?: string; output?: string }) => {
      if (opts.format !== 'jsonl') throw usage(`--format must be jsonl, got ${opts.format}`);
      const since = opts.since === undefined ? undefined : parseWhen(opts.since, '--since').getTime();
      await withStore(opts, async ({ store }) => {
        const out: Writable = opts.output ? createWriteStream(opts.output) : process.stdout;
        let count = 0;
        let first: number | undefined;
        let last: number | undefined;
        let afterSeq: number | undefined;
        for (;;) {
          const q = {
            limit: PAGE,
            ...(afterSeq === undefined ? {} : { afterSeq }),
            ...(since === undefined ? {} : { since }),
          };
          const page = await store.queryAudit(q);
          for (const r of page) {
            if (!out.write(`${JSON.stringify(exportLine(r))}\n`)) await once(out, 'drain');
            first ??= r.seq;
            last = r.seq;
            count += 1;
          }
          if (page.length < PAGE) break;
          afterSeq = last;
        }
        if (opts.output) {
          out.end();
          await once(out, 'finish');
          const range = count ? ` (seq ${first} to ${last})` : '';
          process.stderr.write(
            `exported ${count} record${count === 1 ? '' : 's'}${range} to ${opts.output}\n`,
          );
        }
      });
    });

  withStoreOptions(audit.command('verify'))
    .description('recompute the hash chain and check every signed checkpoint; exit 1 when broken')
    .option(
      '--trusted-head <seq:hash>',
      'a head kept elsewhere (a shipped audit.checkpoint), to catch truncation',
    )
    .option('--jwks <file>', "verify checkpoints against this JWKS file instead of the store's own keys")
    .addHelpText(
      'after',
      `
Names the first record that breaks the chain (edited, inserted, deleted), a checkpoint that does not
verify or no longer matches, or a tail cut off before a checkpoint or the trusted head.
Exit codes: 0 intact, 1 broken, 3 store unavailable.

Example:
  $ gatehouse audit verify --data-dir .gatehouse --trusted-head 1042:9f86d081884c7d65…
  ok: 1042 records, 2 checkpoints, head 1042 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
`,
    )
    .action(async (opts: StoreOptions & { trustedHead?: string; jwks?: string }) => {
      const trustedHead = opts.trustedHead === undefined ? undefined : parseHead(opts.trustedHead);
      const fromFile = opts.jwks === undefined ? undefined : readJwks(opts.jwks);
      await withStore(opts, async ({ store }) => {
        const verifyCheckpoint = fromFile
          ? createCheckpointVerifier(fromFile)
          : await checkpointVerifierFromStore(store);
        const result = await verifyAuditLog(store, {
          verifyCheckpoint,
          ...(trustedHead ? { trustedHead } : {}),
        });
        if (result.ok) {
          const head = result.head ? `head ${result.head.seq} ${result.head.hash}` : 'empty';
          process.stdout.write(
            `ok: ${plural(result.checked, 'record')}, ${plural(result.checkpoints, 'checkpoint')}, ${head}\n`,
          );
          process.exitCode = EXIT.ok;
        } else {
          process.stdout.write(`broken: ${describeBreak(result)}\n`);
          process.stdout.write(
            `(${plural(result.checked, 'record')} before it verified, ${plural(result.checkpoints, 'checkpoint')})\n`,
          );
          process.exitCode = EXIT.no;
        }
      });
    });

  withStoreOptions(audit.command('prune'))
    .description('delete old records, keeping the chain verifiable from a signed checkpoint')
    .requiredOption('--before <date>', 'a date (2026-01-31, ISO 8601) or a duration ago (90d)')
    .addHelpText(
      'after',
      `
Deletes records older than the latest checkpoint made at or before DATE; that checkpoint's record is
kept, and \`audit verify\` starts from it. Export first if the records must be kept elsewhere.

Example:
  $ gatehouse audit prune --before 90d --config gatehouse.yaml
  pruned 52310 records; the chain now starts at record 52311 (checkpoint of 2025-10-03T00:00:00.000Z)
`,
    )
    .action(async (opts: StoreOptions & { before: string }) => {
      const before = parseWhen(opts.before, '--before');
      await withStore(opts, async ({ store }) => {
        const r = await pruneAudit(store, before);
        if (!r.checkpoint) {
          process.stdout.write(
            `nothing to prune: no checkpoint was made at or before ${before.toISOString()}\n`,
          );
          return;
        }
        const when = new Date(r.checkpoint.createdAt).toISOString();
        process.stdout.write(
          `pruned ${r.deleted} record${r.deleted === 1 ? '' : 's'}; the chain now starts at record ${r.checkpoint.seq} (checkpoint of ${when})\n`,
        );
      });
    });
}

/** The last `n` rows (of one type, when given), oldest first, read backwards in windows of seqs. */
async function lastRows(store: Store, n: number, type?: string): Promise<AuditRow[]> {
  const head = await store.auditHead();
  const oldest = (await store.queryAudit({ limit: 1 }))[0]?.seq;
  if (!head || oldest === undefined || n === 0) return [];
  const found: AuditRow[] = [];
  let hi = head.seq;
  while (found.length < n && hi >= oldest) {
    const lo = Math.max(0, hi - PAGE);
    const q = type === undefined ? { afterSeq: lo, limit: PAGE } : { afterSeq: lo, type, limit: PAGE };
    const window = (await store.queryAudit(q)).filter((r) => r.seq <= hi);
    found.unshift(...window);
    hi = lo;
  }
  return found.slice(-n);
}

function print(r: AuditRow, json?: boolean): void {
  process.stdout.write(
    json
      ? `${JSON.stringify(exportLine(r))}\n`
      : `${new Date(r.ts).toISOString()}  #${r.seq}  ${r.type}  ${r.id}  ${JSON.stringify(r.data)}\n`,
  );
}

function exportLine(r: AuditRow) {
  return {
    seq: r.seq,
    ts: r.ts,
    time: new Date(r.ts).toISOString(),
    type: r.type,
    id: r.id,
    data: r.data,
    prev_hash: r.prevHash,
    hash: r.hash,
  };
}

/** What broke, in plain words. */
export function describeBreak(result: AuditVerifyResult): string {
  const b = result.firstBad;
  if (!b) return 'intact';
  switch (b.reason) {
    case 'hash mismatch':
      return `record ${b.seq} was edited: its content no longer matches its hash`;
    case 'prev link broken':
      return b.seq === 1
        ? 'record 1 does not start from the genesis hash'
        : `record ${b.seq} does not chain to record ${b.seq - 1}: a record was inserted or deleted there, or record ${b.seq - 1} was rewritten`;
    case 'sequence gap':
      return `record ${b.seq} is missing (deleted): record ${b.seq - 1} is followed by record ${String(b.actual)}`;
    case 'unanchored start':
      return `the log starts at record ${b.seq}, but no signed checkpoint vouches for it: records before it were deleted`;
    case 'checkpoint signature invalid':
      return `the checkpoint at record ${b.seq} does not verify against the signing keys: it was forged or altered`;
    case 'checkpoint mismatch':
      return `record ${b.seq} is not what was signed (expected hash ${String(b.expected)}, found ${String(b.actual)}): the chain was rewritten`;
    case 'truncated':
      return `the log ends at record ${String(b.actual)}, but a checkpoint (or the trusted head) covers record ${String(b.expected)}: records from ${b.seq} on were cut off`;
  }
}

function parseHead(text: string): { seq: number; hash: string } {
  const m = /^(\d+):([0-9a-f]{64})$/.exec(text.trim());
  if (!m) throw usage('--trusted-head must be SEQ:HASH (the seq and hash of a shipped audit.checkpoint)');
  return { seq: Number(m[1]), hash: m[2] as string };
}

function readJwks(file: string): JWK[] {
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { keys?: unknown };
    if (!Array.isArray(doc.keys)) throw new Error('no keys array');
    return doc.keys as JWK[];
  } catch (e) {
    throw usage(`--jwks ${file} is not a readable JWKS (${(e as Error).message})`);
  }
}

/** A date (ISO 8601) or a duration ago (`90d`). */
export function parseWhen(text: string, option: string, now = Date.now()): Date {
  const ago = parseDuration(text);
  if (ago !== undefined) return new Date(now - ago);
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (Number.isFinite(t)) return new Date(t);
  }
  throw usage(`${option} must be a date like 2026-01-31 or a duration ago like 90d, got ${text}`);
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function usage(message: string): GatehouseError {
  return new GatehouseError('ERR_USAGE', message);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}
