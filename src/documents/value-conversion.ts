import type { CopyValue } from "../pg/copy-writer.ts";
import { findJsonbProblem } from "./jsonb-check.ts";

/** PostgreSQL types a document column (key, --column, inferred typed column) can have. */
export const COLUMN_TYPES = [
  "text",
  "bigint",
  "integer",
  "numeric",
  "double precision",
  "boolean",
  "date",
  "timestamp",
  "timestamptz",
  "uuid",
  "jsonb",
] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

const TYPE_ALIASES: Record<string, ColumnType> = {
  int: "integer",
  int4: "integer",
  int8: "bigint",
  float: "double precision",
  float8: "double precision",
  double: "double precision",
  bool: "boolean",
  "timestamp with time zone": "timestamptz",
  "timestamp without time zone": "timestamp",
  json: "jsonb",
  decimal: "numeric",
};

/** "date" -> "date", "int8" -> "bigint"; undefined when not a supported type. */
export function parseColumnType(name: string): ColumnType | undefined {
  const lower = name.trim().toLowerCase();
  if ((COLUMN_TYPES as readonly string[]).includes(lower)) return lower as ColumnType;
  return TYPE_ALIASES[lower];
}

export type Converted = { ok: true; value: CopyValue } | { ok: false; reason: string };

const INTEGER = /^[+-]?\d+$/;
const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const DATE = /^(\d{4})-?(\d{2})-?(\d{2})$/;
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const TRUE = new Set(["true", "t", "yes", "y", "1"]);
const FALSE = new Set(["false", "f", "no", "n", "0"]);
const INT_RANGE = {
  integer: [-(2n ** 31n), 2n ** 31n - 1n],
  bigint: [-(2n ** 63n), 2n ** 63n - 1n],
} as const;

function validDate(year: number, month: number, day: number): boolean {
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const days = new Date(Date.UTC(2000, month, 0)).getUTCDate();
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return day <= (month === 2 ? (leap ? 29 : 28) : days);
}

/** "2024-02-29" and "20240229" -> "2024-02-29"; undefined if not a real calendar date. */
export function normalizeDate(text: string): string | undefined {
  const m = DATE.exec(text);
  if (!m) return undefined;
  const dashes = text.length === 10;
  if (!dashes && text.length !== 8) return undefined;
  if (!validDate(Number(m[1]), Number(m[2]), Number(m[3]))) return undefined;
  return `${m[1]}-${m[2]}-${m[3]}`;
}

/** Whether an ISO-8601 timestamp is real; tells whether it carries a zone. */
export function classifyTimestamp(text: string): "timestamp" | "timestamptz" | undefined {
  const m = TIMESTAMP.exec(text);
  if (!m) return undefined;
  if (!validDate(Number(m[1]), Number(m[2]), Number(m[3]))) return undefined;
  if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59) return undefined;
  return m[8] ? "timestamptz" : "timestamp";
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 40)}...` : text}`;
}

/**
 * Converts one JSON (or CSV text) value for a column of `type`, or says why it cannot: the caller
 * quarantines the record or fails, never stores an altered value. null/undefined -> NULL.
 */
export function convertValue(value: unknown, type: ColumnType): Converted {
  if (value === null || value === undefined) return { ok: true, value: null };
  const bad = (what: string): Converted => ({
    ok: false,
    reason: `${describe(value)} is not ${what}`,
  });
  switch (type) {
    case "text":
      if (typeof value === "string") {
        if (value.includes("\u0000"))
          return {
            ok: false,
            reason: "NUL character, which PostgreSQL text cannot store",
          };
        return { ok: true, value };
      }
      if (typeof value === "number" || typeof value === "boolean") return { ok: true, value: String(value) };
      return bad("text");
    case "integer":
    case "bigint": {
      let digits: string | undefined;
      if (typeof value === "number" && Number.isInteger(value)) digits = BigInt(value).toString();
      else if (typeof value === "string" && INTEGER.test(value.trim())) digits = value.trim();
      if (digits === undefined) return bad(`an integer (${type})`);
      const n = BigInt(digits);
      const [min, max] = INT_RANGE[type];
      if (n < min || n > max) return { ok: false, reason: `${digits} is out of range for ${type}` };
      return { ok: true, value: n.toString() };
    }
    case "numeric":
    case "double precision":
      if (typeof value === "number" && Number.isFinite(value)) return { ok: true, value: String(value) };
      if (typeof value === "string" && NUMERIC.test(value.trim())) return { ok: true, value: value.trim() };
      return bad("a number");
    case "boolean":
      if (typeof value === "boolean") return { ok: true, value };
      if (typeof value === "string" && TRUE.has(value.trim().toLowerCase())) return { ok: true, value: true };
      if (typeof value === "string" && FALSE.has(value.trim().toLowerCase()))
        return { ok: true, value: false };
      return bad("a boolean");
    case "date": {
      const date = typeof value === "string" ? normalizeDate(value.trim()) : undefined;
      return date ? { ok: true, value: date } : bad("a date (YYYY-MM-DD or YYYYMMDD)");
    }
    case "timestamp":
    case "timestamptz": {
      if (typeof value !== "string") return bad("a timestamp");
      const text = value.trim();
      const date = normalizeDate(text);
      if (date) return { ok: true, value: date };
      const kind = classifyTimestamp(text);
      if (!kind) return bad("an ISO-8601 timestamp");
      if (type === "timestamp" && kind === "timestamptz")
        return {
          ok: false,
          reason: `"${text}" has a time zone; the column is timestamp without time zone`,
        };
      return { ok: true, value: text };
    }
    case "uuid":
      return typeof value === "string" && UUID.test(value.trim())
        ? { ok: true, value: value.trim() }
        : bad("a uuid");
    case "jsonb": {
      const problem = findJsonbProblem(value);
      if (problem)
        return {
          ok: false,
          reason: `${problem.reason} (at ${problem.pointer || "/"})`,
        };
      return { ok: true, value: JSON.stringify(value) };
    }
  }
}
