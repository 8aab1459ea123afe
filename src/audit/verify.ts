// Verifies the audit log: recomputes the hash chain page by page, checks every signed checkpoint and
// that it matches its row, and names the first record that breaks (edited, inserted, deleted, truncated).
import { GENESIS_HASH, type AuditRow, type Store } from '../store/store.js';
import type { CheckpointVerifier } from './checkpoint.js';
import { sealAuditRow } from './seal.js';

export type AuditBreak =
  /** The row's content no longer hashes to its stored hash: it was edited. */
  | 'hash mismatch'
  /** The row's prev hash is not the previous row's hash: a row was inserted or deleted before it. */
  | 'prev link broken'
  /** A sequence number is missing: that row was deleted. */
  | 'sequence gap'
  /** The oldest row is neither the genesis nor anchored by a checkpoint: rows before it were deleted. */
  | 'unanchored start'
  /** A checkpoint's signature does not verify (or its payload differs from what the store says). */
  | 'checkpoint signature invalid'
  /** The row at a checkpoint's (or the trusted head's) seq does not have the hash it signed. */
  | 'checkpoint mismatch'
  /** A checkpoint or the trusted head lies beyond the last row: the tail was cut off. */
  | 'truncated';

export interface AuditVerifyResult {
  ok: boolean;
  /** Rows whose hash was recomputed. */
  checked: number;
  firstBad?: { seq: number; reason: AuditBreak; expected?: string | number; actual?: string | number };
  /** Checkpoints whose signature verified. */
  checkpoints: number;
  /** The last row checked. */
  head?: { seq: number; hash: string };
}

export interface VerifyAuditOptions {
  verifyCheckpoint: CheckpointVerifier;
  /** A head kept outside the store (a shipped checkpoint): catches truncation past the last checkpoint. */
  trustedHead?: { seq: number; hash: string };
  pageSize?: number;
}

export async function verifyAuditLog(store: Store, options: VerifyAuditOptions): Promise<AuditVerifyResult> {
  const pageSize = options.pageSize ?? 1000;
  const bad: NonNullable<AuditVerifyResult['firstBad']>[] = [];

  // Checkpoints first: only those whose signature verifies may anchor or bound the chain.
  const anchors = new Map<number, string>();
  let checkpoints = 0;
  for (const cp of await store.listCheckpoints()) {
    try {
      const payload = await options.verifyCheckpoint(cp.jws);
      if (payload.seq !== cp.seq || payload.hash !== cp.hash)
        throw new Error('payload differs from the stored checkpoint');
      anchors.set(cp.seq, cp.hash);
      checkpoints += 1;
    } catch {
      bad.push({ seq: cp.seq, reason: 'checkpoint signature invalid' });
    }
  }
  const trusted = options.trustedHead;

  let checked = 0;
  let prev: AuditRow | undefined;
  let afterSeq: number | undefined;
  walk: for (;;) {
    const page = await store.queryAudit(
      afterSeq === undefined ? { limit: pageSize } : { afterSeq, limit: pageSize },
    );
    for (const row of page) {
      const recomputed = sealAuditRow(row.prevHash, row);
      if (prev === undefined) {
        // The oldest row: the genesis, or (after a prune) a row a verified checkpoint vouches for.
        const anchored =
          (row.seq === 1 && row.prevHash === GENESIS_HASH) ||
          anchors.get(row.seq - 1) === row.prevHash ||
          (anchors.get(row.seq) === row.hash && recomputed === row.hash);
        if (!anchored) {
          bad.push(
            row.seq === 1
              ? { seq: 1, reason: 'prev link broken', expected: GENESIS_HASH, actual: row.prevHash }
              : { seq: row.seq, reason: 'unanchored start', expected: 1, actual: row.seq },
          );
          break walk;
        }
      } else {
        if (row.seq !== prev.seq + 1) {
          bad.push({ seq: prev.seq + 1, reason: 'sequence gap', expected: prev.seq + 1, actual: row.seq });
          break walk;
        }
        if (row.prevHash !== prev.hash) {
          bad.push({ seq: row.seq, reason: 'prev link broken', expected: prev.hash, actual: row.prevHash });
          break walk;
        }
      }
      if (recomputed !== row.hash) {
        bad.push({ seq: row.seq, reason: 'hash mismatch', expected: recomputed, actual: row.hash });
        break walk;
      }
      const signed = anchors.get(row.seq);
      if (signed !== undefined && signed !== row.hash) {
        bad.push({ seq: row.seq, reason: 'checkpoint mismatch', expected: signed, actual: row.hash });
        break walk;
      }
      if (trusted && trusted.seq === row.seq && trusted.hash !== row.hash) {
        bad.push({ seq: row.seq, reason: 'checkpoint mismatch', expected: trusted.hash, actual: row.hash });
        break walk;
      }
      checked += 1;
      prev = row;
    }
    if (page.length < pageSize) break;
    afterSeq = (page[page.length - 1] as AuditRow).seq;
  }

  if (bad.length === 0) {
    const lastSeq = prev?.seq ?? 0;
    const bound = Math.max(0, ...anchors.keys(), trusted?.seq ?? 0);
    if (bound > lastSeq)
      bad.push({ seq: lastSeq + 1, reason: 'truncated', expected: bound, actual: lastSeq });
  }

  // Report the earliest problem, whether found in the chain or in a checkpoint's signature.
  bad.sort((a, b) => a.seq - b.seq);
  const firstBad = bad[0];
  const result: AuditVerifyResult = { ok: firstBad === undefined, checked, checkpoints };
  if (firstBad) result.firstBad = firstBad;
  if (prev) result.head = { seq: prev.seq, hash: prev.hash };
  return result;
}
