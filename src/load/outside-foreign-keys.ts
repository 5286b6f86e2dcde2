import type pg from "pg";
import { foreignKeySql, validateConstraintSql } from "../schema/ddl.ts";
import { applyNaming, fitIdentifier } from "../schema/naming.ts";
import type { ImportPlan } from "../schema/plan.ts";
import type { SqliteCatalog } from "../sources/sqlite/sqlite-catalog.ts";

/**
 * With --tables (or --exclude), a foreign key whose referenced table is not imported by this run is
 * still created when that table is already in the target schema with the referenced columns as its
 * primary key or a UNIQUE constraint (an earlier run imported it, say); otherwise it stays a note.
 * The plan is changed in place: the constraint joins the table's foreign keys, so that it is added
 * NOT VALID, validated, recorded and resumed like the others, and --dry-run shows it.
 */
export async function planForeignKeysToExistingTables(
  pool: pg.Pool,
  plan: ImportPlan,
  catalog: SqliteCatalog,
): Promise<void> {
  const schema = plan.targetSchema;
  const imported = new Set(plan.tables.map((t) => t.sourceName.toLowerCase()));
  const sources = new Map(catalog.tables.map((t) => [t.name.toLowerCase(), t]));
  for (const tablePlan of plan.tables) {
    const source = sources.get(tablePlan.sourceName.toLowerCase());
    if (!source) continue;
    for (const fk of source.foreignKeys) {
      if (imported.has(fk.referencedTable.toLowerCase())) continue;
      const referenced = sources.get(fk.referencedTable.toLowerCase());
      if (!referenced) continue;
      const referencedTable = applyNaming(referenced.name, plan.naming);
      const referencedColumns = (
        fk.referencedColumns.length ? fk.referencedColumns : referenced.primaryKey
      ).map((c) => applyNaming(c, plan.naming));
      const local = fk.columns.map(
        (c) => tablePlan.columns.find((p) => p.sourceName.toLowerCase() === c.toLowerCase())?.targetName,
      );
      if (local.some((c) => c === undefined) || local.length !== referencedColumns.length) continue;
      if (!(await isKeyInTarget(pool, schema, referencedTable, referencedColumns))) continue;
      const taken = new Set(
        [...tablePlan.keys, ...tablePlan.checks, ...tablePlan.foreignKeys].map((c) => c.targetName),
      );
      const base = fitIdentifier(`${tablePlan.targetName}_${(local as string[]).join("_")}_fkey`);
      let name = base;
      for (let n = 1; taken.has(name); n++) name = fitIdentifier(`${base.slice(0, 58)}${n}`);
      const described = `FOREIGN KEY (${fk.columns.join(", ")}) REFERENCES ${fk.referencedTable}`;
      tablePlan.foreignKeys.push({
        kind: "foreign-key",
        targetName: name,
        addSql: foreignKeySql(
          schema,
          tablePlan.targetName,
          name,
          local as string[],
          referencedTable,
          referencedColumns,
          fk,
        ),
        validateSql: validateConstraintSql(schema, tablePlan.targetName, name),
        sourceSql: described,
      });
      // The planner's "referenced table is not imported; constraint not created" no longer holds.
      const skipped = plan.notes.findIndex(
        (n) => n.object === source.name && n.kind === "foreign-key" && n.message.startsWith(`${described}:`),
      );
      if (skipped >= 0) plan.notes.splice(skipped, 1);
      plan.notes.push({
        object: source.name,
        kind: "foreign-key",
        message: `${described}: ${referencedTable} is not imported by this run but is already in schema ${schema}; constraint created`,
      });
    }
  }
}

/** Whether `table` exists in `schema` with exactly `columns` as its primary key or a UNIQUE constraint. */
async function isKeyInTarget(
  pool: pg.Pool,
  schema: string,
  table: string,
  columns: readonly string[],
): Promise<boolean> {
  const { rows } = await pool.query(
    `select 1 from pg_constraint k
       join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2 and k.contype in ('p', 'u')
        and (select array_agg(a.attname::text order by a.attname) from pg_attribute a
              where a.attrelid = k.conrelid and a.attnum = any(k.conkey))
            = (select array_agg(x order by x) from unnest($3::text[]) x)`,
    [schema, table, columns],
  );
  return rows.length > 0;
}
