/** Data-only loads into the tables an application's ORM created, and their undo. */
export * from "./compatibility.ts";
export * from "./import-data-only.ts";
export * from "./table-mapping.ts";
export * from "./target-catalog.ts";
export * from "./undo-run.ts";
