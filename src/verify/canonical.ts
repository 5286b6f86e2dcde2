import {
  float4FromText,
  float4Text,
  float8Text,
  integerText,
  numericText,
  numericTextOfDouble,
} from "./canonical-number.ts";
import { jsonbText } from "./canonical-json.ts";
import { dateText, instantFromEpoch, parseIsoDateTime, timestampText, toUtc } from "./canonical-time.ts";

/**
 * Canonical value forms: every value, on either side, becomes one text so that equal values hash
 * equal and different values never do. The forms are PostgreSQL's own output under fixed session
 * settings (see canonicalSessionSettings), reproduced here in TypeScript for the source side.
 * docs/verification.md lists them.
 */
export type CanonicalKind =
  | "integer"
  | "double"
  | "real"
  | "numeric"
  | "boolean"
  | "text"
  | "bytea"
  | "date"
  | "timestamp"
  | "timestamptz"
  | "jsonb"
  | "json"
  | "uuid"
  /** Any other type: PostgreSQL's text output, compared with the source value's text. */
  | "other";

/** The kind of a PostgreSQL type by its name in pg_type (`typname`). */
export function kindOfPgType(typname: string): CanonicalKind {
  switch (typname) {
    case "int2":
    case "int4":
    case "int8":
    case "smallint":
    case "integer":
    case "bigint":
      return "integer";
    case "float8":
    case "double precision":
      return "double";
    case "float4":
    case "real":
      return "real";
    case "numeric":
      return "numeric";
    case "bool":
    case "boolean":
      return "boolean";
    case "text":
    case "varchar":
    case "character varying":
    case "name":
    case "citext":
      return "text";
    case "bytea":
      return "bytea";
    case "date":
      return "date";
    case "timestamp":
    case "timestamp without time zone":
      return "timestamp";
    case "timestamptz":
    case "timestamp with time zone":
      return "timestamptz";
    case "jsonb":
      return "jsonb";
    case "json":
      return "json";
    case "uuid":
      return "uuid";
    default:
      return "other";
  }
}

/** How a source value is read before it takes its canonical form (e.g. a SQLite ms-epoch date). */
export type SourceReading = "value" | "epoch-s" | "epoch-ms";

/** A value as a source reader yields it (SQLite: null, bigint/number, string, Buffer). */
export type SourceValue = null | undefined | string | number | bigint | boolean | Uint8Array | object;

/**
 * Marks a source value that has no canonical form in the target kind. It starts with a NUL character,
 * which no PostgreSQL text can contain, so it never equals a target value: the row shows as changed.
 */
export function unconvertible(kind: CanonicalKind, value: SourceValue): string {
  const shown =
    value instanceof Uint8Array
      ? `x'${Buffer.from(value).toString("hex").slice(0, 64)}'`
      : typeof value === "object"
        ? JSON.stringify(value)
        : String(value);
  return `\u0000cannot be ${kind}: ${shown}`;
}

export function isUnconvertible(canonical: string | null): boolean {
  return canonical !== null && canonical.charCodeAt(0) === 0;
}

/** Converts one source value to canonical text (null stays null). Built once per column, called per row. */
export type CanonicalConverter = (value: SourceValue) => string | null;

function numberOf(value: SourceValue): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "string") {
    const t = value.trim();
    if (/^[+-]?(nan|infinity|inf)$/i.test(t)) return Number(t.replace(/inf(inity)?/i, "Infinity"));
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
    return Number(t);
  }
  return undefined;
}

function textOf(value: SourceValue): string {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "boolean") return value ? "true" : "false";
  if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
  return JSON.stringify(value);
}

function instantOf(value: SourceValue, reading: SourceReading, utc: boolean) {
  if (reading === "epoch-s" || reading === "epoch-ms") {
    const unit = reading === "epoch-s" ? "s" : "ms";
    if (typeof value === "bigint" || typeof value === "number") return instantFromEpoch(value, unit);
    if (typeof value === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(value))
      return instantFromEpoch(value.includes(".") ? Number(value) : BigInt(value.trim()), unit);
  }
  if (typeof value !== "string") return undefined;
  const parsed = parseIsoDateTime(value);
  if (!parsed) return undefined;
  return utc ? toUtc(parsed) : parsed.local;
}

/** Distinct date texts remembered per date column (about 27 years of days). */
const DATE_MEMO_ENTRIES = 10_000;

