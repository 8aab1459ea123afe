// Graceful shutdown: stop accepting, let in-flight requests finish (keep-alive connections are closed
// as soon as they go idle), ask long-lived sockets (websockets) to close, and cut whatever is left when
// the grace period ends. Parts with long-lived sockets register them in the DrainRegistry.
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** How a registered long-lived connection is asked to go away (a websocket sends close 1001). */
export type GoingAway = () => void;

export class DrainRegistry {
  readonly #sockets = new Map<Duplex, GoingAway | undefined>();
  #draining = false;

  /**
   * Tracks an upgraded socket until it closes. `goingAway` is called when draining starts; whatever is
   * still open when the grace ends is destroyed. A socket registered while draining is told at once.
   */
  register(socket: Duplex, goingAway?: GoingAway): void {
    if (socket.destroyed) return;
    this.#sockets.set(socket, goingAway);
    socket.once('close', () => this.#sockets.delete(socket));
    if (this.#draining) this.#tell(goingAway, socket);
  }

  get draining(): boolean {
    return this.#draining;
  }

  get size(): number {
    return this.#sockets.size;
  }

  /** Tells every registered socket to go away. */
  startDrain(): void {
    if (this.#draining) return;
    this.#draining = true;
    for (const [socket, goingAway] of this.#sockets) this.#tell(goingAway, socket);
  }

  destroyAll(): void {
    for (const socket of this.#sockets.keys()) socket.destroy();
    this.#sockets.clear();
  }

  #tell(goingAway: GoingAway | undefined, socket: Duplex): void {
    if (!goingAway) {
      socket.end();
      return;
    }
    try {
      goingAway();
    } catch {
      socket.destroy();
    }
  }
}

export interface DrainOptions {
  graceMs: number;
  registry?: DrainRegistry;
  /** Other listeners to close at once (the http→https redirect). */
  also?: Server[];
}

/**
 * Stops `server` accepting and waits for its connections to end, at most `graceMs`; then cuts them.
 * Resolves with whether everything finished within the grace.
 */
export async function drainServer(server: Server, opts: DrainOptions): Promise<boolean> {
  const { registry } = opts;
  for (const s of opts.also ?? []) {
    s.close();
    s.closeAllConnections();
  }
  // Responses finishing while we drain say `Connection: close`, so clients do not reuse the socket.
  server.on('request', (_req, res) => res.setHeader('connection', 'close'));
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  registry?.startDrain();
  // server.close() closes idle keep-alive connections once; connections that finish a request later
  // become idle again, so keep closing them until all are gone.
  server.closeIdleConnections();
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), opts.graceMs);
  });
  const wsDone = new Promise<void>((resolve) => {
    if (!registry) return resolve();
    const poll = setInterval(() => {
      if (registry.size === 0) {
        clearInterval(poll);
        resolve();
      }
    }, 20);
    void expired.then(() => clearInterval(poll));
  });
  const inTime = await Promise.race([Promise.all([closed, wsDone]).then(() => true as const), expired]);
  clearInterval(sweep);
  clearTimeout(timer);
  if (!inTime) {
    server.closeAllConnections();
    registry?.destroyAll();
    await closed;
  }
  return inTime;
}
