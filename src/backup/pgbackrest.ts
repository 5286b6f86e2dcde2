import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pg from "pg";
import {
  type LocalInstanceOptions,
  localInstanceStatus,
  localInstanceUrl,
  startLocalInstance,
  stopLocalInstance,
} from "../local/instance.ts";
import { chooseRunAs, giveTo } from "../local/run-as.ts";
import { BackupError } from "./backup-error.ts";
import type { OffsiteTarget } from "./offsite-target.ts";
import { type PassphraseSource, readPassphrase, readSecret } from "./passphrase.ts";
import { UsageError } from "../errors.ts";
import { type GfsPolicy, type RetentionResult, selectRetained } from "./retention.ts";

/**
 * pgBackRest orchestration for a managed local instance: pgshift writes one pgbackrest.conf (mode 0600,
 * owned by the server's user; it holds the repository cipher passphrase), points archive_command at
 * `pgbackrest archive-push`, and runs every pgBackRest command as the server's user with --config.
 * pgBackRest's own retention is set so high that it never deletes; GFS expiry is done with `expire --set`.
 * With `s3`, pgBackRest gets a second repository (repo2) of type s3: archive-push sends every WAL segment
 * to both, and `backup --repo=2` (pgshift `backup run --offsite`) backs up into it, so the off-site
 * repository is a complete one pgBackRest can restore from by itself.
 */
export interface PgBackRestOptions {
  instance: LocalInstanceOptions;
  repository: string;
  stanza?: string;
  /** Encrypt the repository (aes-256-cbc) with this passphrase. */
  cipherPassphrase?: PassphraseSource;
  archiveTimeoutSeconds?: number;
  /** A second, off-site repository (repo2) on S3-compatible storage (HTTPS only: pgBackRest speaks TLS). */
  s3?: OffsiteTarget;
}

export interface PgBackRestBackup {
  /** Which repository holds it: 1 (local) or 2 (S3). */
  repo: number;
  label: string;
  type: "full" | "diff" | "incr";
  prior: string | undefined;
  startedAt: string;
  finishedAt: string;
  sizeBytes: number;
  repositoryBytes: number;
  startLsn: string;
  stopLsn: string;
  /** The first and last WAL segment the backup needs to become consistent. */
  archiveStart: string | undefined;
  archiveStop: string | undefined;
  /** Which database (system) of the stanza: matches PgBackRestArchive.databaseId. */
  databaseId: number | undefined;
}

/** The archived WAL of one database of the stanza (`info`'s archive min and max segment). */
export interface PgBackRestArchive {
  /** e.g. "15-1": the directory under archive/<stanza>/. */
  id: string;
  databaseId: number | undefined;
  min: string | undefined;
  max: string | undefined;
}

export interface PgBackRestLayout {
  stanza: string;
  config: string;
  pgpass: string;
  socketDir: string;
  dataDir: string;
}

const PGBACKREST = process.env.PGSHIFT_PGBACKREST ?? "pgbackrest";

export async function pgBackRestLayout(options: PgBackRestOptions): Promise<PgBackRestLayout> {
  const status = await localInstanceStatus(options.instance);
  if (status.state === "absent")
    throw new BackupError("pgbackrest", `no managed instance named ${status.name}`);
  return {
    stanza: options.stanza ?? "main",
    config: join(status.dir, "pgbackrest.conf"),
    pgpass: join(status.dir, "pgbackrest.pgpass"),
    socketDir: join(status.dir, "socket"),
    dataDir: status.dataDir,
  };
}

/**
 * Runs one pgBackRest command as the server's user with pgshift's config. `consoleLevel` (default warn)
 * is raised where a command reports what it found only in its log (verify names invalid files at info).
 */
export function runPgBackRest(
  options: PgBackRestOptions,
  l: PgBackRestLayout,
  args: string[],
  opts: { consoleLevel?: "warn" | "info" } = {},
): Promise<string> {
  const runAs = chooseRunAs(options.instance.env);
  return new Promise((resolvePromise, reject) => {
    execFile(
      PGBACKREST,
      [
        `--config=${l.config}`,
        `--stanza=${l.stanza}`,
        `--log-level-console=${opts.consoleLevel ?? "warn"}`,
        ...args,
      ],
      {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PGPASSFILE: l.pgpass, LC_ALL: "C" },
        maxBuffer: 64 * 1024 * 1024,
        timeout: 3_600_000,
        ...(runAs.uid !== undefined ? { uid: runAs.uid, gid: runAs.gid } : {}),
      },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new BackupError(
              "pgbackrest",
              `pgbackrest ${args.join(" ")} failed: ${String(stderr || stdout || error.message).trim()}`,
            ),
          );
        else resolvePromise(String(stdout));
      },
    );
  });
}

