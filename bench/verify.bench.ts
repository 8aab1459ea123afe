// Verification: ops/s of Gatehouse's strict verifier (`verifyJwt`) against raw jose `jwtVerify` on the
// same token and the same public key, sequential and with 16 in flight.
import { importJWK, jwtVerify } from 'jose';
import { verifyJwt, type VerificationKey } from '../src/tokens/verify.js';
import { TYP_ACCESS_TOKEN } from '../src/tokens/sign.js';
import { bounded, row, type BenchResult } from './lib.js';
import { startBenchGatehouse } from './gatehouse.js';

const GROUP = 'verification';

export async function run(): Promise<BenchResult[]> {
  const b = await startBenchGatehouse();
  try {
    const key = b.gh.keys.active();
    const publicKey = (await importJWK(key.publicJwk, key.alg)) as VerificationKey;
    const { token } = await b.gh.issuer.context.minter.mint({
      sub: 'bench',
      audiences: ['api'],
      ttlMs: 3_600_000,
      clientId: 'bench',
      grant: 'bench',
    });
    const ours = () =>
      verifyJwt(token, {
        issuer: b.url,
        keys: async () => publicKey,
        algorithms: [key.alg],
        audience: 'api',
        typ: TYP_ACCESS_TOKEN,
      });
    const raw = () =>
      jwtVerify(token, publicKey, {
        issuer: b.url,
        audience: 'api',
        typ: TYP_ACCESS_TOKEN,
        algorithms: [key.alg],
      });
    const seqRef = `jose jwtVerify ${key.alg}, sequential`;
    const parRef = `jose jwtVerify ${key.alg}, 16 in flight`;
    return [
      row(GROUP, seqRef, 'verifications/s', await bounded(raw, { inFlight: 1 })),
      row(GROUP, parRef, 'verifications/s', await bounded(raw, { inFlight: 16 })),
      row(
        GROUP,
        'gatehouse verifyJwt, sequential',
        'verifications/s',
        await bounded(ours, { inFlight: 1 }),
        seqRef,
      ),
      row(
        GROUP,
        'gatehouse verifyJwt, 16 in flight',
        'verifications/s',
        await bounded(ours, { inFlight: 16 }),
        parRef,
      ),
    ];
  } finally {
    await b.close();
  }
}
