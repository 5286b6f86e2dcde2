import { UsageError } from "../errors.ts";

export interface QualifiedTable {
  schema: string;
  name: string;
}

/** `"app.orders"` -> { app, orders }; `"orders"` -> { defaultSchema, orders }. Quoted names are not parsed: use plain names. */
export function parseTableName(text: string, defaultSchema = "public"): QualifiedTable {
  const parts = text.split(".");
  if (parts.length > 2 || parts.some((p) => p.length === 0))
    throw new UsageError(`"${text}" is not a table name; write table or schema.table`);
  return parts.length === 2
    ? { schema: parts[0]!, name: parts[1]! }
    : { schema: defaultSchema, name: parts[0]! };
}

export function displayTable(table: QualifiedTable): string {
  return `${table.schema}.${table.name}`;
}
