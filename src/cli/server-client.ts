// Talking to a Gatehouse server from the CLI: discovery, then form posts to the endpoints it names.
// Unreachable servers are exit 3 (could not run); OAuth refusals are exit 1 with the server's words.
import { GatehouseError } from '../lib/errors.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

export interface Discovery {
  issuer: string;
  token_endpoint: string;
  jwks_uri: string;
  introspection_endpoint?: string;
  revocation_endpoint?: string;
  device_authorization_endpoint?: string;
  [key: string]: unknown;
}

export function serverUrl(opt?: string): string {
  return (opt ?? process.env.GATEHOUSE_SERVER ?? DEFAULT_SERVER).replace(/\/+$/, '');
}

async function fetchOrThrow(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  } catch (cause) {
    const why = (cause as { cause?: { code?: string } }).cause?.code ?? (cause as Error).message;
    throw new GatehouseError(
      'ERR_SERVER_UNREACHABLE',
      `cannot reach ${new URL(url).origin} (${why})`,
      {
        hint: 'is the server running? pass --server URL or set GATEHOUSE_SERVER',
      },
      { cause },
    );
  }
}

export async function discover(server: string): Promise<Discovery> {
  const url = `${server}/.well-known/openid-configuration`;
  const res = await fetchOrThrow(url);
  if (!res.ok) {
    throw new GatehouseError(
      'ERR_SERVER_UNREACHABLE',
      `${url} answered ${res.status}; is ${server} a Gatehouse server?`,
    );
  }
  return (await res.json()) as Discovery;
}

export interface OAuthFailure {
  error: string;
  error_description?: string;
}

/** POSTs a form; returns the JSON body, or throws ERR_* with the server's error and description. */
export async function postForm(
  url: string,
  form: Record<string, string | string[] | undefined>,
  basic?: { id: string; secret: string },
): Promise<Record<string, unknown>> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) body.append(k, item);
  }
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  if (basic) {
    // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
    headers.authorization =
      'Basic ' + Buffer.from(`${enc(basic.id)}:${enc(basic.secret)}`).toString('base64');
  }
  const res = await fetchOrThrow(url, { method: 'POST', headers, body });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new GatehouseError(
      'ERR_SERVER_UNREACHABLE',
      `${url} answered ${res.status} with a body that is not JSON`,
    );
  }
  if (!res.ok || typeof json.error === 'string') {
    const error = String(json.error ?? `http_${res.status}`);
    const code =
      error === 'invalid_client'
        ? 'ERR_INVALID_CLIENT'
        : error === 'invalid_target'
          ? 'ERR_INVALID_TARGET'
          : error === 'invalid_grant'
            ? 'ERR_INVALID_GRANT'
            : error === 'unauthorized_client'
              ? 'ERR_UNAUTHORIZED_CLIENT'
              : res.status >= 500
                ? 'ERR_SERVER_UNREACHABLE'
                : 'ERR_INVALID_REQUEST';
    throw new GatehouseError(code, `${error}: ${String(json.error_description ?? 'no description')}`, {
      oauthError: error,
    });
  }
  return json;
}
