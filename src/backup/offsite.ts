import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { UsageError } from "../errors.ts";
import { chooseRunAs, giveTo } from "../local/run-as.ts";
import type { ProgressCallback } from "../progress.ts";
import { BackupError } from "./backup-error.ts";
import { type BackupManifest, checkBackupFile, readManifest, sha256File } from "./manifest.ts";
import {
  isIndexFile,
  isRepositoryContent,
  LAST_OFFSITE_FILE,
  type LastOffsite,
  listRepositoryFiles,
  looksLikeRepository,
  orderForCopy,
  PULL_MARKER_FILE,
  type RepositoryFile,
} from "./offsite-files.ts";
import {
  DEFAULT_PART_BYTES,
  deleteObject,
  downloadObject,
  forEachLimited,
  hashRemoteObject,
  listRemoteObjects,
  MIN_PART_BYTES,
  readObjectText,
  recordedSha256,
  type RemoteObject,
  uploadFile,
} from "./offsite-objects.ts";
import {
  connectOffsite,
  describeOffsiteTarget,
  type OffsiteConnection,
  type OffsiteTarget,
} from "./offsite-target.ts";

/**
 * Off-site copy of a backup repository (pgshift's manifest repository or a pgBackRest repository
 * directory) to S3-compatible storage, and the way back. Incremental: an object is uploaded when it is
 * missing off-site or its recorded sha256 differs from the local file's. Each upload is read back and
 * hashed; an object that does not match is deleted again and reported, so a later push retries it.
 */
export interface OffsiteFailure {
  path: string;
  /** `local_corrupted`: the local file no longer matches manifest.json (the off-site copy is kept);
   * `changed`: the file changed while it was read; `mismatch`: what the server holds is not what was
   * sent (or recorded); `no_checksum`: an object pgshift did not write; `storage`: the request failed. */
  code: "local_corrupted" | "changed" | "mismatch" | "no_checksum" | "storage";
  message: string;
  /** The server stopped answering: the run took no further files (they are listed as not run). */
  unreachable?: boolean;
}

export interface OffsiteFile {
  path: string;
  sizeBytes: number;
  sha256: string;
}

export interface OffsitePushOptions {
  repository: string;
  target: OffsiteTarget;
  /** Delete off-site objects the repository no longer holds (after `backup expire`). */
  prune?: boolean;
  /** Say what would be uploaded and pruned; change nothing. */
  dryRun?: boolean;
  /** Read back every object already off-site instead of trusting its recorded sha256. */
  verifyExisting?: boolean;
  /** Multipart above this size, one part in memory per job (default 8 MiB, at least 5 MiB). */
  partBytes?: number;
  /** Files in flight at once (default 4). */
  jobs?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
}

export interface OffsitePushResult {
  target: string;
  repository: string;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** Uploaded and read back intact (with --dry-run: what would be). */
  uploaded: (OffsiteFile & { reason: "missing" | "differs" | "corrupted"; parts: number })[];
  /** Already off-site with the same sha256. */
  skipped: string[];
  /** Index files held back because something else failed, and files not reached after a stop. */
  notRun: string[];
  /** Off-site objects deleted (or, with --dry-run, that would be) because the repository no longer has them. */
  pruned: string[];
  /** Objects off-site that the repository no longer has, left there (no --prune). */
  extraOffsite: string[];
  failures: OffsiteFailure[];
  bytesUploaded: number;
  /** Bytes read back from the server and hashed. */
  bytesVerified: number;
  interrupted: boolean;
  ok: boolean;
}

