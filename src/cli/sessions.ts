// `gatehouse sessions list [--subject S]`: the browser sessions in the store, with whether each is still
// live; end one with `gatehouse revoke session ID` or all of a person's with `gatehouse revoke subject S`.
import type { Command } from 'commander';
import { withStore, withStoreOptions, type StoreOptions } from './context.js';

export function register(program: Command): void {
  const sessions = program.command('sessions').description('browser sessions of people');
  withStoreOptions(sessions.command('list'))
    .description('list sessions (newest first)')
    .option('--subject <sub>', 'only this person')
    .option('--json', 'print JSON')
    .action(async (opts: StoreOptions & { subject?: string; json?: boolean }) => {
      await withStore(opts, async ({ store }) => {
        const now = Date.now();
        const revs = await store.listRevocations();
        const list = (await store.listSessions(opts.subject)).sort((a, b) => b.createdAt - a.createdAt);
        const rows = list.map((s) => {
          const d = s.data as { connector?: string; email?: string; roles?: string[] };
          const revoked =
            s.revokedAt !== null ||
            revs.some(
              (r) =>
                ((r.kind === 'session' && r.value === s.id) ||
                  (r.kind === 'subject' && r.value === s.subject)) &&
                r.revokedAt >= s.createdAt,
            );
          const state = revoked ? 'revoked' : s.expiresAt <= now ? 'expired' : 'live';
          return {
            id: s.id,
            subject: s.subject,
            email: d.email ?? null,
            connector: d.connector ?? null,
            roles: d.roles ?? [],
            created: new Date(s.createdAt).toISOString(),
            last_seen: new Date(s.lastSeenAt).toISOString(),
            expires: new Date(s.expiresAt).toISOString(),
            state,
          };
        });
        if (opts.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        if (!rows.length) {
          process.stdout.write('no sessions\n');
          return;
        }
        for (const r of rows)
          process.stdout.write(
            `${r.id}  ${r.state.padEnd(7)}  ${r.subject}  ${r.email ?? '-'}  ${r.connector ?? '-'}  roles=${r.roles.join(',') || '-'}  created=${r.created}  last_seen=${r.last_seen}\n`,
          );
      });
    });
}
