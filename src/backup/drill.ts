import { existsSync, writeFileSync } from "node:fs";
import { recordLastDrill } from "./backup-metrics.ts";
import { asPgshiftError } from "../errors.ts";
import {
  destroyLocalInstance,
  type LocalInstanceOptions,
  localInstanceStatus,
  localInstanceUrl,
} from "../local/instance.ts";
import { type ReportSignature, type SigningKey, signReport } from "../verify/report.ts";
import { BackupError } from "./backup-error.ts";
import { pgTool, runTool, toolTarget } from "./pg-tool.ts";
import { type PitrRestoreResult, restoreFrom } from "./pitr-restore.ts";
import { describeTarget, recoveryTargetOf } from "./recovery-target.ts";
import type { RecoveryWindow } from "./recovery-window.ts";
import {
  chooseBackup,
  type RepositoryOptions,
  type RestorableBackup,
  type RestoreSource,
  restoreSourceFor,
} from "./restore-source.ts";
import { type TableSum, tableSums } from "./table-sums.ts";

export interface DrillOptions extends RepositoryOptions {
  label?: string;
  /** Default: recover to the end of the archive. At most one of targetTime and targetLsn. */
  targetTime?: string;
  targetLsn?: string;
  /** The scratch instance; created, used, destroyed. Archiving is off in it. */
  scratch: LocalInstanceOptions;
  superuserPassword: string;
  /** Where the evidence report goes (JSON). */
  reportPath?: string;
  signingKey?: SigningKey;
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
  engine: "manifest" | "pgbackrest";
  startedAt: string;
  finishedAt: string;
  backup:
    | (Pick<RestorableBackup, "label" | "sizeBytes" | "startedAt"> & {
        file?: string;
        sha256?: string;
        startLsn?: string;
        endLsn?: string;
        type?: "full" | "diff" | "incr";
        prior?: string;
      })
    | undefined;
  window: RecoveryWindow | undefined;
  /** "latest", the target time, or "LSN 0/3000148". */
  target: string;
  targetTime: string | undefined;
  targetLsn: string | undefined;
  scratchInstance: string;
  /** Restore start until the scratch server accepted writes. */
  rtoMs: number | undefined;
  /** Target (or drill start, for "latest" and LSN targets) minus the last replayed commit. */
  rpoMs: number | undefined;
  lastReplayedCommit: string | undefined;
  lastReplayedLsn: string | undefined;
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

function reportedBackup(b: RestorableBackup): DrillReport["backup"] {
  return {
    label: b.label,
    sizeBytes: b.sizeBytes,
    startedAt: b.startedAt,
    ...(b.file !== undefined ? { file: b.file } : {}),
    ...(b.sha256 !== undefined ? { sha256: b.sha256 } : {}),
    ...(b.startLsn ? { startLsn: b.startLsn } : {}),
    ...(b.endLsn ? { endLsn: b.endLsn } : {}),
    ...(b.type ? { type: b.type } : {}),
    ...(b.prior ? { prior: b.prior } : {}),
  };
}

/**
 * A restore drill, on either engine: check the backup (sha256 against the manifest, or `pgbackrest
 * verify`), restore it (PITR) into a scratch instance with archiving off, run pg_amcheck, count and
 * checksum every table, measure RTO and RPO, prove nothing was archived into the repository, destroy the
 * scratch instance, and write a (signed) evidence report. Failures become checks with ok=false in the
 * report; the drill itself only throws for problems writing the report.
 */
export async function runDrill(options: DrillOptions): Promise<DrillResult> {
  const startedAt = new Date();
  const checks: DrillCheck[] = [];
  let source: RestoreSource | undefined;
  let backup: RestorableBackup | undefined;
  let restore: PitrRestoreResult | undefined;
  let tables: TableSum[] = [];
  let failure: DrillReport["failure"];
  let scratchDestroyed = false;
  let historiesBefore: string[] = [];
  let target = recoveryTargetOf({});
  // Never destroy an instance the drill did not create.
  const preexisting = (await localInstanceStatus(options.scratch)).state !== "absent";
  try {
    target = recoveryTargetOf(options);
    source = await restoreSourceFor(options);
    historiesBefore = source.timelineHistories();
    if (preexisting)
      throw new BackupError(
        "scratch_exists",
        `scratch instance ${options.scratch.name ?? "default"} exists already; a drill only uses (and destroys) an instance it creates`,
      );
    backup = await chooseBackup(source, options.label, target);
    try {
      checks.push({ name: "integrity", ok: true, detail: await source.checkIntegrity(backup) });
    } catch (error) {
      checks.push({ name: "integrity", ok: false, detail: (error as Error).message });
      throw error;
    }
    restore = await restoreFrom(source, backup, target, {
      into: options.scratch,
      superuserPassword: options.superuserPassword,
      integrityChecked: true,
    });
    checks.push({
      name: "restore",
      ok: true,
      detail: `restored ${backup.label} (${source.engine}) to ${describeTarget(target)} and promoted in ${restore.rtoMs} ms`,
    });
    const url = localInstanceUrl(options.scratch);
    const tool = toolTarget(url, "--maintenance-db");
    const amcheck = await runTool(
      pgTool("pg_amcheck", options.binDir),
      ["--all", "--install-missing", "--heapallindexed", "--no-password", ...tool.args],
      tool.env,
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
    if (restore === undefined && backup !== undefined && checks.every((c) => c.ok))
      checks.push({ name: "restore", ok: false, detail: e.message });
  } finally {
    if (!options.keepScratch && !preexisting) {
      await destroyLocalInstance(options.scratch).catch(() => undefined);
      scratchDestroyed = true;
    }
  }
  const newHistories = (source?.timelineHistories() ?? []).filter((h) => !historiesBefore.includes(h));
  checks.push({
    name: "no_archiving_into_repository",
    ok: newHistories.length === 0,
    detail:
      newHistories.length === 0
        ? "archive_mode was off in the scratch instance; no new timeline reached the repository"
        : `the scratch instance archived into the repository: ${newHistories.join(", ")}`,
  });
  const lastReplayed = restore?.lastReplayedCommit;
  // RPO is a time: against the target time, or the drill's start for "latest"; none for an LSN target.
  const reference =
    target.kind === "time" ? target.time : target.kind === "latest" ? startedAt.toISOString() : undefined;
  const unsigned: DrillReport = {
    kind: "pgshift-backup-drill",
    ok: failure === undefined && checks.every((c) => c.ok),
    engine: options.engine ?? "manifest",
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    backup: backup && reportedBackup(backup),
    window: restore?.window,
    target: describeTarget(target),
    targetTime: target.kind === "time" ? target.time : undefined,
    targetLsn: target.kind === "lsn" ? target.lsn : undefined,
    scratchInstance: options.scratch.name ?? "default",
    rtoMs: restore?.rtoMs,
    rpoMs:
      lastReplayed && reference ? Math.max(0, Date.parse(reference) - Date.parse(lastReplayed)) : undefined,
    lastReplayedCommit: lastReplayed,
    lastReplayedLsn: restore?.lastReplayedLsn,
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