function writeJsonAtomic(path: string, value: unknown): void {
  writeFileSync(`${path}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

/** sha256 per file that manifest.json records (backup files); other files have none to check against. */
function manifestHashes(manifest: BackupManifest | undefined): Map<string, string> {
  return new Map((manifest?.backups ?? []).map((b) => [b.file, b.sha256]));
}

function failureOf(path: string, error: unknown): OffsiteFailure {
  return { path, code: "storage", message: (error as Error).message };
}

/**
 * A request that got no HTTP answer at all (connection refused or reset, timeout: the SDK retried it
 * already): the server is gone, so the run stops taking files instead of failing each one in turn.
 */
function serverGone(error: unknown): boolean {
  return error instanceof BackupError && error.step === "offsite" && error.details.httpStatus === undefined;
}

/** Paths a run got to (skipped, copied or failed): the rest of its files were not run. */
function handledPaths(
  skipped: string[],
  copied: { path: string }[],
  failures: OffsiteFailure[],
): Set<string> {
  return new Set([...skipped, ...copied.map((c) => c.path), ...failures.map((f) => f.path)]);
}

function jobProgress(onProgress: ProgressCallback | undefined, task: string, total: number) {
  let done = 0;
  return (n: number, finished = false) => {
    done += n;
    onProgress?.({ task, scope: "job", phase: task, done, total, unit: "bytes", finished });
  };
}

/**
 * Copies a repository to `s3://bucket/prefix`: data files first, then (only when every data file
 * arrived intact) the index files (manifest.json, last-drill.json, pgBackRest's backup.info /
 * archive.info), then with `prune` deletes what the repository no longer holds. Records the push in
 * `last-offsite.json` when it succeeded. A storage failure before anything was sent (unreachable
 * endpoint, bad credentials, no bucket) is thrown as BackupError("offsite").
 *
 *   const r = await pushOffsite({ repository: "/var/backups/app", target: loadOffsiteTarget({ url: "s3://b/app" }) });
 *   r.uploaded.length; r.skipped.length; r.failures;
 */
export async function pushOffsite(options: OffsitePushOptions): Promise<OffsitePushResult> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const partBytes = options.partBytes ?? DEFAULT_PART_BYTES;
  if (partBytes < MIN_PART_BYTES)
    throw new UsageError(
      `part size must be at least ${MIN_PART_BYTES} bytes (S3's minimum), got ${partBytes}`,
    );
  if (!existsSync(options.repository))
    throw new UsageError(`repository ${options.repository} does not exist`);
  const files = listRepositoryFiles(options.repository);
  if (options.prune && !looksLikeRepository(files))
    throw new UsageError(
      `refusing --prune: ${options.repository} has no manifest.json and no pgBackRest backup.info, so pruning against it would delete every backup off-site`,
    );
  const manifest = existsSync(join(options.repository, "manifest.json"))
    ? readManifest(options.repository)
    : undefined;
  const expected = manifestHashes(manifest);
  const conn = connectOffsite(options.target, options.env);
  const result: OffsitePushResult = {
    target: describeOffsiteTarget(options.target),
    repository: options.repository,
    dryRun: Boolean(options.dryRun),
    startedAt: started.toISOString(),
    finishedAt: "",
    durationMs: 0,
    uploaded: [],
    skipped: [],
    notRun: [],
    pruned: [],
    extraOffsite: [],
    failures: [],
    bytesUploaded: 0,
    bytesVerified: 0,
    interrupted: false,
    ok: false,
  };
  try {
    // Listing first: an unreachable server or refused credentials fail here, before anything is sent.
    const remote = await listRemoteObjects(conn);
    const progress = jobProgress(
      options.onProgress,
      "offsite push",
      files.reduce((n, f) => n + f.sizeBytes, 0),
    );
    const stopped = () => Boolean(options.signal?.aborted) || result.failures.some((f) => f.unreachable);
    const copyOne = (file: RepositoryFile) =>
      pushFile(
        conn,
        options,
        file,
        remote.get(file.path),
        expected.get(file.path),
        partBytes,
        result,
        progress,
      );
    const data = files.filter((f) => !isIndexFile(f.path));
    const index = files.filter((f) => isIndexFile(f.path));
    await forEachLimited(data, options.jobs ?? 4, copyOne, stopped);
    result.interrupted = Boolean(options.signal?.aborted);
    if (result.failures.length || result.interrupted) {
      const handled = handledPaths(result.skipped, result.uploaded, result.failures);
      result.notRun.push(
        ...data.filter((f) => !handled.has(f.path)).map((f) => f.path),
        ...index.map((f) => f.path),
      );
    } else {
      for (const file of index) await copyOne(file);
    }
    const local = new Set(files.map((f) => f.path));
    const extra = [...remote.keys()].filter((path) => !local.has(path) && isRepositoryContent(path)).sort();
    if (options.prune && !result.failures.length && !result.interrupted) {
      for (const path of extra) {
        if (!options.dryRun) await deleteObject(conn, path);
        result.pruned.push(path);
      }
    } else result.extraOffsite = extra;
    progress(0, true);
  } finally {
    conn.close();
  }
  const finished = now();
  result.finishedAt = finished.toISOString();
  result.durationMs = finished.getTime() - started.getTime();
  result.ok = result.failures.length === 0 && !result.interrupted;
  if (result.ok && !result.dryRun) {
    const last: LastOffsite = {
      finishedAt: result.finishedAt,
      target: result.target,
      uploaded: result.uploaded.length,
      skipped: result.skipped.length,
      pruned: result.pruned.length,
      bytesUploaded: result.bytesUploaded,
      durationMs: result.durationMs,
    };
    writeJsonAtomic(join(options.repository, LAST_OFFSITE_FILE), last);
  }
  return result;
}

