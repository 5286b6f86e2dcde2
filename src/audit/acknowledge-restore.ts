import type pg from "pg";
import { type SigningKey, signReport } from "../verify/report.ts";
import { type AuditAnchor, createAuditAnchor } from "./anchor.ts";
import { type AuditContext, setAuditContext } from "./audit-context.ts";
import { AuditAnchorError } from "./audit-errors.ts";
import { inTransaction, withClient } from "../pg/pool.ts";
import { verifyAudit } from "./verify-audit.ts";

export interface AcknowledgeRestoreOptions {
  pool: pg.Pool;
  /** The last anchor taken before the restore: the chain no longer contains it. */
  anchor: AuditAnchor;
  /** Signs the acknowledgment and the new anchor. */
  key: SigningKey;
  /** Who restored and why (the reason is required). */
  context: AuditContext & { reason: string };
}

export interface AcknowledgeRestoreResult {
  /** The audit row recording the acknowledgment (kind "event", action "restore_acknowledged"). */
  eventId: string;
  /** A new anchor, taken after the acknowledgment was sealed: verify against this one from now on. */
  anchor: AuditAnchor;
}

/**
 * After a legitimate restore to before an anchor (a point-in-time recovery), records that fact as a
 * signed audit event naming the lost anchor and the chain head the restore left, then takes a new
 * anchor. The chain itself must be intact; verify against the old anchor keeps reporting the rollback,
 * and points to this event.
 */
export async function acknowledgeRestore(
  options: AcknowledgeRestoreOptions,
): Promise<AcknowledgeRestoreResult> {
  if (!options.context.reason?.trim()) throw new AuditAnchorError("acknowledging a restore needs a reason");
  const check = await verifyAudit({ pool: options.pool, anchor: options.anchor });
  const other = check.problems.filter((p) => p.kind !== "anchor_missing");
  if (other.length)
    throw new AuditAnchorError(
      `the audit chain is not intact (${other[0]!.message}); a restore cannot be acknowledged over it`,
    );
  if (check.anchor?.found)
    throw new AuditAnchorError(
      `the chain still contains the anchor of ${options.anchor.createdAt}: nothing was rolled back`,
    );
  const statement = signReport(
    {
      kind: "pgshift-restore-acknowledgment",
      lostAnchor: { seq: options.anchor.seq, hash: options.anchor.hash, createdAt: options.anchor.createdAt },
      headSeq: check.headSeq,
      headHash: check.headHash,
      actor: options.context.actor,
      reason: options.context.reason,
      at: new Date().toISOString(),
    },
    options.key,
  );
  const eventId = await withClient(options.pool, (client) =>
    inTransaction(client, async () => {
      await setAuditContext(client, options.context);
      const { rows } = await client.query(
        "select pgshift.audit_event('restore_acknowledged', $1)::text as id",
        [JSON.stringify(statement)],
      );
      return rows[0].id as string;
    }),
  );
  return { eventId, anchor: await createAuditAnchor(options.pool, options.key) };
}