/** Writes pgbackrest.conf, sets archiving to archive-push, restarts, stanza-create, check. */
export async function setupPgBackRest(
  options: PgBackRestOptions,
): Promise<{ stanza: string; config: string }> {
  await startLocalInstance(options.instance);
  const l = await pgBackRestLayout(options);
  const runAs = chooseRunAs(options.instance.env);
  const repo = resolve(options.repository);
  for (const dir of [repo, join(repo, "log"), join(repo, "lock"), l.socketDir]) {
    mkdirSync(dir, { recursive: true });
    giveTo(runAs, dir);
  }
  const url = new URL(localInstanceUrl(options.instance));
  const lines = [
    "[global]",
    `repo1-path=${repo}`,
    `log-path=${join(repo, "log")}`,
    `lock-path=${join(repo, "lock")}`,
    "log-level-file=info",
    "compress-type=zst",
    "repo1-retention-full-type=count",
    "repo1-retention-full=9999999",
    "start-fast=y",
  ];
  const cipher = options.cipherPassphrase
    ? readPassphrase(options.cipherPassphrase).toString("utf8")
    : undefined;
  if (cipher) lines.push("repo1-cipher-type=aes-256-cbc", `repo1-cipher-pass=${cipher}`);
  if (options.s3) lines.push(...s3RepositoryLines(options.s3, cipher));
  lines.push(
    "",
    `[${l.stanza}]`,
    `pg1-path=${l.dataDir}`,
    `pg1-port=${url.port}`,
    `pg1-socket-path=${l.socketDir}`,
    `pg1-user=${decodeURIComponent(url.username)}`,
  );
  writeFileSync(l.config, `${lines.join("\n")}\n`, { mode: 0o600 });
  writeFileSync(
    l.pgpass,
    `*:*:*:${decodeURIComponent(url.username)}:${decodeURIComponent(url.password).replace(/([:\\])/g, "\\$1")}\n`,
    { mode: 0o600 },
  );
  giveTo(runAs, l.config);
  giveTo(runAs, l.pgpass);
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(`alter system set unix_socket_directories = '${l.socketDir.replace(/'/g, "''")}'`);
    await client.query("alter system set archive_mode = 'on'");
    await client.query(
      `alter system set archive_command = '${`${PGBACKREST} --config=${l.config} --stanza=${l.stanza} archive-push %p`.replace(/'/g, "''")}'`,
    );
    await client.query(`alter system set archive_timeout = '${options.archiveTimeoutSeconds ?? 60}s'`);
  } finally {
    await client.end();
  }
  await stopLocalInstance(options.instance);
  await startLocalInstance(options.instance);
  await runPgBackRest(options, l, ["stanza-create"]);
  await runPgBackRest(options, l, ["check"]);
  return { stanza: l.stanza, config: l.config };
}

/** A pgbackrest.conf value must stay on its line: no new line, no leading or trailing space. */
function confValue(name: string, value: string): string {
  if (/[\r\n]/.test(value) || value.trim() !== value)
    throw new UsageError(`${name} must not contain new lines or leading/trailing spaces`);
  return value;
}

/**
 * repo2 as an S3 repository: path-style URIs for an S3-compatible endpoint, the same cipher as repo1,
 * and (like repo1) a retention so high that only pgshift's GFS expiry removes backups.
 */
export function s3RepositoryLines(target: OffsiteTarget, cipher: string | undefined): string[] {
  const lines = ["repo2-type=s3", `repo2-path=/${confValue("the S3 prefix", target.prefix)}`];
  lines.push(
    `repo2-s3-bucket=${target.bucket}`,
    `repo2-s3-region=${confValue("--s3-region", target.region)}`,
  );
  if (target.endpoint) {
    const endpoint = new URL(target.endpoint);
    if (endpoint.protocol !== "https:")
      throw new UsageError(
        `pgBackRest talks to S3 over HTTPS only; --s3-endpoint ${target.endpoint} is ${endpoint.protocol.slice(0, -1)}`,
      );
    lines.push(`repo2-s3-endpoint=${endpoint.hostname}`, "repo2-s3-uri-style=path");
    if (endpoint.port) lines.push(`repo2-storage-port=${endpoint.port}`);
  } else lines.push(`repo2-s3-endpoint=s3.${target.region}.amazonaws.com`);
  lines.push(
    `repo2-s3-key=${confValue("--s3-access-key-id", target.accessKeyId)}`,
    `repo2-s3-key-secret=${confValue("the S3 secret access key", readSecret(target.secret, "S3 secret access key").toString("utf8"))}`,
  );
  if (target.caFile) lines.push(`repo2-storage-ca-file=${confValue("--s3-ca-file", resolve(target.caFile))}`);
  if (cipher) lines.push("repo2-cipher-type=aes-256-cbc", `repo2-cipher-pass=${cipher}`);
  lines.push("repo2-retention-full-type=count", "repo2-retention-full=9999999");
  return lines;
}

