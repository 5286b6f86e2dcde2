import { appendFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
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
import { walDirOf } from "./archiving.ts";
import { BackupError } from "./backup-error.ts";
import { type BackupEntry, checkBackupFile, findBackup } from "./manifest.ts";
import { mustRun } from "./pg-tool.ts";
import { assertInWindow, type RecoveryWindow, recoveryWindow } from "./recovery-window.ts";

export interface PitrRestoreOptions {
  repository: string;
  /** Default: the newest physical backup. */
  label?: string;
  /** ISO 8601 with a zone; absent = recover to the end of the archive (latest). */
  targetTime?: string;
  /** The NEW managed instance to restore into; it must not exist. */
  into: LocalInstanceOptions;
  /** The source's superuser password (the restored cluster keeps the source's roles). */
  superuserPassword: string;
  binDir?: string;
}

export interface PitrRestoreResult {
  entry: BackupEntry;
  window: RecoveryWindow;
  targetTime: string | undefined;
  instance: string;
  /** Connection URL, password redacted. */
  url: string | undefined;
  /** Last commit replayed (pg_last_xact_replay_timestamp), ISO. */
  lastReplayedCommit: string | undefined;
  /** Restore start to the server accepting writes (before the clean-up restart). */
  rtoMs: number;
}

/** recovery_target_time rejects ISO's "T" and "Z": "2026-12-01T16:40:00.5Z" -> "2026-12-01 16:40:00.5+00". */
export function recoveryTimeText(iso: string): string {
  return iso
    .trim()
    .replace(/^(\d{4}-\d\d-\d\d)T/, "$1 ")
    .replace(/Z$/i, "+00")
    .replace(/'/g, "");
}

/**
 * Restores a physical backup into a new managed instance and replays archived WAL up to the target
 * time (recovery_target_time, then promote). The restored instance gets archive_mode off: it must
 * never push its WAL into the repository it came from.
 */
export async function restorePointInTime(options: PitrRestoreOptions): Promise<PitrRestoreResult> {
  const started = Date.now();
  const entry = findBackup(options.repository, options.label, ["physical"]);
  const window = await recoveryWindow(options.repository, entry, options.binDir);
  if (options.targetTime !== undefined) assertInWindow(window, options.targetTime);
  await checkBackupFile(options.repository, entry);
  const existing = await localInstanceStatus(options.into);
  if (existing.state !== "absent")
    throw new BackupError(
      "target_exists",
      `instance ${existing.name} exists already: restore goes into a new instance (destroy it first or pick another name)`,
    );
  // A fresh instance gives the directory layout, port and run-as user; its data is then replaced.
  await startLocalInstance(options.into);
  const status = await stopLocalInstance(options.into);
  const dataDir = status.dataDir;
  for (const name of readdirSync(dataDir)) rmSync(join(dataDir, name), { recursive: true, force: true });
  await mustRun("extract", "tar", ["-xf", join(options.repository, entry.file), "-C", dataDir]);
  mkdirSync(join(dataDir, "pg_wal", "archive_status"), { recursive: true });
  const wal = walDirOf(options.repository);
  const recovery = [
    "",
    "# pgshift backup restore: recovery settings (removed after promotion)",
    "archive_mode = 'off'",
    "archive_command = ''",
    `restore_command = 'cp "${wal}/%f" "%p"'`,
    "recovery_target_action = 'promote'",
    "recovery_target_timeline = 'current'",
  ];
  if (options.targetTime !== undefined)
    recovery.push(`recovery_target_time = '${recoveryTimeText(options.targetTime)}'`);
  appendFileSync(join(dataDir, "postgresql.auto.conf"), `${recovery.join("\n")}\n`);
  writeFileSync(join(dataDir, "recovery.signal"), "");
  giveTo(chooseRunAs(options.into.env), dataDir);
  setLocalInstancePassword(options.into, options.superuserPassword);
  await startLocalInstance(options.into);
  const url = localInstanceUrl(options.into);
  let lastReplayedCommit: string | undefined;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const deadline = Date.now() + 15 * 60_000;
    for (;;) {
      const r = await client.query<{ rec: boolean }>("select pg_is_in_recovery() as rec");
      if (!r.rows[0]!.rec) break;
      if (Date.now() > deadline)
        throw new BackupError("recovery", `instance ${status.name} is still in recovery after 15 min`);
      await sleep(100);
    }
    const r = await client.query<{ t: string | null }>(
      `select to_char(pg_last_xact_replay_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t`,
    );
    lastReplayedCommit = r.rows[0]!.t ?? undefined;
    // Keep archiving off for good; drop the recovery-only settings.
    await client.query("alter system set archive_mode = 'off'");
    await client.query("alter system set archive_command = ''");
    for (const k of [
      "restore_command",
      "recovery_target_action",
      "recovery_target_timeline",
      "recovery_target_time",
    ])
      await client.query(`alter system reset ${k}`);
  } finally {
    await client.end();
  }
  const rtoMs = Date.now() - started;
  // Restart once so the running server has none of the recovery settings left.
  await stopLocalInstance(options.into);
  await startLocalInstance(options.into);
  const after = await localInstanceStatus(options.into);
  return {
    entry,
    window,
    targetTime: options.targetTime,
    instance: status.name,
    url: after.url,
    lastReplayedCommit,
    rtoMs,
  };
}
