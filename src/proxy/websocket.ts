// Websockets through the proxy. Node's `upgrade` event bypasses the request pipeline, so the same
// normalization, route match, header hygiene, authentication, revocation and policy run here; then an
// Origin check against cross-site hijacking, and bytes are piped only after the upstream's own `101`
// with the right Sec-WebSocket-Accept. Open sockets close on revocation and at a maximum lifetime.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import { newAuditId, redactUntrusted } from '../audit/index.js';
import type { PartLogger } from '../audit/logger.js';
import type { Identity } from '../session/types.js';
import type { Cidr } from '../policy/cidr.js';
import { matchOriginPattern } from '../policy/host-pattern.js';
import type { ProxyTarget } from './proxy.js';
import type { CompiledRoute } from './routes.js';
import { responseHeaders } from './headers.js';
import { bearerChallenge, type Refusal } from './responses.js';
import type { Gate } from './gate.js';
import { auditBase, inCidrs, parseCidrs, requestClientAddress } from './gate.js';

/** RFC 6455 §1.3: the GUID appended to the client's key. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_UPSTREAM_HEAD = 16_384;

export function websocketAccept(key: string): string {
  return createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
}

export interface WebsocketProxyOptions {
  gate: Gate;
  /** The proxy's own match: normalization, route lookup and header hygiene, shared with plain requests. */
  match: (req: IncomingMessage) => ProxyTarget | undefined;
  /** proxy.trusted_proxies: whose X-Forwarded-* are believed. */
  trustedProxies: readonly string[];
  logger: PartLogger;
  now?: () => number;
  /** How often open sockets are checked against the revocation set and their session. */
  checkIntervalMs?: number;
  /** Upstream connect + handshake budget. */
  handshakeTimeoutMs?: number;
  /**
   * Told of every client socket once it is piped, with how to ask it to go away (close 1001 to both
   * ends): the server's drain registry, for SIGTERM.
   */
  onOpen?: (client: Duplex, goingAway: () => void) => void;
}

