// TLS termination: the certificate and key come from files named in `server.tls`, and are reloaded into
// the running https server when they change (certificate renewal without a restart). An optional plain
// http listener redirects to https, building the location from the configured public URL only.
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createSecureContext } from 'node:tls';
import type { Server as HttpsServer } from 'node:https';
import { basename, dirname } from 'node:path';
import { GatehouseError } from '../lib/errors.js';
import type { PartLogger } from '../audit/logger.js';

export interface TlsFiles {
  cert: string;
  key: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** Reads and checks a certificate and key pair; a mismatched or unreadable pair is an ERR_CONFIG_INVALID. */
export function readTlsFiles(files: TlsFiles): TlsMaterial {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.cert);
    key = readFileSync(files.key);
  } catch (e) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      `cannot read the TLS certificate or key: ${(e as NodeJS.ErrnoException).code ?? 'error'} (${(e as NodeJS.ErrnoException).path ?? ''})`,
      { field: 'server.tls' },
    );
  }
  try {
    // Throws when the key does not match the certificate, or either is not PEM.
    createSecureContext({ cert, key });
  } catch (e) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      `the TLS certificate and key in ${files.cert} and ${files.key} do not form a usable pair: ${(e as Error).message}`,
      { field: 'server.tls' },
    );
  }
  return { cert, key };
}

export interface CertificateWatcher {
  /** Re-reads the files now; resolves true when the new pair was installed. */
  reload(): boolean;
  close(): void;
}

/**
 * Watches the directories of the certificate and key (renewal tools replace files rather than write in
 * place) and installs a new pair with `setSecureContext` once both read and match. A broken pair is
 * logged and the old one keeps serving.
 */
export function watchCertificate(
  server: HttpsServer,
  files: TlsFiles,
  opts: { logger: PartLogger; debounceMs?: number; onReload?: (ok: boolean) => void },
): CertificateWatcher {
  let timer: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [];
  const reload = (): boolean => {
    try {
      const m = readTlsFiles(files);
      server.setSecureContext({ cert: m.cert, key: m.key });
      opts.logger.info({ event: 'tls.reloaded', cert: files.cert }, 'TLS certificate reloaded');
      opts.onReload?.(true);
      return true;
    } catch (err) {
      opts.logger.error(
        { event: 'tls.reload_failed', err },
        'the new TLS certificate or key was refused; the previous one keeps serving',
      );
      opts.onReload?.(false);
      return false;
    }
  };
  const names = new Set([basename(files.cert), basename(files.key)]);
  for (const dir of new Set([dirname(files.cert), dirname(files.key)])) {
    const w = watch(dir, { persistent: false }, (_event, name) => {
      if (name !== null && !names.has(name)) return;
      clearTimeout(timer);
      // Both files usually change together; wait for the pair to settle.
      timer = setTimeout(reload, opts.debounceMs ?? 200);
    });
    w.on('error', (err) => opts.logger.warn({ err }, 'watching the TLS files failed'));
    watchers.push(w);
  }
  return {
    reload,
    close() {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}

/**
 * A plain http listener answering every request with a 301 to the same path on `publicUrl`'s https
 * origin. The Host header is never used: the location comes from configuration alone.
 */
export async function startHttpsRedirect(opts: {
  publicUrl: string;
  port: number;
  host: string;
}): Promise<Server> {
  const base = new URL(opts.publicUrl);
  base.protocol = 'https:';
  const origin = base.origin;
  const server = createServer((req, res) => {
    // Only origin-form targets keep their path and query; anything else goes to the root.
    const target = req.url ?? '/';
    const path = target.startsWith('/') && !target.startsWith('//') ? target : '/';
    res.writeHead(301, { location: origin + path, 'content-length': 0, connection: 'close' });
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return server;
}
