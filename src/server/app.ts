// The composition root: opens the store, loads keys, starts the audit log and revocation set, builds
// the issuer, and serves them all from one node:http server. Nothing else wires parts together.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { GatehouseConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';
import { KeyRing } from '../keys/keyring.js';
import { parseKek } from '../keys/seal.js';
import { RotationScheduler } from '../keys/rotation.js';
import { StoreMaintenance } from './maintenance.js';
import { AuditLog, FloodGuard, createCheckpointSigner } from '../audit/index.js';
import { RevocationSet } from '../revocation/index.js';
import { ClientRegistry } from '../issuer/clients.js';
import { TokenMinter } from '../issuer/mint.js';
import { Issuer } from '../issuer/issuer.js';
import { Interactions } from '../issuer/interactions.js';
import { refusalAuditSink } from '../issuer/refusals.js';
import { SsoBrowserAuth } from '../session/browser-auth.js';
import type { IssuerContext } from '../issuer/context.js';
import { createFederation } from '../federation/index.js';
import { GatehouseError } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { countingAuditSink, createMetrics, type Metrics } from './metrics.js';
import { openStore } from './open-store.js';
import { StoreHealth } from './store-health.js';
import { Proxy } from '../proxy/proxy.js';
import { ConfigReloader } from './reload.js';
import { DrainRegistry, drainServer } from './drain.js';
import { readTlsFiles, startHttpsRedirect, watchCertificate } from './tls.js';
import { RateLimits } from './rate-limit.js';
import { ForwardAuth } from '../proxy/forward-auth.js';
import { WebsocketProxy } from '../proxy/websocket.js';
import type { Duplex } from 'node:stream';

export interface StartOptions {
  /** Use this store instead of opening the configured one (the caller closes it). */
  store?: Store;
  logger?: Logger;
  /** Override the configured listen port (0: any free port). */
  port?: number;
  host?: string;
  now?: () => number;
  /** Make the issuer URL `http://HOST:PORT` of the bound address (the dev stack, tests on port 0). */
  issuerFromAddress?: boolean;
  /** Serve https with this key and certificate (tests of Secure and `__Host-` cookies; small setups). */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** The file the config came from: reload it on change and on `reload()` (docs/operations.md). */
  configFile?: string;
  /** Where /metrics gets its text; default this instance's registry (a cluster worker asks the primary). */
  metricsSource?: () => Promise<{ text: string; contentType: string }>;
  /** How often housekeeping looks for expired rows (default 5 minutes; tests shorten it). */
  maintenanceIntervalMs?: number;
}

