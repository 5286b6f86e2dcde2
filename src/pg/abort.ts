import { PgshiftError } from "../errors.ts";

/**
 * The run was asked to stop (an AbortSignal fired: SIGINT/SIGTERM in the CLI). Thrown at a boundary
 * where stopping is clean (between chunks, tables, migrations), so what is committed is whole.
 */
export class InterruptedError extends PgshiftError {
  constructor(reason: unknown) {
    const why = typeof reason === "string" ? reason : reason instanceof Error ? reason.message : "aborted";
    super("interrupted", `interrupted (${why}): stopped at a clean boundary`, {
      details: { reason: why },
    });
  }
}

/** Throws InterruptedError when `signal` has fired; call it where the work may stop cleanly. */
export function stopIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InterruptedError(signal.reason);
}

export function isInterrupted(error: unknown): boolean {
  return error instanceof InterruptedError;
}
