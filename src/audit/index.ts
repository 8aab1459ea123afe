// The audit part's public entry: durable hash-chained records, signed checkpoints, verification, retention.
export { AuditLog, newAuditId, type AuditLogOptions, type AppendResult } from './audit-log.js';
export { canonicalJson } from './canonical-json.js';
export {
  CHECKPOINT_TYP,
  checkpointVerifierFromStore,
  createCheckpointSigner,
  createCheckpointVerifier,
  type CheckpointPayload,
  type CheckpointSigner,
  type CheckpointVerifier,
} from './checkpoint.js';
export {
  FloodGuard,
  type FloodBudget,
  type FloodGuardOptions,
  type FloodGuardSettings,
  type GuardedAppend,
} from './flood-guard.js';
export type { PartLogger } from './logger.js';
export { pruneAudit, type AuditPruneResult } from './prune.js';
export { sealAuditRow, sha256hex } from './seal.js';
export { assertNoSecrets, redactUntrusted } from './secret-guard.js';
export {
  verifyAuditLog,
  type AuditBreak,
  type AuditVerifyResult,
  type VerifyAuditOptions,
} from './verify.js';
