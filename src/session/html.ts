// The few HTML pages sign-in shows (connector list, sign-out, errors): small, no scripts, no outside
// resources, framing refused.
import type { IncomingMessage, ServerResponse } from 'node:http';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function sendHtml(res: ServerResponse, status: number, title: string, body: string): void {
  const html = `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title><style>body{font:16px system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em}button,input{font:inherit;padding:.4em .8em}li{margin:.5em 0}</style><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'content-security-policy':
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  });
  res.end(html);
}

/**
 * A page that moves on to `url` at once with a `Refresh` header, for answers to a form on another host's
 * way: the page's CSP (`form-action 'self'`) covers every redirect after a form is submitted, so a 302 to
 * an IdP would be stopped there, while a Refresh is a new navigation, outside that policy.
 */
export function sendMoveOn(res: ServerResponse, url: string, title: string, body: string): void {
  res.setHeader('refresh', `0; url=${url}`);
  sendHtml(res, 200, title, body);
}

export function redirect(res: ServerResponse, location: string, status = 303): void {
  res.writeHead(status, { location, 'cache-control': 'no-store', 'content-length': 0 });
  res.end();
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Reads a small url-encoded form body (sign-out, back-channel logout). */
export async function readForm(req: IncomingMessage, limit = 64 * 1024): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
