// Shared by the token tests: key generation, raw JWS signing (for headers jose would not write) and a
// real JWKS/discovery server on port 0 that counts its requests and can be switched off.
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { KeyObject, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';

export const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
export const T0_SEC = T0 / 1000;

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

/** An RSA key pair below the 2048-bit floor, which jose will not even generate. */
export function makeWeakRsaKey(kid: string): {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: JWK;
} {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  return {
    kid,
    privateKey,
    publicKey,
    jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' },
  };
}

export async function makeKey(alg: string, kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, jwk };
}

const b64 = (s: string | Uint8Array): string => Buffer.from(s).toString('base64url');

/** Signs header and payload given as raw JSON text, so tests can write duplicate or odd members. */
export function signRaw(
  headerJson: string,
  payloadJson: string,
  key: CryptoKey | KeyObject,
  alg: string,
): string {
  const input = `${b64(headerJson)}.${b64(payloadJson)}`;
  const hash = alg.endsWith('384') ? 'sha384' : alg.endsWith('512') ? 'sha512' : 'sha256';
  const sig = nodeSign(hash, Buffer.from(input), {
    key: key instanceof KeyObject ? key : KeyObject.from(key),
    ...(alg.startsWith('ES') ? { dsaEncoding: 'ieee-p1363' as const } : {}),
  });
  return `${input}.${b64(sig)}`;
}

export interface JwksServer {
  url: string;
  /** Requests by path. */
  hits: Map<string, number>;
  jwksHits(): number;
  setKeys(keys: JWK[]): void;
  setCacheControl(v: string | undefined): void;
  setDiscoveryIssuer(v: string | undefined): void;
  setDown(down: boolean): void;
  setDelayMs(ms: number): void;
  close(): Promise<void>;
}

export async function startJwksServer(initial: JWK[] = []): Promise<JwksServer> {
  let keys = initial;
  let cacheControl: string | undefined;
  let discoveryIssuer: string | undefined;
  let down = false;
  let delay = 0;
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const answer = (): void => {
      if (down) {
        res.writeHead(503).end('down');
        return;
      }
      if (path === '/.well-known/openid-configuration') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ issuer: discoveryIssuer ?? url, jwks_uri: `${url}/jwks` }));
        return;
      }
      if (path === '/jwks') {
        res.writeHead(200, {
          'content-type': 'application/json',
          ...(cacheControl !== undefined ? { 'cache-control': cacheControl } : {}),
        });
        res.end(JSON.stringify({ keys }));
        return;
      }
      if (path === '/huge') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: [], pad: 'x'.repeat(2 * 1024 * 1024) }));
        return;
      }
      res.writeHead(404).end();
    };
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    hits,
    jwksHits: () => hits.get('/jwks') ?? 0,
    setKeys: (k) => (keys = k),
    setCacheControl: (v) => (cacheControl = v),
    setDiscoveryIssuer: (v) => (discoveryIssuer = v),
    setDown: (d) => (down = d),
    setDelayMs: (ms) => (delay = ms),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A clock the test moves by hand. */
export function manualClock(start = T0): { now: () => number; advance: (sec: number) => void } {
  let t = start;
  return { now: () => t, advance: (sec) => (t += sec * 1000) };
}
