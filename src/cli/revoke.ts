// `gatehouse revoke token|subject|client|session`: writes a revocation to the store, where every running
// server picks it up through the change feed within a second, and records it in the audit log.
import type { Command } from 'commander';
import { AuditLog } from '../audit/index.js';
import { recordRevocation } from '../revocation/index.js';
import type { RevocationKind } from '../store/store.js';
import { withStore, withStoreOptions, type StoreOptions } from './context.js';

interface Target {
  command: string;
  arg: string;
  kind: RevocationKind;
  /** The audit type, `noun.outcome`. */
  event: string;
  /** The audit data key for the value. */
  field: string;
  noun: string;
  description: string;
  example: string;
}

const TARGETS: Target[] = [
  {
    command: 'token',
    arg: 'jti',
    kind: 'jti',
    event: 'token.revoked',
    field: 'jti',
    noun: 'token',
    description: 'revoke one token by its jti',
    example:
      'gatehouse revoke token 0c9f3e51-6a2d-4c1e-9a55-2f1c7d0b8e21 --reason "leaked in a CI log" --data-dir .gatehouse',
  },
  {
    command: 'subject',
    arg: 'sub',
    kind: 'subject',
    event: 'subject.revoked',
    field: 'sub',
    noun: 'subject',
    description: 'revoke every token issued to a subject until now (someone left the org)',
    example: 'gatehouse revoke subject alice --reason "left the org" --config gatehouse.yaml',
  },
  {
    command: 'client',
    arg: 'id',
    kind: 'client',
    event: 'client.revoked',
    field: 'client_id',
    noun: 'client',
    description: 'revoke every token issued to a client until now',
    example: 'gatehouse revoke client ci-deployer --reason "runner compromised" --config gatehouse.yaml',
  },
  {
    command: 'session',
    arg: 'id',
    kind: 'session',
    event: 'session.revoked',
    field: 'sid',
    noun: 'session',
    description: 'end a session and every token issued under it until now',
    example: 'gatehouse revoke session 3Vb1kz… --data-dir .gatehouse',
  },
];

export function register(program: Command): void {
  const revoke = program
    .command('revoke')
    .description(
      'revoke a token, or every token of a subject, client or session, on every server within a second',
    );
  for (const t of TARGETS) {
    const cmd = withStoreOptions(revoke.command(t.command))
      .description(t.description)
      .argument(`<${t.arg}>`, `the ${t.noun}'s ${t.arg}`)
      .option('--reason <text>', 'why (kept with the revocation and in the audit log)');
    if (t.kind === 'jti') {
      cmd.option(
        '--issuer <url>',
        "the issuer that minted the token (default: the config's issuer; any issuer without --config)",
      );
    }
    cmd
      .addHelpText('after', `\nExample:\n  $ ${t.example}\n`)
      .action(async (value: string, opts: StoreOptions & { reason?: string; issuer?: string }) => {
        await withStore(opts, async ({ store, config }) => {
          const issuer = t.kind === 'jti' ? (opts.issuer ?? config?.issuer.url) : undefined;
          // A revoked jti only matters until its token expires: the longest a token can live.
          const expiresAt =
            t.kind === 'jti' && config
              ? Date.now() + config.tokens.max_ttl + config.tokens.clock_skew
              : undefined;
          const record = await recordRevocation(
            store,
            {
              kind: t.kind,
              value,
              ...(issuer ? { issuer } : {}),
              ...(opts.reason ? { reason: opts.reason } : {}),
              ...(expiresAt ? { expiresAt } : {}),
            },
            Date.now(),
          );
          // No signer here: the running server's next checkpoint covers this record.
          const audit = new AuditLog(store);
          try {
            const { id } = await audit.append(t.event, {
              [t.field]: value,
              ...(record.issuer ? { issuer: record.issuer } : {}),
              ...(record.reason ? { reason: record.reason } : {}),
              revocation_id: record.id,
              by: 'cli',
            });
            const at = new Date(record.revokedAt).toISOString();
            const what =
              t.kind === 'jti'
                ? `token ${value} (${record.issuer ? `issuer ${record.issuer}` : 'any issuer'}) at ${at}`
                : `${t.noun} ${value} at ${at}: tokens issued until then are refused`;
            process.stdout.write(`revoked ${what}\n`);
            process.stdout.write(`${record.reason ? `reason: ${record.reason}; ` : ''}audit record ${id}\n`);
          } finally {
            await audit.close();
          }
        });
      });
  }
}
