import { readFile } from "node:fs/promises";
import type pg from "pg";
import { documentTablePlan, indexDefinitions } from "../documents/document-table.ts";
import { importDocuments, type ImportDocumentsResult } from "../documents/import-documents.ts";
import { parsePointer } from "../documents/json-pointer.ts";
import { UsageError } from "../errors.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import { fitIdentifier } from "../schema/naming.ts";
import type { ConflictReport } from "./conflicts.ts";
import type { DatasetTable } from "./dataset.ts";
import { recycleTable } from "./recycle-version.ts";

/** What the build did to one table (a delta build: the change against the live version). */
export interface TableBuild {
  table: string;
  recordsRead: number;
  recordsLoaded: number;
  inserted: number;
  updated: number;
  unchanged: number;
  deleted: number;
  runId: string;
  /** Delta builds: rows changed locally since the last refresh, and those the delta changed too. */
  conflicts?: ConflictReport;
  /** Delta builds: the staging table (in the next schema) holding the delta's records as imported. */
  staging?: string;
  /** Delta builds: the schema of the previous version whose table was brought in line with live and reused. */
  recycledFrom?: string;
}

/** Drops the next schema (a failed or abandoned build); true when there was one. */
export async function dropSchema(pool: pg.Pool, schema: string): Promise<boolean> {
  const { rows } = await pool.query("select 1 from pg_namespace where nspname = $1", [schema]);
  if (rows.length === 0) return false;
  await pool.query(`drop schema ${quoteIdent(schema)} cascade`);
  return true;
}

export async function schemaExists(client: pg.ClientBase | pg.Pool, schema: string): Promise<boolean> {
  const { rows } = await client.query("select 1 from pg_namespace where nspname = $1", [schema]);
  return rows.length > 0;
}

function fromImport(table: string, r: ImportDocumentsResult, deleted = 0): TableBuild {
  return {
    table,
    recordsRead: r.recordsRead,
    recordsLoaded: r.recordsLoaded,
    inserted: r.inserted || (r.mode === "insert" ? r.recordsLoaded : 0),
    updated: r.updated,
    unchanged: r.unchanged,
    deleted,
    runId: r.runId,
  };
}

function importOptions(t: DatasetTable) {
  return {
    ...(t.key !== undefined ? { key: t.key } : {}),
    ...(t.records !== undefined ? { records: t.records } : {}),
    ...(t.columns !== undefined ? { columns: t.columns } : {}),
    ...(t.gin !== undefined ? { gin: t.gin } : {}),
    ...(t.trgm !== undefined ? { trgm: t.trgm } : {}),
    ...(t.duplicates !== undefined ? { duplicates: t.duplicates } : {}),
    // document tables always (also from CSV): verification and deltas compare documents
    typed: false,
  };
}

/** The first primary key column of a table, or null (no such table, no primary key). */
export async function primaryKeyColumn(
  client: pg.ClientBase | pg.Pool,
  schema: string,
  table: string,
): Promise<string | null> {
  const { rows } = await client.query(
    `select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
      where i.indisprimary and i.indrelid = to_regclass($1)`,
    [quoteQualified(schema, table)],
  );
  return rows[0]?.attname ?? null;
}

/** A full build: every table imported from its source into the (new, empty) next schema. */
export async function buildFull(
  pool: pg.Pool,
  next: string,
  table: DatasetTable,
  signal?: AbortSignal,
): Promise<TableBuild> {
  const result = await importDocuments({
    pool,
    from: table.from,
    schema: next,
    table: table.table,
    mode: "insert",
    ...importOptions(table),
    ...(signal ? { signal } : {}),
  });
  return fromImport(table.table, result);
}

/** Keys to delete, one per line (blank lines ignored). */
export async function readDeletedKeys(path: string): Promise<string[]> {
  const text = await readFile(path, "utf8").catch((error: Error) => {
    throw new UsageError(`cannot read --deleted-keys file ${path}: ${error.message}`);
  });
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean);
}

/** Where a delta's records are staged (in the next schema) before they are applied; dropped before the swap. */
export const stagingTableName = (table: string): string => fitIdentifier(`${table}__pgshift_delta`);

/** The GIN and trigram indexes a full build of the table makes (the dataset's options), on the next schema. */
function datasetIndexes(next: string, table: DatasetTable): string[] {
  const trgm = table.trgm === undefined ? [] : Array.isArray(table.trgm) ? table.trgm : [table.trgm];
  const plan = documentTablePlan({
    schema: next,
    table: table.table,
    keys: [],
    extraColumns: [],
    gin: Boolean(table.gin),
    trgmPaths: trgm.map((pointer: string) => parsePointer(pointer)),
  });
  return indexDefinitions(plan).map((i) => i.sql);
}

