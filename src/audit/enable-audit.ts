import type pg from "pg";
import { inTransaction, withClient } from "../pg/pool.ts";
import { quoteIdent, quoteLiteral, quoteQualified } from "../pg/quote.ts";
import { type AuditContext, setAuditContext } from "./audit-context.ts";
import { AuditTableError } from "./audit-errors.ts";
import { assertAuditInstalled, installAudit } from "./install-audit.ts";
import { displayTable, parseTableName, type QualifiedTable } from "./table-name.ts";

/** Names of the triggers pgshift puts on an audited table. */
export const AUDIT_ROW_TRIGGER = "pgshift_audit";
export const AUDIT_INSERT_TRIGGER = "pgshift_audit_insert";
export const AUDIT_TRUNCATE_TRIGGER = "pgshift_audit_truncate";
/** The database-wide event trigger (needs superuser to create). */
export const AUDIT_EVENT_TRIGGER = "pgshift_audit_ddl";

export interface EnableAuditOptions {
  pool: pg.Pool;
  /** `table` or `schema.table`; or give `schema` to audit every table in it. */
  tables?: readonly string[];
  schema?: string;
  /** UPDATE and DELETE fail unless the transaction sets `pgshift.reason`. */
  requireReason?: boolean;
  /** Who enables it and why, recorded as an audit event. */
  context?: AuditContext;
}

export type EventTriggerState = "created" | "present" | "not_superuser";

export interface AuditedTable extends QualifiedTable {
  keyColumns: string[];
  requireReason: boolean;
}

export interface EnableAuditResult {
  tables: AuditedTable[];
  eventTrigger: EventTriggerState;
}

/** DDL that puts the audit triggers on one table (pure; tested with exact SQL). */
export function auditTriggerSql(table: AuditedTable): string[] {
  const target = quoteQualified(table.schema, table.name);
  const args = [table.requireReason ? "t" : "f", ...table.keyColumns].map(quoteLiteral).join(", ");
  return [
    `create or replace trigger ${AUDIT_ROW_TRIGGER} after update or delete on ${target} for each row execute function pgshift.audit_row(${args})`,
    `create or replace trigger ${AUDIT_INSERT_TRIGGER} after insert on ${target} referencing new table as pgshift_new_rows for each statement execute function pgshift.audit_insert(${args})`,
    `create or replace trigger ${AUDIT_TRUNCATE_TRIGGER} before truncate on ${target} for each statement execute function pgshift.audit_refuse_truncate()`,
    // ENABLE ALWAYS: the triggers fire even with session_replication_role = replica.
    `alter table ${target} enable always trigger ${AUDIT_ROW_TRIGGER}, enable always trigger ${AUDIT_INSERT_TRIGGER}, enable always trigger ${AUDIT_TRUNCATE_TRIGGER}`,
  ];
}

