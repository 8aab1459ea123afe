// The audit hash chain: each row's hash covers the previous row's hash and the row's canonical form,
// so editing, inserting or deleting a row breaks the chain at that row.
import { createHash } from 'node:crypto';
import type { AuditRow, AuditSealer } from '../store/store.js';
import { canonicalJson } from './canonical-json.js';

export function sha256hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * `sha256hex(prevHash + '\n' + canonical({seq, ts, type, id, data}))`: the sealer given to the store.
 * Given `dataText` (the canonical JSON of `data`) it builds the same canonical text around it — the keys
 * in their sorted order: data, id, seq, ts, type — instead of serializing `data` again.
 */
export const sealAuditRow: AuditSealer = (
  prevHash: string,
  row: Omit<AuditRow, 'hash' | 'prevHash'>,
  dataText?: string,
): string =>
  sha256hex(
    dataText === undefined
      ? `${prevHash}\n${canonicalJson({ seq: row.seq, ts: row.ts, type: row.type, id: row.id, data: row.data })}`
      : `${prevHash}\n{"data":${dataText},"id":${canonicalJson(row.id)},"seq":${canonicalJson(row.seq)},"ts":${canonicalJson(row.ts)},"type":${canonicalJson(row.type)}}`,
  );
