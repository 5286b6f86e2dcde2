import { redactText } from "../config/redact.ts";
import { ExitCode, PgshiftError } from "../errors.ts";

/** SQLSTATEs and socket errors pgshift retries on; nothing else is ever retried. */
export const RETRYABLE_SQLSTATES = new Set(["55P03"]);
export const CONNECTION_LOST_SQLSTATES = new Set(["08000", "08003", "08006", "57P01", "57P02", "57P03"]);
const CONNECTION_LOST_ERRNOS = new Set(["ECONNRESET", "EPIPE", "ECONNREFUSED", "ETIMEDOUT"]);

/** PostgreSQL's own fields, kept as they come from the server. */
export interface PgErrorFields {
  sqlstate?: string;
  detail?: string;
  hint?: string;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
  where?: string;
  position?: string;
}

/** An error reported by the PostgreSQL server, with its fields intact. */
export class PgError extends PgshiftError {
  readonly fields: PgErrorFields;

  constructor(message: string, fields: PgErrorFields, cause: unknown) {
    super(`pg_${fields.sqlstate ?? "unknown"}`, message, { cause, details: { ...fields } });
    this.fields = fields;
  }

  get sqlstate(): string | undefined {
    return this.fields.sqlstate;
  }
}

/** Could not reach or authenticate to the server. Never carries the password. */
export class ConnectionError extends PgshiftError {
  constructor(
    message: string,
    cause: unknown,
    details: Record<string, unknown> = {},
    code: "connection_failed" | "connection_lost" | "circuit_open" = "connection_failed",
  ) {
    super(code, message, { cause, details, exitCode: ExitCode.failure });
  }
}

/**
 * The connection broke while pgshift was using it (terminated backend, server restart or crash, network
 * reset). Says where (host, port, database) and why, as `pgshift check` does for a failed connect.
 */
export class ConnectionLostError extends ConnectionError {
  constructor(message: string, cause: unknown, details: Record<string, unknown> = {}) {
    super(message, cause, details, "connection_lost");
  }
}

interface RawPgError {
  code?: string;
  errno?: number;
  detail?: string;
  hint?: string;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
  where?: string;
  position?: string;
  message?: string;
}

function raw(error: unknown): RawPgError {
  return typeof error === "object" && error !== null ? (error as RawPgError) : {};
}

export function sqlstateOf(error: unknown): string | undefined {
  if (error instanceof PgError) return error.sqlstate;
  const e = raw(error);
  // a socket error's errno name can look like one ("EPIPE"): SQLSTATE classes start 0-9, F, H, P or X
  if (e.errno !== undefined || (e as { syscall?: unknown }).syscall !== undefined) return undefined;
  const code = e.code;
  return typeof code === "string" && /^[0-9FHPX][0-9A-Z]{4}$/.test(code) ? code : undefined;
}

export function isLockNotAvailable(error: unknown): boolean {
  const state = sqlstateOf(error);
  return state !== undefined && RETRYABLE_SQLSTATES.has(state);
}

export function isConnectionLost(error: unknown): boolean {
  if (error instanceof ConnectionLostError) return true;
  // createPool's open circuit breaker: the server is unreachable for now, which retry loops wait out
  if (error instanceof ConnectionError && error.code === "circuit_open") return true;
  // a failed connect counts when its cause does (refused while the server restarts; not a bad password)
  if (error instanceof ConnectionError) return isConnectionLost(error.cause);
  if (error instanceof PgshiftError && !(error instanceof PgError))
    return error.cause !== undefined && isConnectionLost(error.cause);
  const state = sqlstateOf(error);
  if (state !== undefined) return CONNECTION_LOST_SQLSTATES.has(state);
  const code = raw(error).code;
  if (typeof code === "string" && CONNECTION_LOST_ERRNOS.has(code)) return true;
  const message = raw(error).message ?? "";
  return /Connection terminated|connection (was )?closed|Client has encountered a connection error|Client was closed and is not queryable/i.test(
    message,
  );
}

/** Wraps a server error into a PgError (fields kept, secrets removed from the text); other errors pass through. */
export function toPgError(error: unknown, secrets: readonly string[] = []): unknown {
  if (error instanceof PgshiftError) return error;
  const state = sqlstateOf(error);
  if (state === undefined) return error;
  const e = raw(error);
  const fields: PgErrorFields = { sqlstate: state };
  for (const key of [
    "detail",
    "hint",
    "schema",
    "table",
    "column",
    "constraint",
    "where",
    "position",
  ] as const) {
    if (e[key] !== undefined) fields[key] = redactText(String(e[key]), secrets);
  }
  return new PgError(redactText(e.message ?? "database error", secrets), fields, error);
}