async function pushFile(
  conn: OffsiteConnection,
  options: OffsitePushOptions,
  file: RepositoryFile,
  remote: RemoteObject | undefined,
  manifestSha: string | undefined,
  partBytes: number,
  result: OffsitePushResult,
  progress: (n: number) => void,
): Promise<void> {
  const local = join(options.repository, file.path);
  try {
    let sha256: string;
    if (file.path === "manifest.json") {
      // A backup finished during the push adds an entry whose file this push did not see: that manifest
      // would list a backup the off-site copy lacks. The check reads the very bytes that are hashed.
      const text = readFileSync(local);
      sha256 = createHash("sha256").update(text).digest("hex");
      const copied = new Set([...result.skipped, ...result.uploaded.map((u) => u.path)]);
      const missing = (JSON.parse(text.toString("utf8")) as BackupManifest).backups
        .map((b) => b.file)
        .filter((f) => !copied.has(f));
      if (missing.length) {
        result.failures.push({
          path: file.path,
          code: "changed",
          message: `manifest.json lists ${missing.join(", ")}, which this push did not copy (missing locally, or a backup finished while it ran): held back; push again`,
        });
        return;
      }
    } else sha256 = await sha256File(local);
    if (manifestSha !== undefined && manifestSha !== sha256) {
      result.failures.push({
        path: file.path,
        code: "local_corrupted",
        message: `${local} has sha256 ${sha256}, manifest.json recorded ${manifestSha}: the local backup is damaged, not uploaded (the off-site copy, if any, is kept)`,
      });
      return;
    }
    let reason: "missing" | "differs" | "corrupted" = remote ? "differs" : "missing";
    if (remote && remote.sizeBytes === file.sizeBytes) {
      const recorded = await recordedSha256(conn, file.path);
      if (recorded === sha256) {
        if (!options.verifyExisting) {
          result.skipped.push(file.path);
          progress(file.sizeBytes);
          return;
        }
        const held = await hashRemoteObject(conn, file.path, (n) => (result.bytesVerified += n));
        if (held === sha256) {
          result.skipped.push(file.path);
          progress(file.sizeBytes);
          return;
        }
        reason = "corrupted";
      }
    }
    if (options.dryRun) {
      result.uploaded.push({ path: file.path, sizeBytes: file.sizeBytes, sha256, reason, parts: 0 });
      progress(file.sizeBytes);
      return;
    }
    const sent = await uploadFile(conn, local, file.path, file.sizeBytes, sha256, partBytes, progress);
    if (sent.sentSha256 !== sha256) {
      await deleteObject(conn, file.path);
      result.failures.push({
        path: file.path,
        code: "changed",
        message: `${local} changed while it was uploaded (sha256 ${sha256} before, ${sent.sentSha256} sent): removed off-site, push again`,
      });
      return;
    }
    const held = await hashRemoteObject(conn, file.path, (n) => (result.bytesVerified += n));
    if (held !== sha256) {
      await deleteObject(conn, file.path);
      result.failures.push({
        path: file.path,
        code: "mismatch",
        message: `${file.path}: the server returned sha256 ${held} for what was uploaded as ${sha256}; the object was deleted again`,
      });
      return;
    }
    result.bytesUploaded += file.sizeBytes;
    result.uploaded.push({ path: file.path, sizeBytes: file.sizeBytes, sha256, reason, parts: sent.parts });
  } catch (error) {
    result.failures.push({
      ...failureOf(file.path, error),
      ...(serverGone(error) ? { unreachable: true } : {}),
    });
  }
}

export interface OffsiteListOptions {
  target: OffsiteTarget;
  /** Read every object back and compare it with its recorded sha256 (and manifest.json's). */
  verify?: boolean;
  jobs?: number;
  onProgress?: ProgressCallback;
  env?: NodeJS.ProcessEnv;
}

export interface OffsiteObject {
  path: string;
  sizeBytes: number;
  lastModified: string | undefined;
  sha256: string | undefined;
  /** With verify: whether the content read back has the recorded sha256. */
  verified?: "ok" | "mismatch" | "no_checksum";
}

