import { createReadStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { redactUrl } from "../config/redact.ts";
import { quoteIdent } from "../pg/quote.ts";
import { withDatabase } from "../pg/server-databases.ts";
import { BackupError } from "./backup-error.ts";
import { gpgDecrypt } from "./gpg.ts";
import { type BackupEntry, checkBackupFile, findBackup } from "./manifest.ts";
import { type PassphraseSource, readPassphrase } from "./passphrase.ts";
import { exited, pgTool, spawn, toolTarget } from "./pg-tool.ts";

export interface LogicalRestoreOptions {
  repository: string;
  /** Default: the newest logical backup. */
  label?: string;
  /** A server URL (any database on it) where the new database is created. */
  serverUrl: string;
  /** The new database's name; it must not exist. */
  database: string;
  passphrase?: PassphraseSource;
  binDir?: string;
}

export interface LogicalRestoreResult {
  entry: BackupEntry;
  database: string;
  url: string;
  durationMs: number;
}

/**
 * Restores a logical backup into a NEW database (never over an existing one): checks the file's
 * sha256 against the manifest, then streams file -> gpg --decrypt -> pg_restore (single transaction).
 */
export async function restoreLogicalBackup(options: LogicalRestoreOptions): Promise<LogicalRestoreResult> {
  const started = Date.now();
  const entry = findBackup(options.repository, options.label, ["logical"]);
  await checkBackupFile(options.repository, entry);
  if (entry.encrypted && !options.passphrase)
    throw new BackupError(
      "passphrase",
      `backup ${entry.label} is encrypted: pass --passphrase-file or --passphrase-env`,
    );
  const admin = new pg.Client({ connectionString: options.serverUrl });
  await admin.connect();
  try {
    const exists = await admin.query("select 1 from pg_database where datname = $1", [options.database]);
    if (exists.rowCount)
      throw new BackupError(
        "target_exists",
        `database ${options.database} exists already: restore goes into a new database`,
      );
    await admin.query(`create database ${quoteIdent(options.database)}`);
  } finally {
    await admin.end();
  }
  try {
    return await restoreInto(options, entry, started);
  } catch (error) {
    // Leave nothing half-restored behind: the database was created by this call.
    const cleanup = new pg.Client({ connectionString: options.serverUrl });
    await cleanup.connect();
    await cleanup
      .query(`drop database if exists ${quoteIdent(options.database)} with (force)`)
      .finally(() => cleanup.end());
    throw error;
  }
}

async function restoreInto(
  options: LogicalRestoreOptions,
  entry: BackupEntry,
  started: number,
): Promise<LogicalRestoreResult> {
  const url = withDatabase(options.serverUrl, options.database);
  const target = toolTarget(url);
  const restore = spawn(
    pgTool("pg_restore", options.binDir),
    ["--no-password", "--exit-on-error", "--single-transaction", "--no-owner", ...target.args],
    { env: target.env, stdio: ["pipe", "ignore", "pipe"] },
  );
  const restoreExit = exited(restore);
  const input = createReadStream(join(options.repository, entry.file));
  try {
    if (entry.encrypted) {
      const gpg = gpgDecrypt(readPassphrase(options.passphrase!));
      await Promise.all([pipeline(input, gpg.stdin), pipeline(gpg.stdout, restore.stdin!), gpg.done]);
    } else await pipeline(input, restore.stdin!);
  } catch (error) {
    restore.kill();
    await restoreExit;
    throw error instanceof BackupError
      ? error
      : new BackupError("restore", `restore of ${entry.label} failed: ${(error as Error).message}`, {
          cause: error,
        });
  }
  const exit = await restoreExit;
  if (exit.code !== 0)
    throw new BackupError(
      "pg_restore",
      `pg_restore into ${redactUrl(url)} failed (exit ${exit.code}): ${exit.stderr.trim()}`,
    );
  return { entry, database: options.database, url: redactUrl(url), durationMs: Date.now() - started };
}
