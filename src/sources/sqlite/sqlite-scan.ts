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

const ISO_DATE_TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:([ T])\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function validDay(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && !leap ? 28 : DAYS_IN_MONTH[month - 1]!);
}

function emptyStats(): ColumnStats {
  return {
    nulls: 0,
    integers: 0,
    reals: 0,
    texts: 0,
    blobs: 0,
    textMaxLength: 0,
    nonBooleanIntegers: 0,
  };
}

/** ISO kinds of a text value in a date-declared column, as the scan counts them. */
const ISO_OTHER = 0;
const ISO_DATE = 1;
const ISO_DATE_TIME = 2;
const ISO_ZONED = 3;

function isoKind(value: unknown): number {
  if (typeof value !== "string") return ISO_OTHER;
  const m = ISO_DATE_TIME_RE.exec(value);
  if (!m || !validDay(Number(m[1]), Number(m[2]), Number(m[3]))) return ISO_OTHER;
  if (m[4] === undefined) return m[5] === undefined ? ISO_DATE : ISO_OTHER;
  return m[5] === undefined ? ISO_DATE_TIME : ISO_ZONED;
}

/** Aggregates per column, in the order scanTable reads them back. */
const PER_COLUMN = 9;
/** Columns per aggregate query, to stay far below SQLite's limit on result columns. */
const COLUMNS_PER_QUERY = 100;

function columnAggregates(column: string, json: boolean, date: boolean): string[] {
  const c = q(column);
  const aggregates = [
    `sum(${c} is null)`,
    `sum(typeof(${c}) = 'integer')`,
    `sum(typeof(${c}) = 'real')`,
    `sum(typeof(${c}) = 'text')`,
    `sum(typeof(${c}) = 'blob')`,
    `min(case when typeof(${c}) = 'integer' then ${c} end)`,
    `max(case when typeof(${c}) = 'integer' then ${c} end)`,
    // Characters (code points), as PostgreSQL counts a varchar's length.
    `max(case when typeof(${c}) = 'text' then length(${c}) end)`,
    `sum(typeof(${c}) = 'integer' and ${c} not in (0, 1))`,
  ];
  // JSON validity is judged by SQLite itself (strict RFC 8259, like PostgreSQL's jsonb input).
  if (json) aggregates.push(`sum(typeof(${c}) = 'text' and json_valid(${c}))`);
  if (date) {
    const kind = `pgshift_iso_kind(case when typeof(${c}) = 'text' then ${c} end)`;
    aggregates.push(
      `sum(${kind} = ${ISO_DATE})`,
      `sum(${kind} >= ${ISO_DATE_TIME})`,
      `sum(${kind} = ${ISO_ZONED})`,
    );
  }
  return aggregates;
}

function count(value: unknown): number {
  return value === null || value === undefined ? 0 : Number(value as bigint);
}

/**
 * Scans one table's stored values with SQL aggregates, in one pass per hundred columns that SQLite
 * runs in C: storage classes per column, integer range (exact, as bigint), longest text, and for
 * JSON/date-declared columns how many values parse. Only text values of date-declared columns are
 * looked at in JavaScript (the ISO-8601 pattern that the encoder checks too).
 */
export function scanTable(db: Database.Database, table: SqliteTable): TableStats {
  const columns = table.columns;
  db.function("pgshift_iso_kind", { deterministic: true }, isoKind);
  const all = columns.map(emptyStats);
  let rows = 0;
  for (let first = 0; first < Math.max(1, columns.length); first += COLUMNS_PER_QUERY) {
    const group = columns.slice(first, first + COLUMNS_PER_QUERY);
    const flags = group.map((c) => ({
      json: declaresJson(c.declaredType),
      date: declaresDate(c.declaredType),
    }));
    const select = [
      "count(*)",
      ...group.flatMap((c, i) => columnAggregates(c.name, flags[i]!.json, flags[i]!.date)),
    ];
    const result = db
      .prepare(`select ${select.join(", ")} from ${q(table.name)}`)
      .raw(true)
      .safeIntegers(true)
      .get() as unknown[];
    rows = count(result[0]);
    let at = 1;
    group.forEach((_, i) => {
      const s = all[first + i]!;
      s.nulls = count(result[at]);
      s.integers = count(result[at + 1]);
      s.reals = count(result[at + 2]);
      s.texts = count(result[at + 3]);
      s.blobs = count(result[at + 4]);
      if (result[at + 5] !== null) s.integerMin = result[at + 5] as bigint;
      if (result[at + 6] !== null) s.integerMax = result[at + 6] as bigint;
      s.textMaxLength = count(result[at + 7]);
      s.nonBooleanIntegers = count(result[at + 8]);
      at += PER_COLUMN;
      if (flags[i]!.json) s.textJson = count(result[at++]);
      if (flags[i]!.date) {
        s.textDates = count(result[at]);
        s.textDateTimes = count(result[at + 1]);
        s.textZoned = count(result[at + 2]);
        at += 3;
      }
    });
  }
  const stats: TableStats = { rows, columns: new Map() };
  columns.forEach((column, i) => {
    stats.columns.set(column.name, all[i]!);
  });
  if (!table.withoutRowid && rows > 0) {
    const bounds = db
      .prepare(`select min(rowid), max(rowid) from ${q(table.name)}`)
      .raw(true)
      .safeIntegers(true)
      .get() as [bigint, bigint];
    stats.rowidMin = bounds[0];
    stats.rowidMax = bounds[1];
  }
  return stats;
}
