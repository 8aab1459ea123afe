// Checks that span several fields (which a per-field schema cannot see): duplicate client ids and
// lifetimes that exceed their ceilings. Run once the schema itself passes.
import { formatDuration } from '../lib/duration.js';
import type { GatehouseConfig } from './schema.js';

/** Claims a client's static `claims` may not set: they are Gatehouse's to decide. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'iat',
  'nbf',
  'jti',
  'client_id',
  'scope',
  'roles',
  'act',
  'typ',
  'azp',
  'auth_time',
  'sid',
  'cnf',
]);

export interface CrossProblem {
  path: (string | number)[];
  message: string;
  suggestion?: string;
}

export function checkConfig(config: GatehouseConfig): CrossProblem[] {
  const problems: CrossProblem[] = [];
  const { tokens } = config;
  if (tokens.default_ttl > tokens.max_ttl) {
    problems.push({
      path: ['tokens', 'default_ttl'],
      message: `${formatDuration(tokens.default_ttl)} is longer than tokens.max_ttl (${formatDuration(tokens.max_ttl)})`,
    });
  }
  const seen = new Map<string, number>();
  config.clients.forEach((client, i) => {
    const first = seen.get(client.id);
    if (first !== undefined) {
      problems.push({
        path: ['clients', i, 'id'],
        message: `client id "${client.id}" is already used by clients[${first}]`,
      });
    } else seen.set(client.id, i);
    for (const name of Object.keys(client.claims)) {
      if (RESERVED_CLAIMS.has(name)) {
        problems.push({
          path: ['clients', i, 'claims', name],
          message: `"${name}" is set by Gatehouse and cannot be a static claim`,
          suggestion: name === 'roles' ? 'use clients[].roles' : 'rename the claim',
        });
      }
    }
    if (client.max_ttl !== undefined && client.max_ttl > tokens.max_ttl) {
      problems.push({
        path: ['clients', i, 'max_ttl'],
        message: `${formatDuration(client.max_ttl)} is longer than tokens.max_ttl (${formatDuration(tokens.max_ttl)})`,
      });
    }
  });
  return problems;
}
