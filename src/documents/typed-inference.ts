import { NameAllocator } from "../schema/naming.ts";
import { type ColumnType, classifyTimestamp, normalizeDate } from "./value-conversion.ts";

/**
 * Typed tables: columns and types inferred by scanning every value of every record (not guessed from the
 * first row). Nested objects become one column per leaf with --flatten ("address_city"), else one jsonb
 * column; arrays are always jsonb.
 */

/** What one value looks like. CSV text is classified fully; JSON strings only as date/timestamp/text. */
type ValueKind =
  "null" | "boolean" | "integer" | "numeric" | "date" | "timestamp" | "timestamptz" | "text" | "json";

export interface InferenceOptions {
  flatten: boolean;
  /** Values are CSV text: "" is NULL, "12" is an integer, "true" a boolean. */
  csv: boolean;
}

export interface TypedColumn {
  /** PostgreSQL column name (unique, at most 63 bytes). */
  name: string;
  /** Path of the value in the record: ["address", "city"]. */
  path: string[];
  type: ColumnType;
  /** Some record lacked the value or had null. */
  nullable: boolean;
}

const INTEGER = /^-?(0|[1-9]\d*)$/;
const NUMERIC = /^-?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$/;
const INT8_MAX = 2n ** 63n - 1n;
const INT8_MIN = -(2n ** 63n);

function classifyString(text: string, csv: boolean): ValueKind {
  if (csv) {
    // a CSV NULL is null already (--empty-as); "" is an empty string, so text
    const lower = text.toLowerCase();
    if (lower === "true" || lower === "false") return "boolean";
    if (INTEGER.test(text)) {
      const n = BigInt(text);
      return n >= INT8_MIN && n <= INT8_MAX ? "integer" : "numeric";
    }
    if (NUMERIC.test(text) && !/^-?0\d/.test(text)) return "numeric";
  }
  if (text.length === 10 && normalizeDate(text)) return "date";
  const ts = text.length >= 16 ? classifyTimestamp(text) : undefined;
  return ts ?? "text";
}

export function classifyValue(value: unknown, csv: boolean): ValueKind {
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "boolean":
      return "boolean";
    case "number":
      return Number.isSafeInteger(value) ? "integer" : "numeric";
    case "string":
      return classifyString(value, csv);
    default:
      return "json";
  }
}

function merge(a: ValueKind, b: ValueKind, csv: boolean): ValueKind {
  if (a === b || b === "null") return a;
  if (a === "null") return b;
  const pair = new Set<ValueKind>([a, b]);
  const is = (x: ValueKind, y: ValueKind) => pair.has(x) && pair.has(y);
  if (is("integer", "numeric")) return "numeric";
  if (is("date", "timestamp")) return "timestamp";
  if (is("date", "timestamptz")) return "timestamptz";
  if (pair.has("json")) return "json";
  // mixed scalars: CSV text stays text; JSON keeps each value's own type in jsonb
  if (csv) return "text";
  if ((pair.has("date") || pair.has("timestamp") || pair.has("timestamptz")) && pair.has("text"))
    return "text";
  return "json";
}

const KIND_TYPES: Record<ValueKind, ColumnType> = {
  null: "text",
  boolean: "boolean",
  integer: "bigint",
  numeric: "numeric",
  date: "date",
  timestamp: "timestamp",
  timestamptz: "timestamptz",
  text: "text",
  json: "jsonb",
};

/** Calls `visit(path, value)` for each column value of a record (leaves when flattening). */
export function forEachField(
  record: Record<string, unknown>,
  flatten: boolean,
  visit: (path: string[], value: unknown) => void,
): void {
  const walk = (node: Record<string, unknown>, prefix: string[]) => {
    for (const key of Object.keys(node)) {
      const value = node[key];
      const path = [...prefix, key];
      if (flatten && value !== null && typeof value === "object" && !Array.isArray(value)) {
        walk(value as Record<string, unknown>, path);
      } else {
        visit(path, value);
      }
    }
  };
  walk(record, []);
}

/** Accumulates kinds per path over all records (pass 1), then names the columns. */
export class TypeInference {
  private readonly kinds = new Map<string, { path: string[]; kind: ValueKind; seen: number }>();
  private records = 0;

  constructor(private readonly options: InferenceOptions) {}

  add(record: Record<string, unknown>): void {
    this.records++;
    forEachField(record, this.options.flatten, (path, value) => {
      const key = pathKey(path);
      const kind = classifyValue(value, this.options.csv);
      const entry = this.kinds.get(key);
      if (!entry) this.kinds.set(key, { path, kind, seen: kind === "null" ? 0 : 1 });
      else {
        entry.kind = merge(entry.kind, kind, this.options.csv);
        if (kind !== "null") entry.seen++;
      }
    });
  }

  /** Columns in first-seen order; `reserved` names (provenance columns) are never handed out. */
  columns(reserved: readonly string[] = []): TypedColumn[] {
    const names = new NameAllocator();
    for (const name of reserved) names.reserve(name);
    return [...this.kinds.values()].map((entry) => ({
      name: names.allocate(entry.path.join("_")),
      path: entry.path,
      type: KIND_TYPES[entry.kind],
      nullable: entry.seen < this.records,
    }));
  }
}

export function pathKey(path: readonly string[]): string {
  return JSON.stringify(path);
}
