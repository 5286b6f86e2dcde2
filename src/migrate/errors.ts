import { ExitCode, PgshiftError } from "../errors.ts";
import type { PgErrorFields } from "../pg/errors.ts";

/** A migration file cannot be read or understood (name, sections, SQL syntax). */
export class MigrationFileError extends PgshiftError {
  constructor(file: string, line: number | undefined, message: string, cause?: unknown) {
    super("migration_file_invalid", `${file}${line ? `:${line}` : ""}: ${message}`, {
      cause,
      details: { file, ...(line ? { line } : {}) },
    });
  }
}

export interface DriftEntry {
  version: string;
  name: string;
  /** The file now on disk, or null when it disappeared. */
  file: string | null;
  recordedSha256: string;
  currentSha256: string | null;
}

/** Applied migrations whose file changed or disappeared; `--allow-drift` accepts (and records) it. */
export class MigrationDriftError extends PgshiftError {
  readonly entries: DriftEntry[];

  constructor(entries: DriftEntry[]) {
    const lines = entries.map((e) =>
      e.file === null
        ? `${e.version}_${e.name}: applied, but its file is missing`
        : `${e.file}: changed since it was applied (sha256 ${e.recordedSha256.slice(0, 12)}… recorded, ${e.currentSha256?.slice(0, 12)}… on disk)`,
    );
    super(
      "migration_drift",
      `applied migrations do not match the files:\n  - ${lines.join("\n  - ")}\nrestore the files, or pass --allow-drift to accept this (the decision is recorded in pgshift.migration_log)`,
      { details: { entries } },
    );
    this.entries = entries;
  }
}

/** Pending files older than the newest applied migration (typically merged from another branch). */
export class OutOfOrderError extends PgshiftError {
  constructor(files: string[], newestApplied: string) {
    super(
      "migration_out_of_order",
      `pending migrations are older than the newest applied one (${newestApplied}):\n  - ${files.join("\n  - ")}\nrename them to a newer timestamp (pgshift migrate new), or pass --allow-out-of-order to apply them now`,
      { details: { files, newestApplied } },
    );
  }
}

/** A requested version or step count does not fit the migrations there are. */
export class MigrationTargetError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("migration_target_invalid", message, {
      exitCode: ExitCode.usage,
      details,
    });
  }
}

/** `down` cannot revert a migration (no down section, file missing). */
export class IrreversibleMigrationError extends PgshiftError {
  constructor(version: string, file: string | null, reason: string) {
    super("migration_irreversible", `cannot revert ${file ?? version}: ${reason}`, {
      details: { version, file },
    });
  }
}

/** The migration lock is no longer ours (row taken over after missed heartbeats, or a pooler moved the session). */
export class LockLostError extends PgshiftError {
  constructor(what: string) {
    super(
      "migration_lock_lost",
      `${what} is no longer held by this runner; stopped before the next migration`,
      {
        details: { lock: what },
      },
    );
  }
}

/** A statement of a migration failed; carries the file, line and PostgreSQL's own fields. */
export class MigrationStatementError extends PgshiftError {
  readonly fields: PgErrorFields;

  constructor(
    readonly version: string,
    readonly file: string,
    readonly line: number,
    statement: string,
    fields: PgErrorFields,
    message: string,
    cause: unknown,
  ) {
    super("migration_failed", `${file}:${line}: ${message}`, {
      cause,
      details: {
        version,
        file,
        line,
        statement: excerpt(statement),
        ...fields,
      },
    });
    this.fields = fields;
  }

  get sqlstate(): string | undefined {
    return this.fields.sqlstate;
  }
}

/** The database is older than the application needs (`assertSchemaVersion`). */
export class SchemaVersionError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown>) {
    super("schema_version_too_old", message, { details });
  }
}

function excerpt(sql: string, max = 200): string {
  const flat = sql.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
