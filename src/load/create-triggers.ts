import type pg from "pg";
import { quoteQualified } from "../pg/quote.ts";
import type { ImportPlan, TriggerPlan } from "../schema/plan.ts";

/** A view or trigger that exists in SQLite but not in PostgreSQL after the import, and why. */
export interface UntranslatedObject {
  kind: "view" | "trigger";
  /** SQLite name. */
  name: string;
  reason: string;
  /** Its SQLite SQL. */
  sql: string;
}

/** The views and triggers the plan could not translate (what --dry-run and the summary list). */
export function untranslatedObjects(plan: ImportPlan): UntranslatedObject[] {
  return [
    ...plan.views
      .filter((v) => v.problem !== undefined)
      .map((v) => ({ kind: "view" as const, name: v.sourceName, reason: v.problem!, sql: v.sourceSql })),
    ...(plan.triggers ?? [])
      .filter((t) => t.problem !== undefined)
      .map((t) => ({ kind: "trigger" as const, name: t.sourceName, reason: t.problem!, sql: t.sourceSql })),
  ];
}

/** Marks a function as pgshift's own, so a later `--if-exists replace` may replace it. */
const OWN_FUNCTION_MARK = "pgshift.trigger_";

export type TriggerStep = (
  name: string,
  work: (client: pg.PoolClient) => Promise<"done" | "skipped">,
) => Promise<{ status: string; detail?: string }>;

/**
 * Creates one translated trigger inside the caller's step transaction: EXPLAIN of its statements
 * first (PostgreSQL checks every name and type there; PL/pgSQL would only when the trigger fires),
 * then the function and the trigger. A function of that name that pgshift did not create is never
 * replaced.
 */
export async function createTrigger(
  client: pg.ClientBase,
  schema: string,
  trigger: TriggerPlan,
  append: boolean,
): Promise<"done" | "skipped"> {
  await client.query(`set local search_path = ${quoteQualified(undefined, schema)}`);
  const existing = await client.query<{ table: string }>(
    `select c.relname as table from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2 and t.tgname = $3`,
    [schema, trigger.table, trigger.targetName],
  );
  if (existing.rows.length > 0 && append) return "skipped";
  const functions = await client.query<{ source: string }>(
    `select p.prosrc as source from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = $1 and p.proname = $2 and p.pronargs = 0`,
    [schema, trigger.targetName],
  );
  if (functions.rows.some((f) => !f.source.includes(OWN_FUNCTION_MARK)))
    throw new Error(
      `a function ${schema}.${trigger.targetName}() that pgshift did not create already exists; rename or drop it first`,
    );
  for (const check of trigger.checkSql ?? []) await client.query(`explain ${check}`);
  await client.query(trigger.functionSql!);
  await client.query(trigger.sql!);
  return "done";
}

/** Creates every translated trigger, each in its own step; a failure is returned, not thrown. */
export async function createTriggers(
  plan: ImportPlan,
  append: boolean,
  step: TriggerStep,
): Promise<UntranslatedObject[]> {
  const failed: UntranslatedObject[] = [];
  for (const trigger of plan.triggers ?? []) {
    if (!trigger.sql || !trigger.functionSql) continue;
    const result = await step(`trigger:${trigger.targetName}`, (client) =>
      createTrigger(client, plan.targetSchema, trigger, append),
    );
    if (result.status === "failed")
      failed.push({
        kind: "trigger",
        name: trigger.sourceName,
        reason: `PostgreSQL rejected the translation: ${result.detail ?? "unknown error"}`,
        sql: trigger.sourceSql,
      });
  }
  return failed;
}
