import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { redactUrl } from "../config/redact.ts";
import { BackupError } from "./backup-error.ts";
import { addToManifest, type BackupEntry, newLabel, sha256File } from "./manifest.ts";
import { mustRun, pgTool, toolTarget } from "./pg-tool.ts";

export interface PhysicalBackupOptions {
  /** The server (a superuser or a role with REPLICATION). */
  url: string;
  repository: string;
  label?: string;
  binDir?: string;
  now?: () => Date;
}

export interface PhysicalBackupResult {
  entry: BackupEntry;
  path: string;
}

interface WalRange {
  Timeline: number;
  "Start-LSN": string;
  "End-LSN": string;
}

/**
 * `pg_basebackup -Ft -X none` into `<repository>/base/<label>/`: the WAL it needs comes from the
 * archive (set up by setupArchiving), so the backup plus the archive recover to any later time.
 * The LSN range is read from the backup_manifest pg_basebackup writes.
 */
export async function runPhysicalBackup(options: PhysicalBackupOptions): Promise<PhysicalBackupResult> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const label = options.label ?? newLabel(started, "physical");
  if (!/^[A-Za-z0-9._-]+$/.test(label))
    throw new BackupError("label", `label ${label} may contain only letters, digits, '.', '-' and '_'`);
  const dir = join(options.repository, "base", label);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const target = toolTarget(options.url);
  try {
    await mustRun(
      "pg_basebackup",
      pgTool("pg_basebackup", options.binDir),
      ["-Ft", "-X", "none", "--checkpoint=fast", "--no-password", "-D", dir, ...target.args],
      target.env,
    );
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const client = new pg.Client({ connectionString: options.url });
  await client.connect();
  let serverEndTime: string;
  let serverVersion: string;
  try {
    const r = await client.query<{ t: string; v: string }>(
      `select to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t,
              current_setting('server_version') as v`,
    );
    serverEndTime = r.rows[0]!.t;
    serverVersion = r.rows[0]!.v;
  } finally {
    await client.end();
  }
  const manifest = JSON.parse(readFileSync(join(dir, "backup_manifest"), "utf8")) as {
    "WAL-Ranges": WalRange[];
  };
  const range = manifest["WAL-Ranges"][0]!;
  const file = `base/${label}/base.tar`;
  const path = join(options.repository, file);
  const finished = now();
  const entry: BackupEntry = {
    label,
    kind: "physical",
    file,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    sizeBytes: statSync(path).size,
    sha256: await sha256File(path),
    encrypted: false,
    source: redactUrl(options.url),
    startLsn: range["Start-LSN"],
    endLsn: range["End-LSN"],
    timeline: range.Timeline,
    serverEndTime,
    serverVersion,
  };
  addToManifest(options.repository, entry);
  return { entry, path };
}
