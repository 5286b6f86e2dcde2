import type pg from "pg";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";

/**
 * A delta build's shortcut. Copying live into the next schema and indexing it again costs a full pass over
 * every row (the GIN index most of it), whatever the size of the delta. The spare (`<schema>__spare`, the
 * newest version a delta run's prune dropped, see prune.ts) holds tables of the same shape that differ
 * from live in only the rows the refreshes since and local edits changed: bringing those rows in line with
 * live and moving the tables into the next schema costs a comparison pass and the changed rows' index
 * entries. Verification then reads next exactly as it reads a copied one.
 */

/** What makes two tables interchangeable: columns with types, constraints, indexes; foreign keys and triggers listed to refuse. */
async function tableShape(pool: pg.Pool, schema: string, table: string): Promise<string | null> {
  const { rows } = await pool.query(
    `with t as (select to_regclass($1) as oid)
     select (select json_agg(json_build_array(attname, format_type(atttypid, atttypmod), attnotnull,
                                               pg_get_expr(d.adbin, d.adrelid)) order by attnum)
               from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
              where a.attrelid = t.oid and attnum > 0 and not attisdropped) as columns,
            (select json_agg(json_build_array(contype, pg_get_constraintdef(c.oid)) order by contype, pg_get_constraintdef(c.oid))
               from pg_constraint c where conrelid = t.oid) as constraints,
            (select json_agg(json_build_array(am.amname, i.indisunique, i.indkey::text, i.indclass::text,
                                               pg_get_expr(i.indexprs, i.indrelid), pg_get_expr(i.indpred, i.indrelid))
                              order by am.amname, i.indkey::text, i.indclass::text, pg_get_expr(i.indexprs, i.indrelid))
               from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_am am on am.oid = ic.relam
              where i.indrelid = t.oid) as indexes,
            (select count(*) from pg_trigger where tgrelid = t.oid and not tgisinternal) as triggers,
            (select count(*) from pg_constraint where confrelid = t.oid) as referenced_by
       from t where t.oid is not null`,
    [quoteQualified(schema, table)],
  );
  const row = rows[0];
  if (!row) return null;
  const constraints = (row.constraints ?? []) as [string, string][];
  // a foreign key would be lost with the schema it points into; a trigger is nothing a copy carries
  if (constraints.some(([type]) => type === "f") || Number(row.triggers) > 0 || Number(row.referenced_by) > 0)
    return null;
  return JSON.stringify([row.columns, constraints, row.indexes]);
}

/** Above this share of rows differing, a recycled table costs more than a copy (each changed row is re-indexed). */
const RECYCLE_MAX_DIFFERING = 0.25;
const SAMPLE_ROWS = 2000;

/**
 * Whether row `r` differs from live's row `l` in any column. Documents are compared as jsonb first (cheap)
 * and the other columns as a row; jsonb calls 1.0 and 1.00 equal, so content_hash (of the document's
 * bytes) is among the other columns, and verification compares key and document text of every untouched
 * row with live's anyway.
 */
function differs(columns: readonly string[]): string {
  if (!columns.includes("doc")) return "l::text is distinct from r::text";
  const others = columns.filter((c) => c !== "doc").map(quoteIdent);
  return `(l.doc is distinct from r.doc${others.length ? ` or row(${others.map((c) => `l.${c}`).join(", ")}) is distinct from row(${others.map((c) => `r.${c}`).join(", ")})` : ""})`;
}

/**
 * Brings `from.table` in line with `live.table` row for row (rows that differ or that live lacks deleted,
 * live's missing rows inserted) and moves it into the next schema. False, touching nothing, when the two
 * tables differ in shape (columns, defaults, constraints, indexes), the table has foreign keys or
 * triggers, or a sample says more than a quarter of the rows differ (a version loaded in full differs
 * from live in every row's loaded_at): the caller copies live instead.
 */
export async function recycleTable(
  pool: pg.Pool,
  options: { from: string; live: string; next: string; table: string; keyColumn: string },
): Promise<boolean> {
  const { from, live, next, table } = options;
  const [old, current] = await Promise.all([tableShape(pool, from, table), tableShape(pool, live, table)]);
  if (old === null || current === null || old !== current) return false;
  const recycled = quoteQualified(from, table);
  const liveTable = quoteQualified(live, table);
  const key = quoteIdent(options.keyColumn);
  const columns = (JSON.parse(current)[0] as [string][]).map(([name]) => name);
  const { rows: sized } = await pool.query(
    "select greatest(reltuples, 0)::float8 as n from pg_class where oid = to_regclass($1)",
    [recycled],
  );
  const percent = Math.min(100, (SAMPLE_ROWS / Math.max(1, Number(sized[0]?.n ?? 0))) * 100);
  const { rows: sample } = await pool.query(
    `select count(*)::bigint as n, count(*) filter (where l.${key} is null or ${differs(columns)})::bigint as differing
       from ${recycled} r tablesample system (${percent.toFixed(4)}) left join ${liveTable} l on l.${key} = r.${key}`,
  );
  const sampled = Number(sample[0].n);
  if (sampled > 0 && Number(sample[0].differing) / sampled > RECYCLE_MAX_DIFFERING) return false;
  await pool.query(
    `delete from ${recycled} r where not exists (select 1 from ${liveTable} l where l.${key} = r.${key} and not ${differs(columns)})`,
  );
  await pool.query(
    `insert into ${recycled} select l.* from ${liveTable} l where not exists (select 1 from ${recycled} r where r.${key} = l.${key})`,
  );
  await pool.query(`alter table ${recycled} set schema ${quoteIdent(next)}`);
  return true;
}
