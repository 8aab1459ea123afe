// Reading what a token request asks for: audiences (`audience`, repeatable, or RFC 8707 `resource`; any
// string) and lifetime (`expires_in`, seconds), checked against a ceiling. Shared by every grant.
import { formatDuration } from '../../lib/duration.js';

export class RequestProblem extends Error {
  constructor(
    readonly oauthError: 'invalid_request' | 'invalid_target',
    message: string,
    readonly field: string,
    readonly expected: unknown,
    readonly actual: unknown,
  ) {
    super(message);
  }
}

function asList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

export function requestedAudiences(params: Record<string, unknown>): string[] {
  const all = [...asList(params.audience), ...asList(params.resource)];
  const seen = new Set<string>();
  for (const a of all) {
    if (a === '')
      throw new RequestProblem('invalid_request', 'audience is empty', 'audience', 'a non-empty string', '');
    if (a.length > 1024)
      throw new RequestProblem(
        'invalid_request',
        'audience is longer than 1024 characters',
        'audience',
        '≤ 1024 characters',
        `${a.length} characters`,
      );
    seen.add(a);
  }
  if (seen.size === 0) {
    throw new RequestProblem(
      'invalid_request',
      'no audience asked: send audience=<who will accept the token> (repeatable) or resource=<URI>',
      'audience',
      'at least one audience',
      'none',
    );
  }
  return [...seen];
}

/** The lifetime to issue: the asked one (seconds) within the ceiling, else the default. */
export function requestedTtlMs(
  params: Record<string, unknown>,
  defaultMs: number,
  ceilingMs: number,
  who: string,
): number {
  const raw = params.expires_in;
  if (raw === undefined || raw === '') return Math.min(defaultMs, ceilingMs);
  const s = String(raw);
  if (!/^[1-9]\d{0,9}$/.test(s)) {
    throw new RequestProblem(
      'invalid_request',
      `expires_in must be a whole number of seconds, got "${s.slice(0, 32)}"`,
      'expires_in',
      'seconds',
      s.slice(0, 32),
    );
  }
  const ms = Number(s) * 1000;
  if (ms > ceilingMs) {
    throw new RequestProblem(
      'invalid_request',
      `requested lifetime ${formatDuration(ms)} is above the ceiling of ${formatDuration(ceilingMs)} for ${who}`,
      'expires_in',
      `≤ ${formatDuration(ceilingMs)}`,
      formatDuration(ms),
    );
  }
  return ms;
}
