// The list of subcommands, in the order `gatehouse --help` shows them. Each file exports `register`.
import type { Command } from 'commander';

export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [];
