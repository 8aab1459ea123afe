// `gatehouse login --server URL`: signs a person in with the device flow (RFC 8628) as the public client
// gatehouse-cli: shows a URL and a code, waits while the person approves in the browser (after SSO),
// and keeps the refresh token for `gatehouse token` (saved-login.ts).
import type { Command } from 'commander';
import { decodeJwt } from 'jose';
import { GatehouseError, isGatehouseError } from '../lib/errors.js';
import { discover, postForm, serverUrl } from './server-client.js';
import { saveLogin } from './saved-login.js';

export const CLI_CLIENT_ID = 'gatehouse-cli';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const SCOPE = 'openid offline_access email profile groups roles';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function register(program: Command): void {
  program
    .command('login')
    .description('sign in as a person (device flow); `gatehouse token` then issues tokens for you')
    .option('-s, --server <url>', 'Gatehouse server (default $GATEHOUSE_SERVER or http://127.0.0.1:8080)')
    .addHelpText(
      'after',
      `
Opens nothing by itself: it prints a URL and a code; approve the code in any browser.
The login is kept in $XDG_CONFIG_HOME/gatehouse/logins.json (default ~/.config/gatehouse/), mode 0600.

Exit codes: 0 signed in; 1 refused or expired; 3 server unreachable.`,
    )
    .action(async (opts: { server?: string }) => {
      const server = serverUrl(opts.server);
      const d = await discover(server);
      if (!d.device_authorization_endpoint)
        throw new GatehouseError('ERR_USAGE', `${server} does not offer the device flow`);
      const start = await postForm(d.device_authorization_endpoint, {
        client_id: CLI_CLIENT_ID,
        scope: SCOPE,
      });
      const userCode = String(start.user_code);
      const url = String(start.verification_uri_complete ?? start.verification_uri);
      process.stderr.write(`To sign in, open ${url}\nand check that it shows the code ${userCode}\n`);
      process.stdout.write(`URL ${url}\nCODE ${userCode}\n`);
      let interval = Number(start.interval ?? 5) * 1000;
      const deadline = Date.now() + Number(start.expires_in ?? 600) * 1000;
      while (Date.now() < deadline) {
        await sleep(interval);
        try {
          const t = await postForm(d.token_endpoint, {
            grant_type: DEVICE_CODE,
            device_code: String(start.device_code),
            client_id: CLI_CLIENT_ID,
          });
          if (typeof t.refresh_token !== 'string')
            throw new GatehouseError('ERR_INTERNAL', 'the server answered without a refresh_token');
          const claims = typeof t.id_token === 'string' ? decodeJwt(t.id_token) : {};
          const where = saveLogin(server, {
            refresh_token: t.refresh_token,
            ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}),
            ...(typeof claims.email === 'string' ? { email: claims.email } : {}),
            saved_at: new Date().toISOString(),
          });
          process.stdout.write(
            `signed in as ${String(claims.email ?? claims.sub ?? 'unknown')} (login kept in ${where})\n`,
          );
          return;
        } catch (e) {
          const oe = isGatehouseError(e) ? e.details.oauthError : undefined;
          if (oe === 'authorization_pending') continue;
          if (oe === 'slow_down') {
            interval += 5000;
            continue;
          }
          throw e;
        }
      }
      throw new GatehouseError(
        'ERR_INVALID_GRANT',
        'the code expired before it was approved; run gatehouse login again',
      );
    });
}
