import { PgshiftError } from "../errors.ts";
import type { SqliteTable, SqliteView } from "../sources/sqlite/sqlite-catalog.ts";

/**
 * A SQLite table, column, index or view is named "" (SQLite allows it, PostgreSQL does not). The
 * message names the object by its place, since it has no name to show.
 */
export class EmptyIdentifierError extends PgshiftError {
  constructor(path: string, objects: string[]) {
    super(
      "empty_identifier",
      `${path}: ${objects.join("; ")} ${objects.length > 1 ? "have" : "has"} an empty name (""), which PostgreSQL cannot hold; rename ${objects.length > 1 ? "them" : "it"} in a copy of the database (ALTER TABLE ... RENAME ...), or leave the table out with --tables`,
      { details: { objects } },
    );
  }
}

/** Throws EmptyIdentifierError when any table, column, index or view to import is named "". */
export function assertNamedObjects(
  tables: readonly Pick<SqliteTable, "name" | "columns" | "indexes">[],
  views: readonly Pick<SqliteView, "name">[],
  path: string,
): void {
  const objects: string[] = [];
  tables.forEach((table, position) => {
    const label = table.name === "" ? `table #${position + 1}` : `table ${JSON.stringify(table.name)}`;
    if (table.name === "")
      objects.push(`${label} (columns ${table.columns.map((c) => JSON.stringify(c.name)).join(", ")})`);
    table.columns.forEach((column, i) => {
      if (column.name === "") objects.push(`column #${i + 1} of ${label}`);
    });
    for (const index of table.indexes)
      if (index.name === "" && index.origin === "c") objects.push(`an index on ${label}`);
  });
  views.forEach((view, position) => {
    if (view.name === "") objects.push(`view #${position + 1}`);
  });
  if (objects.length > 0) throw new EmptyIdentifierError(path, objects);
}
