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

/** PAUSE of the PgBouncer alias did not complete within the budget: a transaction ran longer. */
export class PgbouncerPauseTimeoutError extends PgshiftError {
  constructor(
    readonly alias: string,
    readonly budgetMs: number,
    readonly longestTransaction: string | null,
  ) {
    super(
      "pgbouncer_pause_timeout",
      `PAUSE ${alias} did not complete within the pause budget of ${budgetMs} ms: PgBouncer waits for the longest running transaction${longestTransaction ? ` (${longestTransaction})` : ""}; RESUME was sent, the config restored and reloaded, the alias still points at the live database. End or shorten that transaction, or pass a larger --pause-budget (clients stall that long), or use --switch pgbouncer-reload`,
      { details: { alias, budgetMs, longestTransaction } },
    );
  }
}

/** PAUSE answered WAIT_CLOSE: PgBouncer 1.18's flag left by an earlier WAIT_CLOSE, never reset. */
export class PgbouncerWaitCloseStuckError extends PgshiftError {
  constructor(
    readonly alias: string,
    readonly tag: string,
  ) {
    super(
      "pgbouncer_wait_close_stuck",
      `refusing to switch: PAUSE ${alias} answered "${tag}" instead of "PAUSE": an earlier WAIT_CLOSE left PgBouncer's flag set (1.18 never resets it) and PAUSE no longer waits for running transactions. RESUME was sent and the config restored; restart pgbouncer, then run again (and never send WAIT_CLOSE)`,
      { details: { alias, tag } },
    );
  }
}

/** After PAUSE, PgBouncer still had an active server connection for the alias's old database. */
export class PgbouncerActiveServersError extends PgshiftError {
  constructor(
    readonly alias: string,
    readonly servers: number,
  ) {
    super(
      "pgbouncer_active_servers",
      `refusing to switch: after PAUSE ${alias}, SHOW SERVERS still lists ${servers} active server connection(s) for it; RESUME was sent and the config restored. Check pgbouncer's state (restart it if an earlier WAIT_CLOSE was sent), then run again`,
      { details: { alias, servers } },
    );
  }
}

/** RELOAD did not point the alias at the new database (config not the one PgBouncer reads?). */
export class PgbouncerReloadError extends PgshiftError {
  constructor(
    readonly alias: string,
    readonly expected: string,
    readonly actual: string | null,
  ) {
    super(
      "pgbouncer_reload_failed",
      `after RELOAD, PgBouncer's alias ${alias} points at database "${actual ?? "(none)"}", not "${expected}": is --pgbouncer-config the file this PgBouncer reads? The config was restored and reloaded`,
      { details: { alias, expected, actual } },
    );
  }
}

/** Restoring the config after a failed switch failed too: the file may point the alias at the new database. */
export class PgbouncerRestoreFailedError extends PgshiftError {
  constructor(
    readonly alias: string,
    readonly configFile: string,
    readonly switchError: unknown,
    readonly restoreError: unknown,
  ) {
    const text = (e: unknown) => (e instanceof Error ? e.message : String(e));
    super(
      "pgbouncer_restore_failed",
      `the switch of PgBouncer alias ${alias} failed (${text(switchError)}), and restoring ${configFile} or reloading PgBouncer failed as well (${text(restoreError)}): the file may now point ${alias} at the new database while PgBouncer serves the old one. Check the alias line in ${configFile} against SHOW DATABASES on the admin console and make them agree before anything reloads PgBouncer`,
      { details: { alias, configFile }, cause: switchError },
    );
  }
}

/** pgbouncer.ini and the running PgBouncer disagree on where the alias points (a switch interrupted before RELOAD?). */
export class PgbouncerConfigDriftError extends PgshiftError {
  constructor(
    readonly alias: string,
    readonly configFile: string,
    readonly configured: string,
    readonly served: string | null,
  ) {
    super(
      "pgbouncer_config_drift",
      `${configFile} points PgBouncer alias ${alias} at database "${configured}", but the running PgBouncer serves ${served === null ? "no such alias" : `"${served}"`}: a switch was probably interrupted between the config rewrite and RELOAD. Applications still reach ${served === null ? "nothing through it" : `"${served}"`}, so refusing to build into it. Make the file name the database PgBouncer serves (or RELOAD if "${configured}" is meant to be live), then run again`,
      { details: { alias, configFile, configured, served } },
    );
  }
}
