// Random identifiers on the hot path (audit ids, jtis): bytes drawn from the CSPRNG in 4 KiB chunks and
// handed out in slices, so a request costs a copy rather than a system call. Each byte is used once.
import { randomBytes } from 'node:crypto';

const CHUNK = 4096;
let pool = Buffer.alloc(0);
let offset = 0;

/** `n` fresh random bytes (n ≤ 4096), base64url-encoded. */
export function randomId(n: number): string {
  if (offset + n > pool.length) {
    pool = randomBytes(CHUNK);
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + n);
  offset += n;
  return id;
}
