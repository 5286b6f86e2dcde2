import type { ColumnPlan, TablePlan } from "../../schema/plan.ts";
import type { TargetTable } from "./target-catalog.ts";
import { conversionForTarget } from "./target-conversion.ts";
import type { TableMapping } from "./table-mapping.ts";

/**
 * The plan of one source table loaded into the ORM's table: only mapped columns, each with the
 * target's actual type and the conversion to it; nothing to create (no DDL, keys, indexes, constraints).
 * Verification reads the same plan, so it compares in the target's canonical forms.
 */
export function dataOnlyTablePlan(source: TablePlan, mapping: TableMapping, target: TargetTable): TablePlan {
  const columns: ColumnPlan[] = mapping.columns.map((m) => {
    const planned = source.columns.find((c) => c.sourceName === m.source)!;
    const into = target.columns.find((c) => c.name === m.target)!;
    return {
      ...planned,
      targetName: into.name,
      pgType: into.type,
      conversion: conversionForTarget(into, planned),
      nullable: !into.notNull,
      identity: into.identity,
    };
  });
  const targetOf = (sourceTarget: string) => {
    const planned = source.columns.find((c) => c.targetName === sourceTarget);
    return columns.find((c) => c.sourceName === planned?.sourceName)?.targetName;
  };
  // The target's own primary key when every column of it is loaded, else the source's (mapped).
  const sourceKey = source.primaryKey.map(targetOf);
  const primaryKey =
    target.primaryKey.length && target.primaryKey.every((k) => columns.some((c) => c.targetName === k))
      ? [...target.primaryKey]
      : sourceKey.every((k): k is string => k !== undefined)
        ? sourceKey
        : [];
  const plan: TablePlan = {
    ...source,
    targetName: target.name,
    columns,
    primaryKey,
    createSql: "",
    keys: [],
    indexes: [],
    checks: [],
    foreignKeys: [],
  };
  delete plan.identitySql;
  return plan;
}
