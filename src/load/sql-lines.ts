import type { ColumnPlan, TablePlan } from "../schema/plan.ts";
import { quoteSqlite as q, rowidName } from "../sources/sqlite/sqlite-rows.ts";

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
  /** `select rowid, flags, part1, part2, ... from t` (the range and order are added by the caller). */
  sql: string;
  /** The name that reaches the row id (rowid, or _rowid_ / oid when a column is named rowid). */
  rowid: string;
  /**
   * One entry per selected part after rowid and flags: -1 for a SQL segment (tabs and the final
   * newline included), otherwise the plan column whose raw value JavaScript encodes.
   */
  parts: number[];
  /** flags bit i set: the value of column counted[i] was converted (counts as a conversion). */
  counted: number[];
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

/** A column's SQL cell on the whole-row path, and the SQL condition under which a value counts as a conversion. */
export interface WholeRowCell {
  expr: string;
  count?: string;
}

/** COPY text escaping of a SQL text value: backslash first, then tab, newline, carriage return. */
function escapedText(c: string): string {
  return `replace(replace(replace(replace(${c}, '\\', '\\\\'), char(9), '\\t'), char(10), '\\n'), char(13), '\\r')`;
}

/** The largest finite double: reals beyond it (SQLite's Inf) stay in JavaScript. */
const MAX_DOUBLE = "1.7976931348623157e308";
const DIGIT = "[0-9]";
const DATE_GLOB = `${DIGIT.repeat(4)}-${DIGIT.repeat(2)}-${DIGIT.repeat(2)}`;
const DATE_TIME_GLOB = `${DATE_GLOB}[ T]${DIGIT.repeat(2)}:${DIGIT.repeat(2)}:${DIGIT.repeat(2)}`;

/**
 * SQL that is true when `c` (text) is a calendar date-time `YYYY-MM-DD[ T]HH:MM:SS[.f{1,6}]` (19 to 26
 * characters from `start`) that checkIsoDate accepts: a real day of years 1-9999, hours <= 23,
 * minutes and seconds <= 59. Anything else (other forms, zones other than the caller's) goes to
 * JavaScript, which decides exactly as before.
 */
function isoDateTime(c: string, body: string): string {
  return [
    `substr(${body}, 1, 19) glob '${DATE_TIME_GLOB}'`,
    `(length(${body}) = 19 or (length(${body}) between 21 and 26 and substr(${body}, 20, 1) = '.' and substr(${body}, 21) not glob '*[^0-9]*'))`,
    `date(substr(${c}, 1, 10)) = substr(${c}, 1, 10)`,
    `substr(${c}, 1, 4) <> '0000'`,
    `substr(${c}, 12, 2) <= '23'`,
    `substr(${c}, 15, 2) <= '59'`,
    `substr(${c}, 18, 2) <= '59'`,
  ].join(" and ");
}

/**
 * The SQL cell of a column on the whole-row path (every column in SQL, see planWholeRows): the cells
 * of sqlCell, plus text and JSON (escaped; NUL stays in JavaScript), blobs (hex), reals (17
 * significant digits, which SQLite prints so that they read back to the same double), and plain ISO
 * dates. Text is not checked for invalid UTF-8 here: PostgreSQL refuses such a COPY, and the chunk is
 * then encoded again in JavaScript, which reports the value (see loadChunk). Numeric columns stay in
 * JavaScript: their decimal text must be JavaScript's, digit for digit.
 */
export function wholeRowCell(column: ColumnPlan): WholeRowCell | undefined {
  const c = q(column.sourceName);
  const nullCell = `when 'null' then ${NULL_CELL}`;
  switch (column.conversion) {
    case "integer":
    case "boolean":
    case "epoch-ms":
    case "epoch-s": {
      const cell = sqlCell(column)!;
      return cell.counts ? { expr: cell.expr, count: `${c} is not null` } : { expr: cell.expr };
    }
    case "real":
      return {
        expr: `case typeof(${c}) when 'real' then case when abs(${c}) <= ${MAX_DOUBLE} then printf('%!.17g', ${c}) end when 'integer' then cast(${c} as text) ${nullCell} end`,
      };
    case "text":
      return {
        expr: `case typeof(${c}) when 'text' then case when instr(${c}, char(0)) = 0 then ${escapedText(c)} end when 'integer' then cast(${c} as text) ${nullCell} end`,
        count: `typeof(${c}) = 'integer'`,
      };
    case "jsonb":
      return {
        expr: `case typeof(${c}) when 'text' then case when instr(${c}, char(0)) = 0 and instr(${c}, '\\u0000') = 0 then ${escapedText(c)} end ${nullCell} end`,
        count: `${c} is not null`,
      };
    case "bytea":
      return { expr: `case typeof(${c}) when 'blob' then '\\\\x' || hex(${c}) ${nullCell} end` };
    case "date":
      return {
        expr: `case typeof(${c}) when 'text' then case when ${c} glob '${DATE_GLOB}' and date(${c}) = ${c} and substr(${c}, 1, 4) <> '0000' then ${c} end ${nullCell} end`,
      };
    case "timestamp":
      return {
        expr: `case typeof(${c}) when 'text' then case when ${isoDateTime(c, c)} then ${c} end ${nullCell} end`,
      };
    case "timestamptz": {
      // No zone: UTC is added (a conversion); `Z` or `+HH:MM`/`-HH:MM`: kept as written.
      const zoned = `(${c} glob '*Z' or ${c} glob '*[+-]${DIGIT.repeat(2)}:${DIGIT.repeat(2)}')`;
      const body = `case when ${c} glob '*Z' then substr(${c}, 1, length(${c}) - 1) when ${zoned} then substr(${c}, 1, length(${c}) - 6) else ${c} end`;
      return {
        expr: `case typeof(${c}) when 'text' then case when ${isoDateTime(c, `(${body})`)} then case when ${zoned} then ${c} else ${c} || '+00' end end ${nullCell} end`,
        count: `typeof(${c}) = 'text' and not ${zoned}`,
      };
    }
    default:
      return undefined;
  }
}

