// `gatehouse serve --config FILE`: run Gatehouse from a configuration file.
import type { Command } from 'commander';
import { importQuietly } from '../lib/quiet-import.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../lib/logger.js';
import { onShutdown } from './shutdown.js';
import { exitCodeOf } from '../lib/errors.js';
import type { Gatehouse } from '../server/app.js';

export function register(program: Command): void {
  program
    .command('serve')
    .description('run Gatehouse from a configuration file')
    .requiredOption('-c, --config <file>', 'the gatehouse.yaml to run')
    .option('--log-format <format>', 'json (default) or pretty, overriding log.format')
    .addHelpText(
      'after',
      `
Examples:
  gatehouse serve --config /etc/gatehouse/gatehouse.yaml
  gatehouse serve --config gatehouse.yaml --log-format pretty

With server.workers above 1 (or auto), this process starts that many workers sharing the port and
prints one ready line when they all serve; SIGHUP and SIGTERM reach every worker (docs/operations.md).`,
    )
    .action(async (opts: { config: string; logFormat?: string }) => {
      const loaded = await loadConfig(opts.config);
      const format =
        opts.logFormat === 'pretty' || opts.logFormat === 'json' ? opts.logFormat : loaded.config.log.format;
      const root = createLogger({ level: loaded.config.log.level, format, secrets: loaded.secrets });
      const { runPrimary, workerCount, workerIndex, joinCluster } = await import('../server/cluster.js');
      const workers = workerCount(loaded.config.server.workers);
      const index = workerIndex();
      if (index === undefined && workers > 1) {
        // The primary: starts the workers (each runs this command again) and waits for them.
        process.exitCode = await runPrimary({
          workers,
          logger: root,
          onReady: ({ issuer, url }) =>
            process.stdout.write(`ready issuer=${issuer} listening=${url} workers=${workers}\n`),
        });
        return;
      }
      const logger = index === undefined ? root : root.child({ worker: index });
      const { startGatehouse } = await importQuietly(() => import('../server/app.js'));
      let ask: (() => Promise<{ text: string; contentType: string }>) | undefined;
      const orphaned = () => process.kill(process.pid, 'SIGTERM');
      const gh: Gatehouse = await startGatehouse(loaded.config, {
        logger,
        configFile: loaded.file,
        ...(index !== undefined ? { metricsSource: () => (ask ?? local)() } : {}),
      }).catch((err: unknown) => {
        // A worker that cannot start exits with the error's code once it is printed (its IPC channel would
        // keep it alive); the primary then stops the others.
        if (index !== undefined) setImmediate(() => process.exit(exitCodeOf(err)));
        throw err;
      });
      async function local(): Promise<{ text: string; contentType: string }> {
        return { text: await gh.metrics.registry.metrics(), contentType: gh.metrics.registry.contentType };
      }
      // SIGHUP reloads the configuration file (it is also watched); a bad file keeps the running one.
      const hup = () => void gh.reloader?.reload('signal');
      process.on('SIGHUP', hup);
      if (index === undefined)
        process.stdout.write(`ready issuer=${gh.config.issuer.url} listening=${gh.url}\n`);
      else {
        ask = joinCluster(gh.metrics.registry, { issuer: gh.config.issuer.url, url: gh.url });
        // The primary gone (killed, not drained): nobody hands this worker connections any more.
        process.once('disconnect', orphaned);
      }
      await onShutdown(() => {
        process.off('SIGHUP', hup);
        logger.info({ event: 'server.draining' }, 'draining: no new connections; in-flight requests finish');
        return gh.close();
      });
      // A worker's IPC channel would keep it alive after the drain.
      if (index !== undefined && process.connected) {
        process.off('disconnect', orphaned);
        process.disconnect();
      }
    });
}
