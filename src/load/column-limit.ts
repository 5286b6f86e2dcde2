import { ExitCode, PgshiftError } from "../errors.ts";

/** PostgreSQL's MaxHeapAttributeNumber: no table has more columns. */
export const PG_MAX_COLUMNS = 1600;

/**
 * Refuses, before anything is created or read, a source table with more columns than PostgreSQL
 * allows (SQLite allows 2000): CREATE TABLE would fail half-way through the import otherwise.
 */
export function assertColumnsFit(
  tables: readonly { name: string; columns: readonly unknown[] }[],
  path: string,
): void {
  const wide = tables.filter((t) => t.columns.length > PG_MAX_COLUMNS);
  if (wide.length === 0) return;
  const listed = wide.map((t) => `table "${t.name}" has ${t.columns.length} columns`);
  throw new PgshiftError(
    "too_many_columns",
    `${listed.join(", ")} in ${path}; PostgreSQL allows at most ${PG_MAX_COLUMNS} columns per table. Split ${wide.length > 1 ? "them" : "it"} into tables of at most ${PG_MAX_COLUMNS} columns in a copy of the database, or leave ${wide.length > 1 ? "them" : "it"} out with --exclude ${wide.map((t) => t.name).join(",")}`,
    {
      exitCode: ExitCode.usage,
      details: {
        tables: wide.map((t) => ({ table: t.name, columns: t.columns.length })),
        max: PG_MAX_COLUMNS,
      },
    },
  );
}