/**
 * A delta build, whose cost follows the size of the delta (plus one server-side copy of the live table):
 * 1. the live table copied into the next schema (`LIKE ... INCLUDING ALL EXCLUDING INDEXES`, then
 *    `INSERT ... SELECT`), while the delta's records are imported into a staging table beside it (only
 *    they are parsed and hashed);
 * 2. the key constraints as live has them, then one `INSERT ... ON CONFLICT DO UPDATE` from the staging
 *    table, writing only rows whose content hash changed; the tombstoned keys deleted;
 * 3. the GIN and trigram indexes of the dataset's options, built after the data and side by side, then
 *    ANALYZE. The staging table stays until verification has compared it with the source and with next.
 * With `recycleFrom` (a previous version the retention drops after the switch), step 1 brings that
 * version's table in line with live and moves it into next instead, keeping its constraints and indexes
 * (recycle-version.ts); a table of another shape is copied as above.
 */
export async function buildDelta(
  pool: pg.Pool,
  live: string,
  next: string,
  table: DatasetTable,
  deletedKeys: readonly string[],
  signal?: AbortSignal,
  recycleFrom?: string,
): Promise<TableBuild> {
  if (table.key === undefined || (Array.isArray(table.key) && table.key.length !== 1))
    throw new UsageError(`--delta needs one --key for table "${table.table}" to match records`);
  const liveTable = quoteQualified(live, table.table);
  const nextTable = quoteQualified(next, table.table);
  const staging = stagingTableName(table.table);
  const liveKey = recycleFrom ? await primaryKeyColumn(pool, live, table.table) : null;
  const copyLive = async (): Promise<boolean> => {
    if (recycleFrom && liveKey) {
      const reused = await recycleTable(pool, {
        from: recycleFrom,
        live,
        next,
        table: table.table,
        keyColumn: liveKey,
      });
      if (reused) return true;
    }
    await pool.query(`create table ${nextTable} (like ${liveTable} including all excluding indexes)`);
    await pool.query(`insert into ${nextTable} select * from ${liveTable}`);
    return false;
  };
  const [recycled, result] = await Promise.all([
    copyLive(),
    importDocuments({
      pool,
      from: table.from,
      schema: next,
      table: staging,
      mode: "insert",
      ...importOptions({ ...table, gin: false, trgm: [] }),
      ...(signal ? { signal } : {}),
    }),
  ]);
  const columnsOf = async (schema: string, name: string): Promise<string[]> => {
    const { rows } = await pool.query(
      `select attname from pg_attribute where attrelid = to_regclass($1) and attnum > 0 and not attisdropped order by attnum`,
      [quoteQualified(schema, name)],
    );
    return rows.map((r) => r.attname as string);
  };
  const [liveColumns, stagedColumns] = await Promise.all([
    columnsOf(live, table.table),
    columnsOf(next, staging),
  ]);
  if ([...liveColumns].sort().join("\u0000") !== [...stagedColumns].sort().join("\u0000"))
    throw new UsageError(
      `the delta's table shape (${stagedColumns.join(", ")}) differs from ${live}.${table.table} (${liveColumns.join(", ")}): the dataset's key or columns changed; run a full refresh`,
    );
  const keyColumn = result.keyColumns[0]!;
  const { rows: constraints } = await pool.query(
    `select conname, pg_get_constraintdef(oid) as def from pg_constraint
      where conrelid = to_regclass($1) and contype in ('p', 'u', 'x') order by contype, conname`,
    [liveTable],
  );
  if (!recycled)
    for (const c of constraints)
      await pool.query(`alter table ${nextTable} add constraint ${quoteIdent(c.conname)} ${c.def}`);
  const list = stagedColumns.map(quoteIdent).join(", ");
  const updates = stagedColumns
    .filter((c) => c !== keyColumn)
    .map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`)
    .join(", ");
  const { rows: applied } = await pool.query(
    `with applied as (
       insert into ${nextTable} as n (${list}) select ${list} from ${quoteQualified(next, staging)}
       on conflict (${quoteIdent(keyColumn)}) do update set ${updates}
        where n.content_hash is distinct from excluded.content_hash
       returning (xmax = 0) as inserted)
     select count(*) filter (where inserted)::bigint as inserted, count(*) filter (where not inserted)::bigint as updated
       from applied`,
  );
  const inserted = Number(applied[0].inserted);
  const updated = Number(applied[0].updated);
  let deleted = 0;
  if (deletedKeys.length) {
    const removed = await pool.query(
      `delete from ${nextTable} where ${quoteIdent(keyColumn)}::text = any($1::text[])`,
      [deletedKeys],
    );
    deleted = removed.rowCount ?? 0;
  }
  await Promise.all(datasetIndexes(next, table).map((sql) => pool.query(sql)));
  await pool.query(`analyze ${nextTable}`);
  return {
    table: table.table,
    recordsRead: result.recordsRead,
    recordsLoaded: result.recordsLoaded,
    inserted,
    updated,
    unchanged: result.recordsLoaded - inserted - updated,
    deleted,
    runId: result.runId,
    staging,
    ...(recycled ? { recycledFrom: recycleFrom } : {}),
  };
}
