import type pg from "pg";
import { ensureInternalSchema } from "../pg/internal-schema.ts";
import { AuditNotInstalledError } from "./audit-errors.ts";
import { auditPart } from "./audit-schema.ts";

/** Creates or upgrades the audit tables and functions (needs CREATEROLE or superuser the first time). */
export async function installAudit(pool: pg.Pool): Promise<void> {
  await ensureInternalSchema(pool, [auditPart]);
}

/** Whether the audit trail exists in this database. */
export async function auditInstalled(client: pg.Pool | pg.ClientBase): Promise<boolean> {
  const { rows } = await client.query("select to_regclass('pgshift.audit_log') is not null as installed");
  return rows[0].installed === true;
}

export async function assertAuditInstalled(client: pg.Pool | pg.ClientBase): Promise<void> {
  if (!(await auditInstalled(client))) throw new AuditNotInstalledError();
}