interface InfoBackup {
  label: string;
  type: "full" | "diff" | "incr";
  prior: string | null;
  timestamp: { start: number; stop: number };
  info: { size: number; repository: { delta: number } };
  lsn: { start: string; stop: string };
  archive?: { start: string | null; stop: string | null };
  database?: { id: number; "repo-key"?: number };
}

interface InfoArchive {
  id: string;
  min: string | null;
  max: string | null;
  database?: { id: number };
}

export async function pgBackRestInfo(
  options: PgBackRestOptions,
): Promise<{ backups: PgBackRestBackup[]; cipher: string; archives: PgBackRestArchive[] }> {
  const l = await pgBackRestLayout(options);
  const info = JSON.parse(await runPgBackRest(options, l, ["info", "--output=json"])) as {
    backup: InfoBackup[];
    archive?: InfoArchive[];
    cipher: string;
  }[];
  const stanza = info[0];
  return {
    cipher: stanza?.cipher ?? "none",
    backups: (stanza?.backup ?? []).map((b) => ({
      repo: b.database?.["repo-key"] ?? 1,
      label: b.label,
      type: b.type,
      prior: b.prior ?? undefined,
      startedAt: new Date(b.timestamp.start * 1000).toISOString(),
      finishedAt: new Date(b.timestamp.stop * 1000).toISOString(),
      sizeBytes: b.info.size,
      repositoryBytes: b.info.repository.delta,
      startLsn: b.lsn.start,
      stopLsn: b.lsn.stop,
      archiveStart: b.archive?.start ?? undefined,
      archiveStop: b.archive?.stop ?? undefined,
      databaseId: b.database?.id,
    })),
    archives: (stanza?.archive ?? []).map((a) => ({
      id: a.id,
      databaseId: a.database?.id,
      min: a.min ?? undefined,
      max: a.max ?? undefined,
    })),
  };
}

/** A backup into repo 1 (the local repository) or, with `{ repo: 2 }`, the S3 repository. */
export async function pgBackRestBackup(
  options: PgBackRestOptions,
  type: "full" | "diff" | "incr",
  opts: { repo?: number } = {},
): Promise<PgBackRestBackup> {
  const l = await pgBackRestLayout(options);
  const repo = opts.repo ?? 1;
  // pgBackRest names the backup it made at console level info ("new backup label = ..."): one `info`
  // call afterwards finds it, instead of one before and one after to tell the new one apart
  const output = await runPgBackRest(options, l, ["backup", `--repo=${repo}`, `--type=${type}`], {
    consoleLevel: "info",
  });
  const label = /new backup label = (\S+)/.exec(output)?.[1];
  if (!label)
    throw new BackupError("pgbackrest", "pgbackrest backup finished without naming the backup it made");
  const made = (await pgBackRestInfo(options)).backups.find((b) => b.repo === repo && b.label === label);
  if (!made)
    throw new BackupError(
      "pgbackrest",
      `pgbackrest backup made ${label}, but info does not list it in repository ${repo}`,
    );
  return made;
}

/**
 * GFS expiry of the pgBackRest repositories: selectRetained over `info`, per repository (each has its own
 * chains), then `expire --repo=N --set` for each expired backup whose prior is kept or absent (expiring a
 * full removes its dependents, all expired too).
 */
export async function pgBackRestExpire(
  options: PgBackRestOptions,
  policy: GfsPolicy,
  opts: { now?: Date; dryRun?: boolean } = {},
): Promise<RetentionResult & { expiredSets: string[]; dryRun: boolean }> {
  const l = await pgBackRestLayout(options);
  const { backups } = await pgBackRestInfo(options);
  const repos = [...new Set(backups.map((b) => b.repo))].sort();
  const now = opts.now ?? new Date();
  const out: RetentionResult & { expiredSets: string[]; dryRun: boolean } = {
    policy,
    now: now.toISOString(),
    keep: [],
    expire: [],
    expiredSets: [],
    dryRun: Boolean(opts.dryRun),
  };
  for (const repo of repos) {
    const inRepo = backups.filter((b) => b.repo === repo);
    const retention = selectRetained(
      inRepo.map((b) => ({
        label: b.label,
        startedAt: b.startedAt,
        kind: b.type,
        ...(b.prior ? { prior: b.prior } : {}),
      })),
      policy,
      now,
    );
    const expired = new Set(retention.expire.map((d) => d.label));
    const roots = inRepo
      .filter((b) => expired.has(b.label) && !(b.prior && expired.has(b.prior)))
      .map((b) => b.label);
    if (!opts.dryRun)
      for (const label of roots)
        await runPgBackRest(options, l, ["expire", `--repo=${repo}`, `--set=${label}`]);
    out.keep.push(...retention.keep);
    out.expire.push(...retention.expire);
    out.expiredSets.push(...(repos.length > 1 ? roots.map((r) => `repo${repo}:${r}`) : roots));
  }
  return out;
}
