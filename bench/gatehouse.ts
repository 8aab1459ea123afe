// A real Gatehouse for benchmarks: temp directory, SQLite store (durable audit), port 0 on 127.0.0.1,
// one service account with a fresh secret.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/config/load.js';
import { generateKekText } from '../src/keys/seal.js';
import { rotateSecret } from '../src/issuer/client-secrets.js';
import { createLogger } from '../src/lib/logger.js';
import { startGatehouse, type Gatehouse } from '../src/server/app.js';

export interface BenchGatehouse {
  gh: Gatehouse;
  url: string;
  client: { id: string; secret: string };
  close(): Promise<void>;
}

/** The service account every benchmark issues tokens for. */
export const BENCH_CLIENT_YAML = 'clients:\n  - id: bench\n    allowed_audiences: ["**"]\n';

/** `yaml` replaces the default config text (it must keep a client `bench`); the rest is the bench base. */
export async function startBenchGatehouse(opts: { yaml?: string } = {}): Promise<BenchGatehouse> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const { config } = parseConfigText(opts.yaml ?? BENCH_CLIENT_YAML, {
    file: 'bench.yaml',
    baseDir: dir,
    base: {
      issuer: { url: 'http://127.0.0.1:1' },
      server: { host: '127.0.0.1', port: 0 },
      store: { sqlite: { path: join(dir, 'gatehouse.db') } },
      keys: { encryption_key: generateKekText() },
      log: { level: 'silent' },
    },
  });
  const gh = await startGatehouse(config, {
    issuerFromAddress: true,
    logger: createLogger({ level: 'silent' }),
  });
  const { secret } = await rotateSecret(gh.store, 'bench', { overlapMs: 0, now: Date.now() });
  return {
    gh,
    url: gh.config.issuer.url,
    client: { id: 'bench', secret },
    async close() {
      await gh.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
