// `gatehouse clients list|create|rotate-secret`: service accounts, the downstream apps of the config
// (`downstream_clients`: Jira, Jenkins…) and their secrets. Secrets are shown once, when made, and stored
// only hashed; rotation keeps the old secret working for an overlap.
import type { Command } from 'commander';
import { clientSchema, type GatehouseConfig } from '../config/schema.js';
import { ClientRegistry } from '../issuer/clients.js';
import { rotateSecret } from '../issuer/client-secrets.js';
import { AuditLog } from '../audit/index.js';
import { formatDuration, parseDuration } from '../lib/duration.js';
import { GatehouseError } from '../lib/errors.js';
import { withStore, withStoreOptions, type AdminContext } from './context.js';

function durationOption(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new GatehouseError(
      'ERR_USAGE',
      `${name} must be a duration like 90s, 10m, 24h or 7d, got "${text}"`,
    );
  return ms;
}

function when(ms: number | null, now: number): string {
  if (ms === null) return 'never';
  const d = ms - now;
  const at = new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (d <= 0) return `expired ${at}`;
  return `${at} (in ${formatDuration(Math.max(1000, Math.floor(d / 60_000) * 60_000 || Math.floor(d / 1000) * 1000))})`;
}

async function registry(ctx: AdminContext): Promise<ClientRegistry> {
  return new ClientRegistry(ctx.config?.clients ?? [], ctx.store);
}

type DownstreamClient = GatehouseConfig['downstream_clients'][number];

/** Downstream apps declared in the config: their secrets live in the store like a service account's. */
function downstreamClients(ctx: AdminContext): DownstreamClient[] {
  return ctx.config?.downstream_clients ?? [];
}

