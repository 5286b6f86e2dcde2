import type { DriftEntry } from "./errors.ts";
import type { AppliedMigration } from "./history.ts";
import type { MigrationFile } from "./migration-file.ts";

/**
 * Where each migration stands, comparing files with history:
 * - `applied`: recorded, file unchanged;
 * - `drifted`: recorded, file changed since (sha256 differs);
 * - `missing`: recorded, file gone;
 * - `pending`: file not recorded, newer than everything applied;
 * - `out-of-order`: file not recorded but older than the newest applied one (a merge from another branch).
 */
export type MigrationState = "applied" | "drifted" | "missing" | "pending" | "out-of-order";

export interface MigrationStatusEntry {
  version: string;
  name: string;
  file: string | null;
  state: MigrationState;
  appliedAt?: Date;
  appliedBy?: string;
  durationMs?: number;
  /** How it was recorded: run, or marked by `baseline`. */
  outcome?: "applied" | "baseline";
  hasDown: boolean;
}

export interface MigrationPlan {
  entries: MigrationStatusEntry[];
  /** Newest applied version, or null when nothing is applied. */
  current: string | null;
  drift: DriftEntry[];
  pending: MigrationFile[];
  outOfOrder: MigrationFile[];
}

/** Pure comparison of files on disk with the recorded history. */
export function comparePlan(
  files: readonly MigrationFile[],
  history: readonly AppliedMigration[],
): MigrationPlan {
  const applied = new Map(history.map((h) => [h.version, h]));
  const onDisk = new Map(files.map((f) => [f.version, f]));
  const current = history.length
    ? history
        .map((h) => h.version)
        .sort()
        .at(-1)!
    : null;
  const entries: MigrationStatusEntry[] = [];
  const drift: DriftEntry[] = [];
  const pending: MigrationFile[] = [];
  const outOfOrder: MigrationFile[] = [];
  const versions = [...new Set([...applied.keys(), ...onDisk.keys()])].sort();
  for (const version of versions) {
    const file = onDisk.get(version);
    const record = applied.get(version);
    if (record) {
      const state: MigrationState = !file ? "missing" : file.sha256 === record.sha256 ? "applied" : "drifted";
      if (state !== "applied")
        drift.push({
          version,
          name: record.name,
          file: file?.file ?? null,
          recordedSha256: record.sha256,
          currentSha256: file?.sha256 ?? null,
        });
      entries.push({
        version,
        name: record.name,
        file: file?.file ?? null,
        state,
        appliedAt: record.appliedAt,
        appliedBy: record.appliedBy,
        durationMs: record.durationMs,
        outcome: record.outcome,
        hasDown: Boolean(file?.down),
      });
    } else if (file) {
      const late = current !== null && version < current;
      (late ? outOfOrder : pending).push(file);
      entries.push({
        version,
        name: file.name,
        file: file.file,
        state: late ? "out-of-order" : "pending",
        hasDown: Boolean(file.down),
      });
    }
  }
  return { entries, current, drift, pending, outOfOrder };
}
