import { ExitCode, PgshiftError } from "../errors.ts";

/** A session whose snapshot predates the next version's load (it would see the new tables empty). */
export interface OldSnapshotSession {
  pid: number;
  applicationName: string;
  user: string;
  xactStart: string;
  state: string | null;
  query: string | null;
}

/** The swap was refused: sessions kept snapshots older than the load for longer than the wait. */
export class OldSnapshotError extends PgshiftError {
  constructor(
    readonly sessions: OldSnapshotSession[],
    waitedMs: number,
  ) {
    const who = sessions
      .map(
        (s) =>
          `pid ${s.pid} (${s.applicationName || "unknown app"}, user ${s.user}, transaction since ${s.xactStart})`,
      )
      .join("; ");
    super(
      "old_snapshot",
      `refusing to switch: ${who} hold a snapshot older than the new version's load (waited ${Math.round(waitedMs / 1000)} s); they would read the new tables empty. End those transactions (select pg_terminate_backend(pid)) or pass a longer --snapshot-wait, then run again`,
      { details: { sessions, waitedMs } },
    );
  }
}

/** A refresh step failed; live is untouched. Says what was left behind, if anything. */
export class RefreshFailedError extends PgshiftError {
  constructor(
    readonly step: string,
    readonly version: number,
    readonly leftBehind: string | null,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      "refresh_failed",
      `refresh failed at ${step} (version ${version}): ${reason}; the live version is untouched${leftBehind ? `; left behind: ${leftBehind} (drop it by hand)` : ", the next version was dropped"}`,
      {
        cause,
        exitCode:
          cause instanceof PgshiftError && cause.exitCode === ExitCode.usage
            ? ExitCode.usage
            : ExitCode.failure,
        details: {
          step,
          version,
          leftBehind,
          ...(cause instanceof PgshiftError ? { causeCode: cause.code, cause: cause.toJSON() } : {}),
        },
      },
    );
  }
}

/** rollback with no previous version to go back to. */
export class NoPreviousVersionError extends PgshiftError {
  constructor(dataset: string) {
    super("no_previous_version", `dataset "${dataset}" has no previous version to roll back to`, {
      details: { dataset },
    });
  }
}
