import type { ColumnPlan } from "../../schema/plan.ts";
import type { Conversion } from "../../schema/type-mapping.ts";
import type { TargetColumn } from "./target-catalog.ts";

const INTEGER_TYPES = new Set(["int2", "int4", "int8"]);
const NUMBER_TYPES = new Set(["numeric", "float4", "float8"]);
const NUMERIC_CONVERSIONS: readonly Conversion[] = ["integer", "real", "numeric"];

/**
 * How a source column's values become values of the column the ORM created (its actual type, not
 * the type pgshift would have chosen): ms-epoch integers -> timestamp(3), 0/1 -> boolean, JSON text
 * -> jsonb, blobs -> bytea. Values that do not fit fail the compatibility check, never the load.
 */
export function conversionForTarget(target: TargetColumn, source: ColumnPlan): Conversion {
  const t = target.typname;
  if (t === "bool") return "boolean";
  if (t === "timestamp" || t === "timestamptz") {
    if (source.conversion === "epoch-s" || source.conversion === "epoch-ms") return source.conversion;
    // Prisma writes DateTime to SQLite as milliseconds since the epoch.
    if (source.conversion === "integer" || source.conversion === "real" || source.conversion === "numeric")
      return "epoch-ms";
    return t;
  }
  if (t === "date") return "date";
  if (t === "jsonb" || t === "json") return "jsonb";
  if (t === "bytea") return "bytea";
  if (INTEGER_TYPES.has(t) || NUMBER_TYPES.has(t))
    return NUMERIC_CONVERSIONS.includes(source.conversion) ? source.conversion : "text";
  // text, varchar, enums, uuid...: numbers become their decimal text, as PostgreSQL would read them.
  return "text";
}

/** Fractional digits a timestamp(p) keeps; 6 when unrestricted. */
export function timestampPrecision(type: string): number {
  const match = /^timestamp\((\d)\)/.exec(type);
  return match ? Number(match[1]) : 6;
}
