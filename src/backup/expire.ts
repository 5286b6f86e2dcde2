import { renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { manifestPath, readManifest } from "./manifest.ts";
import { type GfsPolicy, type RetentionResult, selectRetained } from "./retention.ts";
import { DEFAULT_WAL_WINDOW_MS, pruneArchivedWal, type WalPruneResult } from "./wal-prune.ts";

export interface ExpireOptions {
  repository: string;
  policy: GfsPolicy;
  now?: Date;
  /** List what would go, delete nothing. */
  dryRun?: boolean;
  /** Archived WAL kept so that every moment of this window stays recoverable (default 14 days). */
  walWindowMs?: number;
}

export interface ExpireResult extends RetentionResult {
  dryRun: boolean;
  deletedFiles: string[];
  /** Archived WAL no kept backup and no moment of the WAL window needs (deleted unless dryRun). */
  wal: WalPruneResult;
}

/**
 * Applies GFS retention to the repository's manifest: expired backups' files are deleted and their
 * entries removed (manifest first, so a crash leaves an orphan file, never an entry without a file).
 * Then archived WAL older than the WAL window needs is deleted (wal-prune.ts), except what a kept backup
 * needs to become consistent.
 */
export function expireBackups(options: ExpireOptions): ExpireResult {
  const manifest = readManifest(options.repository);
  const retention = selectRetained(
    manifest.backups.map((b) => ({ label: b.label, startedAt: b.startedAt, kind: b.kind })),
    options.policy,
    options.now ?? new Date(),
  );
  const deletedFiles: string[] = [];
  if (!options.dryRun && retention.expire.length) {
    const gone = new Set(retention.expire.map((d) => d.label));
    const expired = manifest.backups.filter((b) => gone.has(b.label));
    manifest.backups = manifest.backups.filter((b) => !gone.has(b.label));
    const path = manifestPath(options.repository);
    writeFileSync(`${path}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(`${path}.tmp`, path);
    for (const b of expired) {
      const file = join(options.repository, b.file);
      // A physical backup is a directory (base.tar + backup_manifest); a logical one a file.
      rmSync(b.kind === "physical" ? dirname(file) : file, { recursive: true, force: true });
      deletedFiles.push(b.file);
    }
  }
  const keptLabels = new Set(retention.keep.map((d) => d.label));
  const wal = pruneArchivedWal(
    options.repository,
    readManifest(options.repository).backups.filter((b) => keptLabels.has(b.label)),
    {
      now: options.now ?? new Date(),
      windowMs: options.walWindowMs ?? DEFAULT_WAL_WINDOW_MS,
      dryRun: Boolean(options.dryRun),
    },
  );
  return { ...retention, dryRun: Boolean(options.dryRun), deletedFiles, wal };
}
