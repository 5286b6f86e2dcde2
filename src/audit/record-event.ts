import { createHash } from "node:crypto";
import type pg from "pg";
import { auditInstalled } from "./install-audit.ts";

export interface AuditEvent {
  /** What happened: "import", "migrate", "refresh", "restore", "cutover_phase", ... */
  action: string;
  detail?: Record<string, unknown>;
  /** A report's bytes (or its JSON text): its sha256 goes into the event, tying the report to the trail. */
  report?: string | Buffer;
}

/**
 * Records one of pgshift's own operations (or any application event) in the audit trail, with the
 * actor/reason of the transaction if set. Returns the audit row id, or undefined when the database has
 * no audit trail (pgshift's commands call this unconditionally).
 */
export async function recordAuditEvent(
  client: pg.Pool | pg.ClientBase,
  event: AuditEvent,
): Promise<string | undefined> {
  if (!(await auditInstalled(client))) return undefined;
  const detail: Record<string, unknown> = { ...event.detail };
  if (event.report !== undefined)
    detail.reportSha256 = createHash("sha256").update(event.report).digest("hex");
  const { rows } = await client.query("select pgshift.audit_event($1, $2)::text as id", [
    event.action,
    JSON.stringify(detail),
  ]);
  return rows[0].id;
}