export interface Gatehouse {
  readonly config: GatehouseConfig;
  readonly url: string;
  readonly server: Server;
  readonly store: Store;
  readonly keys: KeyRing;
  readonly issuer: Issuer;
  readonly audit: AuditLog;
  /** Coalesces the records of unauthenticated refusals past their budget; `flush()` writes due summaries. */
  readonly refusalGuard: FloodGuard;
  readonly revocations: RevocationSet;
  /** Signing-key rotation on schedule; `tick()` runs one check now. */
  readonly rotation: RotationScheduler;
  /** Removes expired rows from the store every few minutes; `tick()` runs one round now. */
  readonly maintenance: StoreMaintenance;
  /** Whether the store answers; what keeps serving without it (docs/scaling.md). */
  readonly storeHealth: StoreHealth;
  readonly metrics: Metrics;
  readonly proxy: Proxy;
  readonly logger: Logger;
  /** Browser sign-in through the upstream IdPs (the proxy's BrowserAuth). */
  readonly browserAuth: SsoBrowserAuth;
  /** Long-lived sockets (websockets) to close on shutdown. */
  readonly drain: DrainRegistry;
  /** Hot reload of `configFile`; undefined without one. */
  readonly reloader: ConfigReloader | undefined;
  /** Stops accepting, lets in-flight requests finish within `server.shutdown_grace`, then closes. */
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export async function startGatehouse(
  inputConfig: GatehouseConfig,
  opts: StartOptions = {},
): Promise<Gatehouse> {
  const now = opts.now ?? Date.now;
  // Listen first, so a port-0 server knows its own URL before the issuer is built; until the parts are
  // up, requests get 503.
  let ready: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (ready) ready(req, res);
    else sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'starting' });
  };
  // A proxy's limits: a slow or oversized request head is cut off (431 above max_header_bytes).
  const timeouts = {
    requestTimeout: inputConfig.proxy.request_timeout,
    headersTimeout: inputConfig.proxy.headers_timeout,
    maxHeaderSize: inputConfig.proxy.max_header_bytes,
  };
  // `server.tls` files are read before listening: a bad pair stops the start with a clear error.
  const tls = opts.tls ?? (inputConfig.server.tls ? readTlsFiles(inputConfig.server.tls) : undefined);
  const server: Server = tls
    ? (createHttpsServer({ ...timeouts, ...tls }, onRequest) as unknown as Server)
    : createServer(timeouts, onRequest);
  server.maxRequestsPerSocket = inputConfig.proxy.max_requests_per_socket;
  const listenHost = opts.host ?? inputConfig.server.host;
  const listenPort = opts.port ?? inputConfig.server.port;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why =
        e.code === 'EADDRINUSE'
          ? 'the port is already in use (another Gatehouse, or another program)'
          : e.code === 'EACCES'
            ? 'permission denied (ports below 1024 need privileges)'
            : e.code === 'EADDRNOTAVAIL'
              ? 'this machine has no such address'
              : (e.code ?? e.message);
      reject(
        new GatehouseError('ERR_LISTEN_FAILED', `cannot listen on ${listenHost}:${listenPort}: ${why}`, {
          hint: 'choose another port (server.port, or --port for gatehouse dev), or stop the other process',
        }),
      );
    });
    server.listen(listenPort, listenHost, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `${tls ? 'https' : 'http'}://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  const config: GatehouseConfig = opts.issuerFromAddress
    ? { ...inputConfig, issuer: { ...inputConfig.issuer, url } }
    : inputConfig;
  const logger = opts.logger ?? createLogger({ level: config.log.level, format: config.log.format });
  // The change feed reports its connection trouble here before a ping would notice.
  let storeHealth: StoreHealth | undefined;
  const store =
    opts.store ?? (await openStore(config, { onNotifyError: (e) => storeHealth?.reportError(e) }));
  const ownStore = !opts.store;
  const cleanups: Array<() => Promise<void> | void> = [];
  try {
    const health = new StoreHealth({
      store,
      graceMs: config.store.postgres?.grace ?? 30_000,
      // Reported up only once the revocation set has read what it missed.
      onRecover: () => revocations.catchUp(),
      onChange: (st) =>
        st.healthy
          ? logger.info({ event: 'store.recovered' }, 'the store answers again')
          : logger.error({ event: 'store.unavailable', reason: st.reason }, 'the store is unreachable'),
    });
    storeHealth = health;
    const keys = new KeyRing(store, {
      // The current KEK seals (first); earlier ones only open keys not yet rewrapped.
      keks: [config.keys.encryption_key, ...config.keys.previous_encryption_keys].map(parseKek),
      algorithm: config.keys.algorithm,
      now,
    });
    const firstKey = await keys.ensureActiveKey();

    const audit = new AuditLog(store, {
      signCheckpoint: (payload) => createCheckpointSigner(keys.active())(payload),
      logger,
      now,
    });
    cleanups.push(() => audit.close());
    if (firstKey) {
      // The first key of a new store: active at once, since nothing was published before it.
      const base = { kid: firstKey.kid, alg: firstKey.alg, reason: 'first key of a new store' };
      await audit.append('key.created', { ...base, state: 'active' });
      await audit.append('key.activated', { ...base, published_ms: 0, early: false });
    }
    const revocations = new RevocationSet(store, {
      now,
      logger,
      // Fail closed: a set cut off from the feed past the grace may be missing revocations.
      freshness: () => health.assertWithinGrace('revocation check'),
    });
    await revocations.start();
    cleanups.push(() => revocations.stop());
    health.start();
    cleanups.push(() => health.stop());

    const clients = new ClientRegistry(config.clients, store);
    cleanups.push(() => clients.close());
    const metrics = createMetrics({ store, keys, now });
    // The issuer's records go through a counting sink, so /metrics counts exactly what was audited.
    const issuerAudit = countingAuditSink(audit, metrics);
    // Refusals of callers that proved no identity, at the token endpoints and the proxy alike, share one
    // budget of audit records; past it they are coalesced (docs/operations.md#audit-log-floods).
    const refusalGuard = new FloodGuard({
      sink: issuerAudit,
      settings: config.audit.unauthenticated,
      logger,
      now,
    });
    cleanups.push(() => refusalGuard.close());
    const sso: SsoBrowserAuth = new SsoBrowserAuth({
      config,
      store,
      revocations,
      audit,
      logger,
      kek: parseKek(config.keys.encryption_key).key,
      now,
      // A sign-in may return to any host the proxy answers on: it sends browsers to login from there.
      // Read per login, so a reload's routes count at once; `proxy` is built below, before any request.
      extraReturnHosts: (): string[] =>
        proxy.routes.routes.map((r) => (r.port ? `${r.host}:${r.port}` : r.host)),
    });
    const ic: IssuerContext = {
      config,
      sso,
      store,
      keys,
      clients,
      minter: new TokenMinter(config.issuer.url, keys, issuerAudit, now),
      audit: refusalAuditSink(issuerAudit, refusalGuard),
      refusalGuard,
      revocations,
      now,
      federation: createFederation(config, { keys, revocations, now }),
      onStoreError: (e) => health.reportError(e),
    };
    const cookieKeys = JSON.parse(
      await store.initMeta('cookie_keys', JSON.stringify([randomBytes(32).toString('base64url')])),
    ) as string[];
    const issuer = new Issuer(ic, cookieKeys);
    await issuer.rebuild();
    const interactions = new Interactions(issuer, sso);

    // Keys change when any process rotates them: reload, publish the new JWKS (a new provider), and
    // only then sign with the new active key.
    const unwatch = store.watchChanges((c) => {
      if (c.topic !== 'keys') return;
      keys
        .load({ beforeSigning: () => issuer.refresh() })
        .then(() => issuer.refresh())
        .catch((err: unknown) => logger.error({ err }, 'reloading signing keys failed'));
    });
    cleanups.push(unwatch);
    const rotation = new RotationScheduler({
      store,
      keks: keys.keks,
      audit,
      now,
      by: 'scheduler',
      policy: {
        algorithm: config.keys.algorithm,
        everyMs: config.keys.rotation.every,
        propagationMs: config.keys.rotation.propagation,
        maxTokenTtlMs: config.tokens.max_ttl,
        clockSkewMs: config.tokens.clock_skew,
      },
      checkIntervalMs: config.keys.rotation.check_interval,
      onStep: (step) => logger.info({ event: `key.${step.kind}`, ...step }, 'signing key rotation'),
      onError: (err) => logger.error({ err }, 'signing key rotation check failed'),
    });
    rotation.start();
    cleanups.push(() => rotation.stop());
    // Expired revocations, oidc-provider records, sessions and single-use records: one process of
    // many removes them every few minutes (docs/operations.md#housekeeping).
    const maintenance = new StoreMaintenance({
      store,
      now,
      graceMs: config.tokens.clock_skew,
      ...(opts.maintenanceIntervalMs !== undefined ? { intervalMs: opts.maintenanceIntervalMs } : {}),
      logger,
      onPruned: (counts) => {
        for (const [table, n] of Object.entries(counts)) if (n > 0) metrics.storePruned.inc({ table }, n);
      },
    });
    maintenance.start();
    cleanups.push(() => maintenance.stop());

    // Routes are compiled once here; the hot path touches no database.
    // The proxy owns the one decision path (its gate), which forward-auth and websockets share; the
    // federation is read live, since reload swaps it.
    const proxy = new Proxy({
      config,
      keys,
      revocations,
      audit,
      logger,
      now,
      browserAuth: sso,
      metrics,
      federation: () => ic.federation,
      refusalGuard,
    });
    cleanups.push(() => proxy.close());
    const drain = new DrainRegistry();
    const forwardAuth = new ForwardAuth({
      config: config.forward_auth,
      gate: proxy.gate,
      routes: () => proxy.routes,
      logger,
      now,
    });
    // proxy.trusted_proxies is read at start only (reload reports it as needing a restart).
    const websockets = new WebsocketProxy({
      gate: proxy.gate,
      match: (req) => proxy.match(req),
      trustedProxies: config.proxy.trusted_proxies,
      logger,
      now,
      // SIGTERM: each websocket gets close 1001 (going away) and the grace to finish.
      onOpen: (client, goingAway) => drain.register(client, goingAway),
    });
    let rateLimits = new RateLimits({ config, audit, logger, refused: metrics.rateLimited, now });
    // Reload swaps whole state: the proxy's route table, the trust rules, the rate limiters.
    const reloader = opts.configFile
      ? new ConfigReloader({
          file: opts.configFile,
          current: config,
          pin: (c) => (opts.issuerFromAddress ? { ...c, issuer: { ...c.issuer, url } } : c),
          apply(next) {
            proxy.reload(next);
            forwardAuth.reload(next.forward_auth);
            refusalGuard.configure(next.audit.unauthenticated);
            ic.federation = createFederation(next, { keys, revocations, now });
            rateLimits = new RateLimits({ config: next, audit, logger, refused: metrics.rateLimited, now });
          },
          audit,
          logger,
          reloads: metrics.configReloads,
        })
      : undefined;
    reloader?.watch();
    cleanups.push(() => reloader?.close());
    if (inputConfig.server.tls && !opts.tls) {
      const certs = watchCertificate(server as never, inputConfig.server.tls, { logger });
      cleanups.push(() => certs.close());
    }
    const redirectPort = inputConfig.server.tls?.redirect_http;
    const redirect =
      redirectPort !== undefined
        ? await startHttpsRedirect({
            publicUrl: config.issuer.url,
            port: redirectPort,
            host: opts.host ?? inputConfig.server.host,
          })
        : undefined;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      websockets.handleUpgrade(req, socket, head),
    );
    cleanups.push(() => websockets.close());

    ready = (req, res) => {
      const started = process.hrtime.bigint();
      if (rateLimits.enabled && rateLimits.refuse(req, res)) return;
      const own = route(req);
      // Gatehouse's own /.gatehouse/ paths win; then a request matching a route goes to the proxy.
      const target = own === 'gatehouse' ? undefined : proxy.match(req);
      const kind = target ? 'proxy' : own;
      res.on('finish', () => {
        const s = Number(process.hrtime.bigint() - started) / 1e9;
        metrics.httpDuration.observe(
          { route: kind, method: req.method ?? '', status: String(res.statusCode) },
          s,
        );
      });
      (target ? proxy.handle(req, res, target) : handle(kind, req, res)).catch((err: unknown) => {
        logger.error({ err }, 'request failed');
        if (!res.headersSent)
          sendJson(res, 500, { error: 'server_error', error_description: 'internal error' });
        else res.destroy();
      });
    };

    function route(req: IncomingMessage): string {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (path === '/healthz' || path === '/readyz' || path === '/metrics') return path.slice(1);
      if (path.startsWith('/.gatehouse/')) return 'gatehouse';
      return 'issuer';
    }

    async function handle(kind: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
      switch (kind) {
        case 'healthz':
          return sendJson(res, 200, { status: 'ok' });
        case 'readyz': {
          const problems: string[] = [];
          const st = health.state();
          // Within the grace the replica still verifies from memory, so it stays in rotation; past it,
          // it refuses revocation checks and must leave.
          if (!st.withinGrace)
            problems.push(
              `store unreachable since ${new Date(st.since).toISOString()} (longer than store.postgres.grace): ${st.reason ?? 'unknown'}`,
            );
          try {
            keys.active();
          } catch {
            problems.push('no active signing key');
          }
          if (!revocations.started) problems.push('revocation set not started');
          return sendJson(res, problems.length ? 503 : 200, {
            status: problems.length ? 'unavailable' : st.healthy ? 'ready' : 'degraded',
            problems,
            store: {
              kind: store.kind,
              state: st.healthy ? 'up' : 'down',
              since: new Date(st.since).toISOString(),
              ...(st.reason !== undefined ? { reason: st.reason } : {}),
            },
          });
        }
        case 'metrics': {
          const { text, contentType } = opts.metricsSource
            ? await opts.metricsSource()
            : { text: await metrics.registry.metrics(), contentType: metrics.registry.contentType };
          res.writeHead(200, { 'content-type': contentType });
          res.end(text);
          return;
        }
        case 'gatehouse': {
          // Sign-in's own paths; the provider's login and consent interactions resume through them.
          if ((req.url ?? '').startsWith('/.gatehouse/interaction/')) return interactions.handle(req, res);
          if ((req.url ?? '').split('?')[0] === '/.gatehouse/auth') return forwardAuth.handle(req, res);
          if (await sso.handle(req, res)) return;
          return sendJson(res, 404, { error: 'not_found' });
        }
        default:
          if (!issuer.owns((req.url ?? '/').split('?')[0] ?? '/'))
            return sendJson(res, 404, { error: 'not_found' });
          // Issuing needs the store (client secrets, the durable token.issued record): while it is down,
          // say so at once and clearly rather than fail deep inside the provider.
          if (!health.healthy && req.method === 'POST' && (req.url ?? '').split('?')[0] === '/token') {
            res.setHeader('retry-after', '5');
            return sendJson(res, 503, {
              error: 'temporarily_unavailable',
              error_description: 'the store is unreachable; try again shortly',
            });
          }
          return issuer.handle(req, res);
      }
    }

    logger.info({ url, issuer: config.issuer.url, kid: keys.active().kid }, 'gatehouse listening');

    let closing: Promise<void> | undefined;
    return {
      config,
      url,
      server,
      store,
      keys,
      issuer,
      audit,
      refusalGuard,
      revocations,
      rotation,
      maintenance,
      storeHealth: health,
      metrics,
      proxy,
      logger,
      browserAuth: sso,
      drain,
      reloader,
      close() {
        closing ??= (async () => {
          reloader?.close();
          const inTime = await drainServer(server, {
            graceMs: config.server.shutdown_grace,
            registry: drain,
            also: redirect ? [redirect] : [],
          });
          if (!inTime)
            logger.warn(
              { event: 'server.drain_expired' },
              'connections still open at the end of the grace were cut',
            );
          for (const c of cleanups.reverse()) await c();
          if (ownStore) await store.close();
        })();
        return closing;
      },
    };
  } catch (e) {
    server.close();
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    if (ownStore) await store.close();
    throw e;
  }
}
