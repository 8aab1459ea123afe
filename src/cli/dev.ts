// `gatehouse dev`: the whole dev stack on the embedded store, for trying Gatehouse in five minutes.
import type { Command } from 'commander';
import { importQuietly } from '../lib/quiet-import.js';
import { GatehouseError } from '../lib/errors.js';
import { onShutdown } from './shutdown.js';

export function register(program: Command): void {
  program
    .command('dev')
    .description(
      'run the dev stack: issuer, dev IdP with demo people, demo app behind the proxy, demo service account',
    )
    .option('-p, --port <port>', 'port to listen on (0: any free port)', '8080')
    .option('-d, --data-dir <dir>', 'data directory (keys, store, dev secrets)', '.gatehouse')
    .option(
      '-c, --config <file>',
      'a gatehouse.yaml whose entries (clients, …) are added to the dev defaults',
    )
    .addHelpText(
      'after',
      `
Prints GATEHOUSE_CLIENT_ID=… and GATEHOUSE_CLIENT_SECRET=… of a demo service account, then a line
starting with "ready". A second start on the same data directory reuses its keys and accounts.

Examples:
  gatehouse dev
  gatehouse dev --port 9000 --data-dir /tmp/gh
  eval "$(gatehouse dev | grep ^GATEHOUSE_ | sed 's/^/export /')"   # in another shell, for gatehouse token`,
    )
    .action(async (opts: { port: string; dataDir: string; config?: string }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new GatehouseError('ERR_USAGE', `--port must be a port number, got "${opts.port}"`);
      }
      // Loaded on use: the server modules (and oidc-provider) are not needed by other commands.
      const { startDevStack } = await importQuietly(() => import('../server/dev-stack.js'));
      const stack = await startDevStack({ port, dataDir: opts.dataDir, configFile: opts.config });
      for (const line of stack.lines) process.stdout.write(line + '\n');
      await onShutdown(() => stack.close());
    });
}
