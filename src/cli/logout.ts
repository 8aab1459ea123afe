// `gatehouse logout`: revokes the saved login's refresh token at the server and forgets it.
import type { Command } from 'commander';
import { GatehouseError } from '../lib/errors.js';
import { discover, serverUrl } from './server-client.js';
import { forgetLogin, loadLogin } from './saved-login.js';
import { CLI_CLIENT_ID } from './login.js';

export function register(program: Command): void {
  program
    .command('logout')
    .description('revoke and forget the login saved by `gatehouse login`')
    .option('-s, --server <url>', 'Gatehouse server (default $GATEHOUSE_SERVER or http://127.0.0.1:8080)')
    .action(async (opts: { server?: string }) => {
      const server = serverUrl(opts.server);
      const saved = loadLogin(server);
      if (!saved) {
        process.stdout.write(`not signed in to ${server}\n`);
        return;
      }
      const d = await discover(server);
      if (d.revocation_endpoint) {
        // RFC 7009 §2.2: success is a 200 with an empty body.
        const res = await fetch(d.revocation_endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            token: saved.refresh_token,
            token_type_hint: 'refresh_token',
            client_id: CLI_CLIENT_ID,
          }),
          signal: AbortSignal.timeout(15_000),
        }).catch((cause: unknown) => {
          throw new GatehouseError('ERR_SERVER_UNREACHABLE', `cannot reach ${server}`, {}, { cause });
        });
        if (!res.ok) {
          throw new GatehouseError(
            'ERR_INVALID_REQUEST',
            `revoking the login failed: ${res.status} ${await res.text()}`,
          );
        }
      }
      forgetLogin(server);
      process.stdout.write(`signed out of ${server}\n`);
    });
}
