// `gatehouse serve --config FILE`: run Gatehouse from a configuration file.
import type { Command } from 'commander';
import { importQuietly } from '../lib/quiet-import.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../lib/logger.js';
import { onShutdown } from './shutdown.js';

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
  gatehouse serve --config gatehouse.yaml --log-format pretty`,
    )
    .action(async (opts: { config: string; logFormat?: string }) => {
      const loaded = await loadConfig(opts.config);
      const format =
        opts.logFormat === 'pretty' || opts.logFormat === 'json' ? opts.logFormat : loaded.config.log.format;
      const logger = createLogger({ level: loaded.config.log.level, format, secrets: loaded.secrets });
      const { startGatehouse } = await importQuietly(() => import('../server/app.js'));
      const gh = await startGatehouse(loaded.config, { logger, configFile: loaded.file });
      // SIGHUP reloads the configuration file (it is also watched); a bad file keeps the running one.
      const hup = () => void gh.reloader?.reload('signal');
      process.on('SIGHUP', hup);
      process.stdout.write(`ready issuer=${gh.config.issuer.url} listening=${gh.url}\n`);
      await onShutdown(() => {
        process.off('SIGHUP', hup);
        logger.info({ event: 'server.draining' }, 'draining: no new connections; in-flight requests finish');
        return gh.close();
      });
    });
}
