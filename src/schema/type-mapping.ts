import type { SqliteColumn } from "../sources/sqlite/sqlite-catalog.ts";
import {
  type ColumnStats,
  declaredPrecision,
  declaresDate,
  declaresJson,
} from "../sources/sqlite/sqlite-scan.ts";

/**
 * How one column's SQLite values become PostgreSQL values. Every conversion that changes a value's
 * representation is counted per column during the load.
 * - integer: integers as they are;  real: double precision;  numeric: exact decimal text of each number
 * - text: text as is; numbers found in a text column become their exact decimal text (counted)
 * - bytea: blobs as is; text becomes its UTF-8 bytes, numbers their decimal text bytes (counted)
 * - boolean: 0 / 1 -> false / true (counted)
 * - date / timestamp / timestamptz: ISO-8601 text (values without zone in a timestamptz column are UTC,
 *   as SQLite's date functions read them)
 * - epoch-s / epoch-ms: unix seconds / milliseconds -> timestamptz (counted)
 * - jsonb: JSON text (counted: jsonb normalizes whitespace and key order)
 */
export type Conversion =
  | "integer"
  | "real"
  | "numeric"
  | "text"
  | "bytea"
  | "boolean"
  | "date"
  | "timestamp"
  | "timestamptz"
  | "epoch-s"
  | "epoch-ms"
  | "jsonb";

export interface TypeDecision {
  pgType: string;
  conversion: Conversion;
  /** Why, when the stored values overrode or refined the declared type. */
  note?: string;
}

export type Affinity = "integer" | "text" | "blob" | "real" | "numeric";

/** SQLite's type affinity rules (https://sqlite.org/datatype3.html, section 3.1). */
export function affinityOf(declaredType: string): Affinity {
  const d = declaredType.toUpperCase();
  if (d.includes("INT")) return "integer";
  if (d.includes("CHAR") || d.includes("CLOB") || d.includes("TEXT")) return "text";
  if (d === "" || d.includes("BLOB")) return "blob";
  if (d.includes("REAL") || d.includes("FLOA") || d.includes("DOUB")) return "real";
  return "numeric";
}

const INT32_MIN = -2147483648n;
const INT32_MAX = 2147483647n;
const SAFE = 9007199254740991n;
/** Above this, an integer in a date column is read as milliseconds (as seconds it would be after year 5138). */
const MS_THRESHOLD = 100_000_000_000n;

function abs(v: bigint): bigint {
  return v < 0n ? -v : v;
}

function storedClasses(s: ColumnStats): string {
  return (
    [
      s.integers ? `${s.integers} integer` : "",
      s.reals ? `${s.reals} real` : "",
      s.texts ? `${s.texts} text` : "",
      s.blobs ? `${s.blobs} blob` : "",
    ]
      .filter(Boolean)
      .join(", ") || "no values"
  );
}

/**
 * Chooses the PostgreSQL type from the declared type AND the values actually stored, losslessly.
 * Pure: exact-string tested.
 */
export function mapColumnType(column: SqliteColumn, s: ColumnStats): TypeDecision {
  const decision = mapStoredValues(column, s);
  const stored = s.integers + s.reals + s.texts + s.blobs;
  const expected = ["date", "timestamp", "timestamptz", "epoch-s", "epoch-ms"].includes(decision.conversion);
  if (declaresDate(column.declaredType) && stored > 0 && !expected && !decision.note)
    decision.note = `declared ${column.declaredType} but its values (${storedClasses(s)}) are not all dates of one form: ${decision.pgType}, kept as stored`;
  if (declaresJson(column.declaredType) && stored > 0 && decision.conversion !== "jsonb" && !decision.note)
    decision.note = `declared ${column.declaredType} but not every value is valid JSON text: ${decision.pgType}`;
  if (/BOOL/i.test(column.declaredType) && stored > 0 && decision.conversion !== "boolean" && !decision.note)
    decision.note = `declared ${column.declaredType} but stores values other than 0 and 1: ${decision.pgType}`;
  return decision;
}

