import type { ColumnPlan, TablePlan } from "../schema/plan.ts";

/**
 * The SQL fast path of chunk encoding: SQLite itself builds the COPY text of the columns whose
 * conversion it can express exactly, so that JavaScript only concatenates. Every SQL cell yields
 * NULL (which makes the whole segment NULL) unless the value is one SQLite formats exactly as the
 * JavaScript encoder would: the right storage class, 0/1 for booleans, an epoch within 1970-9999. A
 * row with a NULL segment, or whose JavaScript-encoded values need a check of their stored bytes, is
 * read again and encoded wholly in JavaScript, so that bad values are reported, quarantined and counted
 * exactly as before. Text, JSON and blobs stay in JavaScript (measured: the NUL check, escaping and
 * hex() cost SQLite more than the JavaScript encoder), as do reals, numerics and ISO date text (their text or their
 * checks are not reproduced by SQLite byte for byte).
 */
export interface SqlLinePlan {
  /** `select rowid, flags, part1, part2, ... from t [where range] order by rowid`. */
  sql: string;
  /**
   * One entry per selected part after rowid and flags: -1 for a SQL segment (tabs and the final
   * newline included), otherwise the plan column whose raw value JavaScript encodes.
   */
  parts: number[];
  /** flags bit i set: the value of column counted[i] was converted (counts as a conversion). */
  counted: number[];
}

function q(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const NULL_CELL = "'\\N'";
/** 9999-12-31 23:59:59.999 UTC, the last instant formatEpochMs accepts. */
const EPOCH_MAX_MS = 253402300799999;

/** The SQL cell of one column and whether a non-NULL value counts as a conversion; undefined: JavaScript. */
export function sqlCell(column: ColumnPlan): { expr: string; counts: boolean } | undefined {
  const c = q(column.sourceName);
  switch (column.conversion) {
    case "integer":
      return {
        expr: `case typeof(${c}) when 'integer' then cast(${c} as text) when 'null' then ${NULL_CELL} end`,
        counts: false,
      };
    case "boolean":
      return {
        expr: `case typeof(${c}) when 'integer' then case ${c} when 0 then 'f' when 1 then 't' end when 'null' then ${NULL_CELL} end`,
        counts: true,
      };
    case "epoch-ms":
      return {
        expr: `case when typeof(${c}) = 'integer' and ${c} between 0 and ${EPOCH_MAX_MS} then datetime(${c} / 1000, 'unixepoch') || case when ${c} % 1000 = 0 then '' else '.' || substr('00' || (${c} % 1000), -3) end || '+00' when ${c} is null then ${NULL_CELL} end`,
        counts: true,
      };
    case "epoch-s":
      return {
        expr: `case when typeof(${c}) = 'integer' and ${c} between 0 and ${Math.floor(EPOCH_MAX_MS / 1000)} then datetime(${c}, 'unixepoch') || '+00' when ${c} is null then ${NULL_CELL} end`,
        counts: true,
      };
    default:
      return undefined;
  }
}

/** Flags are summed as an integer: at most 30 counted SQL columns, the others stay in JavaScript. */
const MAX_COUNTED = 30;

/**
 * The fast-path query for a table, or undefined when the table does not qualify (WITHOUT ROWID or a
 * column named rowid: its rows cannot be read by rowid; or no column SQLite can encode).
 */
export function planSqlLines(table: TablePlan): SqlLinePlan | undefined {
  // A column named rowid would hide the rowid that batches and re-reads go by.
  if (table.withoutRowid || table.columns.some((c) => c.sourceName.toLowerCase() === "rowid"))
    return undefined;
  const counted: number[] = [];
  const cells = table.columns.map((column) => {
    const cell = sqlCell(column);
    if (!cell) return undefined;
    if (cell.counts) {
      if (counted.length >= MAX_COUNTED) return undefined;
      counted.push(table.columns.indexOf(column));
    }
    return cell.expr;
  });
  if (cells.every((cell) => cell === undefined)) return undefined;
  const selected: string[] = [];
  const parts: number[] = [];
  let segment: string[] = [];
  cells.forEach((expr, i) => {
    if (expr === undefined) {
      if (segment.length) {
        selected.push(`${segment.join(" || ")} || char(9)`);
        parts.push(-1);
        segment = [];
      }
      selected.push(q(table.columns[i]!.sourceName));
      parts.push(i);
      // The separator after a JavaScript cell belongs to the next segment (or is added in JavaScript).
      return;
    }
    if (segment.length) segment.push("char(9)");
    else if (i > 0) segment.push("char(9)");
    segment.push(`(${expr})`);
  });
  if (segment.length) {
    selected.push(`${segment.join(" || ")} || char(10)`);
    parts.push(-1);
  }
  const flags =
    counted.length === 0
      ? "0"
      : counted
          .map((column, bit) => `(${q(table.columns[column]!.sourceName)} is not null) * ${2 ** bit}`)
          .join(" + ");
  return {
    sql: `select rowid, ${flags}, ${selected.join(", ")} from ${q(table.sourceName)}`,
    parts,
    counted,
  };
}