/** The converter for a source column whose values land in a target column of `kind`. */
export function canonicalConverter(
  kind: CanonicalKind,
  reading: SourceReading = "value",
): CanonicalConverter {
  const fail = (value: SourceValue) => unconvertible(kind, value);
  switch (kind) {
    case "integer":
      return (v) => {
        if (v === null || v === undefined) return null;
        if (typeof v === "bigint") return v.toString();
        if (typeof v === "number") return Number.isInteger(v) ? BigInt(v).toString() : fail(v);
        if (typeof v === "boolean") return v ? "1" : "0";
        if (typeof v === "string") return integerText(v) ?? fail(v);
        return fail(v);
      };
    case "double":
      return (v) => {
        if (v === null || v === undefined) return null;
        const n = numberOf(v);
        return n === undefined ? fail(v) : float8Text(n);
      };
    case "real":
      // Sent as decimal text, which PostgreSQL rounds to float4 once.
      return (v) => {
        if (v === null || v === undefined) return null;
        const n = numberOf(v);
        const f = n === undefined ? undefined : float4FromText(typeof v === "string" ? v : float8Text(n));
        return f === undefined ? fail(v) : float4Text(f);
      };
    case "numeric":
      return (v) => {
        if (v === null || v === undefined) return null;
        if (typeof v === "bigint") return v.toString();
        if (typeof v === "number") return numericTextOfDouble(v) ?? fail(v);
        if (typeof v === "string") return numericText(v) ?? fail(v);
        return fail(v);
      };
    case "boolean":
      return (v) => {
        if (v === null || v === undefined) return null;
        if (typeof v === "boolean") return v ? "true" : "false";
        if (v === 0 || v === 0n) return "false";
        if (v === 1 || v === 1n) return "true";
        if (typeof v === "string") {
          const t = v.trim().toLowerCase();
          if (["t", "true", "1", "yes", "y", "on"].includes(t)) return "true";
          if (["f", "false", "0", "no", "n", "off"].includes(t)) return "false";
        }
        return fail(v);
      };
    case "text":
    case "json":
    case "other":
      return (v) => (v === null || v === undefined ? null : textOf(v));
    case "uuid":
      return (v) => {
        if (v === null || v === undefined) return null;
        if (v instanceof Uint8Array && v.byteLength === 16) {
          const h = Buffer.from(v).toString("hex");
          return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
        }
        if (typeof v !== "string") return fail(v);
        const hex = v
          .trim()
          .replace(/^\{|\}$/g, "")
          .replace(/-/g, "")
          .toLowerCase();
        if (!/^[0-9a-f]{32}$/.test(hex)) return fail(v);
        return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
      };
    case "bytea":
      return (v) => {
        if (v === null || v === undefined) return null;
        if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex");
        if (typeof v === "string") return Buffer.from(v, "utf8").toString("hex");
        // A number in a bytea column was loaded as the bytes of its decimal text (String(v), as
        // load/row-encoder.ts writes it): the same bytes here, so a blob/number column verifies.
        if (typeof v === "bigint" || typeof v === "number")
          return Buffer.from(String(v), "utf8").toString("hex");
        return fail(v);
      };
    case "date": {
      const convert = (v: SourceValue) => {
        const instant = instantOf(v, reading, true);
        return instant ? dateText(Math.floor(instant.seconds / 86400)) : fail(v);
      };
      // A date column holds few distinct texts (days of a few years): each is parsed once.
      const seen = new Map<string, string>();
      return (v) => {
        if (v === null || v === undefined) return null;
        if (typeof v !== "string") return convert(v);
        let text = seen.get(v);
        if (text === undefined) {
          text = convert(v);
          if (seen.size < DATE_MEMO_ENTRIES) seen.set(v, text);
        }
        return text;
      };
    }
    case "timestamp":
    case "timestamptz": {
      const withZone = kind === "timestamptz";
      return (v) => {
        if (v === null || v === undefined) return null;
        const instant = instantOf(v, reading, withZone);
        return instant ? timestampText(instant, withZone) : fail(v);
      };
    }
    case "jsonb":
      return (v) => {
        if (v === null || v === undefined) return null;
        try {
          if (typeof v === "string") return jsonbText(v);
          if (v instanceof Uint8Array) return jsonbText(Buffer.from(v).toString("utf8"));
          return jsonbText(JSON.stringify(typeof v === "bigint" ? v.toString() : v));
        } catch {
          return fail(v);
        }
      };
  }
}

const QUOTE_ESCAPES = /["\\]/g;

/** Whether record output quotes a field: empty, or holding `" \ ( ) ,` or white space (scanner_isspace). */
function needsQuotes(field: string): boolean {
  if (field.length === 0) return true;
  for (let i = 0; i < field.length; i++) {
    const c = field.charCodeAt(i);
    if (c > 44) {
      if (c === 92) return true;
      continue;
    }
    if (
      c === 34 ||
      c === 40 ||
      c === 41 ||
      c === 44 ||
      c === 32 ||
      c === 9 ||
      c === 10 ||
      c === 13 ||
      c === 12
    )
      return true;
  }
  return false;
}

/**
 * One row's canonical text: PostgreSQL's record output of the canonical field texts
 * (`row(f1, f2, ...)::text`): null is empty, "" and fields with `" \ ( ) ,` or white space are quoted,
 * `"` and `\` doubled inside quotes. Unambiguous, so NULL and "" never collide.
 */
export function recordText(fields: readonly (string | null)[]): string {
  // join writes null and undefined as empty: the record form of NULL. One flat string instead of
  // two concatenations per field (each a string object to collect); only quoted fields are copied.
  let quoted: (string | null)[] | undefined;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    if (f === null || f === undefined || !needsQuotes(f)) continue;
    quoted ??= fields.slice();
    quoted[i] = `"${f.replace(QUOTE_ESCAPES, (c) => c + c)}"`;
  }
  return `(${(quoted ?? fields).join(",")})`;
}
