import type pg from "pg";
import { PgshiftError } from "../errors.ts";
import { quoteQualified } from "../pg/quote.ts";
import type { TablePlan } from "../schema/plan.ts";
import { crashPoint } from "./crash-points.ts";
import {
  forgetEncryptedTable,
  readEncryptedTable,
  registerEncryptedColumns,
} from "../crypto/encryption-registry.ts";
import { sealsRows } from "./row-sealer.ts";
import { assertReplaceable, findDependents, recordReplaced } from "./replace-dependents.ts";
import { relationExists, type RunContext, step } from "./run-context.ts";

/** The schema stage: the tables created (dropped first with --if-exists replace, kept with append). */
export async function createSchema(ctx: RunContext): Promise<void> {
  const { plan } = ctx;
  crashPoint("schema:before-create");
  const result = await step(
    ctx,
    "schema",
    async (client) => {
      for (const sql of plan.setupSql) await client.query(sql);
      if (ctx.ifExists === "replace") {
        // Checked again in this transaction (createRun refused already): what goes with the drop.
        const dependents = await findDependents(client, plan.targetSchema, [
          ...plan.views.map((v) => v.targetName),
          ...plan.tables.map((t) => t.targetName),
        ]);
        assertReplaceable(dependents, ctx.cascade);
        await recordReplaced(client, ctx.runId, dependents);
        for (const view of [...plan.views].reverse())
          await client.query(
            `drop view if exists ${quoteQualified(plan.targetSchema, view.targetName)} cascade`,
          );
        for (const table of plan.tables)
          await client.query(
            `drop table if exists ${quoteQualified(plan.targetSchema, table.targetName)} cascade`,
          );
      }
      for (const table of plan.tables) {
        if (
          ctx.ifExists === "append" &&
          (await relationExists(client, plan.targetSchema, table.targetName))
        ) {
          await checkAppendColumns(client, plan.targetSchema, table);
          await checkAppendProtection(client, plan.targetSchema, table);
          continue;
        }
        await client.query(table.createSql);
        // what the new table protects is on record in the same transaction (nothing: a stale entry goes)
        if (sealsRows(table))
          await registerEncryptedColumns(client, encryptedColumnsOf(plan.targetSchema, table));
        else await forgetEncryptedTable(client, plan.targetSchema, table.targetName);
      }
      return "done";
    },
    {
      beforeCommit: "schema:before-commit",
      afterCommit: "schema:after-commit",
    },
  );
  if (result.status === "failed")
    throw new PgshiftError("schema_failed", `creating the tables failed: ${result.detail}`);
}

function encryptedColumnsOf(schema: string, table: TablePlan) {
  return {
    schema,
    table: table.targetName,
    keyColumns: table.primaryKey,
    columns: table.columns.flatMap((c) =>
      c.encrypted
        ? [{ name: c.targetName, originalType: c.encrypted.originalType, blindIndex: c.encrypted.blindIndex }]
        : [],
    ),
    integrity: Boolean(table.recordMac),
  };
}

/** Appending must not mix protection levels: the same encrypted columns and MACs as the table has. */
async function checkAppendProtection(client: pg.ClientBase, schema: string, table: TablePlan): Promise<void> {
  const info = await readEncryptedTable(client, schema, table.targetName);
  const want = sealsRows(table) ? encryptedColumnsOf(schema, table) : undefined;
  const has = info?.encryptedColumns.map((c) => `${c.name}:${c.originalType}:${c.blindIndex}`).sort() ?? [];
  const wants = want?.columns.map((c) => `${c.name}:${c.originalType}:${c.blindIndex}`).sort() ?? [];
  const same =
    JSON.stringify(has) === JSON.stringify(wants) &&
    (info?.integrity ?? false) === (want?.integrity ?? false) &&
    (info === undefined || info.encryptedPaths.length === 0);
  if (same) return;
  throw new PgshiftError(
    "append_mismatch",
    `cannot append to ${schema}.${table.targetName}: it ${info ? `has encrypted columns ${info.encryptedColumns.map((c) => c.name).join(", ") || "(none)"}${info.integrity ? " and record MACs" : ""}` : "has no encrypted columns"}, and this import ${want ? `encrypts ${want.columns.map((c) => c.name).join(", ")}${want.integrity ? " with record MACs" : ""}` : "encrypts nothing"}; import with the same --encrypt-columns, --blind-index and --integrity`,
  );
}

async function checkAppendColumns(client: pg.ClientBase, schema: string, table: TablePlan): Promise<void> {
  const { rows } = await client.query(
    `select a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped`,
    [schema, table.targetName],
  );
  const present = new Set(rows.map((r) => r.attname));
  const missing = table.columns.filter((c) => !present.has(c.targetName)).map((c) => c.targetName);
  if (missing.length)
    throw new PgshiftError(
      "append_mismatch",
      `cannot append to ${schema}.${table.targetName}: it has no column(s) ${missing.join(", ")}; add them, or import into another --schema (--if-exists replace would drop the table and every row in it)`,
    );
}
