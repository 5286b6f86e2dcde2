/**
 * Errors are data: each failure has a stable `code`, the fields a caller needs to act, the `cause`,
 * and a message that says what to do next. The CLI maps `exitCode` to the process exit code.
 */
import { redactText } from "./config/redact.ts";

/** Process exit codes, documented in README.md. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  mismatch: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class PgshiftError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly details: Record<string, unknown>;

  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; exitCode?: ExitCode; details?: Record<string, unknown> } = {},
  ) {
    // Redacted when made, so no path (library caller, log, report) can see a password in a message.
    super(redactText(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = options.exitCode ?? ExitCode.failure;
    this.details = options.details ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.details };
  }
}

/** A problem with what the user asked for: flags, settings, arguments. Exit code 2. */
export class UsageError extends PgshiftError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("usage", message, { exitCode: ExitCode.usage, details });
  }
}

/** Settings failed validation; every problem is listed at once. Exit code 2. */
export class SettingsError extends PgshiftError {
  readonly problems: string[];

  constructor(problems: string[]) {
    super("invalid_settings", `invalid settings:\n  - ${problems.join("\n  - ")}`, {
      exitCode: ExitCode.usage,
      details: { problems },
    });
    this.problems = problems;
  }
}

/** Turns anything thrown into a PgshiftError without losing it (kept as `cause`). */
export function asPgshiftError(error: unknown): PgshiftError {
  if (error instanceof PgshiftError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new PgshiftError("internal", message, { cause: error });
}
