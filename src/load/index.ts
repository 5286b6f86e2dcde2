/** The load pipeline: SQLite import, checkpoints, crash points, quarantine. */

export type { ColumnPlan, ImportPlan, TablePlan as ImportTablePlan } from "../schema/plan.ts";
export * from "./chunk-encoder.ts";
export * from "./crash-points.ts";
export * from "./create-triggers.ts";
export * from "./import-sqlite.ts";
export * from "./import-state.ts";
export * from "./quarantine.ts";
export * from "./row-encoder.ts";
export * from "./data-only/index.ts";
