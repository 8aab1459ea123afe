// The list of subcommands, in the order `gatehouse --help` shows them. Each file exports `register`.
import type { Command } from 'commander';
import { register as serve } from './serve.js';
import { register as dev } from './dev.js';
import { register as token } from './token.js';
import { register as clients } from './clients.js';
import { register as configCheck } from './config-check.js';
import { register as audit } from './audit.js';
import { register as revoke } from './revoke.js';
import { register as policy } from './policy.js';
import { register as keys } from './keys.js';
import { register as decode } from './decode.js';
import { register as login } from './login.js';
import { register as logout } from './logout.js';
import { register as sessions } from './sessions.js';

export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [
  serve,
  dev,
  token,
  decode,
  clients,
  configCheck,
  audit,
  revoke,
  keys,
  policy,
  login,
  logout,
  sessions,
];
