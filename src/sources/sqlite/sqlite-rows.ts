import { existsSync } from "node:fs";
import type Database from "better-sqlite3";
import { PgshiftError } from "../../errors.ts";
import { NativeModuleError, openSqliteFile } from "./open-database.ts";

/** A SQLite identifier, double-quoted with embedded quotes doubled: the one way pgshift names SQLite tables and columns. */
export function quoteSqlite(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const q = quoteSqlite;

/** Opens a SQLite file read-only; a precise error when it is missing or not a SQLite database. */
export function openSqlite(path: string): Database.Database {
  if (!existsSync(path))
    throw new PgshiftError("source_not_found", `SQLite file ${path} does not exist`, { details: { path } });
  let db: Database.Database;
  try {
    db = openSqliteFile(path);
    db.prepare("select count(*) from sqlite_schema").get();
  } catch (error) {
    if (error instanceof NativeModuleError) throw error;
    throw new PgshiftError(
      "source_unreadable",
      `${path} cannot be read as a SQLite database: ${(error as Error).message}`,
      {
        cause: error,
        details: { path },
      },
    );
  }
  return db;
}

/**
 * SQLite files from this size are read in worker threads even on two cores (the value scan of an
 * import, the source side of verification): below it, starting the threads costs more than it saves.
 */
export const THREADS_MIN_SOURCE_BYTES = 32 * 1024 * 1024;

/**
 * Bytes each table and index takes in the file (SQLite's dbstat), by name: a better measure of the
 * work a table is than its row count when rows differ in width. Empty when dbstat is not available.
 */
export function storedBytes(db: Database.Database): Map<string, number> {
  try {
    const rows = db.prepare("select name, pgsize from dbstat where aggregate = true").raw(true).all() as [
      string,
      number,
    ][];
    return new Map(rows);
  } catch {
    return new Map();
  }
}

/** SQLite's three names for a row id, in the order pgshift tries them. */
const ROWID_NAMES = ["rowid", "_rowid_", "oid"] as const;

/**
 * The name that reaches a rowid table's row id: `rowid`, or `_rowid_` / `oid` when a column is
 * named `rowid` (a column hides the row id name it takes). Undefined when columns take all three.
 */
export function rowidName(columns: readonly string[]): string | undefined {
  const taken = new Set(columns.map((c) => c.toLowerCase()));
  return ROWID_NAMES.find((name) => !taken.has(name));
}

/** rowidName, for code paths that only run once the table was checked to have one. */
export function rowidOf(table: string, columns: readonly string[]): string {
  const name = rowidName(columns);
  if (name === undefined)
    throw new PgshiftError(
      "rowid_hidden",
      `table "${table}" has columns named rowid, _rowid_ and oid, which hide SQLite's row id`,
    );
  return name;
}

export interface RowSource {
  table: string;
  columns: readonly string[];
  withoutRowid: boolean;
  /** Return integers as bigint (needed when any value is beyond 2^53). */
  bigIntegers: boolean;
}

export interface RowRange {
  /** Exclusive lower rowid bound. */
  afterRowid?: bigint;
  /** Inclusive upper rowid bound. */
  throughRowid?: bigint;
}

/** SQL conditions (`?` placeholders) and their parameters that keep the rows of `range`, by `rowid`. */
export function rowRangeConditions(
  rowid: string,
  range: RowRange,
): { conditions: string[]; params: bigint[] } {
  const conditions: string[] = [];
  const params: bigint[] = [];
  if (range.afterRowid !== undefined) {
    conditions.push(`${rowid} > ?`);
    params.push(range.afterRowid);
  }
  if (range.throughRowid !== undefined) {
    conditions.push(`${rowid} <= ?`);
    params.push(range.throughRowid);
  }
  return { conditions, params };
}

/**
 * Streams one range of rows as raw arrays `[rowid, col1, col2, ...]` (rowid is null for WITHOUT ROWID
 * tables), in rowid order, one row in memory at a time.
 */
export function iterateRows(
  db: Database.Database,
  source: RowSource,
  range: RowRange = {},
): IterableIterator<unknown[]> {
  const columns = source.columns.map(q).join(", ");
  const rowid = source.withoutRowid ? "rowid" : rowidOf(source.table, source.columns);
  const { conditions, params } = source.withoutRowid
    ? { conditions: [], params: [] }
    : rowRangeConditions(rowid, range);
  const where = conditions.length ? ` where ${conditions.join(" and ")}` : "";
  const sql = source.withoutRowid
    ? `select null, ${columns} from ${q(source.table)}`
    : `select ${rowid}, ${columns} from ${q(source.table)}${where} order by ${rowid}`;
  const statement = db.prepare(sql).raw(true).safeIntegers(source.bigIntegers);
  return statement.iterate(...params) as IterableIterator<unknown[]>;
}

/**
 * The stored bytes of one text value (SQLite hands text to JavaScript decoded, replacing invalid
 * UTF-8), found by rowid or, in WITHOUT ROWID tables, by primary key values.
 */
export function readRawBytes(
  db: Database.Database,
  table: string,
  column: string,
  where: { rowid: bigint | number; rowidName?: string } | { key: readonly [string, unknown][] },
): Buffer | null {
  const select = `select cast(${q(column)} as blob) from ${q(table)}`;
  const row =
    "rowid" in where
      ? (db
          .prepare(`${select} where ${where.rowidName ?? "rowid"} = ?`)
          .raw(true)
          .get(where.rowid) as [Buffer | null] | undefined)
      : (db
          .prepare(`${select} where ${where.key.map(([name]) => `${q(name)} = ?`).join(" and ")}`)
          .raw(true)
          .get(...where.key.map(([, value]) => value)) as [Buffer | null] | undefined);
  return row?.[0] ?? null;
}