function mapStoredValues(column: SqliteColumn, s: ColumnStats): TypeDecision {
  const declared = column.declaredType.toUpperCase();
  const affinity = affinityOf(declared);
  const stored = s.integers + s.reals + s.texts + s.blobs;
  const classes = [s.integers, s.reals, s.texts, s.blobs].filter((n) => n > 0).length;
  const mixedNote = `declared ${column.declaredType || "(no type)"} but stores ${storedClasses(s)}`;

  if (s.blobs > 0) {
    return s.blobs === stored
      ? { pgType: "bytea", conversion: "bytea" }
      : {
          pgType: "bytea",
          conversion: "bytea",
          note: `${mixedNote}: bytea, text kept as its UTF-8 bytes and numbers as their decimal text`,
        };
  }
  if (declared.includes("BOOL")) {
    if (s.texts === 0 && s.reals === 0 && s.nonBooleanIntegers === 0)
      return { pgType: "boolean", conversion: "boolean" };
  }
  if (declaresDate(declared)) {
    const dated = dateDecision(column, s);
    if (dated) return dated;
  }
  if (declaresJson(declared) && s.integers === 0 && s.reals === 0 && s.texts === (s.textJson ?? 0))
    return { pgType: "jsonb", conversion: "jsonb" };

  if (stored === 0) {
    const byAffinity: Record<Affinity, TypeDecision> = {
      integer: { pgType: "bigint", conversion: "integer" },
      real: { pgType: "double precision", conversion: "real" },
      numeric: decimalDecision(column, s),
      text: textDecision(column, s),
      blob: declared.includes("BLOB")
        ? { pgType: "bytea", conversion: "bytea" }
        : {
            pgType: "text",
            conversion: "text",
            note: "no declared type and no values: text",
          },
    };
    return byAffinity[affinity];
  }
  if (s.texts > 0) {
    if (classes === 1) return textDecision(column, s);
    return {
      pgType: "text",
      conversion: "text",
      note: `${mixedNote}: text, numbers kept as their exact decimal text`,
    };
  }
  // Only numbers from here on.
  if (affinity === "numeric" && !declared.includes("BOOL") && !declaresDate(declared))
    return decimalDecision(column, s);
  const bigMagnitude =
    (s.integerMin !== undefined && abs(s.integerMin) > SAFE) ||
    (s.integerMax !== undefined && abs(s.integerMax) > SAFE);
  if (s.reals > 0) {
    if (s.integers > 0 && bigMagnitude)
      return {
        pgType: "numeric",
        conversion: "numeric",
        note: `${mixedNote}: numeric (integers beyond 2^53 with reals)`,
      };
    const note = affinity === "real" ? undefined : `${mixedNote}: double precision`;
    return note
      ? { pgType: "double precision", conversion: "real", note }
      : { pgType: "double precision", conversion: "real" };
  }
  const fitsInt32 = s.integerMin! >= INT32_MIN && s.integerMax! <= INT32_MAX;
  // A declared 64-bit type is a floor: the application's next large insert must still fit.
  const declared64 = affinity === "integer" && declares64Bit(declared);
  const decision: TypeDecision = {
    pgType: fitsInt32 && !declared64 ? "integer" : "bigint",
    conversion: "integer",
  };
  if (affinity !== "integer" && !declared.includes("BOOL") && !declaresDate(declared))
    decision.note = `${mixedNote}: ${decision.pgType}`;
  else if (decision.pgType === "integer" && /^\s*INT(?:EGER)?\s*$/.test(declared))
    decision.note = `declared ${column.declaredType} (64-bit in SQLite), every stored value fits in 32 bits: integer`;
  return decision;
}

/** BIGINT, INT8 and UNSIGNED BIG INT say 64 bits; INTEGER says nothing (SQLite stores up to 64 bits in any). */
function declares64Bit(declared: string): boolean {
  return /BIGINT|INT8|BIG\s+INT/.test(declared);
}

