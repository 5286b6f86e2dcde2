/** Versioned schema migrations: history with checksums, migration lock, lint, start-up version check. */
export * from "./baseline.ts";
export * from "./errors.ts";
export { type AppliedMigration, migratePart, readHistory } from "./history.ts";
export * from "./lint.ts";
export * from "./migrate.ts";
export * from "./migration-file.ts";
export * from "./migration-lock.ts";
export * from "./plan.ts";
export * from "./schema-version.ts";
export type { SqlStatement } from "./sql-statements.ts";
export * from "./status.ts";
