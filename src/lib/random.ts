// Random identifiers on the hot path (audit ids, jtis, session ids): bytes drawn from the CSPRNG in 4 KiB
// chunks and handed out in slices, so a request costs a copy rather than a system call. Each byte is
// used once. An id never starts with `-`, so it can be given to a command (`gatehouse revoke token ID`)
// without being read as an option.
import { randomBytes } from 'node:crypto';

const CHUNK = 4096;
let pool = Buffer.alloc(0);
let offset = 0;

/**
 * The first character of base64url is the first byte's top 6 bits; 62 is `-` (RFC 4648 §5), which the
 * bytes 0xf8–0xfb give.
 */
const DASH = 62;

/** `n` fresh random bytes (n ≤ 4096), base64url-encoded; the first character is never `-`. */
export function randomId(n: number): string {
  for (;;) {
    if (offset + n > pool.length) {
      pool = randomBytes(CHUNK);
      offset = 0;
    }
    // Drawing again (dropping the byte) keeps the id uniform over the ids that do not start with `-`.
    if (n === 0 || (pool[offset] as number) >> 2 !== DASH) break;
    offset++;
  }
  const id = pool.toString('base64url', offset, offset + n);
  offset += n;
  return id;
}