export function register(program: Command): void {
  const clients = program.command('clients').description('manage service accounts and their secrets');

  withStoreOptions(
    clients
      .command('list')
      .description('list clients with their secrets and when they expire')
      .option('--json', 'print JSON')
      .addHelpText(
        'after',
        '\nExamples:\n  gatehouse clients list --config gatehouse.yaml\n  gatehouse clients list --data-dir .gatehouse --json',
      ),
  ).action(async (opts: { config?: string; dataDir?: string; json?: boolean }) => {
    await withStore(opts, async (ctx) => {
      const now = Date.now();
      const list = await (await registry(ctx)).list();
      const apps = downstreamClients(ctx);
      const secrets = await ctx.store.listSecrets();
      const secretRows = (id: string) =>
        secrets
          .filter((s) => s.clientId === id)
          .map((s) => ({
            id: s.id,
            created_at: new Date(s.createdAt).toISOString(),
            expires_at: s.expiresAt === null ? null : new Date(s.expiresAt).toISOString(),
            expired: s.expiresAt !== null && s.expiresAt <= now,
          }));
      const rows = [
        ...list.map((c) => ({
          id: c.id,
          source: c.source,
          grant_types: c.grant_types,
          allowed_audiences: c.allowed_audiences,
          roles: c.roles,
          secrets: secretRows(c.id),
        })),
        ...apps.map((d) => ({
          id: d.id,
          source: 'downstream' as const,
          ...(d.name !== undefined ? { name: d.name } : {}),
          grant_types: ['authorization_code', 'refresh_token'],
          redirect_uris: d.redirect_uris,
          public: d.public,
          secrets: secretRows(d.id),
        })),
      ];
      if (opts.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      if (rows.length === 0) process.stdout.write('no clients\n');
      const printSecrets = (id: string) => {
        const own = secrets.filter((s) => s.clientId === id);
        if (own.length === 0)
          process.stdout.write(`  no secret: create one with gatehouse clients rotate-secret ${id}\n`);
        for (const s of own)
          process.stdout.write(
            `  secret ${s.id}  created ${new Date(s.createdAt).toISOString()}  expires ${when(s.expiresAt, now)}\n`,
          );
      };
      for (const c of list) {
        process.stdout.write(
          `${c.id}  (${c.source})  audiences: ${c.allowed_audiences.join(', ')}  roles: ${c.roles.join(', ') || '-'}\n`,
        );
        printSecrets(c.id);
      }
      for (const d of apps) {
        process.stdout.write(
          `${d.id}  (downstream app${d.name ? `: ${d.name}` : ''})  redirect URIs: ${d.redirect_uris.join(', ')}\n`,
        );
        if (d.public) process.stdout.write('  public client: no secret (PKCE only)\n');
        else printSecrets(d.id);
      }
    });
  });

  withStoreOptions(
    clients
      .command('create <id>')
      .description('create a service account in the store and print its first secret (shown once)')
      .requiredOption(
        '-a, --audience <pattern>',
        'an audience it may ask for (glob; repeatable)',
        (v: string, p: string[]) => [...p, v],
        [] as string[],
      )
      .option(
        '-r, --role <role>',
        'a role in its tokens (repeatable)',
        (v: string, p: string[]) => [...p, v],
        [] as string[],
      )
      .option('--max-ttl <duration>', "ceiling on its tokens' lifetime")
      .option('--secret-ttl <duration>', 'lifetime of its secrets (default: no expiry)')
      .option('--name <name>', 'a human name'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  gatehouse clients create deploy-prod --audience sts.amazonaws.com --role deployer --secret-ttl 90d --data-dir .gatehouse',
    )
    .action(
      async (
        id: string,
        opts: {
          config?: string;
          dataDir?: string;
          audience: string[];
          role: string[];
          maxTtl?: string;
          secretTtl?: string;
          name?: string;
        },
      ) => {
        const metadata: Record<string, unknown> = {
          id,
          name: opts.name,
          allowed_audiences: opts.audience,
          roles: opts.role,
          max_ttl: opts.maxTtl,
          secret_ttl: opts.secretTtl,
        };
        for (const k of Object.keys(metadata)) if (metadata[k] === undefined) delete metadata[k];
        const parsed = clientSchema.safeParse(metadata);
        if (!parsed.success) {
          const why = parsed.error.issues
            .map((i) => `${i.path.join('.') || 'client'}: ${i.message}`)
            .join('; ');
          throw new GatehouseError('ERR_USAGE', `invalid client: ${why}`);
        }
        await withStore(opts, async (ctx) => {
          if ((await (await registry(ctx)).get(id)) || downstreamClients(ctx).some((d) => d.id === id)) {
            throw new GatehouseError('ERR_USAGE', `client "${id}" already exists`, {
              hint: `rotate its secret with: gatehouse clients rotate-secret ${id}`,
            });
          }
          const now = Date.now();
          await ctx.store.upsertClient({ id, metadata, createdAt: now });
          await ctx.store.publishChange('clients', id);
          const { secret, record } = await rotateSecret(ctx.store, id, {
            ttlMs: parsed.data.secret_ttl,
            overlapMs: 0,
            now,
          });
          const audit = new AuditLog(ctx.store);
          await audit.append('client.created', {
            client_id: id,
            source: 'cli',
            allowed_audiences: opts.audience,
          });
          await audit.append('secret.rotated', {
            client_id: id,
            secret_id: record.id,
            expires_at: record.expiresAt,
          });
          await audit.close();
          process.stdout.write(`created client ${id}; its secret (shown once):\n`);
          process.stdout.write(`GATEHOUSE_CLIENT_ID=${id}\nGATEHOUSE_CLIENT_SECRET=${secret}\n`);
        });
      },
    );

  withStoreOptions(
    clients
      .command('rotate-secret <id>')
      .description('make a new secret (shown once); older secrets keep working until the overlap ends')
      .option('--overlap <duration>', 'how long older secrets keep working', '24h')
      .option('--ttl <duration>', "lifetime of the new secret (default: the client's secret_ttl, or none)"),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  gatehouse clients rotate-secret ci-deploy --config gatehouse.yaml\n  gatehouse clients rotate-secret ci-deploy --overlap 0s --data-dir .gatehouse   # old secret stops now',
    )
    .action(
      async (id: string, opts: { config?: string; dataDir?: string; overlap: string; ttl?: string }) => {
        const overlapMs = durationOption('--overlap', opts.overlap === '0' ? '0s' : opts.overlap) ?? 0;
        const ttlOpt = durationOption('--ttl', opts.ttl);
        await withStore(opts, async (ctx) => {
          const client =
            (await (await registry(ctx)).get(id)) ?? downstreamClients(ctx).find((d) => d.id === id);
          if (!client) {
            throw new GatehouseError('ERR_USAGE', `unknown client "${id}"`, {
              hint: 'see the clients with: gatehouse clients list',
            });
          }
          if ('public' in client && client.public) {
            throw new GatehouseError(
              'ERR_USAGE',
              `client "${id}" is a public downstream client: it has no secret (PKCE only)`,
              { hint: `set public: false on downstream_clients entry "${id}" to give it a secret` },
            );
          }
          const now = Date.now();
          const result = await rotateSecret(ctx.store, id, {
            ttlMs: ttlOpt ?? client.secret_ttl,
            overlapMs,
            now,
          });
          const audit = new AuditLog(ctx.store);
          await audit.append('secret.rotated', {
            client_id: id,
            secret_id: result.record.id,
            expires_at: result.record.expiresAt,
            overlap_ms: overlapMs,
            previous: result.overlapping.map((s) => ({ secret_id: s.id, expires_at: s.expiresAt })),
          });
          await audit.close();
          process.stdout.write(`new secret ${result.record.id} for ${id} (shown once):\n`);
          process.stdout.write(`GATEHOUSE_CLIENT_ID=${id}\nGATEHOUSE_CLIENT_SECRET=${result.secret}\n`);
          for (const s of result.overlapping)
            process.stdout.write(
              `older secret ${s.id} keeps working until ${new Date(s.expiresAt ?? now).toISOString()}\n`,
            );
        });
      },
    );
}
