import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import {
  type LocalInstanceOptions,
  localInstanceStatus,
  localInstanceUrl,
  setLocalInstancePassword,
  startLocalInstance,
  stopLocalInstance,
} from "../local/instance.ts";
import { chooseRunAs, giveTo } from "../local/run-as.ts";
import { BackupError } from "./backup-error.ts";
import { type RecoveryTarget, recoveryTargetOf } from "./recovery-target.ts";
import { assertInWindow, type RecoveryWindow } from "./recovery-window.ts";
import {
  chooseBackup,
  type RepositoryOptions,
  type RestorableBackup,
  type RestoreSource,
  restoreSourceFor,
} from "./restore-source.ts";

export { recoveryTimeText } from "./recovery-target.ts";

/** Where a restore goes and how: a new managed instance, or (inPlace) over a stopped one. */
export interface RestoreIntoOptions {
  /** The managed instance to restore into: new (it must not exist), or with inPlace an existing, stopped one. */
  into: LocalInstanceOptions;
  /**
   * Restore over `into`'s data directory. Refused while that server runs; the old data directory is
   * renamed aside (`<instance dir>.pre-restore-<time>`) and put back if anything fails.
   */
  inPlace?: boolean;
  /** inPlace: keep the renamed old data directory after the restored server is up (default: remove it). */
  keepPreviousData?: boolean;
  /** The source's superuser password (the restored cluster keeps the source's roles). */
  superuserPassword: string;
}

export interface PitrRestoreOptions extends RepositoryOptions, RestoreIntoOptions {
  /** Default: the newest physical backup that ends before the target (the newest for latest). */
  label?: string;
  /** ISO 8601 with a zone. At most one of targetTime and targetLsn; neither = the end of the archive. */
  targetTime?: string;
  /** A WAL position as PostgreSQL prints it (0/3000148): recovery_target_lsn. */
  targetLsn?: string;
}

export interface PitrRestoreResult {
  engine: "manifest" | "pgbackrest";
  backup: RestorableBackup;
  window: RecoveryWindow;
  target: RecoveryTarget;
  targetTime: string | undefined;
  targetLsn: string | undefined;
  instance: string;
  /** Connection URL, password redacted. */
  url: string | undefined;
  /** Last commit replayed (pg_last_xact_replay_timestamp), ISO. */
  lastReplayedCommit: string | undefined;
  /** Last WAL record replayed (pg_last_wal_replay_lsn). */
  lastReplayedLsn: string | undefined;
  /** Restore start to the server accepting writes (before the clean-up restart). */
  rtoMs: number;
  /** What the integrity check proved (undefined when the caller checked it). */
  integrity: string | undefined;
  inPlace: boolean;
  /** inPlace: where the old data directory was kept during the restore, and whether it still is. */
  previousDataDir?: { path: string; kept: boolean };
  /** A restored server never archives until archiving is set up for it again (pgshift backup setup). */
  archiving: "off";
}

/**
 * Restores a physical backup (pgshift's own repository or pgBackRest's) into a new managed instance,
 * or in place over a stopped one, and replays archived WAL up to the target (time, LSN or the end of the
 * archive), then promotes. A target outside the backup's recoverable window is refused first. The
 * restored server gets archive_mode off: it must never push its WAL into the repository it came from.
 *
 * @example
 * await restorePointInTime({ repository: "/var/backups/pgshift", targetLsn: "0/3000148",
 *   into: { name: "restored" }, superuserPassword });
 */
export async function restorePointInTime(options: PitrRestoreOptions): Promise<PitrRestoreResult> {
  const target = recoveryTargetOf(options);
  const source = await restoreSourceFor(options);
  const backup = await chooseBackup(source, options.label, target);
  return restoreFrom(source, backup, target, options);
}

function stamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

async function assertTargetState(options: RestoreIntoOptions) {
  const status = await localInstanceStatus(options.into);
  if (!options.inPlace) {
    if (status.state !== "absent")
      throw new BackupError(
        "target_exists",
        `instance ${status.name} exists already: restore goes into a new instance (destroy it first, pick another name, or restore over it with --in-place while it is stopped)`,
      );
  } else if (status.state === "absent")
    throw new BackupError(
      "target_absent",
      `--in-place restores over an existing managed instance, and ${status.name} does not exist (without --in-place the restore creates it)`,
    );
  else if (status.state === "running")
    throw new BackupError(
      "target_running",
      `instance ${status.name} is running (pid ${status.pid ?? "?"}): stop it first (pgshift local stop --name ${status.name}); an in-place restore never stops a server`,
      { details: { instance: status.name, pid: status.pid } },
    );
  return status;
}

/**
 * The restore once the backup is chosen: window check, integrity (unless `integrityChecked`: the
 * drill checks it as a step of its own), the data directory, recovery, promotion, clean-up.
 */
