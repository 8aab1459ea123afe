// `gatehouse token --audience AUD`: prints one short-lived, audience-bound token (like `gp idp token`).
// Credentials, first found wins: a subject token file (token exchange), GATEHOUSE_CLIENT_ID and
// GATEHOUSE_CLIENT_SECRET (client credentials), a saved login (device flow).
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { GatehouseError } from '../lib/errors.js';
import { parseDuration } from '../lib/duration.js';
import { discover, postForm, serverUrl } from './server-client.js';
import { loadLogin } from './saved-login.js';

/** The grant `gatehouse token` uses with a saved login (src/issuer/grants/person-token.ts). */
const PERSON_TOKEN_GRANT = 'urn:gatehouse:params:oauth:grant-type:person-token';

export const CLI_CLIENT_ID = 'gatehouse-cli';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

interface TokenOptions {
  audience: string[];
  server?: string;
  ttl?: string;
  decode?: boolean;
  subjectTokenFile?: string;
  subjectTokenType: string;
  actorTokenFile?: string;
}

/** Header and payload of a compact JWS, unverified, as `--decode` prints them. */
export function decodeToken(token: string): { header: unknown; payload: unknown } {
  try {
    return { header: decodeProtectedHeader(token), payload: decodeJwt(token) };
  } catch (cause) {
    throw new GatehouseError(
      'ERR_TOKEN_MALFORMED',
      'the server returned something that is not a JWT',
      {},
      { cause },
    );
  }
}

async function readTokenFile(path: string, what: string): Promise<string> {
  try {
    const t = (await readFile(path, 'utf8')).trim();
    if (!t) throw new GatehouseError('ERR_USAGE', `${what} file ${path} is empty`);
    return t;
  } catch (e) {
    if (e instanceof GatehouseError) throw e;
    throw new GatehouseError(
      'ERR_USAGE',
      `cannot read ${what} file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
}

export function register(program: Command): void {
  program
    .command('token')
    .description('print a short-lived token for an audience')
    .requiredOption(
      '-a, --audience <aud>',
      'who will accept the token (repeatable; any string)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('-s, --server <url>', 'Gatehouse server (default $GATEHOUSE_SERVER or http://127.0.0.1:8080)')
    .option('-t, --ttl <duration>', "lifetime, like 5m or 1h (at most the client's ceiling)")
    .option('--decode', 'print the header and payload as JSON instead of the token')
    .option(
      '--subject-token-file <file>',
      'exchange this token (RFC 8693) instead of using client credentials',
    )
    .option(
      '--subject-token-type <type>',
      'type of the subject token',
      'urn:ietf:params:oauth:token-type:jwt',
    )
    .option(
      '--actor-token-file <file>',
      'with --subject-token-file: act on behalf of the subject (delegation)',
    )
    .addHelpText(
      'after',
      `
Credentials, first found wins:
  --subject-token-file F                       token exchange as the public client gatehouse-cli
  GATEHOUSE_CLIENT_ID / GATEHOUSE_CLIENT_SECRET client credentials of a service account
  a login saved by \`gatehouse login\`           a token for you as a person

Exit codes: 0 token printed; 1 refused (the reason is printed); 2 usage; 3 server unreachable.

Examples:
  gatehouse token --audience sts.amazonaws.com
  gatehouse token --audience https://api.example.com/ --ttl 5m --decode
  gatehouse token --audience vault --subject-token-file "$ACTIONS_ID_TOKEN_FILE"`,
    )
    .action(async (opts: TokenOptions) => {
      const server = serverUrl(opts.server);
      let ttlSeconds: string | undefined;
      if (opts.ttl !== undefined) {
        const ms = parseDuration(opts.ttl);
        if (ms === undefined || ms < 1000) {
          throw new GatehouseError(
            'ERR_USAGE',
            `--ttl must be a duration like 90s, 10m or 1h, got "${opts.ttl}"`,
          );
        }
        ttlSeconds = String(Math.floor(ms / 1000));
      }
      if (opts.audience.length === 0) throw new GatehouseError('ERR_USAGE', '--audience is required');

      let body: Record<string, unknown>;
      if (opts.subjectTokenFile) {
        const subjectToken = await readTokenFile(opts.subjectTokenFile, 'subject token');
        const actorToken = opts.actorTokenFile
          ? await readTokenFile(opts.actorTokenFile, 'actor token')
          : undefined;
        const d = await discover(server);
        body = await postForm(d.token_endpoint, {
          grant_type: TOKEN_EXCHANGE,
          client_id: CLI_CLIENT_ID,
          subject_token: subjectToken,
          subject_token_type: opts.subjectTokenType,
          actor_token: actorToken,
          actor_token_type: actorToken ? 'urn:ietf:params:oauth:token-type:jwt' : undefined,
          audience: opts.audience,
          expires_in: ttlSeconds,
        });
      } else if (
        !(process.env.GATEHOUSE_CLIENT_ID && process.env.GATEHOUSE_CLIENT_SECRET) &&
        loadLogin(server)
      ) {
        // A person's saved login (`gatehouse login`): its refresh token buys a token with their claims.
        const saved = loadLogin(server);
        const d = await discover(server);
        body = await postForm(d.token_endpoint, {
          grant_type: PERSON_TOKEN_GRANT,
          client_id: CLI_CLIENT_ID,
          refresh_token: saved?.refresh_token,
          audience: opts.audience,
          expires_in: ttlSeconds,
        });
      } else {
        const id = process.env.GATEHOUSE_CLIENT_ID;
        const secret = process.env.GATEHOUSE_CLIENT_SECRET;
        if (!id || !secret) {
          throw new GatehouseError(
            'ERR_USAGE',
            'no credentials: set GATEHOUSE_CLIENT_ID and GATEHOUSE_CLIENT_SECRET, or pass --subject-token-file',
            {
              hint: "`gatehouse dev` prints a demo service account's GATEHOUSE_CLIENT_ID and GATEHOUSE_CLIENT_SECRET",
            },
          );
        }
        const d = await discover(server);
        body = await postForm(
          d.token_endpoint,
          { grant_type: 'client_credentials', audience: opts.audience, expires_in: ttlSeconds },
          { id, secret },
        );
      }
      const token = body.access_token;
      if (typeof token !== 'string')
        throw new GatehouseError('ERR_INTERNAL', 'the server answered without an access_token');
      if (opts.decode) process.stdout.write(JSON.stringify(decodeToken(token), null, 2) + '\n');
      else process.stdout.write(token + '\n');
    });
}
