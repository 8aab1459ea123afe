// `gatehouse config check FILE`: validates a config file the way the server would load it and lists
// every problem with file, line and path (exit 2), or prints a one-line summary (exit 0).
import type { Command } from 'commander';
import { ConfigError, formatProblem } from '../config/problems.js';
import { loadConfig } from '../config/load.js';
import { EXIT } from '../lib/errors.js';

export function register(program: Command): void {
  // Other `config` subcommands may register the parent first; share it.
  const config =
    program.commands.find((c) => c.name() === 'config') ??
    program.command('config').description('work with gatehouse.yaml configuration files');
  config
    .command('check')
    .description('validate a configuration file and list every problem, with file, line and path')
    .argument('<file>', 'the configuration file, like gatehouse.yaml')
    .addHelpText(
      'after',
      `
Resolves \${env:NAME} and \${file:PATH} references (never printing their values) and checks every key.
Exit codes: 0 valid, 2 invalid or not found.

Example:
  $ gatehouse config check /etc/gatehouse/gatehouse.yaml
  /etc/gatehouse/gatehouse.yaml: ok (issuer https://id.example.com, 2 clients)
`,
    )
    .action(async (file: string) => {
      try {
        const { config } = await loadConfig(file);
        const n = config.clients.length;
        process.stdout.write(`${file}: ok (issuer ${config.issuer.url}, ${n} client${n === 1 ? '' : 's'})\n`);
        process.exitCode = EXIT.ok;
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        for (const p of e.problems) process.stderr.write(`${formatProblem(p)}\n`);
        const n = e.problems.length;
        process.stderr.write(`${file}: ${n} problem${n === 1 ? '' : 's'}\n`);
        process.exitCode = EXIT.usage;
      }
    });
}
