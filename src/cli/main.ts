#!/usr/bin/env node
// The `gatehouse` command. Each subcommand lives in its own file and registers itself on the program;
// this file only wires them and turns thrown errors into DESIGN.md's exit codes.
import { Command, CommanderError } from 'commander';
import { EXIT, exitCodeOf, GatehouseError } from '../lib/errors.js';
import { commands } from './commands.js';

export function buildProgram(): Command {
  const program = new Command('gatehouse')
    .description(
      'Identity is the only credential: OpenID Provider, workload federation and identity-aware proxy.',
    )
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0)
        return EXIT.ok;
      return EXIT.usage;
    }
    if (e instanceof GatehouseError) {
      process.stderr.write(`gatehouse: ${e.message}\n`);
      if (e.details.hint) process.stderr.write(`hint: ${e.details.hint}\n`);
    } else {
      process.stderr.write(`gatehouse: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    }
    return exitCodeOf(e);
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  () => {
    process.exitCode = EXIT.unavailable;
  },
);
