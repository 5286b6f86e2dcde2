import { PgshiftError } from "../errors.ts";

/** A table given to `audit enable` that cannot be audited (missing, or without a primary key). */
export class AuditTableError extends PgshiftError {
  constructor(table: string, problem: string) {
    super("audit_table", `cannot audit ${table}: ${problem}`, { details: { table } });
  }
}

/** The audit trail is not installed in this database (no `pgshift audit enable` ran yet). */
export class AuditNotInstalledError extends PgshiftError {
  constructor() {
    super(
      "audit_not_installed",
      "no audit trail in this database; run pgshift audit enable --tables ... first",
    );
  }
}

/** An anchor file that cannot be read, or whose signature does not check out. */
export class AuditAnchorError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("audit_anchor", message, { details });
  }
}

/** `audit sign` on something that is not one record version. */
export class AuditSignError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("audit_sign", message, { details });
  }
}
