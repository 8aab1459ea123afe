// The list of subcommands, in the order `gatehouse --help` shows them. Each file exports `register`.
import type { Command } from 'commander';
import { register as configCheck } from './config-check.js';

export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [configCheck];
