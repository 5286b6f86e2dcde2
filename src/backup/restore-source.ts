import { appendFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LocalInstanceOptions } from "../local/instance.ts";
import { walDirOf } from "./archiving.ts";
import { BackupError } from "./backup-error.ts";
import { type BackupEntry, checkBackupFile, readManifest } from "./manifest.ts";
import { mustRun } from "./pg-tool.ts";
import { lsnPosition, type RecoveryTarget, recoveryTimeText } from "./recovery-target.ts";
import { type RecoveryWindow, recoveryWindow } from "./recovery-window.ts";

/**
 * One physical backup a restore can start from, whichever engine keeps it. `endTime` and `endLsn`
 * are where it becomes consistent: the earliest point it can be recovered to.
 */
export interface RestorableBackup {
  engine: "manifest" | "pgbackrest";
  label: string;
  startedAt: string;
  finishedAt: string;
  endTime: string;
  startLsn: string | undefined;
  endLsn: string | undefined;
  sizeBytes: number;
  /** manifest: the tar file (relative to the repository) and its recorded sha256. */
  file?: string;
  sha256?: string;
  /** pgbackrest: full, diff or incr, and the backup it depends on. */
  type?: "full" | "diff" | "incr";
  prior?: string;
}

/**
 * What restore and drill need from a repository. Restore, drill, the window guardrail, the scratch or
 * in-place instance handling and the checks after it are one code path over this interface; only these
 * steps differ between pgshift's own repository and pgBackRest's.
 */
export interface RestoreSource {
  readonly engine: "manifest" | "pgbackrest";
  /** The repository directory (the drill records last-drill.json there). */
  readonly repository: string;
  /** Physical backups, oldest first. */
  backups(): Promise<RestorableBackup[]>;
  window(backup: RestorableBackup): Promise<RecoveryWindow>;
  /** Proves the backup's files are what the repository recorded; throws BackupError("integrity"). */
  checkIntegrity(backup: RestorableBackup): Promise<string>;
  /**
   * Writes the backup into an empty data directory with the recovery settings for the target:
   * archiving off, promote when reached. The caller owns starting the server.
   */
  restoreInto(backup: RestorableBackup, dataDir: string, target: RecoveryTarget): Promise<void>;
  /** The timeline history files in the repository's archive: a new one means something archived into it. */
  timelineHistories(): string[];
}

/** Where a restore or drill reads from: pgshift's manifest repository (default) or pgBackRest's. */
export interface RepositoryOptions {
  repository: string;
  /** "manifest" (default): pgshift's pg_basebackup + `cp` archive; "pgbackrest": set up by setupPgBackRest. */
  engine?: "manifest" | "pgbackrest";
  /** pgbackrest: the managed instance whose pgbackrest.conf names the stanza and the repository. */
  pgbackrestInstance?: LocalInstanceOptions;
  stanza?: string;
  binDir?: string;
}

export async function restoreSourceFor(options: RepositoryOptions): Promise<RestoreSource> {
  if ((options.engine ?? "manifest") === "manifest")
    return manifestSource(options.repository, options.binDir);
  if (!options.pgbackrestInstance)
    throw new BackupError("usage", "the pgbackrest engine needs the managed instance it was set up for");
  // loaded only for pgBackRest repositories
  const { pgBackRestSource } = await import("./pgbackrest-source.ts");
  return pgBackRestSource({
    instance: options.pgbackrestInstance,
    repository: options.repository,
    ...(options.stanza !== undefined ? { stanza: options.stanza } : {}),
    ...(options.binDir !== undefined ? { binDir: options.binDir } : {}),
  });
}

/**
 * The backup to restore: the one labelled, else the newest that ends at or before the target (so an
 * older target picks an older backup), else the newest (and the window check then says why not).
 */
export async function chooseBackup(
  source: RestoreSource,
  label: string | undefined,
  target: RecoveryTarget,
): Promise<RestorableBackup> {
  const backups = await source.backups();
  if (label !== undefined) {
    const found = backups.find((b) => b.label === label);
    if (!found)
      throw new BackupError(
        "not_found",
        `no physical backup labelled ${label} in ${source.repository} (see \`pgshift backup list\`)`,
      );
    return found;
  }
  const newest = backups[backups.length - 1];
  if (!newest)
    throw new BackupError(
      "not_found",
      `no physical backup in ${source.repository}: run \`pgshift backup run --type ${source.engine === "pgbackrest" ? "full" : "physical"}\` first`,
    );
  const fits = (b: RestorableBackup): boolean =>
    target.kind === "time"
      ? Date.parse(b.endTime) <= Date.parse(target.time)
      : target.kind === "lsn"
        ? b.endLsn !== undefined && lsnPosition(b.endLsn) <= lsnPosition(target.lsn)
        : true;
  return [...backups].reverse().find(fits) ?? newest;
}

function fromEntry(entry: BackupEntry): RestorableBackup {
  return {
    engine: "manifest",
    label: entry.label,
    startedAt: entry.startedAt,
    finishedAt: entry.finishedAt,
    endTime: entry.serverEndTime ?? entry.finishedAt,
    startLsn: entry.startLsn,
    endLsn: entry.endLsn,
    sizeBytes: entry.sizeBytes,
    file: entry.file,
    sha256: entry.sha256,
  };
}

const HISTORY = /^[0-9A-F]{8}\.history$/;

/** pgshift's own repository: manifest.json, base/<label>/base.tar, wal/ filled by archive_command `cp`. */
export function manifestSource(repository: string, binDir?: string): RestoreSource {
  const entries = () => readManifest(repository).backups.filter((b) => b.kind === "physical");
  const entryOf = (backup: RestorableBackup): BackupEntry => {
    const entry = entries().find((b) => b.label === backup.label);
    if (!entry)
      throw new BackupError("not_found", `no physical backup labelled ${backup.label} in ${repository}`);
    return entry;
  };
  return {
    engine: "manifest",
    repository,
    backups: async () => entries().map(fromEntry),
    window: (backup) => recoveryWindow(repository, entryOf(backup), binDir),
    async checkIntegrity(backup) {
      const entry = entryOf(backup);
      await checkBackupFile(repository, entry);
      return `sha256 ${entry.sha256} matches the manifest`;
    },
    async restoreInto(backup, dataDir, target) {
      await mustRun("extract", "tar", ["-xf", join(repository, entryOf(backup).file), "-C", dataDir]);
      mkdirSync(join(dataDir, "pg_wal", "archive_status"), { recursive: true });
      const recovery = [
        "",
        "# pgshift backup restore: recovery settings (removed after promotion)",
        "archive_mode = 'off'",
        "archive_command = ''",
        `restore_command = 'cp "${walDirOf(repository)}/%f" "%p"'`,
        "recovery_target_action = 'promote'",
        "recovery_target_timeline = 'current'",
      ];
      if (target.kind === "time") recovery.push(`recovery_target_time = '${recoveryTimeText(target.time)}'`);
      if (target.kind === "lsn") recovery.push(`recovery_target_lsn = '${target.lsn}'`);
      appendFileSync(join(dataDir, "postgresql.auto.conf"), `${recovery.join("\n")}\n`);
      writeFileSync(join(dataDir, "recovery.signal"), "");
    },
    timelineHistories() {
      const dir = walDirOf(repository);
      return existsSync(dir) ? readdirSync(dir).filter((f) => HISTORY.test(f)) : [];
    },
  };
}
