/** Source schema -> PostgreSQL: type mapping, naming, expression translation, DDL and the import plan. */
export * from "./ddl.ts";
export * from "./defaults.ts";
export * from "./expression.ts";
export * from "./naming.ts";
export * from "./plan.ts";
export * from "./trigger-translation.ts";
export * from "./type-mapping.ts";
export * from "./view-select.ts";
