import type Database from "better-sqlite3";
import type { SqliteTable } from "./sqlite-catalog.ts";

/** What a column actually stores: SQLite is dynamically typed, so declared types may lie. */
export interface ColumnStats {
  nulls: number;
  integers: number;
  reals: number;
  texts: number;
  blobs: number;
  integerMin?: bigint;
  integerMax?: bigint;
  /** Longest text value, in characters. */
  textMaxLength: number;
  /** Integer values other than 0 and 1. */
  nonBooleanIntegers: number;
  /** Text values that are valid JSON (counted for JSON-declared columns only). */
  textJson?: number;
  /** Text values that are calendar dates `YYYY-MM-DD` (date-declared columns only). */
  textDates?: number;
  /** Text values that are ISO date-times, with or without zone (date-declared columns only). */
  textDateTimes?: number;
  /** Of those, the ones carrying `Z` or a `+HH:MM` offset. */
  textZoned?: number;
}

export interface TableStats {
  rows: number;
  rowidMin?: bigint;
  rowidMax?: bigint;
  columns: Map<string, ColumnStats>;
}

function q(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Declared type names that make pgshift look for JSON / dates in text values. */
export function declaresJson(declaredType: string): boolean {
  return /JSON/i.test(declaredType);
}
export function declaresDate(declaredType: string): boolean {
  return /DATE|TIME/i.test(declaredType);
}

const DATE_GLOB = "'[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'";
const DATETIME_GLOB = "'[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9][ T][0-2][0-9]:[0-5][0-9]*'";

/**
 * Scans one table in a single pass (aggregates computed inside SQLite): storage classes per column,
 * integer range, text length, and for JSON/date-declared columns how many values parse.
 */
export function scanTable(db: Database.Database, table: SqliteTable): TableStats {
  const parts: string[] = ["count(*)"];
  if (!table.withoutRowid) parts.push("min(rowid)", "max(rowid)");
  for (const column of table.columns) {
    const c = q(column.name);
    parts.push(
      `sum(${c} is null)`,
      `sum(typeof(${c}) = 'integer')`,
      `sum(typeof(${c}) = 'real')`,
      `sum(typeof(${c}) = 'text')`,
      `sum(typeof(${c}) = 'blob')`,
      `min(case when typeof(${c}) = 'integer' then ${c} end)`,
      `max(case when typeof(${c}) = 'integer' then ${c} end)`,
      `max(case when typeof(${c}) = 'text' then length(${c}) end)`,
      `sum(typeof(${c}) = 'integer' and ${c} not in (0, 1))`,
    );
    if (declaresJson(column.declaredType)) parts.push(`sum(typeof(${c}) = 'text' and json_valid(${c}))`);
    if (declaresDate(column.declaredType)) {
      const validDay = `date(substr(${c}, 1, 10)) = substr(${c}, 1, 10)`;
      parts.push(
        `sum(typeof(${c}) = 'text' and ${c} glob ${DATE_GLOB} and ${validDay})`,
        `sum(typeof(${c}) = 'text' and ${c} glob ${DATETIME_GLOB} and ${validDay} and julianday(${c}) is not null)`,
        `sum(typeof(${c}) = 'text' and ${c} glob ${DATETIME_GLOB} and (${c} glob '*Z' or ${c} glob '*[+-][0-9][0-9]:[0-9][0-9]' or ${c} glob '*[+-][0-9][0-9][0-9][0-9]'))`,
      );
    }
  }
  const row = db
    .prepare(`select ${parts.join(", ")} from ${q(table.name)}`)
    .raw(true)
    .safeIntegers(true)
    .get() as (bigint | null)[];
  let i = 0;
  const next = () => row[i++] ?? null;
  const num = () => Number(next() ?? 0n);
  const stats: TableStats = { rows: num(), columns: new Map() };
  if (!table.withoutRowid) {
    const min = next();
    const max = next();
    if (min !== null) stats.rowidMin = min;
    if (max !== null) stats.rowidMax = max;
  }
  for (const column of table.columns) {
    const s: ColumnStats = {
      nulls: num(),
      integers: num(),
      reals: num(),
      texts: num(),
      blobs: num(),
      textMaxLength: 0,
      nonBooleanIntegers: 0,
    };
    const min = next();
    const max = next();
    if (min !== null) s.integerMin = min;
    if (max !== null) s.integerMax = max;
    s.textMaxLength = num();
    s.nonBooleanIntegers = num();
    if (declaresJson(column.declaredType)) s.textJson = num();
    if (declaresDate(column.declaredType)) {
      s.textDates = num();
      s.textDateTimes = num();
      s.textZoned = num();
    }
    stats.columns.set(column.name, s);
  }
  return stats;
}