export interface OffsiteListResult {
  target: string;
  objects: OffsiteObject[];
  totalBytes: number;
  /** The backups the off-site manifest.json lists, and whether each one's file is there (and intact). */
  backups: {
    label: string;
    kind: string;
    file: string;
    startedAt: string;
    present: boolean;
    intact?: boolean;
  }[];
  verified: boolean;
  failures: OffsiteFailure[];
  ok: boolean;
}

/** What is off-site: every object with its recorded sha256, the backups its manifest lists; with `verify`, proved. */
export async function listOffsite(options: OffsiteListOptions): Promise<OffsiteListResult> {
  const conn = connectOffsite(options.target, options.env);
  try {
    const remote = orderForCopy([...(await listRemoteObjects(conn)).values()]).filter((o) =>
      isRepositoryContent(o.path),
    );
    const objects: OffsiteObject[] = remote.map((o) => ({ ...o, sha256: undefined }));
    const failures: OffsiteFailure[] = [];
    const progress = jobProgress(
      options.onProgress,
      "offsite verify",
      remote.reduce((n, o) => n + o.sizeBytes, 0),
    );
    await forEachLimited(objects, options.jobs ?? 4, async (object) => {
      object.sha256 = await recordedSha256(conn, object.path);
      if (!options.verify) return;
      if (object.sha256 === undefined) {
        object.verified = "no_checksum";
        failures.push({
          path: object.path,
          code: "no_checksum",
          message: `${object.path} has no recorded sha256: not written by pgshift offsite push`,
        });
        return;
      }
      const held = await hashRemoteObject(conn, object.path, progress);
      object.verified = held === object.sha256 ? "ok" : "mismatch";
      if (held !== object.sha256)
        failures.push({
          path: object.path,
          code: "mismatch",
          message: `${object.path} is corrupted off-site: its content has sha256 ${held}, it was uploaded as ${object.sha256}`,
        });
    });
    const byPath = new Map(objects.map((o) => [o.path, o]));
    let manifest: BackupManifest | undefined;
    if (byPath.has("manifest.json")) {
      const text = await readObjectText(conn, "manifest.json");
      manifest = JSON.parse(text) as BackupManifest;
    }
    const backups = (manifest?.backups ?? []).map((b) => {
      const object = byPath.get(b.file);
      const intact =
        options.verify && object ? object.verified === "ok" && object.sha256 === b.sha256 : undefined;
      if (options.verify && object && object.sha256 !== b.sha256 && object.verified === "ok")
        failures.push({
          path: b.file,
          code: "mismatch",
          message: `${b.file}: off-site sha256 ${object.sha256 ?? "none"}, the off-site manifest.json recorded ${b.sha256} for backup ${b.label}`,
        });
      if (!object)
        failures.push({
          path: b.file,
          code: "mismatch",
          message: `backup ${b.label}: ${b.file} is listed in the off-site manifest.json but missing off-site`,
        });
      return {
        label: b.label,
        kind: b.kind,
        file: b.file,
        startedAt: b.startedAt,
        present: Boolean(object),
        ...(intact !== undefined ? { intact } : {}),
      };
    });
    progress(0, true);
    return {
      target: describeOffsiteTarget(options.target),
      objects,
      totalBytes: objects.reduce((n, o) => n + o.sizeBytes, 0),
      backups,
      verified: Boolean(options.verify),
      failures,
      ok: failures.length === 0,
    };
  } finally {
    conn.close();
  }
}

export interface OffsitePullOptions {
  target: OffsiteTarget;
  /** A new (or empty) directory, or one an earlier pull of the same target filled. */
  repository: string;
  jobs?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
}

export interface OffsitePullResult {
  target: string;
  repository: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  downloaded: OffsiteFile[];
  /** Already in the directory with the recorded sha256 (a repeated or resumed pull). */
  skipped: string[];
  notRun: string[];
  failures: OffsiteFailure[];
  bytesDownloaded: number;
  /** Backups of the pulled manifest.json whose files match the sha256 it records. */
  backupsChecked: string[];
  interrupted: boolean;
  ok: boolean;
}

/**
 * Downloads an off-site copy into a local repository directory, each object checked against its
 * recorded sha256 (a mismatch never takes the file's name), index files last and only when every data
 * file arrived; then every backup of the pulled manifest.json is checked against its sha256, so
 * `backup restore --repo DIR` can run from it.
 */