async function resolveTables(client: pg.ClientBase, options: EnableAuditOptions): Promise<QualifiedTable[]> {
  if (options.tables?.length) return options.tables.map((t) => parseTableName(t));
  if (!options.schema) throw new AuditTableError("(nothing)", "give tables or a schema");
  const { rows } = await client.query(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition order by 1`,
    [options.schema],
  );
  return rows.map((r) => ({ schema: options.schema!, name: r.relname }));
}

async function keyColumns(client: pg.ClientBase, table: QualifiedTable): Promise<string[]> {
  const { rows } = await client.query(
    `select to_regclass($1) as oid,
            (select array_agg(a.attname::text order by k.ord)
               from pg_index i
               cross join lateral unnest(i.indkey) with ordinality k(attnum, ord)
               join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
              where i.indrelid = to_regclass($1) and i.indisprimary) as key_columns`,
    [quoteQualified(table.schema, table.name)],
  );
  if (!rows[0].oid) throw new AuditTableError(displayTable(table), "no such table");
  if (!rows[0].key_columns) throw new AuditTableError(displayTable(table), "it has no primary key");
  return rows[0].key_columns;
}

async function ensureEventTrigger(client: pg.ClientBase): Promise<EventTriggerState> {
  const { rows } = await client.query(
    `select exists (select from pg_event_trigger where evtname = $1) as present,
            (select rolsuper from pg_roles where rolname = current_user) as superuser`,
    [AUDIT_EVENT_TRIGGER],
  );
  if (rows[0].present) return "present";
  if (!rows[0].superuser) return "not_superuser";
  await client.query(
    `create event trigger ${quoteIdent(AUDIT_EVENT_TRIGGER)} on ddl_command_end execute function pgshift.audit_ddl()`,
  );
  await client.query(`alter event trigger ${quoteIdent(AUDIT_EVENT_TRIGGER)} enable always`);
  return "created";
}

/**
 * Audits tables: one audit row per changed row, written by a trigger in the same transaction. Idempotent;
 * enabling again changes requireReason. Installs the audit schema on first use and, when run as a
 * superuser, the event trigger that guards the audit triggers and records DDL.
 */
export async function enableAudit(options: EnableAuditOptions): Promise<EnableAuditResult> {
  await installAudit(options.pool);
  return withClient(options.pool, (client) =>
    inTransaction(client, async () => {
      if (options.context) await setAuditContext(client, options.context);
      const tables: AuditedTable[] = [];
      for (const table of await resolveTables(client, options)) {
        tables.push({
          ...table,
          keyColumns: await keyColumns(client, table),
          requireReason: Boolean(options.requireReason),
        });
      }
      for (const table of tables) {
        // Unregistered while its triggers are replaced, so the event trigger's guard does not refuse it.
        await client.query("delete from pgshift.audit_tables where table_schema = $1 and table_name = $2", [
          table.schema,
          table.name,
        ]);
        for (const sql of auditTriggerSql(table)) await client.query(sql);
        await client.query(
          `insert into pgshift.audit_tables (table_schema, table_name, key_columns, require_reason) values ($1, $2, $3, $4)`,
          [table.schema, table.name, table.keyColumns, table.requireReason],
        );
      }
      const eventTrigger = await ensureEventTrigger(client);
      await client.query("select pgshift.audit_event('audit_enable', $1)", [
        JSON.stringify({ tables: tables.map(displayTable), requireReason: Boolean(options.requireReason) }),
      ]);
      return { tables, eventTrigger };
    }),
  );
}

export interface DisableAuditOptions {
  pool: pg.Pool;
  tables: readonly string[];
  context?: AuditContext;
}

/** Removes the audit triggers from tables (recorded as an audit event; their history stays). */
export async function disableAudit(options: DisableAuditOptions): Promise<{ tables: QualifiedTable[] }> {
  await assertAuditInstalled(options.pool);
  const tables = options.tables.map((t) => parseTableName(t));
  return withClient(options.pool, (client) =>
    inTransaction(client, async () => {
      if (options.context) await setAuditContext(client, options.context);
      const disabled: QualifiedTable[] = [];
      for (const table of tables) {
        const { rowCount } = await client.query(
          "delete from pgshift.audit_tables where table_schema = $1 and table_name = $2",
          [table.schema, table.name],
        );
        if (!rowCount) continue;
        const target = quoteQualified(table.schema, table.name);
        await client.query(`drop trigger if exists ${AUDIT_ROW_TRIGGER} on ${target}`);
        await client.query(`drop trigger if exists ${AUDIT_INSERT_TRIGGER} on ${target}`);
        await client.query(`drop trigger if exists ${AUDIT_TRUNCATE_TRIGGER} on ${target}`);
        disabled.push(table);
      }
      await client.query("select pgshift.audit_event('audit_disable', $1)", [
        JSON.stringify({ tables: disabled.map(displayTable) }),
      ]);
      return { tables: disabled };
    }),
  );
}

export interface AuditTableStatus extends AuditedTable {
  /** Both audit triggers exist and fire always. */
  triggersOk: boolean;
  enabledAt: string;
}

export interface AuditStatus {
  installed: boolean;
  tables: AuditTableStatus[];
  eventTrigger: boolean;
  auditRows: number;
  sealedRows: number;
  unsealedRows: number;
  headSeq: number;
  headHash: string;
  lastSealedAt: string | null;
}

/** What is audited, whether its triggers are intact, and how much of the trail is sealed. */
export async function auditStatus(pool: pg.Pool): Promise<AuditStatus> {
  const { rows: installed } = await pool.query("select to_regclass('pgshift.audit_log') is not null as ok");
  if (!installed[0].ok)
    return {
      installed: false,
      tables: [],
      eventTrigger: false,
      auditRows: 0,
      sealedRows: 0,
      unsealedRows: 0,
      headSeq: 0,
      headHash: "",
      lastSealedAt: null,
    };
  const { rows: tables } = await pool.query(
    `select t.table_schema, t.table_name, t.key_columns, t.require_reason, t.enabled_at,
            (select count(*) from pg_trigger g
               where g.tgrelid = to_regclass(format('%I.%I', t.table_schema, t.table_name))
                 and g.tgname in ($1, $2, $3) and g.tgenabled = 'A') = 3 as triggers_ok
       from pgshift.audit_tables t order by 1, 2`,
    [AUDIT_ROW_TRIGGER, AUDIT_INSERT_TRIGGER, AUDIT_TRUNCATE_TRIGGER],
  );
  const { rows } = await pool.query(
    `select (select count(*) from pgshift.audit_log)::bigint as audit_rows,
            (select count(*) from pgshift.audit_seal)::bigint as sealed_rows,
            h.seq, encode(h.hash, 'hex') as hash, h.sealed_at,
            exists (select from pg_event_trigger where evtname = $1 and evtenabled = 'A') as event_trigger
       from pgshift.audit_head h`,
    [AUDIT_EVENT_TRIGGER],
  );
  const r = rows[0];
  return {
    installed: true,
    tables: tables.map((t) => ({
      schema: t.table_schema,
      name: t.table_name,
      keyColumns: t.key_columns,
      requireReason: t.require_reason,
      enabledAt: new Date(t.enabled_at).toISOString(),
      triggersOk: t.triggers_ok,
    })),
    eventTrigger: r.event_trigger,
    auditRows: Number(r.audit_rows),
    sealedRows: Number(r.sealed_rows),
    unsealedRows: Number(r.audit_rows) - Number(r.sealed_rows),
    headSeq: Number(r.seq),
    headHash: r.hash,
    lastSealedAt: r.sealed_at ? new Date(r.sealed_at).toISOString() : null,
  };
}
