// Where `gatehouse login` keeps the person's refresh token: $XDG_CONFIG_HOME/gatehouse/logins.json (or
// ~/.config/gatehouse/), one entry per server, the file mode 0600 and its folder 0700.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface SavedLogin {
  refresh_token: string;
  sub?: string;
  email?: string;
  saved_at: string;
}

export function configDir(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'gatehouse');
}

function file(): string {
  return join(configDir(), 'logins.json');
}

function readAll(): Record<string, SavedLogin> {
  const f = file();
  if (!existsSync(f)) return {};
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as Record<string, SavedLogin>;
  } catch {
    return {};
  }
}

function writeAll(all: Record<string, SavedLogin>): void {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file()}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(all, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file());
}

export function loadLogin(server: string): SavedLogin | undefined {
  return readAll()[server];
}

export function saveLogin(server: string, login: SavedLogin): string {
  const all = readAll();
  all[server] = login;
  writeAll(all);
  return file();
}

export function forgetLogin(server: string): boolean {
  const all = readAll();
  if (!all[server]) return false;
  delete all[server];
  writeAll(all);
  return true;
}