export async function restoreFrom(
  source: RestoreSource,
  backup: RestorableBackup,
  target: RecoveryTarget,
  options: RestoreIntoOptions & { integrityChecked?: boolean },
): Promise<PitrRestoreResult> {
  const started = Date.now();
  const status = await assertTargetState(options);
  const window = await source.window(backup);
  assertInWindow(window, target);
  const integrity = options.integrityChecked ? undefined : await source.checkIntegrity(backup);
  const runAs = chooseRunAs(options.into.env);
  let dataDir: string;
  let aside: string | undefined;
  let previousPassword: string | undefined;
  if (options.inPlace) {
    dataDir = status.dataDir;
    aside = `${status.dir}.pre-restore-${stamp(new Date())}`;
    // outside the instance directory: starting an instance without a data directory recreates that directory
    previousPassword = decodeURIComponent(new URL(localInstanceUrl(options.into)).password);
    renameSync(dataDir, aside);
    mkdirSync(dataDir, { mode: 0o700 });
    giveTo(runAs, dataDir);
  } else {
    // A fresh instance gives the directory layout, port and run-as user; its data is then replaced.
    await startLocalInstance(options.into);
    dataDir = (await stopLocalInstance(options.into)).dataDir;
    for (const name of readdirSync(dataDir)) rmSync(join(dataDir, name), { recursive: true, force: true });
  }
  let replayed: { commit: string | undefined; lsn: string | undefined };
  try {
    await source.restoreInto(backup, dataDir, target);
    giveTo(runAs, dataDir);
    setLocalInstancePassword(options.into, options.superuserPassword);
    await startLocalInstance(options.into);
    replayed = await promoteAndClean(options.into, status.name, Boolean(options.inPlace));
  } catch (error) {
    if (aside === undefined) throw error;
    throw await putBack(options.into, dataDir, aside, previousPassword!, error);
  }
  const rtoMs = Date.now() - started;
  // Restart once so the running server has none of the recovery settings left.
  await stopLocalInstance(options.into);
  await startLocalInstance(options.into);
  const after = await localInstanceStatus(options.into);
  let previousDataDir: PitrRestoreResult["previousDataDir"];
  if (aside !== undefined) {
    if (!options.keepPreviousData) rmSync(aside, { recursive: true, force: true });
    previousDataDir = { path: aside, kept: Boolean(options.keepPreviousData) };
  }
  return {
    engine: source.engine,
    backup,
    window,
    target,
    targetTime: target.kind === "time" ? target.time : undefined,
    targetLsn: target.kind === "lsn" ? target.lsn : undefined,
    instance: status.name,
    url: after.url,
    lastReplayedCommit: replayed.commit,
    lastReplayedLsn: replayed.lsn,
    rtoMs,
    integrity,
    inPlace: Boolean(options.inPlace),
    ...(previousDataDir ? { previousDataDir } : {}),
    archiving: "off",
  };
}

/** Waits for promotion, then keeps archiving off for good and drops the recovery-only settings. */
async function promoteAndClean(
  into: LocalInstanceOptions,
  name: string,
  inPlace: boolean,
): Promise<{ commit: string | undefined; lsn: string | undefined }> {
  const client = new pg.Client({ connectionString: localInstanceUrl(into) });
  await client.connect();
  try {
    const deadline = Date.now() + 15 * 60_000;
    for (;;) {
      const r = await client.query<{ rec: boolean }>("select pg_is_in_recovery() as rec");
      if (!r.rows[0]!.rec) break;
      if (Date.now() > deadline)
        throw new BackupError("recovery", `instance ${name} is still in recovery after 15 min`);
      await sleep(100);
    }
    const r = await client.query<{ t: string | null; lsn: string | null }>(
      `select to_char(pg_last_xact_replay_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t,
              pg_last_wal_replay_lsn()::text as lsn`,
    );
    await client.query("alter system set archive_mode = 'off'");
    await client.query("alter system set archive_command = ''");
    const reset = [
      "restore_command",
      "recovery_target_action",
      "recovery_target_timeline",
      "recovery_target_time",
      "recovery_target_lsn",
    ];
    // The source's socket directory (pgBackRest's setup sets one) belongs to the source instance.
    if (!inPlace) reset.push("unix_socket_directories");
    for (const k of reset) await client.query(`alter system reset ${k}`);
    return { commit: r.rows[0]!.t ?? undefined, lsn: r.rows[0]!.lsn ?? undefined };
  } finally {
    await client.end();
  }
}

/** A failed in-place restore: the old data directory and password go back; the error says so. */
async function putBack(
  into: LocalInstanceOptions,
  dataDir: string,
  aside: string,
  previousPassword: string,
  error: unknown,
): Promise<BackupError> {
  const reason = error instanceof Error ? error.message : String(error);
  try {
    await stopLocalInstance(into).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    renameSync(aside, dataDir);
    setLocalInstancePassword(into, previousPassword);
  } catch (restoreError) {
    return new BackupError(
      "restore",
      `in-place restore failed (${reason}), and putting the previous data directory back failed too (${(restoreError as Error).message}): it is kept at ${aside}${existsSync(aside) ? "" : " (missing!)"}`,
      { cause: error, details: { previousDataDir: aside } },
    );
  }
  return new BackupError(
    "restore",
    `in-place restore failed, nothing lost: the previous data directory is back in ${dataDir} (the instance is stopped). Cause: ${reason}`,
    { cause: error, details: { previousDataDir: dataDir } },
  );
}
