import type { ImportPlan, TablePlan } from "../schema/plan.ts";
import type { Conversion } from "../schema/type-mapping.ts";
import { type CanonicalKind, kindOfPgType, type SourceReading } from "./canonical.ts";
import type { VerifyColumn, VerifyTable } from "./types.ts";

/** The type name without modifiers: "varchar(80)" -> "varchar", "numeric(10, 2)" -> "numeric". */
export function baseTypeName(pgType: string): string {
  return pgType
    .replace(/\(.*?\)/g, "")
    .replace(/\s+/g, " ")
    .trim()
    .toLowerCase();
}

/** The kind of the PostgreSQL type the plan chose, as text ("double precision", "varchar(80)"). */
export function kindOfPlannedType(pgType: string): CanonicalKind {
  return kindOfPgType(baseTypeName(pgType));
}

export function readingOf(conversion: Conversion): SourceReading {
  return conversion === "epoch-s" || conversion === "epoch-ms" ? conversion : "value";
}

/** What verification compares for one planned table: only names, types and how values are read. */
export function verifyTableFromPlan(table: TablePlan): VerifyTable {
  const columns: VerifyColumn[] = table.columns.map((c) => ({
    name: c.targetName,
    sourceName: c.sourceName,
    // an encrypted column is compared by its decrypted values, which have the column's own type
    kind: kindOfPlannedType(c.encrypted?.originalType ?? c.pgType),
    reading: readingOf(c.conversion),
    pgType: c.encrypted?.originalType ?? c.pgType,
    ...(c.encrypted ? { encrypted: true } : {}),
  }));
  return {
    sourceTable: table.sourceName,
    schema: table.targetSchema,
    table: table.targetName,
    columns,
    key: [...table.primaryKey],
  };
}

export function verifyTablesFromPlan(plan: ImportPlan): VerifyTable[] {
  return plan.tables.map(verifyTableFromPlan);
}