/** NUMERIC(p,s) / DECIMAL(p,s) keep their typmod when every stored number fits it. */
function decimalDecision(column: SqliteColumn, s: ColumnStats): TypeDecision {
  const declared = declaredPrecision(column.declaredType);
  if (!declared) return { pgType: "numeric", conversion: "numeric" };
  const { precision, scale } = declared;
  const integerDigits = s.decimalIntegerDigits ?? 0;
  const fractionDigits = s.decimalFractionDigits ?? 0;
  if (integerDigits <= precision - scale && fractionDigits <= scale)
    return { pgType: `numeric(${precision},${scale})`, conversion: "numeric" };
  const why =
    fractionDigits > scale
      ? `values with ${Number.isFinite(fractionDigits) ? fractionDigits : "unbounded"} digits after the point`
      : `values with ${Number.isFinite(integerDigits) ? integerDigits : "unbounded"} digits before the point`;
  return {
    pgType: "numeric",
    conversion: "numeric",
    note: `declared ${column.declaredType} but stores ${why}: numeric without precision, so no value is rounded`,
  };
}

function textDecision(column: SqliteColumn, s: ColumnStats): TypeDecision {
  const match =
    /^\s*(?:N?VARCHAR|VARYING\s+CHARACTER|CHARACTER\s+VARYING|NATIVE\s+CHARACTER|N?CHAR|CHARACTER)\s*\(\s*(\d+)\s*\)/i.exec(
      column.declaredType,
    );
  if (match) {
    const limit = Number(match[1]);
    if (limit > 0 && s.textMaxLength <= limit && limit <= 10_485_760)
      return { pgType: `varchar(${limit})`, conversion: "text" };
    return {
      pgType: "text",
      conversion: "text",
      note: `declared ${column.declaredType} but holds values up to ${s.textMaxLength} characters: text`,
    };
  }
  return { pgType: "text", conversion: "text" };
}

function dateDecision(column: SqliteColumn, s: ColumnStats): TypeDecision | undefined {
  const declared = column.declaredType;
  if (s.blobs > 0 || s.reals > 0) return undefined;
  if (s.integers > 0 && s.texts === 0) {
    const min = s.integerMin!;
    const max = s.integerMax!;
    if (min < 0n) return undefined;
    if (max >= MS_THRESHOLD)
      return {
        pgType: "timestamptz",
        conversion: "epoch-ms",
        note: `declared ${declared}, stores integers up to ${max}: read as unix milliseconds`,
      };
    return {
      pgType: "timestamptz",
      conversion: "epoch-s",
      note: `declared ${declared}, stores integers up to ${max}: read as unix seconds`,
    };
  }
  if (s.texts > 0 && s.integers === 0) {
    const dates = s.textDates ?? 0;
    const dateTimes = s.textDateTimes ?? 0;
    const parsable = dates + dateTimes;
    const unparsable = s.texts - parsable;
    if (parsable === 0 || unparsable > parsable) return undefined;
    const badNote =
      unparsable > 0
        ? `; ${unparsable} value(s) do not parse as dates and are bad values (--on-bad-value)`
        : "";
    if (dateTimes === 0 && !/TIME/i.test(declared))
      return badNote
        ? {
            pgType: "date",
            conversion: "date",
            note: `declared ${declared}${badNote}`,
          }
        : { pgType: "date", conversion: "date" };
    if ((s.textZoned ?? 0) > 0)
      return {
        pgType: "timestamptz",
        conversion: "timestamptz",
        note: `declared ${declared}, ${s.textZoned} value(s) carry a zone: timestamptz, values without zone read as UTC${badNote}`,
      };
    return badNote
      ? {
          pgType: "timestamp",
          conversion: "timestamp",
          note: `declared ${declared}${badNote}`,
        }
      : { pgType: "timestamp", conversion: "timestamp" };
  }
  return undefined;
}
