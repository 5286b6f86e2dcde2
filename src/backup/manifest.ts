import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BackupError } from "./backup-error.ts";
import type { BackupKind } from "./retention.ts";

/**
 * The repository's manifest: `manifest.json` beside the backups, one entry per finished backup.
 * Written atomically (temp file + rename) so a crash never leaves a half-written manifest.
 */
export interface BackupEntry {
  label: string;
  kind: BackupKind;
  /** Path relative to the repository. */
  file: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  sizeBytes: number;
  sha256: string;
  encrypted: boolean;
  /** Where the passphrase came from (never the passphrase). */
  passphraseSource?: string;
  /** Database (logical) or server (physical) with the password redacted. */
  source: string;
  /** Physical backups: WAL range and server time at the end (the earliest recoverable time). */
  startLsn?: string;
  endLsn?: string;
  timeline?: number;
  serverEndTime?: string;
  serverVersion?: string;
}

export interface BackupManifest {
  format: 1;
  backups: BackupEntry[];
}

export function manifestPath(repository: string): string {
  return join(repository, "manifest.json");
}

export function readManifest(repository: string): BackupManifest {
  const path = manifestPath(repository);
  if (!existsSync(path)) return { format: 1, backups: [] };
  const parsed = JSON.parse(readFileSync(path, "utf8")) as BackupManifest;
  if (parsed.format !== 1)
    throw new BackupError("manifest", `${path}: unknown manifest format ${String(parsed.format)}`);
  return parsed;
}

export function addToManifest(repository: string, entry: BackupEntry): BackupManifest {
  mkdirSync(repository, { recursive: true });
  const manifest = readManifest(repository);
  manifest.backups = manifest.backups.filter((b) => b.label !== entry.label);
  manifest.backups.push(entry);
  manifest.backups.sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
  const path = manifestPath(repository);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
  return manifest;
}

export function findBackup(repository: string, label: string | undefined, kind?: BackupKind[]): BackupEntry {
  const backups = readManifest(repository).backups.filter((b) => !kind || kind.includes(b.kind));
  const found = label === undefined ? backups[backups.length - 1] : backups.find((b) => b.label === label);
  if (!found)
    throw new BackupError(
      "not_found",
      label === undefined
        ? `no ${kind?.join("/") ?? ""} backup in ${repository}: run \`pgshift backup run\` first`
        : `no backup labelled ${label} in ${repository} (see \`pgshift backup list\`)`,
    );
  return found;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Checks a backup file against its manifest entry; throws BackupError("integrity") on a mismatch. */
export async function checkBackupFile(repository: string, entry: BackupEntry): Promise<void> {
  const path = join(repository, entry.file);
  if (!existsSync(path))
    throw new BackupError("integrity", `backup file ${path} is missing`, { details: { label: entry.label } });
  const actual = await sha256File(path);
  if (actual !== entry.sha256)
    throw new BackupError(
      "integrity",
      `backup ${entry.label} is corrupted: ${path} has sha256 ${actual}, the manifest recorded ${entry.sha256}`,
      { details: { label: entry.label, expected: entry.sha256, actual } },
    );
}

export function newLabel(now: Date, kind: BackupKind): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}-${kind}`;
}
