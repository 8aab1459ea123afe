// What the client sees when the proxy says no: 400, 401 (RFC 6750), 403 naming the missing requirement,
// 502/504; JSON or a small HTML page by `Accept`, each refusal with the audit id that explains it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../policy/index.js';

export function wantsHtml(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return /\btext\/html\b/i.test(accept);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface Refusal {
  status: number;
  error: string;
  description: string;
  auditId?: string;
  /** For 403: the requirement the caller misses (rule, criterion, expected), safe to show. */
  missing?: { rule: string; criterion?: string; expected?: unknown; message?: string };
  headers?: Record<string, string>;
}

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Sign-in required',
  403: 'Access denied',
  413: 'Request too large',
  502: 'Service unavailable',
  504: 'Service timed out',
};

export function sendRefusal(req: IncomingMessage, res: ServerResponse, r: Refusal): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const base: Record<string, string> = { 'cache-control': 'no-store', ...r.headers };
  // A refused request may have an unread body; do not keep the connection for it.
  if (!req.complete) base.connection = 'close';
  if (wantsHtml(req)) {
    const lines = [
      `<p>${escapeHtml(r.description)}</p>`,
      r.missing
        ? `<p>Missing: rule <b>${escapeHtml(r.missing.rule)}</b>${r.missing.criterion ? ` needs ${escapeHtml(r.missing.criterion)} ${escapeHtml(JSON.stringify(r.missing.expected))}` : ''}${r.missing.message ? ` — ${escapeHtml(r.missing.message)}` : ''}</p>`
        : '',
      r.auditId ? `<p>Reference: <code>${escapeHtml(r.auditId)}</code></p>` : '',
    ];
    const title = TITLES[r.status] ?? 'Error';
    const html = `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${lines.join('')}</body></html>`;
    res.writeHead(r.status, {
      ...base,
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(html)),
      'content-security-policy': "default-src 'none'",
    });
    res.end(req.method === 'HEAD' ? undefined : html);
    return;
  }
  const body = JSON.stringify({
    error: r.error,
    error_description: r.description,
    ...(r.missing ? { missing: r.missing } : {}),
    ...(r.auditId ? { audit_id: r.auditId } : {}),
  });
  res.writeHead(r.status, {
    ...base,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** RFC 6750 §3: the challenge, with an error only when a token was presented and refused. */
export function bearerChallenge(error?: { code: string; description: string }): string {
  if (!error) return 'Bearer realm="gatehouse"';
  const q = (s: string) => s.replace(/[\\"]/g, "'").replace(/[^\x20-\x7e]/g, '?');
  return `Bearer realm="gatehouse", error="${error.code}", error_description="${q(error.description)}"`;
}

/** The part of a denial the caller may see: which rule and requirement, never other data. */
export function missingRequirement(d: Decision): Refusal['missing'] {
  if (d.rule && d.effect === 'deny' && !d.closest) {
    return { rule: d.rule, ...(d.message ? { message: d.message } : {}) };
  }
  if (d.closest) {
    return {
      rule: d.closest.rule,
      criterion: d.closest.failed.criterion,
      expected: d.closest.failed.expected,
      ...(d.message ? { message: d.message } : {}),
    };
  }
  return { rule: '(none)', message: d.message ?? 'no rule allows this request' };
}

/** The RFC 6750 401 for a presented token that was refused, with what the gate could say about it. */
export function invalidTokenRefusal(outcome: {
  token: { description: string };
  auditId?: string;
  missing?: Refusal['missing'];
}): Refusal {
  const { description } = outcome.token;
  return {
    status: 401,
    error: 'invalid_token',
    description,
    ...(outcome.auditId ? { auditId: outcome.auditId } : {}),
    ...(outcome.missing ? { missing: outcome.missing } : {}),
    headers: { 'www-authenticate': bearerChallenge({ code: 'invalid_token', description }) },
  };
}
