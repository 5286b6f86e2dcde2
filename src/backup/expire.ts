import { renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { manifestPath, readManifest } from "./manifest.ts";
import { type GfsPolicy, type RetentionResult, selectRetained } from "./retention.ts";

export interface ExpireOptions {
  repository: string;
  policy: GfsPolicy;
  now?: Date;
  /** List what would go, delete nothing. */
  dryRun?: boolean;
}

export interface ExpireResult extends RetentionResult {
  dryRun: boolean;
  deletedFiles: string[];
}

/**
 * Applies GFS retention to the repository's manifest: expired backups' files are deleted and their
 * entries removed (manifest first, so a crash leaves an orphan file, never an entry without a file).
 * Archived WAL is not pruned here.
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
  return { ...retention, dryRun: Boolean(options.dryRun), deletedFiles };
}
