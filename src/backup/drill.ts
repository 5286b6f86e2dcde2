import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { recordLastDrill } from "./backup-metrics.ts";
import { asPgshiftError } from "../errors.ts";
import {
  destroyLocalInstance,
  type LocalInstanceOptions,
  localInstanceStatus,
  localInstanceUrl,
} from "../local/instance.ts";
import { type ReportSignature, type SigningKey, signReport } from "../verify/report.ts";
import { walDirOf } from "./archiving.ts";
import { BackupError } from "./backup-error.ts";
import { checkBackupFile, findBackup, type BackupEntry } from "./manifest.ts";
import { pgTool, runTool, toolTarget } from "./pg-tool.ts";
import { type PitrRestoreResult, restorePointInTime } from "./pitr-restore.ts";
import type { RecoveryWindow } from "./recovery-window.ts";
import { type TableSum, tableSums } from "./table-sums.ts";

export interface DrillOptions {
  repository: string;
  label?: string;
  /** Default: recover to the end of the archive. */
  targetTime?: string;
  /** The scratch instance; created, used, destroyed. Archiving is off in it. */
  scratch: LocalInstanceOptions;
  superuserPassword: string;
  /** Where the evidence report goes (JSON). */
  reportPath?: string;
  signingKey?: SigningKey;
  binDir?: string;
  /** Keep the scratch instance for inspection. */
  keepScratch?: boolean;
}

export interface DrillCheck {
  name: "integrity" | "restore" | "amcheck" | "table_sums" | "no_archiving_into_repository";
  ok: boolean;
  detail: string;
}

export interface DrillReport {
  kind: "pgshift-backup-drill";
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  backup:
    | Pick<BackupEntry, "label" | "file" | "sha256" | "sizeBytes" | "startedAt" | "startLsn" | "endLsn">
    | undefined;
  window: RecoveryWindow | undefined;
  targetTime: string | undefined;
  scratchInstance: string;
  /** Restore start until the scratch server accepted writes. */
  rtoMs: number | undefined;
  /** Target (or drill start, for "latest") minus the last replayed commit. */
  rpoMs: number | undefined;
  lastReplayedCommit: string | undefined;
  checks: DrillCheck[];
  tables: TableSum[];
  failure?: { code: string; message: string };
  scratchDestroyed: boolean;
  signature?: ReportSignature;
}

export interface DrillResult {
  report: DrillReport;
  reportPath: string | undefined;
}

function timelineHistories(repository: string): string[] {
  const dir = walDirOf(repository);
  return existsSync(dir) ? readdirSync(dir).filter((f) => /^[0-9A-F]{8}\.history$/.test(f)) : [];
}

/**
 * A restore drill: check the backup file against the manifest, restore it (PITR) into a scratch
 * instance with archiving off, run pg_amcheck, count and checksum every table, measure RTO and RPO,
 * destroy the scratch instance, and write a (signed) evidence report. Failures become checks with
 * ok=false in the report; the drill itself only throws for problems writing the report.
 */
export async function runDrill(options: DrillOptions): Promise<DrillResult> {
  const startedAt = new Date();
  const checks: DrillCheck[] = [];
  let entry: BackupEntry | undefined;
  let restore: PitrRestoreResult | undefined;
  let tables: TableSum[] = [];
  let failure: DrillReport["failure"];
  let scratchDestroyed = false;
  const historiesBefore = timelineHistories(options.repository);
  // Never destroy an instance the drill did not create.
  const preexisting = (await localInstanceStatus(options.scratch)).state !== "absent";
  try {
    if (preexisting)
      throw new BackupError(
        "scratch_exists",
        `scratch instance ${options.scratch.name ?? "default"} exists already; a drill only uses (and destroys) an instance it creates`,
      );
    entry = findBackup(options.repository, options.label, ["physical"]);
    try {
      await checkBackupFile(options.repository, entry);
      checks.push({ name: "integrity", ok: true, detail: `sha256 ${entry.sha256} matches the manifest` });
    } catch (error) {
      checks.push({ name: "integrity", ok: false, detail: (error as Error).message });
      throw error;
    }
    restore = await restorePointInTime({
      repository: options.repository,
      ...(options.label !== undefined ? { label: options.label } : {}),
      ...(options.targetTime !== undefined ? { targetTime: options.targetTime } : {}),
      into: options.scratch,
      superuserPassword: options.superuserPassword,
      ...(options.binDir !== undefined ? { binDir: options.binDir } : {}),
    });
    checks.push({
      name: "restore",
      ok: true,
      detail: `restored ${entry.label} and promoted in ${restore.rtoMs} ms`,
    });
    const url = localInstanceUrl(options.scratch);
    const target = toolTarget(url, "--maintenance-db");
    const amcheck = await runTool(
      pgTool("pg_amcheck", options.binDir),
      ["--all", "--install-missing", "--heapallindexed", "--no-password", ...target.args],
      target.env,
    );
    checks.push({
      name: "amcheck",
      ok: amcheck.code === 0,
      detail:
        amcheck.code === 0
          ? "pg_amcheck --all --heapallindexed: no corruption"
          : `pg_amcheck exit ${amcheck.code}: ${(amcheck.stdout + amcheck.stderr).trim().slice(-2000)}`,
    });
    tables = await tableSums(url);
    checks.push({ name: "table_sums", ok: true, detail: `${tables.length} tables counted and checksummed` });
  } catch (error) {
    const e = asPgshiftError(error);
    failure = { code: e.code, message: e.message };
    if (restore === undefined && entry !== undefined && checks.every((c) => c.ok))
      checks.push({ name: "restore", ok: false, detail: e.message });
  } finally {
    if (!options.keepScratch && !preexisting) {
      await destroyLocalInstance(options.scratch).catch(() => undefined);
      scratchDestroyed = true;
    }
  }
  const newHistories = timelineHistories(options.repository).filter((h) => !historiesBefore.includes(h));
  checks.push({
    name: "no_archiving_into_repository",
    ok: newHistories.length === 0,
    detail:
      newHistories.length === 0
        ? "archive_mode was off in the scratch instance; no new timeline reached the repository"
        : `the scratch instance archived into the repository: ${newHistories.join(", ")}`,
  });
  const lastReplayed = restore?.lastReplayedCommit;
  const reference = options.targetTime ?? startedAt.toISOString();
  const unsigned: DrillReport = {
    kind: "pgshift-backup-drill",
    ok: failure === undefined && checks.every((c) => c.ok),
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    backup: entry && {
      label: entry.label,
      file: entry.file,
      sha256: entry.sha256,
      sizeBytes: entry.sizeBytes,
      startedAt: entry.startedAt,
      ...(entry.startLsn ? { startLsn: entry.startLsn } : {}),
      ...(entry.endLsn ? { endLsn: entry.endLsn } : {}),
    },
    window: restore?.window,
    targetTime: options.targetTime,
    scratchInstance: options.scratch.name ?? "default",
    rtoMs: restore?.rtoMs,
    rpoMs: lastReplayed ? Math.max(0, Date.parse(reference) - Date.parse(lastReplayed)) : undefined,
    lastReplayedCommit: lastReplayed,
    checks,
    tables,
    ...(failure ? { failure } : {}),
    scratchDestroyed,
  };
  const report = options.signingKey ? signReport(unsigned, options.signingKey) : unsigned;
  if (options.reportPath) writeFileSync(options.reportPath, `${JSON.stringify(report, null, 2)}\n`);
  if (existsSync(options.repository)) recordLastDrill(options.repository, report);
  return { report, reportPath: options.reportPath };
}
