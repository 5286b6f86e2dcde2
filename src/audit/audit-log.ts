import type pg from "pg";
import { checkReportSignature, type CheckingKey } from "../verify/report.ts";
import { assertAuditInstalled } from "./install-audit.ts";
import type { RecordSignature } from "./sign-record.ts";
import { parseTableName } from "./table-name.ts";

export interface AuditLogOptions {
  pool: pg.Pool;
  table: string;
  /** A JSON object (`{"id": 7}`) or, for a one-column key, the plain value (`7`). */
  key?: string;
  /** ISO time or anything PostgreSQL reads as timestamptz. */
  since?: string;
  limit?: number;
  /** Checks each signature's cryptographic validity too. */
  checkingKey?: CheckingKey;
}

export interface FieldChange {
  column: string;
  old: unknown;
  new: unknown;
}

export interface LogSignature {
  eventId: string;
  signer: string;
  meaning: string;
  signedAt: string;
  /** The signed hash still matches the record version (it was not changed since). */
  recordMatches: boolean;
  /** With a checking key: whether the signature checks out. */
  signatureValid?: boolean;
}

export interface AuditLogEntry {
  id: string;
  at: string;
  op: string;
  key: Record<string, unknown>;
  actor: string | null;
  reason: string | null;
  dbUser: string;
  applicationName: string | null;
  clientAddr: string | null;
  changes: FieldChange[];
  /** Position in the hash chain; null while not sealed yet. */
  seq: number | null;
  signatures: LogSignature[];
}

function changesOf(
  oldRow: Record<string, unknown> | null,
  newRow: Record<string, unknown> | null,
): FieldChange[] {
  const columns = new Set([...Object.keys(oldRow ?? {}), ...Object.keys(newRow ?? {})]);
  const changes: FieldChange[] = [];
  for (const column of columns) {
    const before = oldRow ? (oldRow[column] ?? null) : undefined;
    const after = newRow ? (newRow[column] ?? null) : undefined;
    if (JSON.stringify(before) !== JSON.stringify(after))
      changes.push({ column, old: before ?? null, new: after ?? null });
  }
  return changes;
}

/** A record's history, oldest first: who changed what, when, why; with its signatures. */
export async function auditLog(options: AuditLogOptions): Promise<AuditLogEntry[]> {
  const { pool } = options;
  await assertAuditInstalled(pool);
  const table = parseTableName(options.table);
  const params: unknown[] = [table.schema, table.name];
  const where = ["a.kind = 'row'", "a.table_schema = $1", "a.table_name = $2"];
  if (options.key !== undefined) {
    let key: unknown;
    try {
      key = JSON.parse(options.key);
    } catch {
      key = options.key;
    }
    if (key !== null && typeof key === "object") {
      params.push(JSON.stringify(key));
      where.push(`a.row_key @> $${params.length}::jsonb`);
    } else {
      params.push(String(options.key));
      where.push(
        `(select count(*) = 1 and bool_and(e.value = $${params.length}) from jsonb_each_text(a.row_key) e)`,
      );
    }
  }
  if (options.since) {
    params.push(options.since);
    where.push(`a.at >= $${params.length}::timestamptz`);
  }
  params.push(options.limit ?? 1000);
  const { rows } = await pool.query(
    `select a.id::text, a.at, a.op, a.row_key, a.old_row, a.new_row, a.actor, a.reason, a.db_user,
            a.application_name, a.client_addr, s.seq,
            encode(pgshift.audit_leaf(a), 'hex') as record_sha256,
            coalesce((select jsonb_agg(jsonb_build_object('eventId', g.id::text, 'statement', g.detail) order by g.id)
                        from pgshift.audit_log g
                       where g.kind = 'signature' and g.detail ->> 'auditId' = a.id::text), '[]') as signatures
       from pgshift.audit_log a left join pgshift.audit_seal s on s.audit_id = a.id
      where ${where.join(" and ")}
      order by a.id
      limit $${params.length}`,
    params,
  );
  return rows.map((r) => ({
    id: r.id,
    at: new Date(r.at).toISOString(),
    op: r.op,
    key: r.row_key,
    actor: r.actor,
    reason: r.reason,
    dbUser: r.db_user,
    applicationName: r.application_name,
    clientAddr: r.client_addr,
    changes: changesOf(r.old_row, r.new_row),
    seq: r.seq === null ? null : Number(r.seq),
    signatures: (r.signatures as { eventId: string; statement: RecordSignature }[]).map(
      ({ eventId, statement }) => ({
        eventId,
        signer: statement.signer,
        meaning: statement.meaning,
        signedAt: statement.signedAt,
        recordMatches: statement.recordSha256 === r.record_sha256,
        ...(options.checkingKey
          ? {
              signatureValid: checkReportSignature(
                statement as unknown as Record<string, unknown>,
                options.checkingKey,
              ).valid,
            }
          : {}),
      }),
    ),
  }));
}