interface OpenSocket {
  id: string;
  route: CompiledRoute;
  identity: Identity | undefined;
  req: IncomingMessage;
  client: Duplex;
  upstream: Socket;
  openedAt: number;
  lifetime: NodeJS.Timeout;
  closed: boolean;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Answers on a socket that never became an HTTP response (the upgrade event has no ServerResponse). */
function refuseSocket(socket: Duplex, r: Refusal): void {
  const body = JSON.stringify({
    error: r.error,
    error_description: r.description,
    ...(r.missing ? { missing: r.missing } : {}),
    ...(r.auditId ? { audit_id: r.auditId } : {}),
  });
  const lines = [
    `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status] ?? 'Error'}`,
    'content-type: application/json',
    `content-length: ${Buffer.byteLength(body)}`,
    'cache-control: no-store',
    'connection: close',
    ...Object.entries(r.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
  ];
  if (socket.writable) socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  else socket.destroy();
}

export class WebsocketProxy {
  readonly #o: WebsocketProxyOptions;
  readonly #trusted: Cidr[];
  readonly #open = new Set<OpenSocket>();
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;
  #closed = false;

  constructor(opts: WebsocketProxyOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#trusted = parseCidrs(opts.trustedProxies, 'proxy.trusted_proxies');
  }

  /** Open proxied websockets (for metrics and tests). */
  get size(): number {
    return this.#open.size;
  }

  /** The server's `upgrade` listener. Never throws: every failure ends in a refusal on the socket. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    this.#upgrade(req, socket, head).catch((err: unknown) => {
      this.#o.logger.error({ err }, 'websocket upgrade failed');
      refuseSocket(socket, { status: 502, error: 'server_error', description: 'the upgrade failed' });
    });
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (this.#closed)
      return refuseSocket(socket, { status: 503, error: 'unavailable', description: 'shutting down' });
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET') {
      return refuseSocket(socket, {
        status: 400,
        error: 'invalid_request',
        description: 'only websocket upgrades (GET, Upgrade: websocket) are supported',
      });
    }
    const target = this.#o.match(req);
    if (!target)
      return refuseSocket(socket, {
        status: 404,
        error: 'not_found',
        description: 'no route for this websocket',
      });
    if (target.kind === 'refuse')
      return refuseSocket(socket, {
        status: 400,
        error: 'invalid_request',
        description: `refused: ${target.reason}`,
      });
    const { route, path } = target;
    if (!route.config.websocket.enabled) {
      return refuseSocket(socket, {
        status: 400,
        error: 'invalid_request',
        description: `route "${route.name}" does not take websockets`,
      });
    }
    const key = req.headers['sec-websocket-key'];
    if (
      typeof key !== 'string' ||
      Buffer.from(key, 'base64').length !== 16 ||
      req.headers['sec-websocket-version'] !== '13'
    ) {
      return refuseSocket(socket, {
        status: 400,
        error: 'invalid_request',
        description: 'a websocket upgrade needs Sec-WebSocket-Key (16 bytes) and Sec-WebSocket-Version: 13',
      });
    }
    const gate = this.#o.gate;
    const peer = req.socket.remoteAddress ?? '';
    const trusted = inCidrs(this.#trusted, peer);
    const sourceIp = requestClientAddress(peer, target.headers.forwardedFor, this.#trusted);
    const base = auditBase({ route, method: 'GET', host: target.host, path, sourceIp }, { websocket: true });

    // Cross-site websocket hijacking: a browser sends cookies with any page's websocket, and only the
    // Origin tells whose page it is. No Origin: not a browser, so no ambient cookie to abuse.
    const origin = req.headers.origin;
    if (origin !== undefined) {
      const allowed = route.config.allowed_origins ?? [`${route.scheme}//${target.host.toLowerCase()}`];
      // `https://*.example.com` allows exactly one label more, never the apex (src/policy/host-pattern.ts).
      if (
        !allowed.some(
          (o) =>
            o.replace(/\/+$/, '').toLowerCase() === origin.toLowerCase() || matchOriginPattern(o, origin),
        )
      ) {
        // Refused before authentication, so it names no one, and any page can make a visitor's browser
        // send these by the hundred: through the flood guard, like other refusals of unproved callers.
        const auditId = await gate.auditDenied(
          newAuditId(),
          { ...base, stage: 'origin', reason: 'origin_not_allowed', origin: redactUntrusted(origin, 512) },
          sourceIp,
        );
        return refuseSocket(socket, {
          status: 403,
          error: 'access_denied',
          description: 'websockets on this route may not be opened from this Origin',
          auditId,
        });
      }
    }

    const outcome = await gate.check({
      req,
      route,
      method: 'GET',
      path,
      host: target.host,
      authorization: target.headers.authorization,
      sourceIp,
      audit: { websocket: true },
    });
    if (outcome.kind === 'unauthenticated') {
      const description =
        outcome.token?.description ??
        'this route needs a bearer token (Authorization: Bearer …) or a session';
      return refuseSocket(socket, {
        status: 401,
        error: outcome.token ? 'invalid_token' : 'unauthorized',
        description,
        ...(outcome.auditId ? { auditId: outcome.auditId } : {}),
        ...(outcome.missing ? { missing: outcome.missing } : {}),
        headers: {
          'www-authenticate': outcome.token
            ? bearerChallenge({ code: 'invalid_token', description })
            : bearerChallenge(),
        },
      });
    }
    if (outcome.kind === 'deny') return refuseSocket(socket, outcome.refusal);
    const identity = outcome.identity;

    // The upstream request: the hygienic headers of a plain request, plus the upgrade itself.
    const upstreamUrl = route.upstreams[Math.floor(Math.random() * route.upstreams.length)] as URL;
    const headers: Array<[string, string]> = [...target.headers.forward];
    if (target.headers.cookie !== undefined) headers.push(['cookie', target.headers.cookie]);
    if (!identity && target.headers.authorization !== undefined)
      headers.push(['authorization', target.headers.authorization]);
    headers.push(['host', route.config.preserve_host ? target.host : upstreamUrl.host]);
    const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    headers.push(
      [
        'x-forwarded-for',
        trusted && target.headers.forwardedFor ? `${target.headers.forwardedFor}, ${peer}` : sourceIp,
      ],
      ['x-forwarded-proto', (trusted && target.headers.forwardedProto) || proto],
      ['x-forwarded-host', (trusted && target.headers.forwardedHost) || target.host],
    );
    if (identity) {
      try {
        for (const [k, v] of Object.entries(await gate.identityHeaders(identity, route)))
          headers.push([k, v]);
      } catch (err) {
        this.#o.logger.error({ err, route: route.name }, 'signing the assertion failed');
        return refuseSocket(socket, {
          status: 503,
          error: 'temporarily_unavailable',
          description: 'could not sign the identity assertion',
        });
      }
    }
    headers.push(['connection', 'Upgrade'], ['upgrade', 'websocket']);
    const requestHead =
      `GET ${route.upstreamPath(path, upstreamUrl)}${target.query} HTTP/1.1\r\n` +
      headers.map(([k, v]) => `${k}: ${v}\r\n`).join('') +
      '\r\n';

    const upstream = await this.#connect(upstreamUrl, requestHead, route).catch((e: unknown) => e as Error);
    if (upstream instanceof Error) {
      const auditId = newAuditId();
      gate.audit('upstream.failed', {
        route: route.name,
        upstream: upstreamUrl.origin,
        method: 'GET',
        path,
        reason: upstream.message,
        websocket: true,
      });
      return refuseSocket(socket, {
        status: 502,
        error: 'upstream_unavailable',
        description: `the service behind route "${route.name}" is unavailable`,
        auditId,
      });
    }
    const { sock, status, head: upHead, rest } = upstream;
    const expected = websocketAccept(key);
    const upgradeOk = (upHead.headers.upgrade ?? '').toString().toLowerCase() === 'websocket';
    if (status !== 101 || upHead.headers['sec-websocket-accept'] !== expected || !upgradeOk) {
      // Piping anything else would hand the client an unauthenticated byte stream to whatever answered.
      sock.destroy();
      this.#o.logger.warn(
        { route: route.name, status },
        'upstream refused or botched the websocket handshake',
      );
      return refuseSocket(socket, {
        status: 502,
        error: 'upstream_unavailable',
        description:
          status === 101
            ? 'the upstream answered the websocket handshake with a wrong Sec-WebSocket-Accept'
            : `the upstream answered the websocket handshake with ${status}, not 101`,
      });
    }
    if (socket.destroyed) {
      sock.destroy();
      return;
    }
    const out = responseHeaders(upHead.headers);
    const lines = ['HTTP/1.1 101 Switching Protocols', 'upgrade: websocket', 'connection: Upgrade'];
    for (const [k, v] of Object.entries(out))
      for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (rest.length) socket.write(rest);
    if (head.length) sock.write(head);
    sock.setTimeout(0);
    sock.setNoDelay(true);
    (socket as Socket).setNoDelay?.(true);

    const id = newAuditId();
    const lifetimeMs = route.config.websocket.max_lifetime;
    const entry: OpenSocket = {
      id,
      route,
      identity,
      req,
      client: socket,
      upstream: sock,
      openedAt: this.#now(),
      lifetime: setTimeout(() => this.#close(entry, 'max_lifetime'), lifetimeMs),
      closed: false,
    };
    entry.lifetime.unref();
    this.#open.add(entry);
    this.#ensureTimer();
    socket.pipe(sock);
    sock.pipe(socket);
    this.#o.onOpen?.(socket, () => this.#goingAway(entry));
    socket.on('close', () => this.#close(entry, 'client'));
    sock.on('close', () => this.#close(entry, 'upstream'));
    sock.on('error', () => sock.destroy());
    gate.audit('websocket.opened', { id, ...base, ...(identity ? gate.who(identity) : {}) });
  }

  #connect(
    url: URL,
    requestHead: string,
    route: CompiledRoute,
  ): Promise<{ sock: Socket; status: number; head: IncomingLike; rest: Buffer }> {
    return new Promise((resolve, reject) => {
      const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const sock: Socket =
        url.protocol === 'https:'
          ? tlsConnect({ host, port, servername: /^[\d.:]+$/.test(host) ? undefined : host })
          : netConnect({ host, port });
      let buf = Buffer.alloc(0);
      const fail = (e: Error) => {
        sock.destroy();
        reject(e);
      };
      sock.setTimeout(Math.min(route.config.timeout, this.#o.handshakeTimeoutMs ?? 10_000), () =>
        fail(new Error('handshake timed out')),
      );
      sock.once('error', fail);
      sock.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => sock.write(requestHead));
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) {
          if (buf.length > MAX_UPSTREAM_HEAD) fail(new Error('upstream response head too large'));
          return;
        }
        sock.off('data', onData);
        sock.off('error', fail);
        sock.pause();
        const head = parseHead(buf.subarray(0, end).toString('latin1'));
        if (!head) return fail(new Error('malformed upstream response'));
        resolve({ sock, status: head.status, head, rest: buf.subarray(end + 4) });
      };
      sock.on('data', onData);
      sock.once('close', () => reject(new Error('upstream closed during the handshake')));
    });
  }

  #ensureTimer(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.#check(), this.#o.checkIntervalMs ?? 250);
    this.#timer.unref();
  }

  /** Closes sockets whose token or session was revoked (or whose session ended) since they opened. */
  async #check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const auth = this.#o.gate.browserAuth;
      for (const e of this.#open) {
        if (!e.identity) continue;
        if (this.#o.gate.isRevoked(e.identity)) {
          this.#close(e, 'revoked');
          continue;
        }
        if (e.identity.source === 'session' && auth) {
          const still = await auth
            .identify(e.req, this.#o.gate.publicHost(e.route, e.req.headers.host ?? ''))
            .catch(() => undefined);
          if (!still || still.sessionId !== e.identity.sessionId) this.#close(e, 'session_ended');
        }
      }
    } finally {
      this.#checking = false;
      if (this.#open.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    }
  }

  #close(e: OpenSocket, reason: string): void {
    if (e.closed) return;
    e.closed = true;
    clearTimeout(e.lifetime);
    this.#open.delete(e);
    e.client.destroy();
    e.upstream.destroy();
    this.#o.gate.audit('websocket.closed', {
      id: e.id,
      route: e.route.name,
      reason,
      duration_ms: this.#now() - e.openedAt,
      ...(e.identity ? this.#o.gate.who(e.identity) : {}),
    });
  }

  /**
   * RFC 6455 §7.4.1 close 1001 "going away" to both ends, then the sockets end: the client sees a clean
   * close within the drain's grace instead of a cut connection. Piping stops first so no frame of either
   * side is sent after the close frame.
   */
  #goingAway(e: OpenSocket): void {
    if (e.closed) return;
    e.client.unpipe(e.upstream);
    e.upstream.unpipe(e.client);
    const payload = Buffer.from([0x03, 0xe9]); // 1001
    e.client.end(Buffer.concat([Buffer.from([0x88, payload.length]), payload]));
    // Client-to-server frames are masked (RFC 6455 §5.3).
    const mask = randomBytes(4);
    const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
    e.upstream.end(Buffer.concat([Buffer.from([0x88, 0x80 | payload.length]), mask, masked]));
    e.client.once('finish', () => this.#close(e, 'shutdown'));
  }

  /** Closes every open websocket (shutdown). */
  close(): void {
    this.#closed = true;
    for (const e of [...this.#open]) this.#close(e, 'shutdown');
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

interface IncomingLike {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

function parseHead(text: string): IncomingLike | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers: Record<string, string | string[] | undefined> = {};
  for (const line of lines.slice(1)) {
    const c = line.indexOf(':');
    if (c <= 0) return undefined;
    const k = line.slice(0, c).trim().toLowerCase();
    const v = line.slice(c + 1).trim();
    const prev = headers[k];
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return { status: Number(m[1]), headers };
}
