import { readFile } from "node:fs/promises";
import type pg from "pg";
import { importDocuments, type ImportDocumentsResult } from "../documents/import-documents.ts";
import { UsageError } from "../errors.ts";
import { quoteIdent, quoteQualified } from "../pg/quote.ts";
import type { ConflictReport } from "./conflicts.ts";
import type { DatasetTable } from "./dataset.ts";

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

/**
 * A delta build: the live table copied into the next schema (LIKE ... INCLUDING ALL, then its key
 * constraints), then the source's changed and new records upserted by key (unchanged content hashes are not
 * rewritten), then the tombstoned keys deleted.
 */
export async function buildDelta(
  pool: pg.Pool,
  live: string,
  next: string,
  table: DatasetTable,
  deletedKeys: readonly string[],
  signal?: AbortSignal,
): Promise<TableBuild> {
  if (table.key === undefined || (Array.isArray(table.key) && table.key.length !== 1))
    throw new UsageError(`--delta needs one --key for table "${table.table}" to match records`);
  const liveTable = quoteQualified(live, table.table);
  const nextTable = quoteQualified(next, table.table);
  // Indexes come after the copy (faster than maintaining them per row): the key constraints as live has
  // them, the GIN and trigram indexes from the dataset's options as a full build makes them, so that a
  // delta version has the same shape as a full one.
  await pool.query(`create table ${nextTable} (like ${liveTable} including all excluding indexes)`);
  await pool.query(`insert into ${nextTable} select * from ${liveTable}`);
  const { rows: constraints } = await pool.query(
    `select conname, pg_get_constraintdef(oid) as def from pg_constraint
      where conrelid = to_regclass($1) and contype in ('p', 'u', 'x') order by contype, conname`,
    [liveTable],
  );
  for (const c of constraints)
    await pool.query(`alter table ${nextTable} add constraint ${quoteIdent(c.conname)} ${c.def}`);
  const result = await importDocuments({
    pool,
    from: table.from,
    schema: next,
    table: table.table,
    mode: "upsert",
    ...importOptions(table),
    ...(signal ? { signal } : {}),
  });
  let deleted = 0;
  if (deletedKeys.length) {
    const keyColumn = result.keyColumns[0]!;
    const removed = await pool.query(
      `delete from ${nextTable} where ${quoteIdent(keyColumn)}::text = any($1::text[])`,
      [deletedKeys],
    );
    deleted = removed.rowCount ?? 0;
  }
  await pool.query(`analyze ${nextTable}`);
  return fromImport(table.table, result, deleted);
}