/**
 * The whole-row path: SQLite builds each batch's COPY text as one blob (group_concat of the rows'
 * lines), so that JavaScript handles one buffer per batch instead of every value. A row any of whose
 * cells is NULL (a value the SQL cells do not vouch for) is left out of the blob and listed by rowid,
 * to be read again and encoded in JavaScript, which reports, quarantines and counts exactly as before.
 * Conversions are counted by SQL sums over the rows in the blob.
 */
export interface WholeRowPlan {
  /**
   * `select count(*), max(rowid), blob, slow rowids, sum(count1), ... from (batch)`; parameters: the
   * first rowid, then (when bounded) the last; `limit` rows per batch.
   */
  sql(bounded: boolean, limit: number): string;
  /** Plan column of each sum after the first four result columns. */
  counted: number[];
}

/** The whole-row plan for a table, or undefined when any column needs JavaScript (or rowids are not addressable). */
export function planWholeRows(table: TablePlan): WholeRowPlan | undefined {
  const rowid = rowidName(table.columns.map((c) => c.sourceName));
  if (table.withoutRowid || rowid === undefined) return undefined;
  const cells = table.columns.map(wholeRowCell);
  if (cells.some((cell) => cell === undefined)) return undefined;
  const counted: number[] = [];
  const counts: string[] = [];
  cells.forEach((cell, i) => {
    if (cell!.count === undefined) return;
    counted.push(i);
    counts.push(`(${cell!.count}) as k${counted.length - 1}`);
  });
  const line = cellsWithTabs(
    cells.map((cell) => `(${cell!.expr})`),
    "char(10)",
  );
  const inner = [`${rowid} as r`, `${line} as line`, ...counts].join(", ");
  const sums = counted.map((_, k) => `, sum(case when line is not null then k${k} end)`).join("");
  return {
    sql: (bounded, limit) =>
      `select count(*), max(r), cast(group_concat(line, '') as blob), group_concat(case when line is null then r end)${sums} from (select ${inner} from ${q(table.sourceName)} where ${rowid} >= ?${bounded ? ` and ${rowid} <= ?` : ""} order by ${rowid} limit ${limit})`,
    counted,
  };
}

/** Parts concatenated as one chain, `a || b || c ...`: the SQL narrow tables always had. */
const CHAIN_PARTS = 128;

/**
 * `a || b || c ...` within SQLite's expression depth limit (1000): a left-deep chain is as deep as it
 * is long, and a wide table's cells and tabs made it fail from 498 columns ("Expression tree is too
 * large"). Up to CHAIN_PARTS parts stay one chain (the same SQL as before); longer lists are split in
 * halves, `(chain || chain)`, so that 1600 columns are about 140 deep.
 */
export function concatenated(parts: readonly string[]): string {
  if (parts.length <= CHAIN_PARTS) return parts.join(" || ");
  const middle = Math.ceil(parts.length / 2);
  return `(${concatenated(parts.slice(0, middle))}) || (${concatenated(parts.slice(middle))})`;
}

/** The cells of a line with a tab between each two, then `end` (a tab or the final newline). */
function cellsWithTabs(cells: readonly string[], end: string): string {
  return concatenated([...cells.flatMap((cell, i) => (i === 0 ? [cell] : ["char(9)", cell])), end]);
}

/** Flags are summed as an integer: at most 30 counted SQL columns, the others stay in JavaScript. */
const MAX_COUNTED = 30;

/**
 * The fast-path query for a table, or undefined when the table does not qualify (WITHOUT ROWID or a
 * column named rowid: its rows cannot be read by rowid; or no column SQLite can encode).
 */
export function planSqlLines(table: TablePlan): SqlLinePlan | undefined {
  // Batches and re-reads go by the row id, under the name no column hides.
  const rowid = rowidName(table.columns.map((c) => c.sourceName));
  if (table.withoutRowid || rowid === undefined) return undefined;
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
        selected.push(concatenated([...segment, "char(9)"]));
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
    selected.push(concatenated([...segment, "char(10)"]));
    parts.push(-1);
  }
  const flags =
    counted.length === 0
      ? "0"
      : counted
          .map((column, bit) => `(${q(table.columns[column]!.sourceName)} is not null) * ${2 ** bit}`)
          .join(" + ");
  return {
    sql: `select ${rowid}, ${flags}, ${selected.join(", ")} from ${q(table.sourceName)}`,
    rowid,
    parts,
    counted,
  };
}
