import { createHash } from "node:crypto";
import { createWriteStream, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { PassThrough, type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { redactUrl } from "../config/redact.ts";
import { BackupError } from "./backup-error.ts";
import { gpgEncrypt } from "./gpg.ts";
import { addToManifest, type BackupEntry, newLabel } from "./manifest.ts";
import { describePassphrase, type PassphraseSource, readPassphrase } from "./passphrase.ts";
import { exited, pgTool, spawn, toolTarget } from "./pg-tool.ts";

export interface LogicalBackupOptions {
  /** The database to dump. */
  url: string;
  /** Directory holding the backups and manifest.json. */
  repository: string;
  /** Encrypt to OpenPGP (symmetric AES-256) with this passphrase. */
  passphrase?: PassphraseSource;
  label?: string;
  /** Only these schemas / tables (pg_dump -n / -t). */
  schemas?: string[];
  tables?: string[];
  binDir?: string;
  now?: () => Date;
}

export interface LogicalBackupResult {
  entry: BackupEntry;
  path: string;
}

/**
 * `pg_dump -Fc` of a database, streamed pg_dump stdout -> gpg stdin -> file (bounded memory: only
 * the pipes' buffers), hashed on the way; the entry goes into the manifest only once every process
 * exited 0, and the file appears under its final name only then (a failed run leaves nothing).
 */
export async function runLogicalBackup(options: LogicalBackupOptions): Promise<LogicalBackupResult> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const label = options.label ?? newLabel(started, "logical");
  if (!/^[A-Za-z0-9._-]+$/.test(label))
    throw new BackupError("label", `label ${label} may contain only letters, digits, '.', '-' and '_'`);
  const passphrase = options.passphrase ? readPassphrase(options.passphrase) : undefined;
  const dir = join(options.repository, "logical");
  mkdirSync(dir, { recursive: true });
  const file = `logical/${label}.dump${passphrase ? ".gpg" : ""}`;
  const path = join(options.repository, file);
  const partial = `${path}.partial`;

  const target = toolTarget(options.url);
  const args = ["-Fc", "--no-password", ...target.args];
  for (const s of options.schemas ?? []) args.push(`--schema=${s}`);
  for (const t of options.tables ?? []) args.push(`--table=${t}`);
  const dump = spawn(pgTool("pg_dump", options.binDir), args, {
    env: target.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const dumpExit = exited(dump);
  const hash = createHash("sha256");
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  const gpg = passphrase ? gpgEncrypt(passphrase) : undefined;
  try {
    const streams: Promise<unknown>[] = [];
    let output: Readable;
    if (gpg) {
      streams.push(pipeline(dump.stdout, gpg.stdin));
      output = gpg.stdout;
    } else output = dump.stdout.pipe(new PassThrough());
    streams.push(pipeline(output, hasher, createWriteStream(partial, { mode: 0o600 })));
    const [exit] = await Promise.all([dumpExit, ...streams, gpg?.done]);
    if (exit.code !== 0)
      throw new BackupError(
        "pg_dump",
        `pg_dump of ${redactUrl(options.url)} failed (exit ${exit.code}): ${exit.stderr.trim()}`,
      );
  } catch (error) {
    dump.kill();
    rmSync(partial, { force: true });
    const dumpResult = await dumpExit;
    if (error instanceof BackupError) throw error;
    throw new BackupError(
      "logical",
      `logical backup failed: ${(error as Error).message}${dumpResult.stderr ? `; pg_dump: ${dumpResult.stderr.trim()}` : ""}`,
      { cause: error },
    );
  }
  renameSync(partial, path);
  const finished = now();
  const entry: BackupEntry = {
    label,
    kind: "logical",
    file,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    sizeBytes: statSync(path).size,
    sha256: hash.digest("hex"),
    encrypted: Boolean(passphrase),
    ...(options.passphrase ? { passphraseSource: describePassphrase(options.passphrase) } : {}),
    source: redactUrl(options.url),
  };
  addToManifest(options.repository, entry);
  return { entry, path };
}
