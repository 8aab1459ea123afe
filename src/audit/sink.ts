// What the parts that record events need from the audit log: an append that resolves once the record is
// durable. src/audit/audit-log.ts implements it; tests and tools can pass any implementation.
export interface AuditSink {
  append(
    type: string,
    data: Record<string, unknown>,
    opts?: { id?: string },
  ): Promise<{ id: string; seq: number }>;
}
