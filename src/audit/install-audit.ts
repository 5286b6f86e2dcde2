import type pg from "pg";
import { ensureInternalSchema } from "../pg/internal-schema.ts";
import { AuditNotInstalledError } from "./audit-errors.ts";
import { AUDIT_OWNER_ROLE, auditPart } from "./audit-schema.ts";

/** Creates or upgrades the audit tables and functions (needs CREATEROLE or superuser the first time). */
export async function installAudit(pool: pg.Pool): Promise<void> {
  // The owner role is cluster-wide: two databases installing at once (parallel test files, two apps)
  // both found it missing and the second CREATE ROLE failed on pg_authid's unique index. Created here
  // first, tolerating the other's win, so the schema step's `if not exists` finds it.
  await pool.query(
    `do $$
     begin
       if not exists (select from pg_catalog.pg_roles where rolname = '${AUDIT_OWNER_ROLE}') then
         create role ${AUDIT_OWNER_ROLE} nologin;
       end if;
     exception when duplicate_object or unique_violation then
       null;
     end $$`,
  );
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