export async function pullOffsite(options: OffsitePullOptions): Promise<OffsitePullResult> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const where = describeOffsiteTarget(options.target);
  const markerPath = join(options.repository, PULL_MARKER_FILE);
  if (existsSync(options.repository) && readdirSync(options.repository).length > 0) {
    if (!existsSync(markerPath))
      throw new UsageError(
        `refusing to pull into ${options.repository}: it is not empty and no earlier pull made it (a live repository would be overwritten); pull into a new directory`,
      );
    const marker = JSON.parse(readFileSync(markerPath, "utf8")) as { target: string };
    if (marker.target !== where)
      throw new UsageError(
        `refusing to pull ${where} into ${options.repository}: it holds a pull of ${marker.target}; pull into a new directory`,
      );
  }
  const conn = connectOffsite(options.target, options.env);
  const result: OffsitePullResult = {
    target: where,
    repository: options.repository,
    startedAt: started.toISOString(),
    finishedAt: "",
    durationMs: 0,
    downloaded: [],
    skipped: [],
    notRun: [],
    failures: [],
    bytesDownloaded: 0,
    backupsChecked: [],
    interrupted: false,
    ok: false,
  };
  try {
    const remote = orderForCopy([...(await listRemoteObjects(conn)).values()]).filter((o) =>
      isRepositoryContent(o.path),
    );
    if (remote.length === 0)
      throw new BackupError("offsite", `nothing off-site at ${where}: push a repository there first`);
    mkdirSync(options.repository, { recursive: true });
    writeJsonAtomic(markerPath, { target: where, startedAt: result.startedAt });
    const progress = jobProgress(
      options.onProgress,
      "offsite pull",
      remote.reduce((n, o) => n + o.sizeBytes, 0),
    );
    const pullOne = async (object: RemoteObject): Promise<void> => {
      const destination = join(options.repository, ...object.path.split("/"));
      try {
        const sha256 = await recordedSha256(conn, object.path);
        if (sha256 === undefined) {
          result.failures.push({
            path: object.path,
            code: "no_checksum",
            message: `${object.path} has no recorded sha256: not written by pgshift offsite push, not trusted`,
          });
          return;
        }
        if (existsSync(destination) && (await sha256File(destination)) === sha256) {
          result.skipped.push(object.path);
          progress(object.sizeBytes);
          return;
        }
        mkdirSync(dirname(destination), { recursive: true });
        const actual = await downloadObject(conn, object.path, destination, sha256, progress);
        if (actual !== sha256) {
          result.failures.push({
            path: object.path,
            code: "mismatch",
            message: `${object.path} is corrupted off-site: downloaded content has sha256 ${actual}, it was uploaded as ${sha256}; not written`,
          });
          return;
        }
        result.bytesDownloaded += object.sizeBytes;
        result.downloaded.push({ path: object.path, sizeBytes: object.sizeBytes, sha256 });
      } catch (error) {
        result.failures.push({
          ...failureOf(object.path, error),
          ...(serverGone(error) ? { unreachable: true } : {}),
        });
      }
    };
    const data = remote.filter((o) => !isIndexFile(o.path));
    const index = remote.filter((o) => isIndexFile(o.path));
    const stopped = () => Boolean(options.signal?.aborted) || result.failures.some((f) => f.unreachable);
    await forEachLimited(data, options.jobs ?? 4, pullOne, stopped);
    result.interrupted = Boolean(options.signal?.aborted);
    if (result.failures.length || result.interrupted) {
      const handled = handledPaths(result.skipped, result.downloaded, result.failures);
      result.notRun.push(
        ...data.filter((o) => !handled.has(o.path)).map((o) => o.path),
        ...index.map((o) => o.path),
      );
    } else {
      for (const object of index) await pullOne(object);
      if (existsSync(join(options.repository, "manifest.json")))
        for (const entry of readManifest(options.repository).backups) {
          try {
            await checkBackupFile(options.repository, entry);
            result.backupsChecked.push(entry.label);
          } catch (error) {
            result.failures.push({ path: entry.file, code: "mismatch", message: (error as Error).message });
          }
        }
    }
    // Restores read archived WAL as the server's user (restore_command), as archiving wrote it.
    const walDir = join(options.repository, "wal");
    if (existsSync(walDir)) giveTo(chooseRunAs(options.env ?? process.env), walDir);
    progress(0, true);
  } finally {
    conn.close();
  }
  const finished = now();
  result.finishedAt = finished.toISOString();
  result.durationMs = finished.getTime() - started.getTime();
  result.ok = result.failures.length === 0 && !result.interrupted;
  return result;
}
