import { ExitCode, PgshiftError } from "../errors.ts";
import { INTERNAL_SCHEMA } from "../pg/internal-schema.ts";

/**
 * Why a schema may not receive imported tables, or undefined when it may. pgshift's own schema holds
 * the only copy of quarantined rows, the import checkpoints and the migration history; the system
 * schemas belong to PostgreSQL. An import there could replace or drop any of them.
 */
export function reservedSchemaReason(schema: string): string | undefined {
  if (schema === INTERNAL_SCHEMA)
    return `"${INTERNAL_SCHEMA}" is pgshift's own schema (quarantined rows, import checkpoints, migration history)`;
  if (schema === "information_schema" || schema.startsWith("pg_"))
    return `"${schema}" is a PostgreSQL system schema`;
  return undefined;
}

/** An import (or a replace or drop) aimed at pgshift's own schema or a system schema. Exit code 2. */
export class ReservedSchemaError extends PgshiftError {
  constructor(
    readonly schema: string,
    reason: string,
  ) {
    super(
      "reserved_schema",
      `refusing to import into schema ${JSON.stringify(schema)}: ${reason}; nothing was written. Choose another --schema`,
      { exitCode: ExitCode.usage, details: { schema } },
    );
  }
}

/** Throws ReservedSchemaError when `schema` must not receive imported tables. */
export function assertImportSchema(schema: string): void {
  const reason = reservedSchemaReason(schema);
  if (reason !== undefined) throw new ReservedSchemaError(schema, reason);
}
