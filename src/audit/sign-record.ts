import type pg from "pg";
import { type ReportSignature, type SigningKey, signReport } from "../verify/report.ts";
import { type AuditContext, setAuditContext } from "./audit-context.ts";
import { AuditSignError } from "./audit-errors.ts";
import { inTransaction, withClient } from "../pg/pool.ts";

/** What a signature means (21 CFR 11.50(a)(3)). */
export const SIGNATURE_MEANINGS = ["review", "approval", "responsibility", "authorship"] as const;
export type SignatureMeaning = (typeof SIGNATURE_MEANINGS)[number];

export interface SignRecordOptions {
  pool: pg.Pool;
  /** The audit row of the record version being signed. */
  auditId: string;
  /** The signer's printed name (11.50(a)(1)). */
  signer: string;
  meaning: SignatureMeaning;
  key: SigningKey;
  context?: AuditContext;
}

/** The signed statement: signer, meaning and time bound to the sha256 of one record version. */
export interface RecordSignature {
  kind: "pgshift-record-signature";
  auditId: string;
  table: string;
  key: unknown;
  /** sha256 of the audit row's canonical form (table, key, old and new values, who, when). */
  recordSha256: string;
  signer: string;
  meaning: SignatureMeaning;
  signedAt: string;
  signature?: ReportSignature;
}

/**
 * Signs one record version: the signature is itself an audit row (kind "signature"), so it is chained
 * like any change and shows in `auditLog` next to the version it signs.
 */
export async function signAuditRecord(
  options: SignRecordOptions,
): Promise<{ eventId: string; signature: RecordSignature }> {
  if (!SIGNATURE_MEANINGS.includes(options.meaning))
    throw new AuditSignError(
      `meaning must be one of ${SIGNATURE_MEANINGS.join(", ")}, got "${options.meaning}"`,
    );
  if (!options.signer.trim()) throw new AuditSignError("a signature needs the signer's name");
  return withClient(options.pool, (client) =>
    inTransaction(client, async () => {
      if (options.context) await setAuditContext(client, options.context);
      const { rows } = await client.query(
        `select a.kind, a.table_schema, a.table_name, a.row_key,
                encode(pgshift.audit_leaf(a), 'hex') as record_sha256,
                clock_timestamp() as now
           from pgshift.audit_log a where a.id = $1`,
        [options.auditId],
      );
      const row = rows[0];
      if (!row) throw new AuditSignError(`no audit row ${options.auditId}`, { auditId: options.auditId });
      if (row.kind !== "row")
        throw new AuditSignError(`audit row ${options.auditId} is a ${row.kind}, not a record version`, {
          auditId: options.auditId,
        });
      const statement: RecordSignature = {
        kind: "pgshift-record-signature",
        auditId: String(options.auditId),
        table: `${row.table_schema}.${row.table_name}`,
        key: row.row_key,
        recordSha256: row.record_sha256,
        signer: options.signer,
        meaning: options.meaning,
        signedAt: new Date(row.now).toISOString(),
      };
      const signature = signReport(statement, options.key);
      const { rows: inserted } = await client.query(
        "select pgshift.audit_event('sign', $1, $2, $3, $4, 'signature')::text as id",
        [JSON.stringify(signature), row.table_schema, row.table_name, JSON.stringify(row.row_key)],
      );
      return { eventId: inserted[0].id, signature };
    }),
  );
}
