import { createHash } from "node:crypto";
import pg from "pg";
import { connectableDatabases, withDatabase } from "../pg/server-databases.ts";
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

/** Where recordClusterAuditEvent recorded: the database and the audit row id. */
export interface RecordedClusterEvent {
  database: string;
  id: string;
}

/**
 * Records one event in every database of a server that has the audit trail (or in `databases` only):
 * after a physical restore every database came back from the backup, so each trail carries the restore;
 * after a logical one, the new database. `serverUrl` reaches any database of the server as a user that
 * may connect to them (the restore's superuser); databases without the trail, templates and those
 * refusing connections are left alone. Throws on the first database it cannot record in, naming it (the
 * ones before keep their event).
 *
 *   await recordClusterAuditEvent(localInstanceUrl(restored), { action: "restore", detail, report });
 */
export async function recordClusterAuditEvent(
  serverUrl: string,
  event: AuditEvent,
  options: { databases?: readonly string[] } = {},
): Promise<RecordedClusterEvent[]> {
  const recorded: RecordedClusterEvent[] = [];
  for (const database of options.databases ?? (await connectableDatabases(serverUrl))) {
    const client = new pg.Client({ connectionString: withDatabase(serverUrl, database) });
    try {
      await client.connect();
      const id = await recordAuditEvent(client, event);
      if (id !== undefined) recorded.push({ database, id });
    } catch (error) {
      throw new Error(`database ${database}: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return recorded;
}
