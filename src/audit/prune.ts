// Audit retention: deletes old rows only up to a signed checkpoint, so the rest of the chain stays
// verifiable from that checkpoint.
import type { AuditCheckpoint, Store } from '../store/store.js';

export interface AuditPruneResult {
  /** Rows deleted. */
  deleted: number;
  /** The checkpoint the remaining chain starts from (its row is kept); none when nothing could be pruned. */
  checkpoint?: { seq: number; hash: string; createdAt: number };
}

/** Deletes rows older than the latest checkpoint made at or before `before` (that checkpoint's row stays). */
export async function pruneAudit(store: Store, before: Date): Promise<AuditPruneResult> {
  const cutoff = before.getTime();
  if (!Number.isFinite(cutoff)) throw new TypeError('pruneAudit: before is not a valid date');
  let anchor: AuditCheckpoint | undefined;
  for (const cp of await store.listCheckpoints()) {
    if (cp.createdAt <= cutoff && (!anchor || cp.seq > anchor.seq)) anchor = cp;
  }
  if (!anchor) return { deleted: 0 };
  const deleted = await store.pruneAudit(anchor.seq);
  return { deleted, checkpoint: { seq: anchor.seq, hash: anchor.hash, createdAt: anchor.createdAt } };
}
